"""A consumer applies a batch in one transaction and commits each partition once after it; a record
it must retry or dead-letter costs the batch its fast path, never the other records or the order."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from contracts import topics
from contracts.border import BorderCrossingCleared, BorderCrossingRefused, PersonDecision
from contracts.envelope import CloudEvent
from corridor.consumer import EventConsumer, Rejected, RetryLater

TOPIC = topics.crossings("uzb-oybek-exit")


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, bytes]]] = []

    async def send_and_wait(self, topic: str, *, value: Any, key: Any, headers: Any) -> None:
        self.sent.append((topic, dict(headers)))


class Conn:
    """Just enough of asyncpg for the consumer: an inbox, transactions that roll it back."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.db.transactions += 1
        before = (set(self.db.inbox), list(self.db.effects))
        try:
            yield
        except BaseException:
            self.db.inbox, self.db.effects = before[0], before[1]
            raise

    async def execute(self, _sql: str, consumer: str, source: str, event_id: str, _type: str) -> str:
        key = (consumer, source, event_id)
        if key in self.db.inbox:
            return "INSERT 0 0"
        self.db.inbox.add(key)
        return "INSERT 0 1"

    async def fetch(self, _sql: str, consumer: str, sources: list[str], ids: list[str], _t: Any) -> list[Any]:
        rows = []
        for source, event_id in zip(sources, ids, strict=True):
            if (consumer, source, event_id) not in self.db.inbox:
                self.db.inbox.add((consumer, source, event_id))
                rows.append({"event_source": source, "event_id": event_id})
        return rows


class Database:
    def __init__(self) -> None:
        self.inbox: set[tuple[str, str, str]] = set()
        self.effects: list[str] = []
        self.transactions = 0

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Conn]:
        yield Conn(self)


class KafkaConsumer:
    """Positions as aiokafka keeps them: past every record handed out, moved back by a seek; a
    commit without offsets commits every position. ``commits``: what the group had committed
    after each commit."""

    def __init__(self) -> None:
        self.positions: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []

    def deliver(self, batch: list[ConsumerRecord[bytes, bytes]]) -> list[ConsumerRecord[bytes, bytes]]:
        for r in batch:
            self.positions[TopicPartition(r.topic, r.partition)] = r.offset + 1
        return batch

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        self.committed.update(self.positions if offsets is None else offsets)
        self.commits.append(dict(self.committed))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))
        self.positions[tp] = offset


def crossing(vehicle: str, *, source_mission: str = "UZB") -> CloudEvent:
    return CloudEvent.new(
        BorderCrossingCleared(
            case_id=uuid.uuid4(),
            checkpoint_id="uzb-oybek-exit",
            country="UZB",
            crossing="Oybek",
            direction="exit",
            movement_id="M1",
            vehicle_id=vehicle,
            decisions=[PersonDecision(person_id=uuid.uuid4(), cleared=True)],
            decided_at=datetime.now(UTC),
        ),
        source=f"/missions/{source_mission}/border_clearance",
    )


def record(partition: int, offset: int, event: CloudEvent) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=event.subject.encode(),
        value=event.value(),
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=event.headers(),
    )


def tp(partition: int) -> TopicPartition:
    return TopicPartition(TOPIC, partition)


def consumer(db: Database, producer: Producer, refuse: dict[str, type[Exception]]) -> EventConsumer:
    """Applies a crossing by noting its vehicle; a vehicle named in ``refuse`` raises that."""

    async def handler(_conn: Any, event: CloudEvent) -> None:
        assert isinstance(event.data, BorderCrossingCleared)
        failure = refuse.get(event.data.vehicle_id)
        if failure is RetryLater or failure is Rejected:
            raise failure("not_yet", "a status before its predecessor")
        if failure is not None:
            raise failure("boom")
        db.effects.append(event.data.vehicle_id)

    return EventConsumer(
        name="transport",
        topics=(TOPIC,),
        handlers={BorderCrossingCleared: handler},
        pool=lambda: db,  # type: ignore[arg-type,return-value]
        producer=lambda: producer,  # type: ignore[arg-type,return-value]
        backoff_max_seconds=0.0,
        max_attempts=2,
        checkpoint_country={"uzb-oybek-exit": "UZB"}.get,
    )


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    async def instant(_seconds: float) -> None:
        return None

    monkeypatch.setattr("corridor.consumer.asyncio.sleep", instant)


