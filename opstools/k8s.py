"""Kubernetes for a deployment description: the Helm chart's values, derived from it and the code.

The chart (``deploy/helm/corridor``) turns values into objects; this module writes the part of the
values that a deployment description decides, one file per description, committed beside the chart:

    python -m opstools.k8s values deploy/deployments/per-mission.yaml \\
        > deploy/helm/corridor/values-per-mission.yaml
    python -m opstools.k8s check      # every committed values file is current

Per Kafka cluster of the description (one namespace each: ``corridor`` for a shared cluster,
``corridor-<cluster>`` for a mission's own) it lists what Strimzi's operators create: the
``KafkaTopic`` and ``KafkaUser`` objects of ``opstools.kafkaadmin.plan`` (the same topics, retention
and ACLs the local admin step applies), one ``KafkaMirrorMaker2`` per receiving mission pulling
only the shared topics from each sender, and one Deployment and Service per service instance on that
cluster's missions. What an operator chooses (images, resources, broker sizes, the database and
identity provider addresses) stays in the chart's ``values.yaml``, overridable as usual.

Strimzi: the ``kafka.strimzi.io/v1beta2`` API as Strimzi 0.49 serves it, with the MirrorMaker 2
layout that API version introduced and ``v1`` keeps (``spec.target`` and ``spec.mirrors[].source``
instead of the deprecated ``clusters``/``connectCluster``/``sourceCluster``/``targetCluster``), and
ACL rules with ``operations`` lists (the singular ``operation`` is deprecated).
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml

from corridor.settings import REPO_ROOT
from opstools.deployments import DeploymentDescription, mirror_principal
from opstools.kafkaadmin import Acl, InstanceNeeds, Plan, cluster_view, needs_from_code, plan

CHART = REPO_ROOT / "deploy" / "helm" / "corridor"
DESCRIPTIONS = REPO_ROOT / "deploy" / "deployments"
ROUTES_IN_IMAGE = "/app/deploy/routes"  # the Dockerfile copies deploy/ to /app/deploy
IDENTITY_POLICY = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"

STRIMZI_PATTERN = {"literal": "literal", "prefixed": "prefix"}


@dataclass(frozen=True, order=True)
class Rule:
    """One ACL in Strimzi's terms (``KafkaUser`` ``spec.authorization.acls``)."""

    resource: str
    """topic, group or transactionalId"""
    name: str
    pattern: str
    """literal or prefix"""
    operation: str
    """Read, Write, Describe, DescribeConfigs"""


def rule(acl: Acl) -> Rule:
    # Strimzi spells Kafka's operations in camel case: describe_configs is DescribeConfigs.
    operation = "".join(word.capitalize() for word in acl.operation.split("_"))
    return Rule(acl.resource, acl.name, STRIMZI_PATTERN[acl.pattern], operation)


def namespace(cluster: str) -> str:
    """A cluster's namespace: each mission's cluster, its objects and its services in their own."""
    return "corridor" if cluster == "corridor" else f"corridor-{cluster}"


def k8s_name(name: str) -> str:
    """A Kafka name as an object name (RFC 1123 subdomain: lower case, '.', '-')."""
    return re.sub(r"[^a-z0-9.-]", "-", name.lower()).strip(".-")


def strimzi_acls(rules: Iterable[Rule]) -> list[dict[str, Any]]:
    """ACLs as Strimzi's ``simple`` authorization rules, one rule per resource."""
    by_resource: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for r in rules:
        by_resource[(r.resource, r.name, r.pattern)].add(r.operation)
    return [
        {
            "resource": {"type": kind, "name": name, "patternType": pattern},
            "operations": sorted(ops),
            "host": "*",
        }
        for (kind, name, pattern), ops in sorted(by_resource.items())
    ]


# --- MirrorMaker 2 on Kafka Connect ---------------------------------------------------------------


def connect_topics(principal: str) -> dict[str, str]:
    """Kafka Connect's own topics of a mission's MirrorMaker (on its own cluster), by purpose."""
    return {kind: f"{principal}.{kind}" for kind in ("configs", "offsets", "status")}


