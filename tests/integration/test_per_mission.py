"""A cluster per mission (deploy/deployments/per-mission.yaml): KAZ registers and moves the people,
UZB and TJK clear them at their own posts on their own Kafka clusters and PostgreSQL servers, and
MirrorMaker 2 carries only the shared topics between them. Each country's data stays in its
country, and a link or a cluster that goes away loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from contracts import topics
from contracts.routes import Route, RouteBook
from contracts.status import CaseStatus
from corridor.kafkaclient import KafkaAccess
from corridor.kafkatools import partitions_of
from corridor.settings import REPO_ROOT
from devkit import scenario
from devkit.devinfra import procs
from devkit.devinfra.kafka import ADMIN_USER
from devkit.devstack import Stack
from opstools.deployments import mirror_principal
from opstools.kafkaadmin import password_file
from opstools.mirrorlag import PartitionLag, mirror_lag
from opstools.statusreader import StatusStream
from tests.conftest import report_figure
from tests.integration.conftest import running_platform
from tests.integration.test_erasure import every_value

PER_MISSION = REPO_ROOT / "deploy" / "deployments" / "per-mission.yaml"
HOME = {"KAZ": "kaz", "UZB": "uzb", "TJK": "tjk"}


@pytest.fixture(scope="module")
def missions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = time.monotonic()
    with running_platform(tmp_path_factory.mktemp("per-mission"), deployment_file=PER_MISSION) as platform:
        rss = sum(m.rss_bytes() for m in platform.mirrors.values())
        brokers = sum(resident(p) for c in platform.clusters.values() for p in c.pids)
        services = sum(resident(p.pid) for p in platform.processes.values())
        report_figure(
            "cluster per mission",
            f"3 Kafka clusters, 3 PostgreSQL servers, {len(platform.mirrors)} MirrorMakers and "
            f"{len(platform.specs)} services started in {time.monotonic() - started:.0f} s; resident memory: "
            f"brokers {brokers / 2**20:.0f} MiB, MirrorMakers {rss / 2**20:.0f} MiB, "
            f"services {services / 2**20:.0f} MiB",
        )
        yield platform


def resident(pid: int | None) -> int:
    """A process's resident memory in bytes (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text() if pid else ""
    except OSError:
        return 0
    kib = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), "0")
    return int(kib) * 1024


@pytest.fixture(scope="module")
def route(missions: Stack) -> Route:
    return RouteBook.load(missions.routes_file).routes[0]


@contextlib.asynccontextmanager
async def stream_on(access: KafkaAccess) -> AsyncIterator[StatusStream]:
    reader = StatusStream(access)
    await reader.start()
    try:
        yield reader
    finally:
        await reader.stop()


