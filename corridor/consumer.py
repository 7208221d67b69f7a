"""Reliable event consumption on top of FastStream.

Every subscriber commits an offset only after the record's effect is committed in PostgreSQL
(AckPolicy.MANUAL with auto-commit off, the consumer committing itself; never FastStream's default
ACK_FIRST). Each record
is handled inside one database transaction that also records the event in the inbox, so a
redelivery has no second effect. What cannot be handled goes to a dead-letter topic with its
original bytes and the reason; what failed for a passing reason (database or broker down) is
retried with backoff from the same offset, so neither the record nor the partition's order is lost.

Records come in batches (up to ``batch_size``, from every partition the consumer holds): the
records of a batch are applied in one transaction with one inbox insert, and each partition's
offset is committed after it: at once, or with the next batches' if the last commit is more recent
than ``commit_interval_seconds``. An event type with a set handler has each run of its records
(consecutive in the batch) applied by one call, in a few statements whatever the run's length;
alone, a record is handed to the same set handler as a run of one. A batch with any record that must be dead-lettered or retried
is handled again record by record (the rolled-back transaction left nothing), exactly as a batch of
one is, so a bad record costs its batch the fast path and nothing else: the records before it are
committed, the ones after it wait behind it in their partition's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import traceback
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError, MessageSizeTooLargeError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage

from contracts import topics
from contracts.base import Event
from contracts.envelope import CloudEvent, EnvelopeError, decode_headers
from corridor.inbox import first_deliveries, first_delivery
from corridor.redaction import described, detail_ref, fingerprint, frames
from corridor.tracing import handling, handling_together

log = logging.getLogger(__name__)
applied_log = logging.getLogger("corridor.applied")
"""A DEBUG line per event applied (``ServiceSettings.log_levels`` raises it): a line per record is
more than a busy consumer's logs should carry; its span has the same in the trace backend."""

Handler = Callable[[asyncpg.Connection, CloudEvent], Awaitable[None]]
SetHandler = Callable[[asyncpg.Connection, Sequence[CloudEvent]], Awaitable[None]]
"""Applies many events of one type, in their order, exactly as applying them one after the other
would (the same rows, statuses and events), in a few set-based statements."""
BatchLock = Callable[[asyncpg.Connection, Sequence[CloudEvent]], Awaitable[None]]
"""Takes, in a batch's transaction and before any of its records is applied, the locks its records'
handlers will take (a service's rows, in the order its request paths take them)."""

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    # A connection left mid-operation when PostgreSQL went away ("cannot switch to state"): the
    # pool replaces it; the work is tried again on another.
    asyncpg.InternalClientError,
)


GATHER_MIN_BYTES = 1 << 20
"""What a gathering consumer's fetch waits for (or ``gather_ms``, whichever comes first): more than a
trickle brings in ``gather_ms``, so a fetch is answered after ``gather_ms``, or as soon as a backlog
has a megabyte waiting."""


class Rejected(Exception):
    """A well-formed event the domain refuses (illegal transition, unknown reference).

    Raising it rolls back the handler's transaction and dead-letters the record with ``code``.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class RetryRecord(Exception):
    """Raised to NACK a record (FastStream seeks back to it), in place of the failure itself: the
    broker's logs show this message, never the original one, which may quote the record's data."""


class RetryLater(Rejected):
    """Not applicable yet, perhaps only because another stream has not caught up (e.g. a status
    reported before the projection saw the status it follows). Retried with backoff from the same
    offset; dead-lettered with ``code`` once the consumer's attempts are used up."""


async def _tolerant_parse(
    batch: tuple[ConsumerRecord[Any, Any], ...], original: Callable[..., Awaitable[StreamMessage[Any]]]
) -> StreamMessage[Any]:
    """FastStream's parser decodes every header as UTF-8 before any handler runs, and a batch it
    cannot decode was dropped: no handler, no dead letter. Parse copies with decodable headers and
    hand the handler the original records, so the envelope check dead-letters the bad one
    (bad_header)."""
    try:
        return await original(batch)
    except (UnicodeDecodeError, AttributeError):
        safe = tuple(
            dataclasses.replace(
                r, headers=[(k, (v or b"").decode(errors="replace").encode()) for k, v in r.headers or ()]
            )
            for r in batch
        )
        message = await original(safe)
        message.raw_message = batch
        return message