def connect_rules(principal: str) -> list[Rule]:
    """What Strimzi's MirrorMaker 2 needs on its own cluster beyond what the plan gives it (writing
    the mirrored topics): it runs on Kafka Connect, which keeps its connectors' configuration,
    positions and status in topics of its own (created here as ``KafkaTopic`` s: it creates none)
    in a group of its own (the principal's name), and copies exactly once, in transactions of the
    Connect leader (``connect-cluster-<group>``) and of each task (``<group>-<connector>-<task>``),
    as the local MirrorMaker does (devkit), whose ACLs were found with the authoriser on. No offset
    syncs, heartbeats or checkpoints: each cluster's services have their own consumer groups, never
    failed over between clusters."""
    rules = [Rule("group", principal, "literal", "Read")]
    for name in connect_topics(principal).values():
        rules += [Rule("topic", name, "literal", op) for op in ("Describe", "Read", "Write")]
    rules += [
        Rule("transactionalId", f"connect-cluster-{principal}", "literal", "Write"),
        Rule("transactionalId", f"{principal}-", "prefix", "Write"),
    ]
    return rules


def _connect_topic_specs(principal: str) -> list[dict[str, Any]]:
    partitions = {"configs": 1, "offsets": 5, "status": 3}
    return [
        _topic(name, partitions[kind], {"cleanup.policy": "compact"})
        for kind, name in connect_topics(principal).items()
    ]


def _topic(name: str, partitions: int, config: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "resource": k8s_name(name), "partitions": partitions, "config": dict(config)}


def _pattern(names: Sequence[str]) -> str:
    """An exact-match alternation of topic names (MirrorMaker matches the whole name)."""
    return "|".join(re.escape(n) for n in sorted(names))


# --- the values ------------------------------------------------------------------------------------


def _services(description: DeploymentDescription, cluster: str) -> list[dict[str, Any]]:
    routes = f"{ROUTES_IN_IMAGE}/{description.routes.name}"
    found: list[dict[str, Any]] = []
    for inst in description.instances():
        mission = description.missions[inst.mission]
        if mission.cluster != cluster:
            continue
        database = inst.name.replace("-", "_") if inst.checkpoint else inst.name
        env = {"CORRIDOR_MISSION": inst.mission, "CORRIDOR_ROUTES_FILE": routes}
        if inst.checkpoint:
            env["CORRIDOR_CHECKPOINT"] = inst.checkpoint
        found.append(
            {
                "name": inst.name,
                "module": inst.module,
                "size": "border" if inst.checkpoint else inst.name,
                "mission": inst.mission,
                "principal": inst.principal,
                # Each service its own database and role (as the local stack), on its mission's server.
                "database": {"server": mission.database, "name": database, "role": database},
                "env": env,
            }
        )
    for code in description.missions_on(cluster):
        for page in description.missions[code].operations_pages:
            found.append(
                {
                    "name": page,
                    "module": "services.operations",
                    "size": "operations",
                    "mission": code,
                    "principal": page,
                    "database": None,
                    "env": {
                        "CORRIDOR_MISSION": code,
                        "CORRIDOR_ROUTES_FILE": routes,
                        "CORRIDOR_OPERATIONS_SERVICES": _json(_all_services_watched(description)),
                    },
                    "tokens": True,
                }
            )
    return found