async def every_record(access: KafkaAccess) -> dict[str, list[bytes]]:
    """Per topic, the key, value and header bytes of every record on the cluster (as its super user)."""
    consumer = AIOKafkaConsumer(**access.aiokafka(), enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        names = sorted(await consumer.topics())
        partitions = [tp for t in names for tp in await partitions_of(access, t)]
        ends = await consumer.end_offsets(partitions)
        wanted = {tp: end for tp, end in ends.items() if end > 0}
        found: dict[str, list[bytes]] = {t: [] for t in names}
        if not wanted:
            return found
        consumer.assign(list(wanted))
        await consumer.seek_to_beginning(*wanted)
        async with asyncio.timeout(60):
            while [tp for tp, end in wanted.items() if await consumer.position(tp) < end]:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    for r in records:
                        parts = [r.key or b"", r.value or b""] + [v for _, v in r.headers or ()]
                        found[tp.topic].append(b"\0".join(parts))
        return found
    finally:
        await consumer.stop()


def people_of(body: dict[str, Any]) -> set[str]:
    """What a registration says that identifies its people."""
    found: set[str] = set()
    for m in body["members"]:
        found |= {m["surname"], m["birth_date"], m["document"]["number"]}
    return found


async def tables_naming(stack: Stack, strings: set[str]) -> dict[tuple[str, str], set[str]]:
    """(PostgreSQL server, database) -> the tables where any of ``strings`` appears."""
    found: dict[tuple[str, str], set[str]] = {}
    for server_name, server in stack.databases.items():
        admin = await asyncpg.connect(server.dsn())
        try:
            databases = [
                r["datname"]
                for r in await admin.fetch("SELECT datname FROM pg_database WHERE NOT datistemplate")
                if r["datname"] != "postgres"
            ]
        finally:
            await admin.close()
        for db in databases:
            for table, text in await every_value(server.dsn(db)):
                if any(s in text for s in strings):
                    found.setdefault((server_name, db), set()).add(table)
    return found


async def test_a_family_crosses_three_countries_and_each_countrys_data_stays_in_it(
    missions: Stack, route: Route, travel_date: date
) -> None:
    stack = missions
    bodies = [scenario.family_of_three(travel_date), scenario.single_traveller(travel_date)]
    async with (
        stream_on(stack.kafka_access("operations")) as kaz,
        stream_on(stack.kafka_access("mission-uzb")) as uzb,
        stream_on(stack.kafka_access("mission-tjk")) as tjk,
        httpx.AsyncClient(timeout=30.0) as client,
    ):
        cases = [await scenario.register(client, stack, b) for b in bodies]
        await kaz.wait_for(cases, CaseStatus.ELIGIBLE, 90)
        started = time.monotonic()
        await scenario.run_movement(
            client, stack, kaz, route, travel_date, vehicles=[("BUS-KUT", 45)], expect=cases, timeout=180
        )
        await kaz.wait_for(cases, CaseStatus.ARRIVED, 120)
        crossing = time.monotonic() - started
        # The status stream is complete on every cluster that subscribes to it, in the same order.
        await uzb.wait_for(cases, CaseStatus.ARRIVED, 60)
        await tjk.wait_for(cases, CaseStatus.ARRIVED, 60)
        journey = Counter(scenario.journey(route))
        for case in cases:
            assert Counter(kaz.statuses(case)) == journey, kaz.statuses(case)
            assert uzb.statuses(case) == kaz.statuses(case) == tjk.statuses(case)
    report_figure(
        "cluster per mission", f"two cases from planning to arrival across three clusters in {crossing:.1f} s"
    )

    # Kafka: the people's names, birth dates and documents are on the Kazakh cluster, and elsewhere
    # only in the manifests addressed to that country's own posts.
    people = set().union(*(people_of(b) for b in bodies))
    for cluster, posts in (
        ("uzb", ["uzb-zhibek-zholy-entry", "uzb-oybek-exit"]),
        ("tjk", ["tjk-oybek-entry"]),
    ):
        records = await every_record(stack.kafka_access(ADMIN_USER, cluster=cluster))
        naming = {t for t, values in records.items() if any(p.encode() in v for v in values for p in people)}
        assert naming == {topics.manifests(cp) for cp in posts}, (
            cluster,
            {t: len(v) for t, v in records.items()},
            [v[:300] for t in records if t.startswith("transport.manifests") for v in records[t][:1]],
        )
        assert topics.CASES not in records and topics.HEALTH_EVIDENCE not in records
        assert not {t for t in records if t.startswith("transport.manifests.")} - {
            topics.manifests(cp) for cp in posts
        }, f"another country's manifests on {cluster}"
    kaz_records = await every_record(stack.kafka_access(ADMIN_USER, cluster="kaz"))
    assert any(p.encode() in v for v in kaz_records[topics.CASES] for p in people)

    # PostgreSQL: personal data in the Kazakh services' databases and in each post's own (the
    # manifests it received); each post's database exists only on its country's server.
    where = await tables_naming(stack, people)
    for (server, db), _tables in where.items():
        if server != "kaz":
            assert db.startswith("border_" + server), f"personal data in {db} on {server}"
    for spec in stack.specs.values():
        assert spec.db_server == HOME[spec.mission]
    # Each country's clearance records (the officer who decided) exist only in its country.
    for cp in route.checkpoints:
        officer = f"officer@{cp.checkpoint_id}"  # scenario.officer's subject
        found = await tables_naming(stack, {officer})
        assert {server for server, _ in found} == {HOME[cp.country]}, (cp.checkpoint_id, found)


async def test_a_link_and_a_cluster_that_go_away_lose_nothing_and_duplicate_nothing(
    missions: Stack, route: Route, travel_date: date, exporter: str
) -> None:
    """KAZ's MirrorMaker (which brings the posts' decisions home) goes away once the vehicle has
    its manifests, and TJK's whole cluster once its post knows the vehicle cleared the post before
    it: the posts keep clearing the people on the manifests they hold (TJK's with its own Kafka
    down, its decisions waiting in its outbox), and once both are back every status reaches every
    cluster exactly once."""
    stack = missions
    bodies = [scenario.family_of_three(travel_date), scenario.single_traveller(travel_date)]
    tjk_post = "border-tjk-oybek-entry"
    before_tjk = route.checkpoints[-2].checkpoint_id
    tjk_cluster = stack.clusters["tjk"]
    async with (
        stream_on(stack.kafka_access("operations")) as kaz,
        stream_on(stack.kafka_access("mission-uzb")) as uzb,
        httpx.AsyncClient(timeout=30.0) as client,
    ):
        cases = [await scenario.register(client, stack, b) for b in bodies]
        await kaz.wait_for(cases, CaseStatus.ELIGIBLE, 90)
        movement = await scenario.plan_movement(
            client, stack, kaz, route, travel_date, vehicles=[("BUS-OUT", 45)], expect=cases, timeout=120
        )
        for cp in route.checkpoints:  # every post holds its manifest before the links go
            await wait_for_manifest(client, stack, cp.checkpoint_id, movement["movement_id"], cases)
        stack.mirrors["KAZ"].kill()
        outage = time.monotonic()
        # The vehicle through every post but the last; the Tajik post learns the Uzbek exit decisions
        # (UZB -> TJK is up), then its cluster stops before the vehicle reaches it.
        on_the_way = route.model_copy(update={"checkpoints": route.checkpoints[:-1]})
        await scenario.drive_vehicle(
            client, stack, on_the_way, movement["movement_id"], "BUS-OUT", timeout=300
        )
        await until_post_knows(stack, tjk_post, cases, before_tjk)
        await asyncio.to_thread(tjk_cluster.stop)
        last = route.checkpoints[-1].checkpoint_id
        vehicle = f"movements/{movement['movement_id']}/vehicles/BUS-OUT"
        progress = f"{stack.url('transport')}/{vehicle}/progress"
        coordinator = scenario.coordinator(stack)
        r = await client.post(progress, json={"checkpoint_id": last, "stage": "arrived"}, headers=coordinator)
        assert r.status_code == 201, r.text
        r = await client.post(
            f"{stack.border_url(last)}/{vehicle}/clearance",
            json={"refusals": [], "scans": []},
            headers=scenario.officer(stack, last),
        )
        assert r.status_code == 200 and set(r.json()["cleared"]) == {str(c) for c in cases}, r.text
        # KAZ has seen nothing the posts in UZB and TJK decided; UZB has the stream as KAZ has it.
        await kaz.wait_for(cases, CaseStatus.EXIT_CLEARED, 60)
        assert not any(CaseStatus.ENTRY_CLEARED in kaz.statuses(c) for c in cases)
        assert await unpublished(stack, tjk_post) >= len(cases), "the Tajik decisions wait in its outbox"
        # KAZ sees how far behind its link from UZB is, with its MirrorMaker's own credentials.
        behind = await uzb_link_lag(stack)
        assert sum(lag.records_behind for lag in behind) >= 2 * len(cases), behind
        assert max(lag.oldest_pending_seconds for lag in behind) > 0
        # ... and so does Prometheus, from the exporter a mission runs beside its MirrorMaker.
        await served_behind(exporter, lambda n: n >= 2 * len(cases))
        tjk_cluster.start()
        await asyncio.to_thread(stack.mirrors["KAZ"].start)
        await kaz.wait_for(cases, CaseStatus.ARRIVED, 180)
        restored = time.monotonic() - outage
        await uzb.wait_for(cases, CaseStatus.ARRIVED, 60)
        journey = Counter(scenario.journey(route))
        read = {"KAZ": kaz, "UZB": uzb}
        # Distinct events per case (the reader drops a record whose event id it has seen: those
        # repeats are counted apart), against the journey each case made.
        seen = {(c, m): Counter(s.statuses(c)) for c in cases for m, s in read.items()}
        missing = sum((journey - n).total() for n in seen.values())
        twice = sum((n - journey).total() for n in seen.values())
        repeats = sum(s.repeats[c] for c in cases for s in read.values())
        clusters = " and ".join(f"{m}'s" for m in read)
        for case in cases:
            assert Counter(kaz.statuses(case)) == journey, kaz.statuses(case)
            assert uzb.statuses(case) == kaz.statuses(case)
        assert not [lag for lag in await uzb_link_lag(stack) if lag.records_behind], "the link caught up"
        await served_behind(exporter, lambda n: n == 0)
    report_figure(
        "cluster per mission",
        f"KAZ's MirrorMaker and TJK's cluster down mid-movement: {sum(n.total() for n in seen.values())} "
        f"statuses of {len(cases)} cases read on {clusters} clusters, {missing} missing, "
        f"{twice} twice ({repeats} records repeated under an event id already read), "
        f"{restored:.0f} s after the outage began",
    )


@pytest.fixture
def exporter(missions: Stack, tmp_path: Path) -> Iterator[str]:
    """The lag exporter KAZ runs beside its MirrorMaker, for its link from UZB (its MirrorMaker's
    credentials on both clusters): its /metrics URL."""
    stack = missions
    share = next(s for s in stack.description.shares if (s.source, s.target) == ("UZB", "KAZ"))
    me = mirror_principal("KAZ")
    cmd = [sys.executable, "-m", "opstools.mirrorlag", "--every", "1"]
    cmd += ["--source", "uzb", "--target", "kaz", "--user", me]
    cmd += ["--source-bootstrap", stack.clusters["uzb"].bootstrap_servers]
    cmd += ["--target-bootstrap", stack.clusters["kaz"].bootstrap_servers]
    cmd += ["--password-file", str(password_file(stack.secrets_of("kaz"), me))]
    cmd += ["--source-password-file", str(password_file(stack.secrets_of("uzb"), me))]
    cmd += [a for t in share.topics if t.startswith("border.crossings.") for a in ("--topic", t)]
    log = tmp_path / "mirrorlag.log"

    def serve_on(ports: list[int]) -> tuple[subprocess.Popen[bytes], str]:
        url = f"http://127.0.0.1:{ports[0]}/metrics"
        return procs.spawn_ready(
            [*cmd, "--serve", str(ports[0])],
            log,
            ready_url=url,
            ports=ports,
            what="the lag exporter",
            timeout=60.0,
            cwd=REPO_ROOT,
            stop_signal=signal.SIGTERM,
        ), url

    proc, url = procs.start_on_free_ports(1, serve_on, [log], what="the lag exporter")
    try:
        yield url
    finally:
        procs.terminate(proc, signal.SIGTERM, grace=10.0)


async def served_behind(url: str, wanted: Callable[[int], bool], timeout: float = 60) -> None:
    """Until the exporter's figure of records behind (summed over topics) is ``wanted``."""
    seen: int | None = None
    async with httpx.AsyncClient(timeout=5.0) as http:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        text = (await http.get(url)).text
                        values = [
                            float(line.rsplit(" ", 1)[1])
                            for line in text.splitlines()
                            if line.startswith("corridor_mirror_records_behind{")
                        ]
                        seen = int(sum(values)) if values else None
                        if seen is not None and wanted(seen):
                            return
                    await asyncio.sleep(0.5)
        except TimeoutError:
            raise AssertionError(f"the exporter served {seen} records behind") from None


async def uzb_link_lag(stack: Stack) -> list[PartitionLag]:
    """The lag of what KAZ's MirrorMaker copies from UZB (the Uzbek posts' decisions)."""
    share = next(s for s in stack.description.shares if (s.source, s.target) == ("UZB", "KAZ"))
    me = mirror_principal("KAZ")
    return await mirror_lag(
        "uzb",
        "kaz",
        [t for t in share.topics if t.startswith("border.crossings.")],
        stack.kafka_access(me, cluster="uzb"),
        stack.kafka_access(me, cluster="kaz"),
    )


async def until_post_knows(
    stack: Stack, post: str, cases: list[uuid.UUID], cleared_at: str, timeout: float = 120
) -> None:
    """Until ``post`` has recorded every case as cleared at ``cleared_at`` (from its own database)."""
    conn = await asyncpg.connect(stack.postgres_of(post).dsn(stack.specs[post].database))
    try:
        async with asyncio.timeout(timeout):
            while await conn.fetchval(
                "SELECT count(*) FROM upstream_clearances WHERE case_id = ANY($1) AND checkpoint_id = $2",
                cases,
                cleared_at,
            ) < len(cases):
                await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def unpublished(stack: Stack, service: str) -> int:
    conn = await asyncpg.connect(stack.postgres_of(service).dsn(stack.specs[service].database))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    finally:
        await conn.close()


async def wait_for_manifest(
    client: httpx.AsyncClient,
    stack: Stack,
    checkpoint: str,
    movement_id: str,
    cases: list[uuid.UUID],
    timeout: float = 120,
) -> None:
    """Until the post at ``checkpoint`` expects every case of ``movement_id`` (its manifest arrived)."""
    url = f"{stack.border_url(checkpoint)}/expected-arrivals"
    async with asyncio.timeout(timeout):
        while True:
            r = await client.get(url, headers=scenario.officer(stack, checkpoint))
            r.raise_for_status()
            if sum(v["cases"] for v in r.json()["vehicles"] if v["movement_id"] == movement_id) == len(cases):
                return
            await asyncio.sleep(0.5)
