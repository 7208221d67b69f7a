"""Consuming: the project's consumer path against a plain consumer that does nothing.

Both read the same records (the same offsets of the status topic) with a plain AIOKafkaConsumer
(no group, nothing committed). The measured path passes each record, one at a time as FastStream
does, to ``EventConsumer.handle``: decode the CloudEvent, then in one PostgreSQL transaction the
inbox insert (deduplication) and a trivial handler that inserts one row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.infra import PARTITIONS, truncate
from bench.publishing import SOURCE, chunks, status_events
from bench.stats import Run
from contracts import topics
from contracts.envelope import CloudEvent
from contracts.status import CaseStatusChanged
from corridor.consumer import EventConsumer
from corridor.kafkaclient import KafkaAccess

CONSUMER = "bench-consumer"


@dataclass
class Span:
    """Offsets [start, end) of each partition: exactly the records every path reads."""

    start: dict[TopicPartition, int]
    end: dict[TopicPartition, int]

    @property
    def count(self) -> int:
        return sum(self.end[tp] - self.start[tp] for tp in self.end)


async def _offsets(access: KafkaAccess) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**access.aiokafka(), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topics.STATUS, p) for p in range(PARTITIONS)]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def fill(access: KafkaAccess, producer: AIOKafkaProducer, count: int) -> Span:
    """Publish ``count`` status events (not timed) and return where they are."""
    start = await _offsets(access)
    for batch in chunks(status_events(count), 1000):
        futures = []
        for data in batch:
            event = CloudEvent.new(data, source=SOURCE)
            futures.append(
                await producer.send(
                    topics.STATUS, value=event.value(), key=event.subject.encode(), headers=event.headers()
                )
            )
        for future in futures:
            await future
    end = await _offsets(access)
    return Span(start=start, end=end)


async def _read(access: KafkaAccess, span: Span, on_batch: Any) -> Run:
    consumer = AIOKafkaConsumer(**access.aiokafka(), enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = list(span.end)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, span.start[tp])
        remaining = {tp for tp in tps if span.end[tp] > span.start[tp]}
        consumer.pause(*(set(tps) - remaining))
        count = 0
        start = time.perf_counter()
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batches.items():
                wanted = [r for r in records if r.offset < span.end[tp]]
                count += len(wanted)
                await on_batch(wanted)
                if records and records[-1].offset >= span.end[tp] - 1:
                    remaining.discard(tp)
                    consumer.pause(tp)
        seconds = time.perf_counter() - start
    finally:
        await consumer.stop()
    if count != span.count:
        raise RuntimeError(f"read {count} records, expected {span.count}")
    return Run(items=count, seconds=seconds)


async def plain_consume(access: KafkaAccess, span: Span, min_seconds: float = 1.0) -> Run:
    """Baseline: read the records and do nothing with them.

    Reading a few thousand records takes a few tens of milliseconds, too short to time reliably,
    so the span is read again (a fresh consumer each time) until ``min_seconds`` have been timed."""

    async def nothing(_records: list[Any]) -> None:
        return None

    total = Run(items=0, seconds=0.0, extra={"passes": 0})
    while total.seconds < min_seconds:
        run = await _read(access, span, nothing)
        total.items += run.items
        total.seconds += run.seconds
        total.extra["passes"] += 1
    return total


async def _effect(conn: asyncpg.Connection, event: CloudEvent) -> None:
    data = event.data
    assert isinstance(data, CaseStatusChanged)
    await conn.execute(
        "INSERT INTO bench_effect (event_id, case_id, status) VALUES ($1, $2, $3)",
        event.id,
        data.case_id,
        data.status.value,
    )


async def handled_consume(access: KafkaAccess, dsn: str, pool: asyncpg.Pool, span: Span) -> Run:
    """Measured: the same records, each through EventConsumer.handle, one after another."""
    await truncate(dsn, "inbox", "bench_effect")

    def no_producer() -> AIOKafkaProducer:
        raise RuntimeError("the benchmark's records must not be dead-lettered")

    consumer = EventConsumer(
        name=CONSUMER,
        topics=(topics.STATUS,),
        handlers={CaseStatusChanged: _effect},
        pool=lambda: pool,
        producer=no_producer,
    )
    handling = 0.0

    async def handle(records: list[Any]) -> None:
        nonlocal handling
        for record in records:
            t = time.perf_counter()
            await consumer.handle(record)
            handling += time.perf_counter() - t

    run = await _read(access, span, handle)
    if consumer.applied != span.count or consumer.duplicates or consumer.dead_lettered:
        raise RuntimeError(
            f"applied {consumer.applied}, duplicates {consumer.duplicates}, "
            f"dead-lettered {consumer.dead_lettered}; expected {span.count} applied"
        )
    run.extra["handle_rate"] = span.count / handling
    return run