def _all_services_watched(description: DeploymentDescription) -> dict[str, dict[str, str]]:
    """What an operations page watches: every service instance of the deployment, at its Service."""
    return {
        inst.name: {
            "url": f"http://{inst.name}.{namespace(description.cluster_of(inst.mission))}.svc:8000",
            "mission": inst.mission,
        }
        for inst in description.instances()
    }


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def cluster_values(
    description: DeploymentDescription, cluster: str, needs: Sequence[InstanceNeeds]
) -> dict[str, Any]:
    """Everything the chart renders in one cluster's namespace."""
    the_plan: Plan = plan(cluster_view(description, cluster), needs, connect=False)
    # receiving mission's MirrorMaker -> sending cluster -> the topics it pulls from there
    topics_from: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for share in description.shares_into(cluster):
        topics_from[mirror_principal(share.target)][description.cluster_of(share.source)] |= set(share.topics)

    rules_of: dict[str, list[Rule]] = defaultdict(list)
    for acl in the_plan.acls:
        rules_of[acl.principal].append(rule(acl))
    for principal in topics_from:
        rules_of[principal] += connect_rules(principal)

    topic_specs = [_topic(t.name, t.partitions, t.config) for t in the_plan.topics]
    for principal in sorted(topics_from):
        topic_specs += _connect_topic_specs(principal)

    return {
        "name": cluster,
        "namespace": namespace(cluster),
        "missions": description.missions_on(cluster),
        # the other missions' MirrorMakers that pull from this cluster (the only peers from outside)
        "mirroredBy": [
            {"namespace": namespace(description.cluster_of(target)), "name": mirror_principal(target)}
            for target in sorted({s.target for s in description.shares_from(cluster)})
        ],
        "topics": topic_specs,
        "users": [
            {"name": p, "resource": k8s_name(p), "acls": strimzi_acls(rules_of[p])}
            for p in the_plan.principals
        ],
        "mirrors": [
            {
                "name": principal,
                "groupId": principal,
                "connectTopics": connect_topics(principal),
                "sources": [
                    {
                        "cluster": source,
                        "namespace": namespace(source),
                        "topics": sorted(topics_from[principal][source]),
                        "topicsPattern": _pattern(sorted(topics_from[principal][source])),
                    }
                    for source in sorted(topics_from[principal])
                ],
            }
            for principal in sorted(topics_from)
        ],
        "services": _services(description, cluster),
    }


def chart_values(description: DeploymentDescription, needs: Sequence[InstanceNeeds]) -> dict[str, Any]:
    """The values a description gives the chart (pure: the description and the code's needs)."""
    return {
        "deployment": description.name,
        "shape": description.shape,
        "hostMission": description.host_mission,
        "identityReplicationPolicy": IDENTITY_POLICY,
        "clusters": [cluster_values(description, c, needs) for c in description.clusters],
    }


def values_text(path: Path) -> str:
    description = DeploymentDescription.load(path)
    values = chart_values(description, needs_from_code(description.routes))
    try:
        shown = path.resolve().relative_to(REPO_ROOT)
    except ValueError:
        shown = path
    header = (
        f"# Generated from {shown} and the code by `python -m opstools.k8s values {shown}`:\n"
        "# do not edit (an operator's choices go in values.yaml or a file of their own, given after this one).\n"
    )
    return header + yaml.safe_dump(values, sort_keys=False, width=1000)


def values_file(description: Path) -> Path:
    return CHART / f"values-{description.stem}.yaml"


app = typer.Typer(add_completion=False, help=__doc__)


@app.command("values")
def values_command(description: Path) -> None:
    """Print the chart values of a deployment description."""
    typer.echo(values_text(description), nl=False)


@app.command("export")
def export_command() -> None:
    """Write deploy/helm/corridor/values-<name>.yaml for every description in deploy/deployments."""
    for path in sorted(DESCRIPTIONS.glob("*.yaml")):
        values_file(path).write_text(values_text(path))
        typer.echo(f"wrote {values_file(path).relative_to(REPO_ROOT)}")


@app.command("check")
def check_command() -> None:
    """Fail when a committed values file is not what its description gives."""
    stale = [p.name for p in sorted(DESCRIPTIONS.glob("*.yaml")) if not _current(p)]
    if stale:
        typer.echo(f"not current (run python -m opstools.k8s export): {', '.join(stale)}", err=True)
        raise typer.Exit(1)


def _current(path: Path) -> bool:
    target = values_file(path)
    return target.exists() and target.read_text() == values_text(path)


if __name__ == "__main__":
    sys.exit(app())
