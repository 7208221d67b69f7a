"""The outbox relay against real PostgreSQL and Kafka: several relays at once publish every event
exactly once and in order per case; when the active one dies mid-batch, another takes over and
nothing is lost or reordered."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import asyncpg
import httpx
import pytest

from contracts import topics
from contracts.envelope import CloudEvent, decode_headers
from contracts.status import CaseStatus, CaseStatusChanged
from corridor import db
from corridor.auth import Role
from corridor.kafkatools import read_topic
from corridor.outbox import OutboxRelay, enqueue, make_producer, pending_count
from corridor.runtime import ensure_topics
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.conftest import report_figure

KEYS = 50
PER_KEY = 60


@pytest.fixture
async def outbox_db(stack: Stack) -> AsyncIterator[tuple[str, asyncpg.Pool, str]]:
    name = f"relay_{uuid.uuid4().hex[:8]}"
    dsn = stack.postgres.dsn(name)
    await db.ensure_database(dsn)
    pool = await db.create_pool(dsn)
    await db.migrate(pool, "corridor", db.SHARED_MIGRATIONS)
    # A scratch topic outside the deployment: only the super user may create, write and read it.
    topic = f"test.relay.{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_access("admin"), [topic], partitions=3, replication=1)
    yield dsn, pool, topic
    await pool.close()


@pytest.fixture(autouse=True)
def _test_topic_carries_status_events(monkeypatch: pytest.MonkeyPatch) -> None:
    original = topics.events_on
    monkeypatch.setattr(
        topics, "events_on", lambda t: (CaseStatusChanged,) if t.startswith("test.relay.") else original(t)
    )


async def _enqueue(conn: asyncpg.Connection, topic: str, key: uuid.UUID, seq: int) -> None:
    """A case's event number ``seq`` (in ``members``)."""
    await enqueue(
        conn,
        CaseStatusChanged(
            case_id=key, status=CaseStatus.REGISTERED, occurred_at=datetime.now(UTC), members=seq
        ),
        topic=topic,
        source="/missions/KAZ/relay-test",
    )


async def _write(pool: asyncpg.Pool, topic: str, keys: list[uuid.UUID]) -> None:
    """Each case's events in sequence (``members`` carries the sequence number), interleaved
    across cases and committed in small transactions, as services do."""
    for seq in range(1, PER_KEY + 1):
        async with pool.acquire() as conn, conn.transaction():
            for key in keys:
                await _enqueue(conn, topic, key, seq)
        await asyncio.sleep(0)


async def _drained(pool: asyncpg.Pool) -> None:
    async with asyncio.timeout(60):
        while True:
            async with pool.acquire() as conn:
                if await pending_count(conn) == 0:
                    return
            await asyncio.sleep(0.1)


@dataclass
class Delivery:
    """What a reader of the topic saw: each event's first delivery, in the order read per case."""

    distinct: int
    repeats: int  # deliveries of an event already read (deduplicated by consumers' inboxes)
    lost: int  # events written to the outbox and never read
    out_of_order: int  # cases whose events were first read in another order than written


def _check(records: list, keys: list[uuid.UUID]) -> Delivery:
    ids: Counter[str] = Counter()
    first_seen: dict[uuid.UUID, list[int]] = defaultdict(list)
    for record in records:
        event = CloudEvent.from_record(decode_headers(record.headers), record.value)
        ids[event.id] += 1
        if ids[event.id] == 1:
            first_seen[event.data.case_id].append(event.data.members)  # type: ignore[attr-defined]
    written = list(range(1, PER_KEY + 1))
    return Delivery(
        distinct=len(ids),
        repeats=sum(n - 1 for n in ids.values()),
        lost=sum(len(set(written) - set(first_seen[key])) for key in keys),
        out_of_order=sum(first_seen[key] != sorted(first_seen[key]) for key in keys),
    )


async def test_two_relays_at_once_publish_each_event_once_in_order(
    stack: Stack, outbox_db: tuple[str, asyncpg.Pool, str]
) -> None:
    dsn, pool, topic = outbox_db
    producers = [make_producer(stack.kafka_access("admin"), client_id=f"relay-{i}") for i in range(2)]
    for p in producers:
        await p.start()
    relays = [OutboxRelay(dsn, p, poll_seconds=0.2, batch_size=200) for p in producers]
    for r in relays:
        r.start()
    keys = [uuid.uuid4() for _ in range(KEYS)]
    try:
        await _write(pool, topic, keys)
        await _drained(pool)
        assert sum(r.is_leader for r in relays) == 1, "exactly one relay publishes at a time"
    finally:
        for r in relays:
            await r.stop()
        for p in producers:
            await p.stop()
    seen = _check(await read_topic(stack.kafka_access("admin"), topic), keys)
    assert seen == Delivery(distinct=KEYS * PER_KEY, repeats=0, lost=0, out_of_order=0)
    assert sum(r.published for r in relays) == KEYS * PER_KEY


