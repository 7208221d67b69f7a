"""A cluster per mission (deploy/deployments/per-mission.yaml): KAZ registers and moves the people,
UZB and TJK clear them at their own posts on their own Kafka clusters and PostgreSQL servers, and
MirrorMaker 2 carries only the shared topics between them. Each country's data stays in its
country, and a link or a cluster that goes away loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import topics
from contracts.routes import Route, RouteBook
from contracts.status import CaseStatus
from corridor.kafkaclient import KafkaAccess
from corridor.settings import REPO_ROOT
from devkit import scenario
from devkit.devinfra.kafka import ADMIN_USER
from devkit.devstack import Stack
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
        report_figure(
            "cluster per mission",
            f"3 Kafka clusters, 3 PostgreSQL servers, {len(platform.mirrors)} MirrorMakers and "
            f"{len(platform.specs)} services started in {time.monotonic() - started:.0f} s; "
            f"MirrorMakers' resident memory {rss / 2**20:.0f} MiB",
        )
        yield platform


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
        partitions = [
            TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
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
        assert naming == {topics.manifests(cp) for cp in posts}, cluster
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
    missions: Stack, route: Route, travel_date: date
) -> None:
    """KAZ's MirrorMaker (which brings the posts' decisions home) and TJK's whole cluster go away once
    the vehicle has left: the posts keep clearing the people on the manifests they hold, and once
    both are back every status reaches every cluster exactly once."""
    stack = missions
    bodies = [scenario.family_of_three(travel_date), scenario.single_traveller(travel_date)]
    tjk_cluster = stack.clusters["tjk"]
    async with (
        stream_on(stack.kafka_access("operations")) as kaz,
        httpx.AsyncClient(timeout=30.0) as client,
    ):
        cases = [await scenario.register(client, stack, b) for b in bodies]
        await kaz.wait_for(cases, CaseStatus.ELIGIBLE, 90)
        movement = await scenario.plan_movement(
            client, stack, kaz, route, travel_date, vehicles=[("BUS-OUT", 45)], expect=cases, timeout=120
        )
        # Every post has its manifest before the links go.
        for cp in route.checkpoints:
            await wait_for_manifest(client, stack, cp.checkpoint_id, movement["movement_id"], cases)
        stack.mirrors["KAZ"].kill()
        tjk_cluster.stop()
        outage = time.monotonic()
        departure = asyncio.create_task(
            scenario.drive_vehicle(client, stack, route, movement["movement_id"], "BUS-OUT", timeout=240)
        )
        # The Kazakh exit post is local to KAZ; its decision shows. Nothing of the Uzbek posts does.
        await kaz.wait_for(cases, CaseStatus.EXIT_CLEARED, 120)
        await asyncio.sleep(5)
        assert all(kaz.statuses(c).count(CaseStatus.EXIT_CLEARED) == 1 for c in cases)
        assert not any(CaseStatus.ENTRY_CLEARED in kaz.statuses(c) for c in cases)
        # The Tajik post clears on what it holds while its own cluster is down (its decisions wait
        # in its outbox); the vehicle reaches it once the Uzbek posts have cleared it.
        tjk_cluster.start()
        stack.mirrors["KAZ"].start()
        await departure
        restored = time.monotonic() - outage
        await kaz.wait_for(cases, CaseStatus.ARRIVED, 180)
        journey = Counter(scenario.journey(route))
        for case in cases:
            assert Counter(kaz.statuses(case)) == journey, kaz.statuses(case)
    report_figure(
        "cluster per mission",
        f"link and TJK cluster outage: journey completed {restored:.0f} s after it began",
    )


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
