"""MirrorMaker 2 between missions' clusters, secured as in production: SASL/SCRAM and the
authoriser on every cluster, each mission's MM2 principal holding only ``mirror_acls``.

``kaz``, ``uzb`` and ``tjk`` are clusters of their own (not the session's platform). One topic
goes kaz -> uzb and another tjk -> uzb, both pulled by UZB's one MM2; a third goes uzb -> kaz,
pulled by KAZ's MM2.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry

from corridor.kafkaclient import KafkaAccess, write_secret
from devkit.devinfra.kafka import KafkaCluster
from devkit.devinfra.mirrormaker import MirrorMaker
from opstools.kafkaadmin import CLUSTER, Acl, Plan, TopicSpec, apply, principal_access
from opstools.mirroring import MirrorFlow, mirror_acls
from opstools.mirrorlag import MirrorLagCollector, PartitionLag, mirror_lag
from tests.conftest import report_figure
from tests.integration.test_kafka_security import _can_fetch

pytestmark = pytest.mark.integration

SECTION = "MirrorMaker 2"
PARTITIONS = 3
KAZ_OUT = "corridor.test.kaz-to-uzb"
UZB_OUT = "corridor.test.uzb-to-kaz"
TJK_OUT = "corridor.test.tjk-to-uzb"
KAZ_PRIVATE = "corridor.test.kaz-only"
FLOWS = {
    "uzb": [MirrorFlow("kaz", "uzb", (KAZ_OUT,)), MirrorFlow("tjk", "uzb", (TJK_OUT,))],
    "kaz": [MirrorFlow("uzb", "kaz", (UZB_OUT,))],
}
"""Each target mission's flows into its cluster"""
DIRECTIONS = [(f.source, f.target, f.topics[0]) for flows in FLOWS.values() for f in flows]
ALIASES = ("kaz", "uzb", "tjk")


def mm2_principal(mission: str) -> str:
    return f"{mission}-mm2"


@dataclass
class Link:
    clusters: dict[str, KafkaCluster]
    mirrors: dict[str, MirrorMaker]
    """by target"""
    admins: dict[str, KafkaAccess]
    mm2_access: dict[tuple[str, str], KafkaAccess]
    """(mission whose MM2, cluster) -> that principal's access"""


def _plans() -> dict[str, Plan]:
    """Each cluster's topics and ACLs: both missions' MM2 principals, as mirror_acls says."""
    acls: dict[str, list[Acl]] = {alias: [] for alias in ALIASES}
    topics: dict[str, list[TopicSpec]] = {
        "kaz": [TopicSpec(KAZ_PRIVATE, PARTITIONS, {})],
        "uzb": [],
        "tjk": [],
    }
    for target, flows in FLOWS.items():
        for alias, found in mirror_acls(mm2_principal(target), flows).items():
            acls[alias] += found
        for flow in flows:
            # The admin step makes the mirrored topics on both sides: MM2 needs no Create on them.
            topics[flow.source] += [TopicSpec(t, PARTITIONS, {}) for t in flow.topics]
            topics[flow.target] += [TopicSpec(t, PARTITIONS, {}) for t in flow.topics]
    principals = [mm2_principal(m) for m in FLOWS]
    return {alias: Plan(principals, topics[alias], acls[alias]) for alias in ALIASES}