async def test_a_clean_batch_is_one_transaction_and_one_commit_per_partition() -> None:
    db, producer, kafka = Database(), Producer(), KafkaConsumer()
    c = consumer(db, producer, {})
    repeated = crossing("V3")
    batch = [record(0, 10, crossing("V1")), record(1, 4, crossing("V2")), record(0, 11, repeated)]
    batch.append(record(0, 12, repeated))  # the same event delivered twice in one batch
    await c.consume_batch(kafka.deliver(batch), kafka)
    assert db.effects == ["V1", "V2", "V3"]
    assert db.transactions == 1
    assert kafka.commits == [{tp(0): 13, tp(1): 5}] and kafka.seeks == []
    assert (c.applied, c.duplicates, c.dead_lettered) == (3, 1, 0)
    # Delivered again (a rebalance before the commit): nothing applied twice.
    await c.consume_batch(kafka.deliver(batch), kafka)
    assert db.effects == ["V1", "V2", "V3"] and c.duplicates == 5


async def test_a_retried_record_holds_back_only_its_own_partition(no_sleep: None) -> None:
    db, producer, kafka = Database(), Producer(), KafkaConsumer()
    c = consumer(db, producer, {"V2": RetryLater})
    batch = [
        record(0, 0, crossing("V1")),
        record(0, 1, crossing("V2")),
        record(1, 0, crossing("V4")),
        record(0, 2, crossing("V3")),
    ]
    await c.consume_batch(kafka.deliver(batch), kafka)
    # V1 applied and committed, V2 read again and V3 after it (its partition's order); V4 goes on.
    assert db.effects == ["V1", "V4"]
    assert kafka.commits == [{tp(0): 1, tp(1): 1}]
    assert kafka.seeks == [(tp(0), 1)]
    assert (c.applied, c.retried, c.dead_lettered) == (2, 1, 0)
    # Redelivered from the retried record: its attempts used up, it is dead-lettered, V3 applied.
    await c.consume_batch(kafka.deliver(batch[1:2] + batch[3:]), kafka)
    assert db.effects == ["V1", "V4", "V3"]
    assert kafka.commits[-1] == {tp(0): 3, tp(1): 1} and len(kafka.seeks) == 1
    assert [h["dlt_reason"] for _, h in producer.sent] == [b"not_yet"]


async def test_dead_letters_in_a_batch_keep_the_rest_applied() -> None:
    db, producer, kafka = Database(), Producer(), KafkaConsumer()
    c = consumer(db, producer, {"V2": Rejected})
    forged = crossing("V5", source_mission="TJK")
    batch = [record(0, 0, crossing("V1")), record(0, 1, crossing("V2")), record(0, 2, forged)]
    batch += [record(0, 3, crossing("V3"))]
    undecodable = record(0, 4, crossing("V6"))
    batch.append(dataclasses.replace(undecodable, value=b"{not json", headers=[("ce_id", b"\xff")]))
    batch.append(record(0, 5, crossing("V4")))
    await c.consume_batch(kafka.deliver(batch), kafka)
    assert db.effects == ["V1", "V3", "V4"]
    assert [h["dlt_reason"] for _, h in producer.sent] == [b"not_yet", b"source_mismatch", b"bad_header"]
    assert kafka.commits == [{tp(0): 6}] and kafka.seeks == []
    assert (c.applied, c.dead_lettered, c.source_mismatches) == (3, 3, 1)


async def test_a_record_with_no_handler_opens_no_transaction() -> None:
    db, producer, kafka = Database(), Producer(), KafkaConsumer()
    c = consumer(db, producer, {})
    c.handlers = {}
    await c.consume_batch(kafka.deliver([record(0, 0, crossing("V1")), record(0, 1, crossing("V2"))]), kafka)
    assert db.transactions == 0 and kafka.commits == [{tp(0): 2}]


def refusal(vehicle: str) -> CloudEvent:
    cleared = crossing(vehicle).data
    assert isinstance(cleared, BorderCrossingCleared)
    return CloudEvent.new(
        BorderCrossingRefused(**cleared.model_dump()), source="/missions/UZB/border_clearance"
    )


def set_consumer(db: Database, calls: list[list[str]], refuse: set[str] | None = None) -> EventConsumer:
    """Applies crossings cleared in sets (each call noted), refusals one at a time; a set holding a
    vehicle in ``refuse`` is retried later."""

    async def in_sets(_conn: Any, events: Any) -> None:
        vehicles = [e.data.vehicle_id for e in events]
        calls.append(vehicles)
        if refuse and refuse.intersection(vehicles):
            raise RetryLater("not_yet", "a status before its predecessor")
        db.effects.extend(vehicles)

    async def alone(_conn: Any, event: CloudEvent) -> None:
        assert isinstance(event.data, BorderCrossingRefused)
        db.effects.append(f"refused {event.data.vehicle_id}")

    return EventConsumer(
        name="transport",
        topics=(TOPIC,),
        handlers={BorderCrossingRefused: alone},
        set_handlers={BorderCrossingCleared: in_sets},
        pool=lambda: db,  # type: ignore[arg-type,return-value]
        producer=lambda: Producer(),  # type: ignore[arg-type,return-value]
        backoff_max_seconds=0.0,
        max_attempts=2,
        checkpoint_country={"uzb-oybek-exit": "UZB"}.get,
    )


