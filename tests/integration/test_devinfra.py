"""The Docker-free servers of devkit.devinfra: real Kafka brokers and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from corridor.kafkaclient import KafkaAccess
from corridor.runtime import ensure_topics
from devkit.devinfra import KafkaCluster, PostgresServer, procs
from devkit.devinfra.jaeger import JaegerServer
from devkit.devinfra.prometheus import PrometheusServer


def _gone(pid: int) -> bool:
    try:
        # A zombie is dead; only its parent (often init, here) has not reaped it yet.
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _processes_under(path: Path) -> list[int]:
    """Live processes whose command line mentions ``path`` (servers and their helpers)."""
    found: list[int] = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(str(path) in a for a in cmdline):
            found.append(proc.info["pid"])
    return found


async def _read_all(
    access: KafkaAccess, topic: str, partitions: int, expected: int, timeout: float = 30.0
) -> list[bytes]:
    """Every record of ``topic`` from the start, without a consumer group."""
    consumer = AIOKafkaConsumer(**access.aiokafka(), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        values: list[bytes] = []
        async with asyncio.timeout(timeout):
            while len(values) < expected:
                batch = await consumer.getmany(timeout_ms=1000)
                values.extend(r.value for records in batch.values() for r in records)
        return values
    finally:
        await consumer.stop()


@pytest.mark.integration
async def test_single_node_kafka_and_postgres(tmp_path: Path) -> None:
    kafka = KafkaCluster(tmp_path / "kafka", nodes=1)
    postgres = PostgresServer(tmp_path / "postgres")
    try:
        # Called from inside the running event loop on purpose: start() must cope.
        postgres.start()
        await asyncio.to_thread(kafka.start)
        assert kafka.bootstrap_servers.startswith("127.0.0.1:")
        admin_access = kafka.admin_access()
        # The admin password is the cluster's own, readable by its owner only.
        assert kafka.admin_password_file.stat().st_mode & 0o077 == 0
        assert kafka.admin_password not in (kafka.node_dir(0) / "stdout.log").read_text()
        # No topic appears on first use: the admin step creates them.
        await ensure_topics(admin_access, ["devinfra.smoke"], partitions=1, replication=1)

        producer = AIOKafkaProducer(**admin_access.aiokafka(), acks="all", enable_idempotence=True)
        await producer.start()
        try:
            meta = await producer.send_and_wait("devinfra.smoke", b"hello", key=b"k")
        finally:
            await producer.stop()
        assert meta.offset == 0
        consumer = AIOKafkaConsumer(
            "devinfra.smoke",
            **admin_access.aiokafka(),
            group_id="devinfra-smoke",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), timeout=30)
        finally:
            await consumer.stop()
        assert (record.key, record.value) == (b"k", b"hello")

        conn = await asyncpg.connect(postgres.dsn())
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
        await asyncio.to_thread(postgres.create_database, "devinfra_check")
        await asyncio.to_thread(postgres.create_database, "devinfra_check")  # idempotent
        conn = await asyncpg.connect(postgres.dsn("devinfra_check"))
        try:
            await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')")
        finally:
            await conn.close()

        port = postgres.port
        await asyncio.to_thread(postgres.restart)
        assert postgres.port == port
        conn = await asyncpg.connect(postgres.dsn("devinfra_check"))
        try:
            assert await conn.fetchval("SELECT v FROM kept") == "survives"
        finally:
            await conn.close()

        pids = [postgres.pid, *kafka.pids]
    finally:
        await asyncio.to_thread(kafka.stop)
        postgres.stop()

    assert None not in pids
    assert all(_gone(pid) for pid in pids if pid is not None)
    assert _processes_under(tmp_path) == []
    assert kafka.pids == [None] and postgres.pid is None
    kafka.stop()  # idempotent
    postgres.stop()


@pytest.mark.integration
@pytest.mark.slow
async def test_three_node_cluster_loses_no_acked_record_when_a_node_dies(tmp_path: Path) -> None:
    cluster = KafkaCluster(tmp_path / "kafka", nodes=3, heap_mb=256)
    topic = "devinfra.replicated"
    try:
        await asyncio.to_thread(cluster.start)
        assert len(cluster.bootstrap_servers.split(",")) == 3
        access = cluster.admin_access()
        admin = AIOKafkaAdminClient(**access.aiokafka())
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])
        finally:
            await admin.close()

        producer = AIOKafkaProducer(**access.aiokafka(), acks="all", enable_idempotence=True)
        await producer.start()
        acked: list[bytes] = []
        try:
            for i in range(30):
                await producer.send_and_wait(topic, f"before-{i}".encode(), key=str(i).encode())
                acked.append(f"before-{i}".encode())

            first_pid = cluster.pids[0]
            cluster.kill_node(0)
            assert first_pid is not None and _gone(first_pid)
            assert cluster.pids[0] is None

            # Two of three replicas left: acks=all still succeeds (min.insync.replicas=2)
            # once the controller has moved leadership away from the dead node.
            for i in range(30):
                await producer.send_and_wait(topic, f"after-{i}".encode(), key=str(i).encode())
                acked.append(f"after-{i}".encode())
        finally:
            await producer.stop()

        values = await _read_all(access, topic, 3, expected=len(acked))
        assert sorted(values) == sorted(acked)

        await asyncio.to_thread(cluster.start_node, 0)
        assert None not in cluster.pids
        pids = [pid for pid in cluster.pids if pid is not None]
    finally:
        await asyncio.to_thread(cluster.stop)

    assert all(_gone(pid) for pid in pids)
    assert _processes_under(tmp_path) == []


@dataclass
class StolenPort:
    port: int
    handed_out: list[list[int]] = field(default_factory=list)
    """Every set of ports procs chose, in order"""


@pytest.fixture
def stolen_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[StolenPort]:
    """A free port is found, then bound later by the server: on a shared machine another process
    may take it in between. Here the first port procs hands out is one this test already holds,
    listening (so a readiness check that only connects would be answered)."""
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    stolen = StolenPort(taken.getsockname()[1])
    real = procs.free_ports

    def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
        ports = real(count, host)
        if not stolen.handed_out:
            ports[0] = stolen.port
        stolen.handed_out.append(ports)
        return ports

    monkeypatch.setattr(procs, "free_ports", free_ports)
    try:
        yield stolen
    finally:
        taken.close()


def _started_again(stolen: StolenPort, pid: int | None, ports: list[int]) -> None:
    """The server tried the stolen port, then came up on ports chosen anew, holding them itself."""
    assert stolen.handed_out[0][0] == stolen.port
    assert len(stolen.handed_out) >= 2
    assert stolen.port not in ports
    assert pid is not None and procs.holds_ports(pid, ports)


@pytest.mark.integration
async def test_postgres_chooses_another_port_when_its_port_is_taken_before_it_binds(
    tmp_path: Path, stolen_port: StolenPort
) -> None:
    postgres = PostgresServer(tmp_path / "postgres")
    try:
        postgres.start()
        _started_again(stolen_port, postgres.pid, [postgres.port])
        conn = await asyncpg.connect(postgres.dsn("postgres"))
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
    finally:
        postgres.stop()


@pytest.mark.integration
async def test_kafka_chooses_other_ports_when_its_broker_port_is_taken_before_it_binds(
    tmp_path: Path, stolen_port: StolenPort
) -> None:
    """The broker's port answers TCP (this test listens on it) while the node dies of the bind
    error: the cluster is formatted again on new ports, not handed over dead."""
    kafka = KafkaCluster(tmp_path / "kafka", nodes=1)
    try:
        await asyncio.to_thread(kafka.start)
        _started_again(
            stolen_port, kafka.pids[0], [*kafka.broker_ports, *kafka.controller_ports, *kafka.tls_ports]
        )
        admin = AIOKafkaAdminClient(**kafka.admin_access().aiokafka())
        await admin.start()
        try:
            assert [b["node_id"] for b in (await admin.describe_cluster())["brokers"]] == [1]
        finally:
            await admin.close()
    finally:
        await asyncio.to_thread(kafka.stop)


@pytest.mark.integration
@pytest.mark.go_tool("jaeger")
def test_jaeger_chooses_other_ports_when_one_is_taken_before_it_binds(
    tmp_path: Path, stolen_port: StolenPort
) -> None:
    jaeger = JaegerServer(tmp_path / "jaeger", max_traces=100)
    try:
        jaeger.start()
        assert jaeger.process is not None
        _started_again(stolen_port, jaeger.process.pid, [jaeger.otlp_port, jaeger.query_port])
        assert httpx.get(jaeger.url + "/api/services", timeout=5.0).status_code == 200
    finally:
        jaeger.stop()


@pytest.mark.integration
def test_prometheus_chooses_another_port_when_its_port_is_taken_before_it_binds(
    tmp_path: Path, stolen_port: StolenPort
) -> None:
    prometheus = PrometheusServer(tmp_path / "prometheus", interval=1.0)
    prometheus.write_config([], {}, [])
    try:
        prometheus.start()
        assert prometheus.process is not None
        _started_again(stolen_port, prometheus.process.pid, [prometheus.port])
        assert prometheus.query("vector(1)")[0]["value"][1] == "1"
    finally:
        prometheus.stop()
