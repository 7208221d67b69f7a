"""Where the board's figures come from: Kafka (read without a consumer group, from the beginning)
and the services' own health checks and metrics.

- ``corridor.case-status`` (public) and ``transport.movements`` (vehicles, case ids, places): decoded
  into the board;
- every ``dlt.<consumer>`` topic: only its ``dlt_*`` headers are read (consumer, reason, when). A
  dead letter's value is a copy of a record that may carry personal data: it is never decoded, kept
  or shown;
- each service's ``/health/ready`` (public) and ``/metrics`` (with an operations-viewer token of
  the service's mission), every ``poll_seconds``;
- consumer lag: each consumer group's committed offsets against the partitions' end offsets (the
  principal may describe the groups and their topics, not read the topics).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

from contracts import topics
from contracts.envelope import CloudEvent, decode_headers
from contracts.status import CaseStatusChanged
from contracts.transport import MovementDeparted, VehicleProgressRecorded
from corridor.kafkaclient import KafkaAccess
from corridor.kafkatools import partitions_of
from services.operations.domain import Board, GroupLag, ServiceHealth

log = logging.getLogger(__name__)

DLT_PREFIX = topics.dead_letters("")
REPLAYS_TOPIC = "dlt.replays"  # replay markers (opstools.deadletters), not dead letters


class ServiceTarget(BaseModel):
    url: str
    mission: str


class StreamFollower:
    """Reads the status stream, the vehicle movements and the dead-letter topics into the board."""

    def __init__(self, access: KafkaAccess, board: Board) -> None:
        self.access = access
        self.board = board
        self.dead_letter_topics: list[str] = []
        self.caught_up = False
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._seen: set[tuple[str, str]] = set()
        self.invalid = 0

    async def start(self) -> None:
        admin = AIOKafkaAdminClient(**self.access.aiokafka())
        await admin.start()
        try:
            # Lists only what this principal may describe: its ACLs name every dead-letter topic.
            visible = await admin.list_topics()
        finally:
            await admin.close()
        self.dead_letter_topics = sorted(
            t for t in visible if t.startswith(DLT_PREFIX) and t != REPLAYS_TOPIC
        )
        self.board.watch_dead_letters(self.dead_letter_topics, DLT_PREFIX)
        tps: list[TopicPartition] = []
        for name in [topics.STATUS, topics.MOVEMENTS, *self.dead_letter_topics]:
            tps += await partitions_of(self.access, name)
        self._consumer = AIOKafkaConsumer(
            **self.access.aiokafka(), enable_auto_commit=False, client_id="operations-page"
        )
        await self._consumer.start()
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        ends = await self._consumer.end_offsets(tps)
        self._task = asyncio.create_task(self._follow(ends), name="operations-follow")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _follow(self, ends: Mapping[TopicPartition, int]) -> None:
        assert self._consumer is not None
        behind = {tp for tp, end in ends.items() if end > 0}
        self.caught_up = not behind
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=2000)
            for tp, records in batches.items():
                for record in records:
                    self._take(record)
                if tp in behind and records and records[-1].offset + 1 >= ends[tp]:
                    behind.discard(tp)
            if behind and not batches:
                # An end offset counted a transaction marker or a compacted record: nothing more comes.
                behind = {tp for tp in behind if await self._consumer.position(tp) < ends[tp]}
            self.caught_up = not behind

    def _take(self, record: ConsumerRecord[Any, Any]) -> None:
        if record.topic.startswith(DLT_PREFIX):
            self._take_dead_letter(record)
            return
        try:
            event = CloudEvent.from_record(decode_headers(record.headers), record.value)
        except Exception:  # a reader of shared streams outlives any record on them
            self.invalid += 1
            return
        if event.dedup_key in self._seen:
            return
        self._seen.add(event.dedup_key)
        if isinstance(event.data, CaseStatusChanged):
            self.board.apply_status(event.data)
        elif isinstance(event.data, MovementDeparted | VehicleProgressRecorded):
            self.board.apply_vehicle(event.data)

    def _take_dead_letter(self, record: ConsumerRecord[Any, Any]) -> None:
        # Headers only: record.value is never looked at.
        dlt = {
            k: v.decode(errors="replace")
            for k, v in decode_headers(record.headers)
            if k in ("dlt_reason", "dlt_consumer", "dlt_failed_at")
        }
        failed_at = None
        with contextlib.suppress(ValueError, KeyError):
            failed_at = datetime.fromisoformat(dlt["dlt_failed_at"])
        consumer = dlt.get("dlt_consumer") or record.topic.removeprefix(DLT_PREFIX)
        self.board.apply_dead_letter(record.topic, consumer, dlt.get("dlt_reason", ""), failed_at)


CONSUMER_FAMILY = "corridor_consumer_records"


def read_metrics(text: str) -> tuple[dict[str, dict[str, float]], float | None, float | None]:
    """Consumers' record counts by outcome, outbox depth and age of its oldest row, from a
    service's Prometheus exposition."""
    consumers: dict[str, dict[str, float]] = {}
    pending = oldest = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (CONSUMER_FAMILY, CONSUMER_FAMILY + "_total"):
                consumer = sample.labels.get("consumer", "?")
                consumers.setdefault(consumer, {})[sample.labels.get("outcome", "?")] = sample.value
            elif sample.name == "corridor_outbox_pending_events":
                pending = sample.value
            elif sample.name == "corridor_outbox_oldest_pending_age_seconds":
                oldest = sample.value
    return consumers, pending, oldest


