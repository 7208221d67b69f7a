"""Small Kafka reading helpers for tools and tests (no consumer group, nothing committed)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from corridor.kafkaclient import KafkaAccess


async def partitions_of(access: KafkaAccess, topic: str, timeout: float = 30.0) -> list[TopicPartition]:
    """The topic's partitions, waiting for the topic to exist."""
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        async with asyncio.timeout(timeout):
            while True:
                described = await admin.describe_topics([topic])
                info = described[0] if described else {}
                if info.get("error_code", 0) == 0 and info.get("partitions"):
                    return sorted(TopicPartition(topic, p["partition"]) for p in info["partitions"])
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def read_topic(
    access: KafkaAccess, topic: str, *, isolation_level: str = "read_uncommitted"
) -> list[ConsumerRecord[Any, Any]]:
    """Every record on ``topic`` up to its current end, in partition order (``read_committed``:
    without those of aborted transactions, up to the last stable offset)."""
    tps = await partitions_of(access, topic)
    consumer = AIOKafkaConsumer(
        **access.aiokafka(), enable_auto_commit=False, isolation_level=isolation_level
    )
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                records.extend(r for r in batch.get(tp, []) if r.offset < ends[tp])
    finally:
        await consumer.stop()
    return records
