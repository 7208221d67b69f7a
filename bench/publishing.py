"""Publishing: the transactional outbox and its relay against a raw idempotent producer.

Every path publishes the same kind of record: a ``CaseStatusChanged`` in its CloudEvents envelope
(binary mode, ~300 bytes of JSON plus the ce_* headers) keyed by a fresh case id, to the status
topic, with the producer the services use (``make_producer``: idempotent, acks=all, linger 5 ms).
Building the envelope (``CloudEvent.new``, ``value()``, ``headers()``) is timed in every path; the
pydantic event objects are built beforehand, as the domain code would have them already.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.infra import truncate
from bench.stats import Run
from contracts import topics
from contracts.envelope import CloudEvent
from contracts.status import CaseStatus, CaseStatusChanged, Place
from corridor.kafkaclient import KafkaAccess
from corridor.outbox import OutboxRelay, enqueue, make_producer

SOURCE = "/missions/KAZ/bench"
RELAY_BATCH = 500  # OutboxRelay's default batch size; the baseline sends in batches of the same size


def status_events(count: int) -> list[CaseStatusChanged]:
    now = datetime.now(UTC)
    place = Place(country="KAZ", name="Almaty", checkpoint_id=None)
    return [
        CaseStatusChanged(
            case_id=uuid.uuid4(),
            # A case's first status: each benchmark case is new, and the outbox admits only a
            # status that may follow the case's last one.
            status=CaseStatus.REGISTERED,
            occurred_at=now,
            members=1 + i % 4,
            place=place,
            # A public reason code; its fixed text comes with it (contracts/reasons.py).
            reason_code="document_valid_on_travel_date",
        )
        for i in range(count)
    ]


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class AckClock:
    """Stands in for the relay's producer: sends through the real one and notes, per event id,
    when the broker's acknowledgement arrived (the send future resolved)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.acked: dict[str, float] = {}

    async def send(
        self, topic: str, value: Any = None, key: Any = None, headers: Any = None, **kw: Any
    ) -> Any:
        future = await self.producer.send(topic, value=value, key=key, headers=headers, **kw)
        event_id = next(v for k, v in headers if k == "ce_id").decode()
        future.add_done_callback(lambda _f, i=event_id: self.acked.__setitem__(i, time.perf_counter()))
        return future


async def new_producer(access: KafkaAccess, name: str) -> AIOKafkaProducer:
    producer = make_producer(access, client_id=name)
    await producer.start()
    return producer


# ------------------------------------------------------------------------------ baseline


async def raw_publish(producer: AIOKafkaProducer, events: Sequence[CaseStatusChanged]) -> Run:
    """Baseline: send every event straight to Kafka in batches of RELAY_BATCH, gathering the acks."""
    sent_at: dict[int, float] = {}
    acked_at: dict[int, float] = {}
    start = time.perf_counter()
    n = 0
    for batch in chunks(events, RELAY_BATCH):
        futures = []
        for data in batch:
            event = CloudEvent.new(data, source=SOURCE)
            sent_at[n] = time.perf_counter()
            future = await producer.send(
                topics.STATUS, value=event.value(), key=event.subject.encode(), headers=event.headers()
            )
            future.add_done_callback(lambda _f, i=n: acked_at.__setitem__(i, time.perf_counter()))
            futures.append(future)
            n += 1
        await asyncio.gather(*futures)
    seconds = time.perf_counter() - start
    await asyncio.sleep(0)  # let the last done-callbacks run
    latencies = [(acked_at[i] - sent_at[i]) * 1000 for i in sent_at if i in acked_at]
    return Run(items=len(events), seconds=seconds, latencies_ms=latencies)


# ------------------------------------------------------------------------------ the outbox


async def _start_relay(dsn: str, clock: AckClock) -> OutboxRelay:
    relay = OutboxRelay(dsn, cast(AIOKafkaProducer, clock), batch_size=RELAY_BATCH)
    relay.start()
    async with asyncio.timeout(30):
        while not relay.is_leader:
            await asyncio.sleep(0.01)
    return relay


async def _wait_published(relay: OutboxRelay, count: int, timeout: float = 300.0) -> None:
    async with asyncio.timeout(timeout):
        while relay.published < count:
            if not relay.alive:
                raise RuntimeError(f"outbox relay died: {relay.last_error}")
            await asyncio.sleep(0.002)