class ServicePoller:
    """Every ``seconds``: each service's readiness and metrics, and every consumer group's lag."""

    def __init__(
        self,
        board: Board,
        services: Mapping[str, ServiceTarget],
        tokens_dir: Path | None,
        access: KafkaAccess,
        seconds: float,
    ) -> None:
        self.board = board
        self.services = dict(services)
        self.tokens_dir = tokens_dir
        self.access = access
        self.seconds = seconds
        self._task: asyncio.Task[None] | None = None
        self._client = httpx.AsyncClient(timeout=min(5.0, seconds))
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None

    def _token(self, mission: str) -> str | None:
        # Read at every poll: the deployment rotates the page's tokens by replacing the files.
        if self.tokens_dir is None:
            return None
        path = self.tokens_dir / f"{mission}.token"
        try:
            return path.read_text().strip() or None
        except OSError:
            return None

    async def start(self) -> None:
        # Kept for the process's life: a SASL handshake every few seconds would load the brokers.
        self._admin = AIOKafkaAdminClient(**self.access.aiokafka())
        self._offsets = AIOKafkaConsumer(**self.access.aiokafka(), enable_auto_commit=False)
        await self._admin.start()
        await self._offsets.start()
        self._task = asyncio.create_task(self._loop(), name="operations-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()
        if self._offsets is not None:
            await self._offsets.stop()
        if self._admin is not None:
            await self._admin.close()

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception as exc:
                log.warning("operations poll failed (%s)", type(exc).__name__)
            await asyncio.sleep(self.seconds)

    async def poll(self) -> None:
        await asyncio.gather(*(self._poll_service(n, t) for n, t in self.services.items()), self._poll_lag())

    async def _poll_service(self, name: str, target: ServiceTarget) -> None:
        health = ServiceHealth(name=name)
        try:
            ready = await self._client.get(target.url + "/health/ready")
            health.ready = ready.status_code == 200
            body = ready.json()
            if isinstance(body, dict) and isinstance(body.get("checks"), dict):
                health.checks = {str(k): bool(v) for k, v in body["checks"].items()}
        except (httpx.HTTPError, ValueError) as exc:
            health.ready = False
            health.problem = f"unreachable ({type(exc).__name__})"
            self.board.set_health(health)
            return
        token = self._token(target.mission)
        if token is None:
            health.problem = f"no operations token for mission {target.mission}"
        else:
            try:
                metrics = await self._client.get(
                    target.url + "/metrics", headers={"Authorization": f"Bearer {token}"}
                )
                if metrics.status_code == 200:
                    health.consumers, health.outbox_pending, health.outbox_oldest_seconds = read_metrics(
                        metrics.text
                    )
                else:
                    health.problem = f"metrics answered {metrics.status_code}"
            except (httpx.HTTPError, ValueError) as exc:
                health.problem = f"metrics unreadable ({type(exc).__name__})"
        self.board.set_health(health)

    async def _poll_lag(self) -> None:
        admin, consumer = self._admin, self._offsets
        if admin is None or consumer is None:
            return
        try:
            async with asyncio.timeout(max(self.seconds, 5.0)):
                # Only the groups this principal may describe: the services' (opstools.kafkaadmin).
                groups = sorted(g[0] for g in await admin.list_consumer_groups())
                committed: dict[str, dict[TopicPartition, int]] = {}
                for group in groups:
                    offsets = await admin.list_consumer_group_offsets(group)
                    committed[group] = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
                all_tps = {tp for offsets in committed.values() for tp in offsets}
                ends = await consumer.end_offsets(list(all_tps)) if all_tps else {}
        except Exception as exc:
            self.board.set_lag(self.board.lag, f"lag unreadable ({type(exc).__name__})")
            return
        lag = []
        for group, offsets in committed.items():
            by_topic: dict[str, list[int]] = {}
            for tp, offset in offsets.items():
                by_topic.setdefault(tp.topic, []).append(max(0, ends.get(tp, offset) - offset))
            lag += [GroupLag(group, t, sum(v), len(v)) for t, v in by_topic.items()]
        self.board.set_lag(lag)


def parse_case_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None