async def _raw_records(msg: StreamMessage[Any]) -> Any:
    # The handler takes the records themselves and decodes each envelope, so that a malformed
    # record becomes a dead letter instead of a decoding error FastStream would nack forever. As
    # the handler's only argument they need no dependency injection: taking the message from
    # FastStream's context instead cost a task group and a worker-thread hop per batch (11 % of a
    # consumer's time at a trickle of records).
    return msg.raw_message


@dataclasses.dataclass(slots=True)
class _Applicable:
    record: ConsumerRecord[Any, Any]
    event: CloudEvent
    handler: Handler | None
    set_handler: SetHandler | None


class _HandleOneByOne(Exception):
    """A batch holds a record the fast path does not take (a dead letter); the records are
    handled one at a time instead."""


class _CommitBeforeRevoked(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what is pending before a rebalance hands the partitions to another member (aiokafka
    awaits this before rejoining the group, with the old assignment still in place)."""

    def __init__(self, owner: EventConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        consumer = self._owner.subscriber.consumer
        if consumer is not None:
            await self._owner.commit(consumer)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None


class EventConsumer:
    def __init__(
        self,
        *,
        name: str,
        topics: tuple[str, ...],
        handlers: dict[type[Event], Handler],
        pool: Callable[[], asyncpg.Pool],
        producer: Callable[[], AIOKafkaProducer],
        backoff_max_seconds: float = 10.0,
        max_attempts: int = 5,
        checkpoint_country: Callable[[str], str | None] = lambda _: None,
        batch_size: int = 500,
        batch_wait_ms: int = 50,
        lock_batch: BatchLock | None = None,
        set_handlers: dict[type[Event], SetHandler] | None = None,
        commit_interval_seconds: float = 0.0,
        gather_ms: int = 0,
    ) -> None:
        """``checkpoint_country`` (the routes' checkpoint -> country) lets the consumer check that a
        record on a checkpoint's own topic comes from that checkpoint's mission. ``batch_size``:
        the most records taken at once; ``batch_wait_ms``: how long a poll waits for the first
        record (FastStream also sleeps that long after an empty poll: it bounds the added latency
        of an idle consumer). ``lock_batch``: what a batch locks first (a batch of one is handled
        as a record alone, and locks what its handler locks). ``set_handlers``: the event types
        applied in sets (``SetHandler``), in place of ``handlers``' entry for the type.
        ``commit_interval_seconds``: offsets are committed at most this often (0: after every
        batch), always only past records whose transaction has committed. ``gather_ms``: for a
        consumer nobody waits on (a read model), how long the broker may hold a fetch to gather
        records (``fetch.max.wait.ms``, with a ``fetch.min.bytes`` a trickle never fills), so that
        each transaction applies many records; 0: a fetch answers as soon as one record is there."""
        self.name = name
        self.topics = topics
        self.handlers = handlers
        self.set_handlers = set_handlers or {}
        self._pool = pool
        self._producer = producer
        self._backoff_max = backoff_max_seconds
        self._max_attempts = max_attempts
        self._checkpoint_country = checkpoint_country
        self.batch_size = batch_size
        self.batch_wait_ms = batch_wait_ms
        self.commit_interval_seconds = commit_interval_seconds
        self.gather_ms = gather_ms
        self._uncommitted: dict[TopicPartition, int] = {}
        """Per partition, the offset to commit next: past what is done, or at a record to read again."""
        self._last_commit = float("-inf")
        self._commit_lock = asyncio.Lock()
        self._commit_later: asyncio.Task[None] | None = None
        self._stopping = False
        self.commit_retry_seconds = 1.0
        self.rebalance_listener = _CommitBeforeRevoked(self)
        self._lock_batch = lock_batch
        self._attempts: dict[tuple[str, int, int], int] = {}
        self.dead_letter_topic = topics_dead_letter(name)
        self.applied = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.retried = 0
        """Records sent back to be read again (a transient failure, or not applicable yet)."""
        self.source_mismatches = 0
        self.transactions = 0
        """Database transactions opened to apply records: a batch's, or a record's alone. Records
        applied a transaction is how well batches form (one each at a trickle, unless gathered)."""

    @property
    def handled(self) -> list[type[Event]]:
        """Every event type this consumer applies: those applied in sets, then the others."""
        return [*self.set_handlers, *(t for t in self.handlers if t not in self.set_handlers)]

    def register(self, broker: KafkaBroker) -> None:
        self.subscriber = broker.subscriber(
            *self.topics,
            group_id=self.name,
            # The consumer commits each partition's offset itself, after the batch's transaction
            # (or up to the record a retry must read again): FastStream's batch ack would commit
            # every record fetched, its nack seek back over records already applied.
            ack_policy=AckPolicy.MANUAL,
            batch=True,
            max_records=self.batch_size,
            batch_timeout_ms=self.batch_wait_ms,
            auto_offset_reset="earliest",
            parser=_tolerant_parse,
            decoder=_raw_records,
            max_poll_interval_ms=300_000,
            listener=self.rebalance_listener,
            # Names the AsyncAPI channel of each topic "<consumer>:<topic>" (FastStream appends the
            # topic to the title of a subscriber with several).
            title=self.name if len(self.topics) > 1 else f"{self.name}:{self.topics[0]}",
            # Without gathering, aiokafka's defaults: a fetch is answered as soon as a record is
            # there (at most 500 ms later when none comes).
            fetch_max_wait_ms=self.gather_ms or 500,
            fetch_min_bytes=GATHER_MIN_BYTES if self.gather_ms else 1,
        )
        self.subscriber(self._on_batch)

    async def _on_batch(self, batch: Any) -> None:
        # batch: the records FastStream took, a tuple of ConsumerRecord. (A docstring here would
        # become the description of the AsyncAPI channel.)
        consumer: AIOKafkaConsumer = self.subscriber.consumer
        await self.consume_batch(batch, consumer)

    async def consume_batch(
        self, batch: tuple[ConsumerRecord[Any, Any], ...] | list[ConsumerRecord[Any, Any]], consumer: Any
    ) -> None:
        """Handle ``batch`` (records of any partitions, each partition's in offset order), then
        commit each partition's offset past what was done and seek back to what must be read
        again. ``consumer``: the AIOKafkaConsumer the records came from (commit, seek)."""
        partitions: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = defaultdict(list)
        for record in batch:
            partitions[TopicPartition(record.topic, record.partition)].append(record)
        resume: dict[TopicPartition, int] = {}
        """Per partition, the offset of the first record not done (read again from there)."""
        try:
            if len(batch) == 1:
                raise _HandleOneByOne  # exactly the path of a single record
            await self._apply_together(batch)
        except Exception as exc:
            if not isinstance(exc, _HandleOneByOne):
                log.info("%s: batch of %d handled one by one (%s)", self.name, len(batch), described(exc))
            for tp, records in partitions.items():
                for record in records:
                    try:
                        await self.handle(record)
                    except Exception:
                        # RetryRecord (the backoff is behind it), or a dead letter that could not
                        # be sent: this record and the rest of its partition are read again.
                        resume[tp] = record.offset
                        break
        # Seek first: whatever happens to the commit, a record to be read again is read again
        # (skipped, it would be lost once a later offset of its partition is committed).
        for tp, offset in resume.items():
            try:
                consumer.seek(tp, offset)
            except IllegalStateError:
                pass  # no longer assigned here: the new owner reads from the last commit
        # Nothing done (a batch of one read again): no commit, as FastStream's nack made none.
        done = any(resume.get(tp) != records[0].offset for tp, records in partitions.items())
        if done:
            # Every assigned partition's position, as FastStream's ack did: past each record
            # handled, at each record to be read again (the seeks above), and where it stood for a
            # partition without records in this batch (so that a group has an offset on every
            # partition it holds). Taken now, while every record handed out is done: by the time a
            # deferred commit is sent, the positions may be past a batch still being applied.
            for tp, records in partitions.items():
                self._uncommitted[tp] = resume.get(tp, records[-1].offset + 1)
            # A partition assigned a moment ago may still wait for its position: not for long.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    for tp in consumer.assignment() - partitions.keys():
                        with contextlib.suppress(IllegalStateError):  # taken by a rebalance
                            self._uncommitted[tp] = await consumer.position(tp)
            await self._commit_soon(consumer)

    async def _commit_soon(self, consumer: Any) -> None:
        """Commit now if the last commit is ``commit_interval_seconds`` old, else once it is.

        A commit is a request to the group coordinator, which writes it to __consumer_offsets: at
        a trickle of records, one per batch was one per record, in the consumer and in Kafka.
        Deferring it is safe: what it covers is already applied, and a record read again after a
        crash is a duplicate for the inbox. What is pending is committed when a rebalance takes
        the partitions (``on_partitions_revoked``) and when the service stops (``stop_soon``)."""
        wait = self._last_commit + self.commit_interval_seconds - asyncio.get_running_loop().time()
        if wait <= 0 or self._stopping:
            await self.commit(consumer)
        elif self._commit_later is None:
            self._commit_later = asyncio.create_task(self._commit_after(consumer, wait))

    async def _commit_after(self, consumer: Any, seconds: float) -> None:
        """``_commit_later``: while it sleeps, what becomes pending is sent when it wakes."""
        await asyncio.sleep(seconds)
        # Awake: from here on it may already have taken what is pending, so what a batch leaves
        # next needs a commit of its own (without this, offsets pending while this one was being
        # sent waited for a record that might never come).
        self._commit_later = None
        await asyncio.shield(self.commit(consumer))

    async def commit(self, consumer: Any) -> None:
        """Commit every pending offset of a partition ``consumer`` still holds."""
        async with self._commit_lock:
            pending, self._uncommitted = self._uncommitted, {}
            held = consumer.assignment()
            offsets = {tp: offset for tp, offset in pending.items() if tp in held}
            if not offsets:
                return
            self._last_commit = asyncio.get_running_loop().time()
            try:
                await consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError, KafkaError, OSError) as exc:
                # A rebalance took the partition (or the broker is away): whoever reads it next
                # starts from the last commit, and the inbox makes what was applied a duplicate.
                log.warning("%s: offsets not committed (%s)", self.name, type(exc).__name__)
                # Sent again with the next commit, or after ``commit_retry_seconds`` if no record
                # comes (an idle partition would otherwise show a lag that is not there); a
                # partition no longer held is left out then.
                for tp, offset in offsets.items():
                    self._uncommitted.setdefault(tp, offset)
                if not self._stopping and self._commit_later is None:
                    self._commit_later = asyncio.create_task(
                        self._commit_after(consumer, self.commit_retry_seconds)
                    )

    async def stop_soon(self) -> None:
        """The service is stopping: commit what is pending, and from now on after every batch."""
        self._stopping = True
        if self._commit_later is not None:
            self._commit_later.cancel()
        consumer = getattr(getattr(self, "subscriber", None), "consumer", None)
        if consumer is not None:
            await self.commit(consumer)

    async def _apply_together(
        self, batch: tuple[ConsumerRecord[Any, Any], ...] | list[ConsumerRecord[Any, Any]]
    ) -> None:
        """Apply every record of ``batch`` in one transaction, or raise (nothing applied)."""
        applicable: list[_Applicable] = []
        for record in batch:
            event = CloudEvent.from_record(decode_headers(record.headers), record.value)
            if topics.origin_mismatch(record.topic, event.source, event.data, self._checkpoint_country):
                raise _HandleOneByOne
            set_handler = self.set_handlers.get(type(event.data))
            handler = None if set_handler is not None else self.handlers.get(type(event.data))
            if handler is not None or set_handler is not None:
                applicable.append(_Applicable(record, event, handler, set_handler))
        if not applicable:
            return  # known events this consumer has no use for: no transaction
        applied = duplicates = 0
        self.transactions += 1
        async with self._pool().acquire() as conn, conn.transaction():
            fresh = await first_deliveries(conn, self.name, [a.event for a in applicable])
            if self._lock_batch is not None:
                # Records come in partition order, not in the order a request path locks what they
                # touch (planning locks a day's cases in case-id order): locked as they come, one
                # batch and one request could each hold what the other waits for.
                await self._lock_batch(
                    conn, [a.event for a in applicable if (a.event.source, a.event.id) in fresh]
                )
            todo: list[_Applicable] = []
            for a in applicable:
                identity = (a.event.source, a.event.id)
                if identity not in fresh:
                    duplicates += 1
                    continue
                fresh.discard(identity)  # the same event twice in one batch: the second is a duplicate
                todo.append(a)
            for run in _runs(todo):
                first = run[0]
                if first.set_handler is not None:
                    pairs = [(a.record, a.event) for a in run]
                    async with handling_together(conn, pairs, self.name) as handled:
                        await first.set_handler(conn, [a.event for a in run])
                    for h, a in zip(handled, run, strict=True):
                        with h.within():
                            self._log_applied(a.event)
                else:
                    assert first.handler is not None
                    async with handling(conn, first.record, first.event, self.name):
                        await first.handler(conn, first.event)
                        self._log_applied(first.event)
            applied = len(todo)
        self.applied += applied
        self.duplicates += duplicates
        if self._attempts:
            for a in applicable:
                self._attempts.pop((a.record.topic, a.record.partition, a.record.offset), None)
        log.debug("%s: applied %d, duplicates %d in one batch", self.name, applied, duplicates)

    async def handle(self, record: ConsumerRecord[Any, Any]) -> None:
        headers = decode_headers(record.headers)
        try:
            event = CloudEvent.from_record(headers, record.value)
        except EnvelopeError as exc:
            await self.dead_letter(record, exc.code, exc.detail)
            return
        except Exception as exc:
            # Whatever else decoding raised (RecursionError on deeply nested JSON): the record can
            # never be decoded, and a NACK would redeliver it forever, wedging the partition.
            await self.dead_letter(
                record, "undecodable", "".join(traceback.format_exception_only(exc)).strip()
            )
            return
        # Who wrote an event is part of its authority: only the owner's principal may write a
        # checkpoint's or a mission's own topic, so claims that differ from the topic's owner are
        # forged (or misrouted) and change nothing.
        mismatch = topics.origin_mismatch(record.topic, event.source, event.data, self._checkpoint_country)
        if mismatch is not None:
            self.source_mismatches += 1
            await self.dead_letter(record, "source_mismatch", mismatch)
            return
        set_handler = self.set_handlers.get(type(event.data))
        handler = self.handlers.get(type(event.data))
        if handler is None and set_handler is None:
            return  # a known event this consumer has no use for
        position = (record.topic, record.partition, record.offset)
        try:
            self.transactions += 1
            async with self._pool().acquire() as conn, conn.transaction():
                if not await first_delivery(conn, self.name, event):
                    self.duplicates += 1
                    return
                async with handling(conn, record, event, self.name):
                    if set_handler is not None:
                        await set_handler(conn, [event])
                    else:
                        assert handler is not None
                        await handler(conn, event)
                    self._log_applied(event)
            self.applied += 1
            self._attempts.pop(position, None)
        except RetryLater as exc:
            attempt = self._attempts.get(position, 0) + 1
            self._attempts[position] = attempt
            if attempt >= self._max_attempts:
                self._attempts.pop(position, None)
                await self.dead_letter(record, exc.code, exc.detail)
                return
            await asyncio.sleep(min(0.2 * 2**attempt, self._backoff_max))
            self.retried += 1
            raise RetryRecord(f"{self.name}: {exc.code} at {position}, attempt {attempt}") from None
        except Rejected as exc:
            self._attempts.pop(position, None)
            await self.dead_letter(record, exc.code, exc.detail)
        except (asyncpg.DataError, asyncpg.ProgramLimitExceededError) as exc:
            # A value PostgreSQL refuses (NUL character, unpaired surrogate, number or date out of
            # range, an id too long to index) is refused again on every retry: dead-letter it now
            # instead of holding up the partition for the whole retry schedule.
            self._attempts.pop(position, None)
            await self.dead_letter(record, "invalid_value", str(exc))  # its text stays on the DLT
        except TRANSIENT_ERRORS as exc:
            attempt = self._attempts.get(position, 0) + 1
            self._attempts[position] = attempt
            delay = min(0.2 * 2 ** min(attempt, 10), self._backoff_max)
            log.warning(
                "%s: transient %s at %s, retry %d in %.1fs",
                self.name,
                described(exc),
                position,
                attempt,
                delay,
            )
            await asyncio.sleep(delay)
            # NACK: FastStream seeks back to this offset.
            self.retried += 1
            raise RetryRecord(f"{self.name}: transient {described(exc)} at {position}") from None
        except Exception as exc:
            attempt = self._attempts.get(position, 0) + 1
            self._attempts[position] = attempt
            if attempt >= self._max_attempts:
                self._attempts.pop(position, None)
                # The stack without the message (it may quote the record); the DLT has the message.
                log.error(
                    "%s: giving up on %s after %d attempts: %s\n%s",
                    self.name,
                    position,
                    attempt,
                    described(exc),
                    frames(exc),
                )
                await self.dead_letter(
                    record, "handler_error", "".join(traceback.format_exception_only(exc)).strip()
                )
                return
            delay = min(0.2 * 2**attempt, self._backoff_max)
            log.warning(
                "%s: %s at %s, attempt %d, retry in %.1fs (fingerprint %s)",
                self.name,
                described(exc),
                position,
                attempt,
                delay,
                fingerprint(str(exc)),
            )
            await asyncio.sleep(delay)
            self.retried += 1
            raise RetryRecord(f"{self.name}: {described(exc)} at {position}, attempt {attempt}") from None

    def _log_applied(self, event: CloudEvent) -> None:
        # One line per event applied, in its trace and naming its case (``tracing.handling``): what
        # a case's journey through the services looks like when searched for in the logs.
        applied_log.debug("%s applied %s %s", self.name, event.type, event.id)

    async def dead_letter(self, record: ConsumerRecord[Any, Any], code: str, detail: str) -> None:
        """Park the record with why and where it came from; then the consumer moves on."""
        # A record re-fed by hand may carry an earlier dead letter's headers: keep only the replay
        # trail, so every reader finds exactly one reason.
        headers = [
            (k, v)
            for k, v in decode_headers(record.headers)
            if not k.startswith("dlt_") or k in ("dlt_replayed_from", "dlt_replay_count")
        ]
        headers += [
            ("dlt_reason", code.encode()),
            # May quote the bad input: a DLT has its source topic's access rules; logs get a reference.
            ("dlt_error", detail[:4000].encode(errors="backslashreplace")),
            ("dlt_consumer", self.name.encode()),
            ("dlt_source_topic", record.topic.encode()),
            ("dlt_source_partition", str(record.partition).encode()),
            ("dlt_source_offset", str(record.offset).encode()),
            ("dlt_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        # Awaited with acks=all before the offset is committed: a dead letter is never lost either.
        try:
            await self._producer().send_and_wait(
                self.dead_letter_topic, value=record.value, key=record.key, headers=headers
            )
        except MessageSizeTooLargeError:
            # The record filled the size limit and the dlt_* headers push its copy over it: park it
            # without its value (still on the source topic at dlt_source_offset) and, if that is not
            # enough, without its own headers, rather than NACK it and redeliver it forever.
            size = str(len(record.value or b"")).encode()
            slim = [*headers, ("dlt_value_omitted", size)]
            if sum(len(k) + len(v) for k, v in slim) > 65_536:
                slim = [(k, v) for k, v in slim if k.startswith("dlt_")] + [("dlt_headers_omitted", b"true")]
            await self._producer().send_and_wait(
                self.dead_letter_topic, value=None, key=record.key, headers=slim
            )
        self.dead_lettered += 1
        log.warning(
            "%s: dead-lettered %s[%d]@%d: %s (%s)",
            self.name,
            record.topic,
            record.partition,
            record.offset,
            code,
            detail_ref(detail[:4000]),
        )


def _runs(todo: list[_Applicable]) -> list[list[_Applicable]]:
    """``todo`` cut into runs to apply in order: consecutive records of one set handler together,
    every other record alone."""
    runs: list[list[_Applicable]] = []
    for a in todo:
        if runs and a.set_handler is not None and runs[-1][0].set_handler is a.set_handler:
            runs[-1].append(a)
        else:
            runs.append([a])
    return runs


def topics_dead_letter(consumer: str) -> str:
    return topics.dead_letters(consumer)
