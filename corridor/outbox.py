"""Transactional outbox and its relay.

``enqueue`` writes an event in the caller's transaction. ``OutboxRelay`` publishes committed rows
to Kafka with an idempotent producer (acks=all) and marks them published only once the broker has
acknowledged them, so a crash at any point leads to a re-send (consumers deduplicate by event id),
never to a loss.

One relay per database publishes at a time: it holds a session-level advisory lock, and any other
relay (a second replica of the service) waits as a hot standby. A single active publisher is what
keeps per-case order across topics without coordinating row locks between relays; the standby takes
over within a poll interval when the leader's connection dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import pydantic_core
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner, murmur2
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from contracts import topics
from contracts.base import Event
from contracts.envelope import CloudEvent
from contracts.status import CaseStatus, CaseStatusChanged
from corridor import statusguard
from corridor.kafkaclient import KafkaAccess
from corridor.tracing import CASE_COUNT, CASE_ID, ref_of, relay_attributes, remember_origins, writing

log = logging.getLogger(__name__)
tracer = trace.get_tracer("corridor.outbox")

_RELAY_LOCK = 7_241_002
_CHANNEL = "corridor_outbox"


async def enqueue(
    conn: asyncpg.Connection,
    data: Event,
    *,
    topic: str,
    source: str,
    key: str | None = None,
    event_id: str | None = None,
    extensions: dict[str, str] | None = None,
) -> CloudEvent:
    """Write ``data`` to the outbox inside the caller's transaction and return its envelope."""
    if type(data) not in topics.events_on(topic):
        # Consumers and the published documentation rely on the topic's declared events.
        raise ValueError(f"{type(data).__name__} is not an event of topic {topic}")
    noted: dict[object, CaseStatus] = {}
    if isinstance(data, CaseStatusChanged) and topic == topics.STATUS:
        (verdict,), noted = await statusguard.judge_many(conn, [data])
        if verdict is not None:
            raise verdict  # never published
    event = CloudEvent.new(data, source=source, event_id=event_id)
    if extensions:
        event = dataclasses.replace(event, extensions=extensions)
    headers = event.header_texts()
    async with writing(conn, data, topic):
        # The trace context of the request or record that caused this event travels with it, so one
        # case's trace spans every service even though the relay publishes later.
        propagate.inject(headers)
        await conn.execute(
            # One round trip: the row, the wake-up call (delivered at commit, collapsed per
            # transaction) and the status the stream guard admitted.
            f"""WITH {statusguard.note_statuses(8)},
               row AS (
                   INSERT INTO outbox (topic, key, event_id, event_type, headers, payload)
                   VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING 1)
               SELECT pg_notify($7, '') FROM row""",
            topic,
            key if key is not None else event.subject,
            event.id,
            event.type,
            _json(headers),
            event.value(),
            _CHANNEL,
            list(noted),
            [status.value for status in noted.values()],
        )
    return event


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """An event to write with ``enqueue_many``: its topic and record key (the case, unless given)."""

    data: Event
    topic: str
    key: str | None = None


