"""MirrorMaker 2's configuration and ACLs, as pure functions (the running MM2 is proven in
tests/integration/test_mirrormaker.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from corridor.kafkaclient import KafkaAccess
from devkit.devinfra.mirrormaker import mm2_properties
from opstools.kafkaadmin import CLUSTER, Acl, Plan
from opstools.mirroring import MirrorFlow, check_flows, mirror_acls
from opstools.mirrorlag import MirrorLagCollector, PartitionLag


def _access(port: int, user: str) -> KafkaAccess:
    return KafkaAccess(
        bootstrap=f"127.0.0.1:{port}", username=user, password=SecretStr(f"{user}-secret-{port}")
    )


def _props(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {k: v for k, v in pairs}


def test_acls_are_read_only_on_the_source_and_name_only_the_flows_resources() -> None:
    flows = [MirrorFlow("kaz", "uzb", ("transport.manifests.a", "case.status"))]
    acls = mirror_acls("uzb-mm2", flows)
    assert set(acls) == {"kaz", "uzb"}
    assert {(a.resource, a.name, a.operation) for a in acls["kaz"]} == {
        ("topic", "case.status", "read"),
        ("topic", "transport.manifests.a", "read"),
    }
    target = {(a.resource, a.name, a.operation, a.pattern) for a in acls["uzb"]}
    internal = {f"mm2-{k}.kaz.internal" for k in ("configs", "offsets", "status")}
    assert target == (
        {("topic", t, op, "literal") for t in internal for op in ("create", "read", "write")}
        | {("topic", t, "write", "literal") for t in ("transport.manifests.a", "case.status")}
        | {("group", "kaz-mm2", "read", "literal")}
        | {("transactional_id", "connect-cluster-kaz-mm2", "write", "literal")}
        | {("transactional_id", "kaz-mm2-MirrorSourceConnector-", "write", "prefixed")}
    )
    assert all(a.principal == "uzb-mm2" for found in acls.values() for a in found)
    plan = Plan(["uzb-mm2"], [], acls["kaz"])
    assert plan.allowed("uzb-mm2", "describe", "topic", "case.status")
    assert not plan.allowed("uzb-mm2", "write", "topic", "case.status")
    assert not Plan(["uzb-mm2"], [], acls["uzb"]).allowed("uzb-mm2", "read", "topic", "case.status")


def test_cluster_acls_render() -> None:
    assert (
        str(Acl("x", "cluster", CLUSTER, "idempotent_write"))
        == "User:x IDEMPOTENT_WRITE cluster:kafka-cluster"
    )


@pytest.mark.parametrize(
    "flows",
    [
        [MirrorFlow("kaz", "uzb", ("a",)), MirrorFlow("uzb", "kaz", ("a",))],
        [
            MirrorFlow("kaz", "uzb", ("a",)),
            MirrorFlow("uzb", "tjk", ("a",)),
            MirrorFlow("tjk", "kaz", ("a",)),
        ],
    ],
)
def test_a_topic_mirrored_in_a_loop_is_refused(flows: list[MirrorFlow]) -> None:
    with pytest.raises(ValueError, match="loop"):
        check_flows(flows)
    with pytest.raises(ValueError, match="loop"):
        mirror_acls("p", flows)


def test_chains_and_opposite_directions_of_different_topics_are_fine() -> None:
    check_flows(
        [MirrorFlow("kaz", "uzb", ("a",)), MirrorFlow("uzb", "tjk", ("a",)), MirrorFlow("uzb", "kaz", ("b",))]
    )


def test_properties_keep_secrets_in_their_own_file(tmp_path: Path) -> None:
    secrets_file = tmp_path / "mm2-secrets.properties"
    clusters = {"kaz": _access(9092, "uzb-mm2"), "uzb": _access(9192, "uzb-mm2"), "tjk": _access(9292, "x")}
    flows = [MirrorFlow("kaz", "uzb", ("transport.manifests.KAZ-UZB-1", "case.status"))]
    public, secret = mm2_properties("uzb", clusters, flows, secrets_file)
    props = _props(public)
    assert "-secret-" not in public
    assert props["clusters"] == "uzb,kaz"  # tjk is no source of uzb's: MM2 never connects to it
    assert props["kaz->uzb.enabled"] == "true"
    assert props["kaz.sasl.jaas.config"] == f"${{file:{secrets_file}:kaz.sasl.jaas.config}}"
    assert props["kaz.bootstrap.servers"] == "127.0.0.1:9092"
    assert props["replication.policy.class"].endswith("IdentityReplicationPolicy")
    assert props["uzb.exactly.once.source.support"] == "enabled"
    for off in (
        "emit.heartbeats",
        "emit.checkpoints",
        "emit.offset-syncs",
        "sync.topic.acls",
        "sync.topic.configs",
    ):
        assert props[f"{off}.enabled"] == "false"
    # The topics list is Java regexes, read through a properties file: dots match only dots.
    regexes = props["kaz->uzb.topics"].replace("\\\\", "\\").split(",")
    assert [bool(re.fullmatch(r, "case.status")) for r in regexes] == [True, False]
    assert not any(re.fullmatch(r, "caseXstatus") for r in regexes)
    assert _props(secret)["kaz.sasl.jaas.config"].endswith(
        'username="uzb-mm2" password="uzb-mm2-secret-9092";'
    )
    assert "x-secret" not in secret


def test_properties_refuse_what_one_target_mm2_cannot_do(tmp_path: Path) -> None:
    clusters = {"kaz": _access(1, "a"), "uzb": _access(2, "a")}
    with pytest.raises(ValueError, match="only into uzb"):
        mm2_properties(
            "uzb",
            clusters,
            [MirrorFlow("kaz", "uzb", ("a",)), MirrorFlow("uzb", "kaz", ("b",))],
            tmp_path / "s",
        )
    with pytest.raises(ValueError, match="no access"):
        mm2_properties("uzb", {"uzb": _access(2, "a")}, [MirrorFlow("kaz", "uzb", ("a",))], tmp_path / "s")


def test_lag_gauges_sum_records_and_take_the_oldest_age_per_topic() -> None:
    collector = MirrorLagCollector()
    collector.update(
        [
            PartitionLag("kaz", "uzb", "t", 0, source_end=10, next_to_copy=10, oldest_pending_seconds=0.0),
            PartitionLag("kaz", "uzb", "t", 1, source_end=10, next_to_copy=7, oldest_pending_seconds=4.5),
            PartitionLag("kaz", "uzb", "t", 2, source_end=3, next_to_copy=1, oldest_pending_seconds=9.0),
        ]
    )
    registry = CollectorRegistry()
    registry.register(collector)
    labels = {"source": "kaz", "target": "uzb", "topic": "t"}
    assert registry.get_sample_value("corridor_mirror_records_behind", labels) == 5
    assert registry.get_sample_value("corridor_mirror_oldest_pending_seconds", labels) == 9.0
    assert registry.get_sample_value("corridor_mirror_lag_checked_timestamp_seconds") is not None