async def test_when_the_active_relay_dies_another_takes_over(
    stack: Stack, outbox_db: tuple[str, asyncpg.Pool, str]
) -> None:
    dsn, pool, topic = outbox_db
    keys = [uuid.uuid4() for _ in range(KEYS)]
    await _write(pool, topic, keys)  # a backlog for the relays to work through

    first_producer = make_producer(stack.kafka_access("admin"), client_id="relay-first")
    await first_producer.start()
    first = OutboxRelay(dsn, first_producer, poll_seconds=0.2, batch_size=100)
    first.start()
    async with asyncio.timeout(30):
        while first.published == 0:
            await asyncio.sleep(0.01)
    # Die as a crash would: the task is cancelled wherever it is, its connection (and with it the
    # advisory lock and the open batch's row locks) goes away without a clean drain.
    assert first._task is not None
    first._task.cancel()
    await asyncio.gather(first._task, return_exceptions=True)
    await first_producer.stop()
    published_by_first = first.published
    async with pool.acquire() as conn:
        left_by_first = await pending_count(conn)

    second_producer = make_producer(stack.kafka_access("admin"), client_id="relay-second")
    await second_producer.start()
    second = OutboxRelay(dsn, second_producer, poll_seconds=0.2, batch_size=100)
    second.start()
    try:
        await _drained(pool)
    finally:
        await second.stop()
        await second_producer.stop()
    seen = _check(await read_topic(stack.kafka_access("admin"), topic), keys)
    report_figure(
        "outbox relay",
        f"{KEYS * PER_KEY} events; the first relay published {published_by_first} and died with "
        f"{left_by_first} unpublished, the standby published {second.published}; read back: distinct "
        f"{seen.distinct}, re-sent after the crash (deduplicated by consumers) {seen.repeats}, lost "
        f"{seen.lost}, cases out of order {seen.out_of_order}",
    )
    # The premise: the first relay died with work left, and the standby is the one that did it.
    assert left_by_first > 0, "the first relay had published everything before it died"
    assert second.published >= left_by_first
    assert (seen.distinct, seen.lost, seen.out_of_order) == (KEYS * PER_KEY, 0, 0)


async def test_neither_a_backlog_nor_a_trickle_waits_for_the_poll(
    stack: Stack, outbox_db: tuple[str, asyncpg.Pool, str]
) -> None:
    """A backlog of several batches committed at once (one notification) is drained batch after
    batch; then events committed one at a time, some while the relay publishes the one before, are
    each published on their notification (a drain that took less than a batch waits for the next
    one). The fallback poll, 30 s here, would show as a stall in either."""
    dsn, pool, topic = outbox_db
    backlog = [uuid.uuid4() for _ in range(250)]
    producer = make_producer(stack.kafka_access("admin"), client_id="relay-trickle")
    await producer.start()
    relay = OutboxRelay(dsn, producer, poll_seconds=30.0, batch_size=100)
    relay.start()
    key = uuid.uuid4()
    try:
        async with asyncio.timeout(30):
            while not relay.is_leader:
                await asyncio.sleep(0.02)
        async with pool.acquire() as conn, conn.transaction():
            for case_id in backlog:
                await _enqueue(conn, topic, case_id, 1)
        async with asyncio.timeout(10):  # a third of the fallback poll
            while relay.published < len(backlog):
                await asyncio.sleep(0.01)
        for seq in range(1, PER_KEY + 1):
            async with pool.acquire() as conn, conn.transaction():
                await _enqueue(conn, topic, key, seq)
            await asyncio.sleep((0.0, 0.001, 0.005, 0.02)[seq % 4])
        async with asyncio.timeout(10):
            while relay.published < len(backlog) + PER_KEY:
                await asyncio.sleep(0.01)
    finally:
        await relay.stop()
        await producer.stop()
    assert relay.published == len(backlog) + PER_KEY


async def test_a_process_answering_http_only_leaves_publishing_to_its_service_s_relay(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    """``CORRIDOR_BACKGROUND=false``: an intake process that answers HTTP and runs no relay and no
    consumer. What it registers is published by the relay of the service's other process, from
    the outbox their database shares; its readiness asks nothing of a relay it does not run."""
    url = await asyncio.to_thread(
        stack.start_replica, "intake", "intake-http", extra_env={"CORRIDOR_BACKGROUND": "false"}
    )
    try:
        ready = (await client.get(url + "/health/ready")).json()
        assert ready == {"status": "ready", "checks": {"database": True, "kafka": True}}
        body = {**scenario.single_traveller(travel_date), "registration_key": f"http-only/{uuid.uuid4()}"}
        answer = await client.post(url + "/cases", json=body, headers=scenario.caseworker(stack))
        assert answer.status_code == 201, answer.text
        case_id = uuid.UUID(answer.json()["case_id"])
        await stream.wait_for([case_id], CaseStatus.ELIGIBLE, timeout=60)
        stats = (await client.get(url + "/stats", headers=stack.headers(Role.OPERATIONS_VIEWER))).json()
        assert (stats["outbox_published"], stats["relay_leader"]) == (0, False)
        log = stack.log_path("intake-http").read_text()
        assert "started for HTTP only" in log and " applied org." not in log
    finally:
        await asyncio.to_thread(stack.stop_replica, "intake-http")