async def outbox_publish(
    dsn: str, producer: AIOKafkaProducer, events: Sequence[CaseStatusChanged], rows_per_tx: int
) -> Run:
    """Write ``events`` through ``enqueue`` in transactions of ``rows_per_tx`` rows on one connection
    while one OutboxRelay publishes them; timed until the relay has marked every row published."""
    await truncate(dsn, "outbox")
    clock = AckClock(producer)
    relay = await _start_relay(dsn, clock)
    conn = await asyncpg.connect(dsn)
    committed_at: dict[str, float] = {}
    try:
        start = time.perf_counter()
        for batch in chunks(events, rows_per_tx):
            async with conn.transaction():
                ids = [(await enqueue(conn, data, topic=topics.STATUS, source=SOURCE)).id for data in batch]
            now = time.perf_counter()
            committed_at.update((i, now) for i in ids)
        written = time.perf_counter() - start
        await _wait_published(relay, len(events))
        seconds = time.perf_counter() - start
    finally:
        await conn.close()
        await relay.stop()
    latencies = [(clock.acked[i] - t) * 1000 for i, t in committed_at.items() if i in clock.acked]
    if len(latencies) != len(events):
        raise RuntimeError(f"{len(events) - len(latencies)} outbox events were not acknowledged")
    return Run(
        items=len(events),
        seconds=seconds,
        latencies_ms=latencies,
        extra={"write_rate": len(events) / written},
    )


async def prefill_outbox(dsn: str, events: Sequence[CaseStatusChanged]) -> None:
    """Committed, unpublished outbox rows exactly as ``enqueue`` writes them, loaded with COPY."""
    await truncate(dsn, "outbox")
    rows = []
    for data in events:
        event = CloudEvent.new(data, source=SOURCE)
        headers = {k: v.decode() for k, v in event.headers()}
        rows.append((topics.STATUS, event.subject, event.id, event.type, json.dumps(headers), event.value()))
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "outbox",
            records=rows,
            columns=["topic", "key", "event_id", "event_type", "headers", "payload"],
        )
        await conn.execute("VACUUM ANALYZE outbox")
    finally:
        await conn.close()


async def relay_drain(dsn: str, producer: AIOKafkaProducer, events: Sequence[CaseStatusChanged]) -> Run:
    """The relay alone: ``OutboxRelay.drain`` in a loop over a pre-filled outbox until it is empty.

    No writer competes for the CPU or the database, so this is the relay's capacity."""
    await prefill_outbox(dsn, events)
    relay = OutboxRelay(dsn, producer, batch_size=RELAY_BATCH)
    conn = await asyncpg.connect(dsn)
    try:
        start = time.perf_counter()
        published = 0
        while sent := await relay.drain(conn):
            published += sent
        seconds = time.perf_counter() - start
    finally:
        await conn.close()
    if published != len(events):
        raise RuntimeError(f"relay published {published} of {len(events)} rows")
    return Run(items=published, seconds=seconds)


# ------------------------------------------------------------------------------ latency at a steady pace


async def _paced(count: int, rate: float, act: Any) -> None:
    """Call ``act(i)`` ``count`` times at ``rate`` per second, on an absolute schedule."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(count):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await act(i)


async def raw_latency(producer: AIOKafkaProducer, events: Sequence[CaseStatusChanged], rate: float) -> Run:
    """Baseline latency: one event sent every 1/rate s, each from send to the broker's ack."""
    sent_at: dict[int, float] = {}
    acked_at: dict[int, float] = {}
    futures: list[asyncio.Future[Any]] = []

    async def send(i: int) -> None:
        event = CloudEvent.new(events[i], source=SOURCE)
        sent_at[i] = time.perf_counter()
        future = await producer.send(
            topics.STATUS, value=event.value(), key=event.subject.encode(), headers=event.headers()
        )
        future.add_done_callback(lambda _f: acked_at.__setitem__(i, time.perf_counter()))
        futures.append(future)

    start = time.perf_counter()
    await _paced(len(events), rate, send)
    await asyncio.gather(*futures)
    seconds = time.perf_counter() - start
    await asyncio.sleep(0)
    return Run(
        items=len(events),
        seconds=seconds,
        latencies_ms=[(acked_at[i] - sent_at[i]) * 1000 for i in sent_at if i in acked_at],
    )


async def outbox_latency(
    dsn: str, producer: AIOKafkaProducer, events: Sequence[CaseStatusChanged], rate: float
) -> Run:
    """Outbox latency: one single-row transaction every 1/rate s, each from its commit to the ack
    of the relay's send (the relay is woken by the NOTIFY that ``enqueue`` issues)."""
    await truncate(dsn, "outbox")
    clock = AckClock(producer)
    relay = await _start_relay(dsn, clock)
    conn = await asyncpg.connect(dsn)
    committed_at: dict[str, float] = {}

    async def write(i: int) -> None:
        async with conn.transaction():
            event = await enqueue(conn, events[i], topic=topics.STATUS, source=SOURCE)
        committed_at[event.id] = time.perf_counter()

    try:
        start = time.perf_counter()
        await _paced(len(events), rate, write)
        await _wait_published(relay, len(events))
        seconds = time.perf_counter() - start
    finally:
        await conn.close()
        await relay.stop()
    return Run(
        items=len(events),
        seconds=seconds,
        latencies_ms=[(clock.acked[i] - t) * 1000 for i, t in committed_at.items() if i in clock.acked],
    )
