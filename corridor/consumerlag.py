"""Each consumer group's lag per topic and partition, as Prometheus gauges.

Lag is what the broker knows (the group's committed offset against the partition's high
watermark), not what the process believes, so it also shows a consumer that is alive but stuck, and
is read the same way ``kafka-consumer-groups --describe`` reads it. Refreshed on a timer rather
than at scrape time: a slow or absent broker must not make ``/metrics`` itself fail.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry, Gauge

from corridor.kafkaclient import KafkaAccess

log = logging.getLogger(__name__)


class Group(Protocol):
    """A consumer as the lag needs it: its group and its topics (``EventConsumer`` is one)."""

    name: str
    topics: tuple[str, ...]


class ConsumerLag:
    def __init__(
        self,
        access: KafkaAccess,
        consumers: Callable[[], Iterable[Group]],
        registry: CollectorRegistry,
        *,
        timeout: float = 10.0,
    ) -> None:
        self._access = access
        self._consumers = consumers
        self._timeout = timeout
        self._admin: AIOKafkaAdminClient | None = None
        self._probe: AIOKafkaConsumer | None = None
        self.lag = Gauge(
            "corridor_consumer_lag_records",
            "Records on a partition the consumer group has not committed yet (high watermark "
            "minus committed offset; the whole partition when the group never committed)",
            ["consumer", "topic", "partition"],
            registry=registry,
        )
        self.committed = Gauge(
            "corridor_consumer_committed_offset",
            "The consumer group's committed offset on a partition: one that stops moving while "
            "lag grows is a stalled consumer",
            ["consumer", "topic", "partition"],
            registry=registry,
        )
        self.refreshed = Gauge(
            "corridor_consumer_lag_refreshed_timestamp_seconds",
            "When the lag was last read from the broker (Unix time); old means the figures are stale",
            registry=registry,
        )

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._probe is None:
            admin = AIOKafkaAdminClient(**self._access.aiokafka())
            # No group: it only asks where each partition begins and ends, and commits nothing.
            probe = AIOKafkaConsumer(**self._access.aiokafka(), enable_auto_commit=False)
            await admin.start()
            try:
                await probe.start()
            except BaseException:
                await admin.close()
                raise
            self._admin, self._probe = admin, probe
        return self._admin, self._probe

    async def refresh(self) -> None:
        """Read every group's committed offsets and its topics' ends; on failure the clients are
        dropped (the next refresh connects anew) and the error is raised to the caller's log."""
        try:
            async with asyncio.timeout(self._timeout):
                figures = await self._read()
        except BaseException:
            await self.close()
            raise
        self.lag.clear()
        self.committed.clear()
        for (group, tp), (end, begin, committed) in figures.items():
            labels = (group, tp.topic, str(tp.partition))
            self.lag.labels(*labels).set(max(0, end - (committed if committed is not None else begin)))
            if committed is not None:
                self.committed.labels(*labels).set(committed)
        self.refreshed.set(time.time())

    async def _read(self) -> dict[tuple[str, TopicPartition], tuple[int, int, int | None]]:
        admin, probe = await self._clients()
        figures: dict[tuple[str, TopicPartition], tuple[int, int, int | None]] = {}
        for consumer in self._consumers():
            partitions = await _partitions(admin, consumer.topics)
            if not partitions:
                continue
            ends = await probe.end_offsets(partitions)
            begins = await probe.beginning_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(consumer.name, partitions=partitions)
            for tp in partitions:
                meta = committed.get(tp)
                offset = meta.offset if meta is not None and meta.offset >= 0 else None
                figures[(consumer.name, tp)] = (ends[tp], begins[tp], offset)
        return figures

    async def close(self) -> None:
        admin, probe, self._admin, self._probe = self._admin, self._probe, None, None
        if probe is not None:
            await _quietly(probe.stop())
        if admin is not None:
            await _quietly(admin.close())


async def _partitions(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> list[TopicPartition]:
    described: list[dict[str, Any]] = await admin.describe_topics(list(topics))
    return sorted(
        TopicPartition(info["topic"], p["partition"])
        for info in described
        if info.get("error_code", 0) == 0
        for p in info.get("partitions", [])
    )


async def _quietly(closing: Any) -> None:
    try:
        await closing
    except Exception as exc:  # closing a broken connection: nothing left to do about it
        log.debug("closing a lag client: %r", exc)
