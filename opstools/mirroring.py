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

from opstools.deployments import connect_group, connect_topics, transactional_ids
from opstools.kafkaadmin import Acl, mirror_target_acls

__all__ = ["MirrorFlow", "check_flows", "connect_group", "connect_topics", "mirror_acls", "transactional_ids"]


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


def mirror_acls(principal: str, flows: Sequence[MirrorFlow]) -> dict[str, list[Acl]]:
    """The ACLs the MM2 principal needs, per cluster alias, for ``flows``: least privilege, found
    with the authoriser on by taking each one away (docs/mirrormaker.md): on each source, Read on
    the flows' topics; on the target, what the admin step grants it from a deployment description
    (``opstools.kafkaadmin.mirror_target_acls``). Used by tests/integration/test_mirrormaker.py."""
    check_flows(flows)
    acls: dict[str, set[Acl]] = {}
    for flow in flows:
        acls.setdefault(flow.source, set()).update(Acl(principal, "topic", t, "read") for t in flow.topics)
        acls.setdefault(flow.target, set()).update(mirror_target_acls(principal, [flow.source], flow.topics))
    return {alias: sorted(found) for alias, found in sorted(acls.items())}
