"""What MirrorMaker 2 copies between missions' clusters, and the ACLs that lets it do, as pure
functions: for the admin step (``opstools.kafkaadmin``) and for the process that runs MM2
(``devkit.devinfra.mirrormaker``). docs/mirrormaker.md says why each ACL is there.

A flow copies topics from a source cluster into a target cluster under the same names
(``IdentityReplicationPolicy``), pulled by the receiving mission's MM2. On the source that
MM2 only reads. On the target it keeps Connect's three internal topics per source, joins its
Connect group, writes transactionally (exactly once) and writes the mirrored topics, which the
admin step creates beforehand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from opstools.kafkaadmin import Acl, PatternKind


@dataclass(frozen=True)
class MirrorFlow:
    """Topics copied from one cluster to another under the same names."""

    source: str
    """cluster alias, e.g. "kaz" """
    target: str
    topics: tuple[str, ...]
    """exact names, mirrored under the same names (IdentityReplicationPolicy)"""

    def __post_init__(self) -> None:
        for alias in (self.source, self.target):
            if not re.fullmatch(r"[a-z][a-z0-9]{0,19}", alias):
                raise ValueError(f"cluster alias {alias!r}: lower-case letters and digits only")
        if self.source == self.target:
            raise ValueError(f"a flow from {self.source} to itself")
        if not self.topics:
            raise ValueError(f"flow {self.source}->{self.target} names no topic")


def check_flows(flows: Iterable[MirrorFlow]) -> None:
    """Refuse flows that would loop: with identity names MM2 cannot tell a record it copied from
    one written locally, so a topic mirrored around a cycle of clusters would echo forever."""
    edges: dict[str, dict[str, set[str]]] = {}  # topic -> source -> targets
    for flow in flows:
        for topic in flow.topics:
            edges.setdefault(topic, {}).setdefault(flow.source, set()).add(flow.target)
    for topic, graph in edges.items():
        # Peel off clusters the topic goes nowhere from; whatever is left lies on a cycle.
        left = {cluster: set(targets) for cluster, targets in graph.items()}
        while sinks := [c for c, targets in left.items() if not targets & left.keys()]:
            for cluster in sinks:
                del left[cluster]
        if left:
            raise ValueError(f"topic {topic} is mirrored in a loop between {sorted(left)}")


def connect_group(source: str) -> str:
    """The Connect group the herder for ``source -> target`` joins on the target cluster."""
    return f"{source}-mm2"


def internal_topics(source: str) -> list[str]:
    """Connect's internal topics on the target for the flow from ``source``."""
    return [f"mm2-{kind}.{source}.internal" for kind in ("configs", "offsets", "status")]


def transactional_ids(source: str) -> list[tuple[str, PatternKind]]:
    """The transactional ids the herder for ``source`` uses on the target (exactly-once): its
    leader's, which writes the config topic, and one per MirrorSourceConnector task."""
    return [
        (f"connect-cluster-{connect_group(source)}", "literal"),
        (f"{connect_group(source)}-MirrorSourceConnector-", "prefixed"),
    ]


def mirror_acls(principal: str, flows: Sequence[MirrorFlow]) -> dict[str, list[Acl]]:
    """The ACLs the MM2 principal needs, per cluster alias, for ``flows``: least privilege, found
    with the authoriser on by taking each one away (docs/mirrormaker.md), and used by
    tests/integration/test_mirrormaker.py."""
    check_flows(flows)
    acls: dict[str, set[Acl]] = {}
    for flow in flows:
        source = acls.setdefault(flow.source, set())
        target = acls.setdefault(flow.target, set())
        for topic in flow.topics:
            source.add(Acl(principal, "topic", topic, "read"))
            target.add(Acl(principal, "topic", topic, "write"))
        for topic in internal_topics(flow.source):
            for operation in ("create", "read", "write"):
                target.add(Acl(principal, "topic", topic, operation))
        target.add(Acl(principal, "group", connect_group(flow.source), "read"))
        for txn, pattern in transactional_ids(flow.source):
            target.add(Acl(principal, "transactional_id", txn, "write", pattern))
    return {alias: sorted(found) for alias, found in sorted(acls.items())}