async def test_consecutive_records_of_a_set_handler_are_applied_by_one_call_in_order() -> None:
    db, kafka, calls = Database(), KafkaConsumer(), []
    c = set_consumer(db, calls)
    twice = crossing("V2")
    batch = [
        record(0, 0, crossing("V1")),
        record(0, 1, twice),
        record(0, 2, twice),  # the same event again: a duplicate, not in the set
        record(0, 3, refusal("V3")),
        record(0, 4, crossing("V4")),
        record(1, 0, crossing("V5")),
    ]
    await c.consume_batch(kafka.deliver(batch), kafka)
    assert calls == [["V1", "V2"], ["V4", "V5"]]
    assert db.effects == ["V1", "V2", "refused V3", "V4", "V5"]
    assert (db.transactions, c.applied, c.duplicates) == (1, 5, 1)
    assert kafka.commits == [{tp(0): 5, tp(1): 1}]


async def test_a_record_alone_goes_to_its_set_handler_as_a_set_of_one(no_sleep: None) -> None:
    db, kafka, calls = Database(), KafkaConsumer(), []
    c = set_consumer(db, calls)
    await c.consume_batch(kafka.deliver([record(0, 0, crossing("V1"))]), kafka)
    assert calls == [["V1"]] and db.effects == ["V1"]
    # A set that must wait is retried record by record: the ones before it stay applied.
    calls.clear()
    c = set_consumer(db, calls, refuse={"V3"})
    batch = [record(0, 1, crossing("V2")), record(0, 2, crossing("V3")), record(0, 3, crossing("V4"))]
    await c.consume_batch(kafka.deliver(batch), kafka)
    assert calls == [["V2", "V3", "V4"], ["V2"], ["V3"]]
    assert db.effects == ["V1", "V2"]
    assert kafka.commits[-1] == {tp(0): 2} and kafka.seeks == [(tp(0), 2)]


async def test_offsets_are_committed_at_most_once_an_interval_and_only_past_what_is_done(
    no_sleep: None,
) -> None:
    db, producer, kafka = Database(), Producer(), KafkaConsumer()
    c = consumer(db, producer, {"V4": RetryLater})
    c.commit_interval_seconds = 3600.0  # nothing but a rebalance or a stop commits after the first
    await c.consume_batch(kafka.deliver([record(0, 0, crossing("V1"))]), kafka)
    assert kafka.commits == [{tp(0): 1}]  # the first batch: no commit for an interval yet
    await c.consume_batch(kafka.deliver([record(0, 1, crossing("V2")), record(1, 0, crossing("V3"))]), kafka)
    batch = [record(0, 2, crossing("V4")), record(0, 3, crossing("V5"))]
    await c.consume_batch(kafka.deliver(batch), kafka)
    # V4 must be read again: what is pending for its partition is V4 itself, not the position.
    assert kafka.commits == [{tp(0): 1}] and kafka.positions[tp(0)] == 2
    assert db.effects == ["V1", "V2", "V3"]
    # A rebalance takes the partitions: what is pending is committed first.
    c.subscriber = type("Subscriber", (), {"consumer": kafka})()
    listener = c.rebalance_listener
    await listener.on_partitions_revoked({tp(0), tp(1)})
    assert kafka.commits[-1] == {tp(0): 2, tp(1): 1}
    # Nothing pending: no request.
    await listener.on_partitions_revoked({tp(0), tp(1)})
    assert len(kafka.commits) == 2


async def test_a_deferred_commit_is_sent_when_its_interval_is_over_or_the_service_stops() -> None:
    db, producer, kafka = Database(), Producer(), KafkaConsumer()
    c = consumer(db, producer, {})
    c.commit_interval_seconds = 0.05
    c.subscriber = type("Subscriber", (), {"consumer": kafka})()
    await c.consume_batch(kafka.deliver([record(0, 0, crossing("V1"))]), kafka)
    await c.consume_batch(kafka.deliver([record(0, 1, crossing("V2"))]), kafka)
    await c.consume_batch(kafka.deliver([record(0, 2, crossing("V3"))]), kafka)
    assert kafka.commits == [{tp(0): 1}]
    # The next batch is taken (the position moves past it) but not yet applied when the commit
    # is due: the commit covers what is applied, not the position.
    in_flight = kafka.deliver([record(0, 3, crossing("V4"))])
    await asyncio.sleep(0.2)
    assert kafka.commits == [{tp(0): 1}, {tp(0): 3}]  # one commit for the two deferred batches
    c.commit_interval_seconds = 3600.0
    await c.consume_batch(in_flight, kafka)
    assert len(kafka.commits) == 2
    await c.stop_soon()
    assert kafka.commits[-1] == {tp(0): 4}
    # Stopping, every batch commits at once (the one in flight when the broker stops).
    await c.consume_batch(kafka.deliver([record(0, 4, crossing("V5"))]), kafka)
    assert kafka.commits[-1] == {tp(0): 5}


