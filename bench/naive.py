"""The naive baseline of the end-to-end benchmark: a pipeline of services that each handle one
record at a time, the way a service is first written.

Each stage is a process of its own (as Corridor's services are) with a plain AIOKafkaConsumer in
its own group: for every record, one PostgreSQL transaction (the inbox insert and an effect row),
one awaited publish of the next record (acks=all, idempotent) and one synchronous offset commit.
Stage ``i`` reads ``bench.naive.<i>`` and writes ``bench.naive.<i+1>``; the benchmark fills the
first topic and times the records out of the last.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from corridor.kafkaclient import KafkaAccess
from corridor.runtime import collect_garbage_rarely, ensure_topics

PARTITIONS = 3


def topic(stage: int) -> str:
    return f"bench.naive.{stage}"


async def _stage(kafka: dict[str, Any], dsn: str, stage: int, stop_after: int) -> None:
    conn = await asyncpg.connect(dsn)
    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True, client_id=f"naive-{stage}")
    consumer = AIOKafkaConsumer(
        topic(stage),
        **kafka,
        group_id=f"bench-naive-{stage}-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    try:
        handled = 0
        async for record in consumer:
            event_id = f"{record.topic}/{record.partition}/{record.offset}"
            async with conn.transaction():
                await conn.execute(
                    """INSERT INTO inbox (consumer, event_source, event_id, event_type)
                       VALUES ($1, 'bench', $2, 'naive') ON CONFLICT DO NOTHING""",
                    f"naive-{stage}",
                    event_id,
                )
                await conn.execute(
                    "INSERT INTO bench_effect (event_id, case_id, status) VALUES ($1, $2, 'naive')",
                    event_id,
                    uuid.UUID(bytes=(record.key or b"").ljust(16, b"\0")[:16]),
                )
            await producer.send_and_wait(topic(stage + 1), value=record.value, key=record.key)
            await consumer.commit({TopicPartition(record.topic, record.partition): record.offset + 1})
            handled += 1
            if handled >= stop_after:
                return
    finally:
        await consumer.stop()
        await producer.stop()
        await conn.close()


def _run_stage(kafka: dict[str, Any], dsn: str, stage: int, stop_after: int) -> None:
    collect_garbage_rarely()  # as a service's process does: the baseline differs in its design only
    asyncio.run(_stage(kafka, dsn, stage, stop_after))


@dataclass
class NaiveResult:
    stages: int
    records: int
    seconds: float

    @property
    def records_per_second(self) -> float:
        """Records out of the last stage per second (each went through every stage)."""
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def handled_per_second(self) -> float:
        """Records handled per second, summed over the stages (each a transaction and a publish)."""
        return self.records_per_second * self.stages


async def run(admin: KafkaAccess, dsn: str, *, stages: int, records: int) -> NaiveResult:
    """Fill the first topic with ``records`` records, run ``stages`` stage processes, and time the
    records out of the last topic (from the moment the stages are started)."""
    names = [topic(i) for i in range(stages + 1)]
    await ensure_topics(admin, names, PARTITIONS, 1)
    kafka = admin.aiokafka()
    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        sends = [
            await producer.send(names[0], value=b"x" * 400, key=uuid.uuid4().bytes) for _ in range(records)
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    # Read without a group, from the beginning: every record out of the last stage, whenever read.
    out = AIOKafkaConsumer(**kafka, enable_auto_commit=False)
    await out.start()
    tps = [TopicPartition(names[-1], p) for p in range(PARTITIONS)]
    out.assign(tps)
    await out.seek_to_beginning(*tps)
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=_run_stage, args=(kafka, dsn, i, records), daemon=True) for i in range(stages)
    ]
    for p in procs:
        p.start()
    try:
        # Timed by the records' own timestamps (when the last stage published each): from the first
        # record out of the pipeline to the last, so the processes' start-up is not counted.
        stamps: list[int] = []
        deadline = time.monotonic() + 600
        while len(stamps) < records and time.monotonic() < deadline:
            batch = await out.getmany(timeout_ms=1000)
            stamps += [r.timestamp for rs in batch.values() for r in rs]
            if not any(p.is_alive() for p in procs) and not batch:
                break
    finally:
        await out.stop()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    elapsed = (max(stamps) - min(stamps)) / 1000 if len(stamps) > 1 else 0.0
    seen = max(0, len(stamps) - 1)  # the first record opens the clock
    return NaiveResult(stages=stages, records=seen, seconds=elapsed)
