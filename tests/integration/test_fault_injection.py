"""Fault injection with real processes: a three-broker Kafka cluster (replication factor 3,
min.insync.replicas 2), every service killed with SIGKILL in turn mid-batch and restarted, a
broker killed and brought back, PostgreSQL restarted, records delivered twice, while a thousand
cases flow to arrival. Afterwards every case is in its expected final state, no status change is
missing or appears twice, and every outbox is drained."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts import topics
from contracts.envelope import decode_headers
from contracts.routes import Route, RouteBook
from contracts.status import CaseStatus
from corridor.kafkatools import read_topic
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.conftest import report_figure
from tests.integration.conftest import following, running_platform

CASES = int(os.environ.get("CORRIDOR_FAULT_CASES", "1000"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_platform(tmp_path_factory.mktemp("faults"), kafka_nodes=3, log_level="WARNING") as stack:
        yield stack


@pytest.fixture(scope="module")
async def cluster_stream(cluster: Stack) -> AsyncIterator[StatusStream]:
    async with following(cluster) as reader:
        yield reader


class Faults:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.killed: list[str] = []
        self.log: list[str] = []
        self.started = time.monotonic()

    def note(self, what: str) -> None:
        self.log.append(f"{time.monotonic() - self.started:6.1f}s {what}")

    async def kill_service(self, name: str, down_for: float = 1.0) -> None:
        self.stack.kill_service(name)
        self.killed.append(name)
        self.note(f"SIGKILL {name}")
        await asyncio.sleep(down_for)
        await asyncio.to_thread(self.stack.start_service, name)
        self.note(f"{name} back")

    async def kill_broker(self, index: int, down_for: float) -> None:
        self.stack.kafka.kill_node(index)
        self.killed.append(f"kafka-{index}")
        self.note(f"SIGKILL kafka node {index}")
        await asyncio.sleep(down_for)
        await asyncio.to_thread(self.stack.kafka.start_node, index)
        self.note(f"kafka node {index} back")

    async def restart_postgres(self) -> None:
        self.note("restarting PostgreSQL")
        await asyncio.to_thread(self.stack.postgres.restart)
        self.killed.append("postgres (restart)")
        self.note("PostgreSQL back")


async def _redeliver(stack: Stack, topic: str, writer: str, every: int) -> int:
    """Produce again every ``every``-th record of ``topic``, unchanged: a duplicate delivery, as the
    topic's own writer would send it (read as operations)."""
    records = await read_topic(stack.kafka_access("operations"), topic)
    producer = AIOKafkaProducer(**stack.kafka_access(writer).aiokafka(), enable_idempotence=True)
    await producer.start()
    try:
        batch = [
            await producer.send(topic, key=r.key, value=r.value, headers=decode_headers(r.headers))
            for r in records[::every]
        ]
        await asyncio.gather(*batch)
    finally:
        await producer.stop()
    return len(batch)


@pytest.mark.timeout(1200)
async def test_nothing_is_lost_or_duplicated_under_faults(
    cluster: Stack, cluster_stream: StatusStream
) -> None:
    stack, stream = cluster, cluster_stream
    route: Route = RouteBook.load(stack.routes_file).routes[0]
    expected = Counter(scenario.journey(route))  # each status change once per case
    faults = Faults(stack)
    travel = date.today() + timedelta(days=7)
    bodies = [
        scenario.family_of_three(travel, key=f"fault/{i}")
        if i % 5 == 0
        else scenario.single_traveller(travel, key=f"fault/{i}")
        for i in range(CASES)
    ]
    people = sum(len(b["members"]) for b in bodies)
    limit = asyncio.Semaphore(12)

    async with httpx.AsyncClient(timeout=20.0, auth=stack.role_auth()) as client:

        async def register(body: dict) -> object:
            async with limit:
                return await scenario.register(client, stack, body)

        async def registration_faults() -> None:
            await asyncio.sleep(2)
            await faults.kill_broker(1, down_for=6)
            await faults.kill_service("eligibility")
            await faults.restart_postgres()
            await faults.kill_service("intake")
            await faults.kill_service("transport")

        started = time.monotonic()
        case_ids, _ = await asyncio.gather(
            asyncio.gather(*(register(b) for b in bodies)), registration_faults()
        )
        await stream.wait_for(case_ids, CaseStatus.ELIGIBLE, 300)
        report_figure(
            "faults",
            f"{CASES} cases ({people} people) registered and eligible in {time.monotonic() - started:.0f}s",
        )

        redelivered_cases = await _redeliver(stack, topics.CASES, "intake", every=7)
        redelivered = redelivered_cases
        faults.note(f"redelivered {redelivered_cases} intake.cases records")

        async def movement_faults() -> None:
            await asyncio.sleep(3)
            for name in [n for n in stack.specs if n.startswith("border-")]:
                await faults.kill_service(name, down_for=0.5)
                await asyncio.sleep(1)
            await faults.kill_service("transport", down_for=0.5)
            await faults.kill_broker(2, down_for=4)

        buses = math.ceil(people / 45) + 2
        started = time.monotonic()
        await asyncio.gather(
            scenario.run_movement(
                client,
                stack,
                stream,
                route,
                travel,
                vehicles=[(f"BUS-{i:03d}", 45) for i in range(buses)],
                expect=case_ids,
                timeout=300,
            ),
            movement_faults(),
        )
        for cp in route.checkpoints:
            redelivered += await _redeliver(
                stack, topics.crossings(cp.checkpoint_id), f"border-clearance.{cp.checkpoint_id}", every=5
            )
        await stream.wait_for(case_ids, CaseStatus.ARRIVED, 300)
        report_figure(
            "faults",
            f"{buses} buses moved everyone through 4 checkpoints in {time.monotonic() - started:.0f}s",
        )

        wrong = {str(c): stream.statuses(c) for c in case_ids if Counter(stream.statuses(c)) != expected}
        lost = sum(max(0, expected[s] - Counter(stream.statuses(c))[s]) for c in case_ids for s in expected)
        duplicated = sum(
            max(0, n - expected[s]) for c in case_ids for s, n in Counter(stream.statuses(c)).items()
        )
        records_on_stream = stream.raw_count
        distinct = sum(len(stream.timelines[c]) for c in case_ids)

        # Eligibility ran through the whole movement phase: it must have recognised every
        # record delivered twice on purpose, which shows the duplicates really arrived.
        eligibility = (await client.get(stack.url("eligibility") + "/stats")).json()
        recognised = eligibility["consumers"]["eligibility"]["duplicates"]

        pending: dict[str, int] = {}
        async with asyncio.timeout(60):
            for name, spec in stack.specs.items():
                while (count := (await client.get(spec.url + "/stats")).json()["outbox_pending"]) > 0:
                    await asyncio.sleep(0.2)
                pending[name] = count

    for line in faults.log:
        report_figure("faults", line)
    report_figure(
        "faults",
        f"cases {CASES}, processes killed {len(faults.killed)} ({', '.join(faults.killed)}), "
        f"records delivered twice on purpose {redelivered}, status records read {records_on_stream} "
        f"(distinct {distinct}), status changes lost {lost}, duplicated {duplicated}, outboxes pending {sum(pending.values())}",
    )
    assert not wrong, f"{len(wrong)} cases with a wrong timeline, e.g. {list(wrong.items())[:3]}"
    assert lost == 0 and duplicated == 0
    assert recognised >= redelivered_cases
    assert set(pending.values()) == {0}
    for name, proc in stack.processes.items():
        assert proc.poll() is None, f"{name} died"