async def test_a_commit_leaves_out_the_partitions_no_longer_held() -> None:
    db, producer, kafka = Database(), Producer(), KafkaConsumer()
    c = consumer(db, producer, {})
    c.commit_interval_seconds = 3600.0
    await c.consume_batch(kafka.deliver([record(0, 0, crossing("V1"))]), kafka)
    await c.consume_batch(kafka.deliver([record(0, 1, crossing("V2")), record(1, 0, crossing("V3"))]), kafka)
    del kafka.positions[tp(1)]  # a rebalance took partition 1 without asking (the member timed out)
    await c.commit(kafka)
    assert kafka.commits == [{tp(0): 1}, {tp(0): 2}]


async def test_offsets_a_commit_failed_to_send_are_sent_again() -> None:
    db, producer, kafka = Database(), Producer(), KafkaConsumer()
    c = consumer(db, producer, {})
    c.commit_retry_seconds = 0.05
    refused = [KafkaError("coordinator away")]
    commit = kafka.commit

    async def failing_once(offsets: dict[TopicPartition, int] | None = None) -> None:
        if refused:
            raise refused.pop()
        await commit(offsets)

    kafka.commit = failing_once  # type: ignore[method-assign]
    await c.consume_batch(kafka.deliver([record(0, 0, crossing("V1")), record(1, 0, crossing("V2"))]), kafka)
    assert kafka.commits == [] and db.effects == ["V1", "V2"]
    # No record comes after it: the offsets are sent again on their own.
    await asyncio.sleep(0.2)
    assert kafka.commits == [{tp(0): 1, tp(1): 1}]


async def test_offsets_left_while_a_deferred_commit_is_being_sent_get_a_commit_of_their_own() -> None:
    db, producer, kafka = Database(), Producer(), KafkaConsumer()
    c = consumer(db, producer, {})
    c.commit_interval_seconds = 0.05
    await c.consume_batch(kafka.deliver([record(0, 0, crossing("V1"))]), kafka)
    assert kafka.commits == [{tp(0): 1}]
    sending, answered = asyncio.Event(), asyncio.Event()
    commit = kafka.commit

    async def slow(offsets: dict[TopicPartition, int] | None = None) -> None:
        sending.set()
        await answered.wait()
        await commit(offsets)

    kafka.commit = slow  # type: ignore[method-assign]
    await c.consume_batch(kafka.deliver([record(0, 1, crossing("V2"))]), kafka)
    await sending.wait()  # the deferred commit of V2 is on its way
    await c.consume_batch(kafka.deliver([record(0, 2, crossing("V3"))]), kafka)
    answered.set()
    await asyncio.sleep(0.3)  # no record comes after V3
    assert kafka.commits[-1] == {tp(0): 3}


async def test_a_line_per_applied_record_is_written_at_debug_only(
    caplog: pytest.LogCaptureFixture, no_sleep: None
) -> None:
    db, producer, kafka = Database(), Producer(), KafkaConsumer()
    c = consumer(db, producer, {})
    together = [record(0, 20, crossing("V1")), record(1, 5, crossing("V2"))]
    alone = [record(0, 21, crossing("V3"))]
    with caplog.at_level(logging.INFO):  # a service's default: no line per record
        await c.consume_batch(kafka.deliver(together), kafka)
        await c.consume_batch(kafka.deliver(alone), kafka)
    assert db.effects == ["V1", "V2", "V3"]
    assert not [r for r in caplog.records if " applied " in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="corridor.applied"):  # raised alone
        await c.consume_batch(
            kafka.deliver([record(0, 22, crossing("V4")), record(1, 6, crossing("V5"))]), kafka
        )
        await c.consume_batch(kafka.deliver([record(0, 23, crossing("V6"))]), kafka)
    lines = [r for r in caplog.records if r.name == "corridor.applied"]
    assert [r.levelno for r in lines] == [logging.DEBUG] * 3
    assert all(r.getMessage().startswith("transport applied ") for r in lines), lines