@pytest.fixture(scope="module")
def link(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Link]:
    started = time.monotonic()
    base = tmp_path_factory.mktemp("mirrormaker")
    clusters = {alias: KafkaCluster(base / alias, heap_mb=320) for alias in ALIASES}
    secrets = base / "secrets"
    mirrors: dict[str, MirrorMaker] = {}
    try:
        with ThreadPoolExecutor(len(clusters)) as pool:
            list(pool.map(lambda c: c.start(), clusters.values()))
        admins = {alias: c.admin_access() for alias, c in clusters.items()}
        for alias, plan in _plans().items():
            apply(plan, admins[alias], secrets)
        access = {
            (mission, alias): principal_access(c.bootstrap_servers, secrets, mm2_principal(mission))
            for mission in FLOWS
            for alias, c in clusters.items()
        }
        # The other mission's cluster is across a border: MM2 reaches it over SASL_SSL,
        # verifying its brokers' certificates; its own cluster is next to it.
        access |= {
            (mission, alias): clusters[alias].tls_access(a)
            for (mission, alias), a in access.items()
            if mission != alias
        }
        for target, flows in FLOWS.items():
            mirrors[target] = MirrorMaker(
                base / f"mm2-{target}",
                target,
                {alias: access[(target, alias)] for alias in clusters},
                flows,
            )
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda m: m.start(), mirrors.values()))
        for target, mirror in mirrors.items():
            report_figure(
                SECTION,
                f"MM2 into {target}: launch to replicating {mirror.start_seconds:.1f} s, "
                f"RSS {mirror.rss_bytes() / 2**20:.0f} MiB (-Xmx{mirror.heap_mb}m)",
            )
        report_figure(SECTION, f"three clusters and two MM2 ready in {time.monotonic() - started:.1f} s")
        yield Link(clusters, mirrors, admins, access)
        for target, mirror in mirrors.items():
            report_figure(SECTION, f"MM2 into {target}: RSS at the end {mirror.rss_bytes() / 2**20:.0f} MiB")
    finally:
        # MM2 first: without its clusters it would wait on every client's timeout.
        for mirror in mirrors.values():
            mirror.stop()
        for cluster in clusters.values():
            cluster.stop()
        report_figure(SECTION, f"module wall time {time.monotonic() - started:.0f} s")


@pytest.fixture
async def producer(link: Link) -> AsyncIterator[dict[str, AIOKafkaProducer]]:
    """An idempotent acks=all producer on each cluster (the admin: any writer would do)."""
    made = {
        alias: AIOKafkaProducer(**a.aiokafka(), acks="all", enable_idempotence=True)
        for alias, a in link.admins.items()
    }
    for p in made.values():
        await p.start()
    yield made
    for p in made.values():
        await p.stop()


