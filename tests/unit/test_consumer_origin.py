"""A consumer dead-letters a record whose claimed origin is not its topic's owner, before any handler."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord

from contracts import topics
from contracts.border import BorderCrossingCleared, PersonDecision
from contracts.envelope import CloudEvent
from corridor.consumer import EventConsumer


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, bytes]]] = []

    async def send_and_wait(self, topic: str, *, value: Any, key: Any, headers: Any) -> None:
        self.sent.append((topic, dict(headers)))


def record(topic: str, event: CloudEvent) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=7,
        timestamp=0,
        timestamp_type=0,
        key=event.subject.encode(),
        value=event.value(),
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=event.headers(),
    )


def crossing(checkpoint_id: str, country: str, source_mission: str) -> CloudEvent:
    return CloudEvent.new(
        BorderCrossingCleared(
            case_id=uuid.uuid4(),
            checkpoint_id=checkpoint_id,
            country=country,
            crossing="Oybek",
            direction="entry",
            movement_id="M1",
            vehicle_id="BUS-1",
            decisions=[PersonDecision(person_id=uuid.uuid4(), cleared=True)],
            decided_at=datetime.now(UTC),
        ),
        source=f"/missions/{source_mission}/border_clearance",
    )


def consumer(producer: Producer, handled: list[CloudEvent]) -> EventConsumer:
    async def handler(_conn: Any, event: CloudEvent) -> None:
        handled.append(event)

    def no_pool() -> Any:
        raise AssertionError("a forged record must not reach the database")

    return EventConsumer(
        name="transport",
        topics=(topics.crossings("uzb-oybek-exit"),),
        handlers={BorderCrossingCleared: handler},
        pool=no_pool,
        producer=lambda: producer,  # type: ignore[arg-type,return-value]
        checkpoint_country={"uzb-oybek-exit": "UZB", "tjk-oybek-entry": "TJK"}.get,
    )


async def test_a_forged_crossing_on_a_posts_own_topic_is_dead_lettered_as_source_mismatch() -> None:
    producer, handled = Producer(), []
    c = consumer(producer, handled)
    own = topics.crossings("uzb-oybek-exit")
    for forged in (crossing("tjk-oybek-entry", "TJK", "TJK"), crossing("uzb-oybek-exit", "UZB", "TJK")):
        await c.handle(record(own, forged))
    assert handled == []
    assert [(t, h["dlt_reason"]) for t, h in producer.sent] == [("dlt.transport", b"source_mismatch")] * 2
    assert c.source_mismatches == 2 and c.dead_lettered == 2