async def enqueue_many(
    conn: asyncpg.Connection, items: Sequence[Outgoing], *, source: str
) -> list[CloudEvent | None]:
    """``enqueue`` for many events in a few statements (a bulk import's thousands of cases), in
    the caller's transaction, in the order given (the relay keeps it per key). Status changes on
    the public stream are judged by the stream guard as ``announce`` judges them: one that may not
    follow its case's last status is recorded and left out (None in its place), the rest go on."""
    if not items:
        return []
    for item in items:
        if type(item.data) not in topics.events_on(item.topic):
            raise ValueError(f"{type(item.data).__name__} is not an event of topic {item.topic}")
    guarded = [
        (i, item.data)
        for i, item in enumerate(items)
        if isinstance(item.data, CaseStatusChanged) and item.topic == topics.STATUS
    ]
    refused: set[int] = set()
    verdicts, noted = await statusguard.judge_many(conn, [change for _, change in guarded])
    for (i, _), verdict in zip(guarded, verdicts, strict=True):
        if verdict is not None:
            refused.add(i)
            await statusguard.record_refusal(conn, verdict, source)
    events: list[CloudEvent | None] = []
    with tracer.start_as_current_span(
        f"write {len(items) - len(refused)} events", kind=SpanKind.INTERNAL
    ) as span:
        if span.is_recording():
            cases = list(dict.fromkeys(c for item in items for c in ref_of(item.data).case_ids))
            span.set_attribute(CASE_COUNT, len(cases))
            here = span.get_span_context()
            # As ``enqueue``'s span does: link to the trace each case was met in before, so a
            # command's trace (a vehicle's clearance, a departure) leads back to its cases' traces.
            for case_id, origin in (await remember_origins(conn, cases, here)).items():
                if origin.trace_id != here.trace_id:
                    span.add_link(origin, {CASE_ID: case_id})
        # One span for the lot: every row carries its trace context, as enqueue's rows do.
        context: dict[str, str] = {}
        propagate.inject(context)
        records = []
        for i, item in enumerate(items):
            if i in refused:
                events.append(None)
                continue
            event = CloudEvent.new(item.data, source=source)
            headers = event.header_texts() | context
            key = item.key if item.key is not None else event.subject
            records.append((item.topic, key, event.id, event.type, _json(headers), event.value()))
            events.append(event)
        if len(records) > COPY_FROM:
            await statusguard.note_many(conn, list(noted.items()))
            await conn.copy_records_to_table(
                "outbox",
                records=records,
                columns=("topic", "key", "event_id", "event_type", "headers", "payload"),
            )
            await conn.execute("SELECT pg_notify($1, '')", _CHANNEL)
        elif records:  # (every status admitted is among them)
            columns = list(zip(*records, strict=True))
            await conn.execute(
                # One round trip, as ``enqueue``'s; the rows' ids (the relay's order) in the order given.
                f"""WITH {statusguard.note_statuses(8)},
                   written AS (
                       INSERT INTO outbox (topic, key, event_id, event_type, headers, payload)
                       SELECT t, k, i, e, h, p
                       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bytea[])
                           WITH ORDINALITY AS u(t, k, i, e, h, p, n)
                       ORDER BY n
                       RETURNING 1)
                   SELECT pg_notify($7, '') WHERE EXISTS (SELECT FROM written)""",
                *(list(c) for c in columns),
                _CHANNEL,
                list(noted),
                [status.value for status in noted.values()],
            )
    return events


def _json(headers: dict[str, str]) -> str:
    # pydantic-core's encoder: four times as fast as json.dumps on a record's dozen headers.
    return pydantic_core.to_json(headers).decode()


COPY_FROM = 200
"""More rows than this go to the outbox by COPY (a bulk import's thousands); fewer in one INSERT,
one round trip where COPY takes three (a consumer's batch, a request)."""


async def announce(
    conn: asyncpg.Connection,
    change: CaseStatusChanged,
    *,
    source: str,
    extensions: dict[str, str] | None = None,
) -> CloudEvent | None:
    """Publish a status change on the public stream, unless it may not follow the case's last
    status: then it is a bug, logged loudly and recorded, and the rest of the caller's work goes on
    (the case's seat, clearance or decision is still right; only the stream must stay legal)."""
    try:
        return await enqueue(conn, change, topic=topics.STATUS, source=source, extensions=extensions)
    except statusguard.IllegalStatusChange as exc:
        await statusguard.record_refusal(conn, exc, source)
        return None


def make_producer(access: KafkaAccess, *, client_id: str) -> AIOKafkaProducer:
    """The producer for anything that must not be lost: idempotence forces acks=all."""
    return AIOKafkaProducer(
        **access.aiokafka(),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=30_000,
        partitioner=partition_of,
    )