async def _end_offsets(access: KafkaAccess, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**access.aiokafka(), isolation_level="read_committed")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def _read_from(
    access: KafkaAccess,
    topic: str,
    start: dict[int, int],
    until: int,
    *,
    isolation: str = "read_committed",
    timeout: float = 60.0,
    settle: float = 0.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Records of ``topic`` from ``start`` offsets on, until ``until`` have come (and ``settle``
    seconds more, for any that should not come) or ``timeout``."""
    consumer = AIOKafkaConsumer(**access.aiokafka(), isolation_level=isolation, enable_auto_commit=False)
    await consumer.start()
    got: list[ConsumerRecord[bytes, bytes]] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp.partition, 0))
        deadline = time.monotonic() + timeout
        while len(got) < until and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got += records
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got += records
    finally:
        await consumer.stop()
    return got


@pytest.mark.parametrize("source,target,topic", DIRECTIONS)
async def test_records_arrive_intact_in_both_directions(
    link: Link, producer: dict[str, AIOKafkaProducer], source: str, target: str, topic: str
) -> None:
    start = await _end_offsets(link.admins[target], topic)
    run = uuid.uuid4().hex[:8]
    sent = {}
    base_ts = int(time.time() * 1000) - 60_000  # a timestamp MM2 could not have made up
    for i in range(12):
        key = f"case-{run}-{i}".encode()
        headers = [("ce_id", f"{run}-{i}".encode()), ("ce_source", b"/missions/KAZ/intake"), ("empty", b"")]
        meta = await producer[source].send_and_wait(
            topic,
            key=key,
            value=f'{{"n": {i}}}'.encode(),
            headers=headers,
            partition=i % PARTITIONS,
            timestamp_ms=base_ts + i,
        )
        sent[key] = (meta.partition, f'{{"n": {i}}}'.encode(), headers, base_ts + i)
    got = await _read_from(link.admins[target], topic, start, len(sent))
    assert len(got) == len(sent), f"{len(got)} of {len(sent)} records came\n{link.mirrors[target].problems()}"
    for record in got:
        assert record.key is not None
        partition, value, headers, ts = sent[record.key]
        assert (record.partition, record.value, list(record.headers), record.timestamp) == (
            partition,
            value,
            headers,
            ts,
        ), f"record {record.key!r} changed on the way"
    by_partition: dict[int, list[bytes]] = {}
    for record in got:
        by_partition.setdefault(record.partition, []).append(record.key or b"")
    for partition, keys in by_partition.items():
        assert keys == [k for k, v in sent.items() if v[0] == partition], "order within a partition kept"


async def test_only_the_flows_topics_are_mirrored(link: Link, producer: dict[str, AIOKafkaProducer]) -> None:
    start = await _end_offsets(link.admins["uzb"], KAZ_OUT)
    await producer["kaz"].send_and_wait(KAZ_PRIVATE, key=b"private", value=b"stays in KAZ")
    # A record on the mirrored topic, written after: once it is on uzb, MM2 has had its chance.
    await producer["kaz"].send_and_wait(KAZ_OUT, key=b"fence", value=b"after", partition=0)
    assert [r.key for r in await _read_from(link.admins["uzb"], KAZ_OUT, start, 1)] == [b"fence"]

    from confluent_kafka.admin import AdminClient

    uzb_topics = set(AdminClient(link.admins["uzb"].librdkafka()).list_topics(timeout=10).topics)
    assert KAZ_PRIVATE not in uzb_topics
    assert not {t for t in uzb_topics if "heartbeat" in t or "checkpoint" in t or "offset-syncs" in t}

    # UZB's MM2 principal, on KAZ's cluster: the mirrored topic yes, the private one refused.
    uzb_mm2_on_kaz = link.mm2_access[("uzb", "kaz")]
    assert await _can_fetch(uzb_mm2_on_kaz, KAZ_OUT)
    assert not await _can_fetch(uzb_mm2_on_kaz, KAZ_PRIVATE)
    # ... and it writes nothing on the source, not even the topic it reads.
    writer = AIOKafkaProducer(**uzb_mm2_on_kaz.aiokafka(), acks="all", enable_idempotence=False)
    await writer.start()
    try:
        from aiokafka.errors import TopicAuthorizationFailedError

        with pytest.raises(TopicAuthorizationFailedError):
            await writer.send_and_wait(KAZ_OUT, b"forged")
    finally:
        await writer.stop()


async def test_killed_and_restarted_mirror_copies_every_record_once(
    link: Link, producer: dict[str, AIOKafkaProducer]
) -> None:
    mirror = link.mirrors["uzb"]
    start = await _end_offsets(link.admins["uzb"], KAZ_OUT)
    run = uuid.uuid4().hex[:8]
    total, kill_at, restart_at, burst_size = 300, 100, 200, 200
    restart_seconds = 0.0
    for i in range(total):
        if i == kill_at:
            # A burst just before: the kill likely lands while MM2 has a batch in an open transaction.
            burst = [
                producer["kaz"].send(KAZ_OUT, key=f"{run}-b{j}".encode(), value=f"{run}-b{j}".encode())
                for j in range(burst_size)
            ]
            await asyncio.gather(*await asyncio.gather(*burst))  # every one acknowledged
            mirror.kill()
        if i == restart_at:
            began = time.monotonic()
            await asyncio.to_thread(mirror.start)
            restart_seconds = time.monotonic() - began
        await producer["kaz"].send_and_wait(KAZ_OUT, key=f"{run}-{i}".encode(), value=f"{run}-{i}".encode())
        await asyncio.sleep(0.01)
    await producer["kaz"].flush()
    total += burst_size
    committed = await _read_from(link.admins["uzb"], KAZ_OUT, start, total, settle=3.0)
    seen = Counter(r.value for r in committed)
    missing = total - len(seen)
    duplicates = sum(n - 1 for n in seen.values())
    assert (missing, duplicates) == (0, 0), f"{missing} lost, {duplicates} copied twice"
    # What a read_uncommitted consumer sees: batches of an aborted transaction too.
    everything = await _read_from(
        link.admins["uzb"], KAZ_OUT, start, total, isolation="read_uncommitted", settle=1.0
    )
    report_figure(
        SECTION,
        f"MM2 killed after {kill_at + burst_size} of {total} records, restarted after {restart_at + burst_size} "
        f"({restart_seconds:.1f} s to replicate again): read_committed got {len(committed)} records, "
        f"0 lost, 0 twice; read_uncommitted saw {len(everything) - total} extra (aborted) copies",
    )


async def _latencies(producer: AIOKafkaProducer, target: KafkaAccess, topic: str, count: int) -> list[float]:
    """Seconds from each send (acks=all, on the source) to its record read on the target."""
    start = await _end_offsets(target, topic)
    consumer = AIOKafkaConsumer(
        **target.aiokafka(), isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, start[tp.partition])
    sent_at: dict[bytes, float] = {}
    latencies: list[float] = []

    async def receive() -> None:
        while len(latencies) < count:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                now = time.monotonic()
                latencies.extend(now - sent_at[r.value] for r in records if r.value in sent_at)

    receiving = asyncio.create_task(receive())
    try:
        for i in range(count):
            value = f"latency-{uuid.uuid4().hex}-{i}".encode()
            sent_at[value] = time.monotonic()
            await producer.send_and_wait(topic, value=value)
            await asyncio.sleep(0.05)
        try:
            await asyncio.wait_for(receiving, 30)
        except TimeoutError:
            raise AssertionError(f"{len(latencies)} of {count} records came in 30 s") from None
    finally:
        receiving.cancel()
        await consumer.stop()
    return latencies


@pytest.mark.parametrize("source,target,topic", DIRECTIONS)
async def test_replication_latency(
    link: Link, producer: dict[str, AIOKafkaProducer], source: str, target: str, topic: str
) -> None:
    count = 100
    try:
        await _latencies(producer[source], link.admins[target], topic, 10)  # warm: connections, JIT
        ms = sorted(x * 1000 for x in await _latencies(producer[source], link.admins[target], topic, count))
    except AssertionError as e:
        raise AssertionError(f"{e}\n{link.mirrors[target].problems()}") from None
    assert len(ms) == count
    p90 = ms[int(0.9 * (len(ms) - 1))]
    report_figure(
        SECTION,
        f"{source}->{target} produce(acks=all) to read_committed on the target, {count} records every "
        f"50 ms: min {ms[0]:.0f} ms, median {statistics.median(ms):.0f} ms, p90 {p90:.0f} ms, max {ms[-1]:.0f} ms",
    )
    assert statistics.median(ms) < 2000, "replication should take well under a second on loopback"


async def _lag(link: Link, flow: MirrorFlow) -> list[PartitionLag]:
    """As the receiving mission can measure it: with its MM2 principal on both clusters."""
    mission = flow.target
    return await mirror_lag(
        flow.source,
        flow.target,
        flow.topics,
        link.mm2_access[(mission, flow.source)],
        link.mm2_access[(mission, flow.target)],
    )


async def test_lag_is_visible_with_the_mm2_credentials(
    link: Link, producer: dict[str, AIOKafkaProducer]
) -> None:
    flow, mirror = FLOWS["uzb"][0], link.mirrors["uzb"]
    start = await _end_offsets(link.admins["uzb"], KAZ_OUT)
    await producer["kaz"].send_and_wait(KAZ_OUT, value=b"before the outage", partition=1)
    await _read_from(link.admins["uzb"], KAZ_OUT, start, 1)
    caught_up = await _lag(link, flow)
    assert {(x.topic, x.partition) for x in caught_up} == {(KAZ_OUT, p) for p in range(PARTITIONS)}
    assert [(x.records_behind, x.oldest_pending_seconds) for x in caught_up] == [(0, 0.0)] * PARTITIONS

    await asyncio.to_thread(mirror.stop)
    try:
        for i in range(5):
            await producer["kaz"].send_and_wait(KAZ_OUT, value=f"during the outage {i}".encode(), partition=1)
        await asyncio.sleep(1.0)
        behind = {x.partition: x for x in await _lag(link, flow)}
        assert [behind[p].records_behind for p in range(PARTITIONS)] == [0, 5, 0]
        assert behind[1].oldest_pending_seconds >= 1.0
        assert behind[0].oldest_pending_seconds == behind[2].oldest_pending_seconds == 0.0

        gauges = MirrorLagCollector()
        gauges.update(list(behind.values()))
        registry = CollectorRegistry()
        registry.register(gauges)
        labels = {"source": "kaz", "target": "uzb", "topic": KAZ_OUT}
        assert registry.get_sample_value("corridor_mirror_records_behind", labels) == 5
        assert (registry.get_sample_value("corridor_mirror_oldest_pending_seconds", labels) or 0) >= 1.0

        # The command line a mission's operator runs, with the MM2 principal's password file.
        access = link.mm2_access[("uzb", "kaz")]
        assert access.password is not None and access.username is not None
        password_file = mirror.workdir / "lag-check.password"
        write_secret(password_file, access.password.get_secret_value())
        cli = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "opstools.mirrorlag",
                "--source",
                "kaz",
                "--target",
                "uzb",
                "--topic",
                KAZ_OUT,
                "--source-bootstrap",
                access.bootstrap,
                "--source-cafile",
                str(access.ssl_cafile),
                "--target-bootstrap",
                link.mm2_access[("uzb", "uzb")].bootstrap,
                "--user",
                access.username,
                "--password-file",
                str(password_file),
                "--max-behind",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 1, cli.stderr
        rows = [json.loads(line) for line in cli.stdout.splitlines()]
        assert sorted(r["records_behind"] for r in rows) == [0, 0, 5]
    finally:
        await asyncio.to_thread(mirror.start)
    deadline = time.monotonic() + 30
    while any(x.records_behind for x in await _lag(link, flow)):
        assert time.monotonic() < deadline, "MM2 did not catch up after its restart"
        await asyncio.sleep(0.5)


def test_the_admin_step_applies_and_removes_every_acl_kind(link: Link, tmp_path: Path) -> None:
    """kafkaadmin.apply with the resource kinds and operations MM2 brought (cluster, transactional
    ids; create, describe_configs, idempotent_write...), on a cluster no MM2 writes to."""
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    admin = link.admins["tjk"]
    wanted = [
        Acl("probe", "cluster", CLUSTER, "idempotent_write"),
        Acl("probe", "cluster", CLUSTER, "describe_configs"),
        Acl("probe", "topic", "probe.", "create", "prefixed"),
        Acl("probe", "topic", TJK_OUT, "alter_configs"),
        Acl("probe", "transactional_id", "probe-", "write", "prefixed"),
        Acl("probe", "transactional_id", "probe-txn", "describe"),
    ]
    current = _plans()["tjk"]
    apply(Plan([*current.principals, "probe"], current.topics, [*current.acls, *wanted]), admin, tmp_path)
    # None matches any name and host (librdkafka's filter; the type stubs say str).
    probe_only = AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        "User:probe",
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    client = AdminClient(admin.librdkafka())
    found = {
        (b.restype.name, b.name, b.operation.name, b.resource_pattern_type.name)
        for b in client.describe_acls(probe_only, request_timeout=10).result()
    }
    assert found == {
        ("BROKER", "kafka-cluster", "IDEMPOTENT_WRITE", "LITERAL"),
        ("BROKER", "kafka-cluster", "DESCRIBE_CONFIGS", "LITERAL"),
        ("TOPIC", "probe.", "CREATE", "PREFIXED"),
        ("TOPIC", TJK_OUT, "ALTER_CONFIGS", "LITERAL"),
        ("TRANSACTIONAL_ID", "probe-", "WRITE", "PREFIXED"),
        ("TRANSACTIONAL_ID", "probe-txn", "DESCRIBE", "LITERAL"),
    }
    done = apply(current, admin, tmp_path)  # back to MM2's own: the probe's are stale
    assert len(done.removed_acls) == len(wanted)
    assert not client.describe_acls(probe_only, request_timeout=10).result()


def test_workdir_keeps_credentials_off_the_command_line(link: Link) -> None:
    mirror = link.mirrors["uzb"]
    assert mirror.pid is not None
    cmdline = Path(f"/proc/{mirror.pid}/cmdline").read_bytes().decode()
    secrets = mirror.secrets_path.read_text()
    passwords = [a.password.get_secret_value() for a in mirror.clusters.values() if a.password]
    assert passwords and all(p in secrets for p in passwords)
    assert not any(p in cmdline or p in mirror.properties_path.read_text() for p in passwords)
    assert mirror.secrets_path.stat().st_mode & 0o777 == 0o600