def partition_of(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """Kafka's default partitioner (murmur2, as Java clients place a key: a case's records land
    where any client would put them), with each key's hash remembered: aiokafka's murmur2 is pure
    Python, 7 µs a record, and a case's key recurs in every event of its journey."""
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    return all_partitions[_key_hash(key) % len(all_partitions)]


@functools.lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


class OutboxRelay:
    def __init__(
        self,
        dsn: str,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        retention_seconds: float = 3600.0,
        backoff_max_seconds: float = 10.0,
        observe: Callable[[Sequence[float], float], None] | None = None,
    ) -> None:
        """``observe(delays, seconds)``, after each acknowledged batch: each row's time from its
        creation to the broker's acknowledgement, and how long the batch took to publish."""
        self._dsn = dsn
        self._observe = observe
        self._producer = producer
        self._batch_size = batch_size
        self._poll = poll_seconds
        self._retention = retention_seconds
        self._backoff_max = backoff_max_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.is_leader = False
        self.published = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop after the batch in flight; unpublished rows stay for the next start."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=30)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                await self._lead()
                backoff = 0.2
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                self.is_leader = False
                self.last_error = repr(exc)
                log.warning("outbox relay: %r; retrying in %.1fs", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max)
            except Exception as exc:  # keep relaying whatever happens; a dead relay loses nothing but stalls
                self.is_leader = False
                self.last_error = repr(exc)
                log.exception("outbox relay failed; retrying in %.1fs", backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _lead(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn)
        try:
            while not self._stopping:
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK):
                    break
                await self._sleep(self._poll)
            if self._stopping:
                return
            self.is_leader = True
            await conn.add_listener(_CHANNEL, self._on_notify)
            last_cleanup = 0.0
            loop = asyncio.get_running_loop()
            while not self._stopping:
                self._wake.clear()
                sent = await self.drain(conn)
                if loop.time() - last_cleanup > min(60.0, self._retention):
                    await self._cleanup(conn)
                    last_cleanup = loop.time()
                if sent < self._batch_size:
                    # Everything committed before the drain's SELECT is out, and whatever commits
                    # after it notifies (the wake-up was cleared before the SELECT, so a
                    # notification during the drain is kept): drained again at once, a trickle's
                    # every batch cost an empty transaction more. NOTIFY wakes us at once; the
                    # timeout is the fallback if a notification is lost (e.g. the listening
                    # connection was replaced).
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            # One last drain so a clean shutdown leaves nothing committed behind.
            await self.drain(conn)
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await conn.close()

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def drain(self, conn: asyncpg.Connection) -> int:
        """Publish one batch of unpublished rows; return how many were published."""
        async with conn.transaction():
            # Marked published by the statement that takes them: the mark commits only after the
            # broker has acknowledged every row (a failure or a crash before rolls it back, and the
            # rows are sent again), as a mark made after sending would, one round trip sooner.
            rows = await conn.fetch(
                # Each row's age by the database's clock, so the delay does not depend on the
                # relay's clock agreeing with the one that stamped created_at.
                """UPDATE outbox SET published_at = now()
                   WHERE id IN (SELECT id FROM outbox WHERE published_at IS NULL
                                ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                   RETURNING id, topic, key, headers, payload,
                             extract(epoch FROM clock_timestamp() - created_at)::float8 AS age""",
                self._batch_size,
            )
            if not rows:
                return 0
            rows.sort(key=lambda r: r["id"])  # RETURNING keeps no order; a case's rows go in theirs
            started = time.monotonic()
            await self._publish(rows)
            if self._observe is not None:
                took = time.monotonic() - started
                self._observe([max(0.0, r["age"]) + took for r in rows], took)
        self.published += len(rows)
        return len(rows)

    async def _publish(self, rows: Sequence[asyncpg.Record]) -> None:
        # Rows of one case may go to different topics (status stream, domain topic). A later row
        # of a case is sent only after the earlier one is acknowledged, so anyone reacting to the
        # domain event publishes its own status change after ours. Rows of different cases are
        # sent together in waves, which lets the producer batch them.
        by_key: dict[str, list[asyncpg.Record]] = defaultdict(list)
        for row in rows:
            by_key[row["key"]].append(row)
        depth = max(len(v) for v in by_key.values())
        for wave in range(depth):
            futures = []
            for key_rows in by_key.values():
                if wave < len(key_rows):
                    futures.append(await self._send(key_rows[wave]))
            await asyncio.gather(*futures)

    async def _send(self, row: asyncpg.Record) -> asyncio.Future[Any]:
        headers: dict[str, str] = json.loads(row["headers"])
        with tracer.start_as_current_span(
            f"send {row['topic']}",
            kind=SpanKind.PRODUCER,
            context=propagate.extract(headers),
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": row["topic"],
                "messaging.kafka.message.key": row["key"],
                "messaging.message.id": headers.get("ce_id", ""),
                **relay_attributes(row["key"]),
            },
        ):
            propagate.inject(headers)
            return await self._producer.send(
                row["topic"],
                value=bytes(row["payload"]),
                key=row["key"].encode(),
                headers=[(k, v.encode()) for k, v in headers.items()],
            )

    async def _cleanup(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
            self._retention,
        )


async def pending_count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def forget_published(conn: asyncpg.Connection, keys: Sequence[str]) -> int:
    """Delete the published rows of these record keys now rather than after the retention period:
    an erasure of personal data must not leave copies in the diagnostic history. Unpublished rows
    stay (they are yet to be sent, in order). How many rows went."""
    done = await conn.execute(
        "DELETE FROM outbox WHERE key = ANY($1::text[]) AND published_at IS NOT NULL", list(keys)
    )
    return int(done.split()[-1])
