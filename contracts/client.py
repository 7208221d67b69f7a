"""A small typed client for mission IT: follow the status stream, report status changes.

    access = KafkaAccess(bootstrap=..., username="mission-tjk", password=...)   # corridor.kafkaclient
    async with StatusStreamReader(access, group_id="mission-tjk.reception") as reader:
        async for update in reader:
            print(update.data.case_id, update.data.status)
            await reader.commit()          # after your own system has stored it

    async with StatusReporter(access, mission="TJK", system="reception") as reporter:
        await reporter.report(CaseStatusReported(case_id=..., status="received", occurred_at=...))

Delivery is at least once: deduplicate on ``update.source`` + ``update.id``.

The brokers require SASL/SCRAM-SHA-512: pass a ``KafkaAccess`` (or anything with an ``aiokafka()``
method giving aiokafka's connection keyword arguments) holding your mission client's principal. Its
ACLs let it read ``corridor.case-status`` with consumer groups named ``<principal>.*`` and write
only its own mission's inbound topic (``missions.case-status-reported.<MISSION>``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts import topics
from contracts.envelope import CloudEvent, EnvelopeError, decode_headers, mission_source
from contracts.missions import CaseStatusReported
from contracts.status import CaseStatusChanged


class Access(Protocol):
    def aiokafka(self) -> dict[str, Any]: ...


def _connection(access: Access | str) -> dict[str, Any]:
    # A bare bootstrap string still works for a broker without SASL (and extra keyword arguments).
    return {"bootstrap_servers": access} if isinstance(access, str) else access.aiokafka()


class StatusStreamReader:
    """Reads ``corridor.case-status`` as a consumer group; you commit once you have stored."""

    def __init__(
        self, access: Access | str, *, group_id: str, from_beginning: bool = True, **kafka: Any
    ) -> None:
        self._consumer = AIOKafkaConsumer(
            topics.STATUS,
            **_connection(access),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            **kafka,
        )
        self.skipped: list[str] = []

    async def __aenter__(self) -> StatusStreamReader:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    def __aiter__(self) -> AsyncIterator[CloudEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[CloudEvent]:
        async for record in self._consumer:
            try:
                event = CloudEvent.from_record(decode_headers(record.headers), record.value)
            except EnvelopeError as exc:
                # A newer event version than this client knows: skip it, do not stop reading.
                self.skipped.append(f"{record.partition}@{record.offset}: {exc}")
                continue
            if isinstance(event.data, CaseStatusChanged):
                yield event

    async def commit(self) -> None:
        await self._consumer.commit()


class StatusReporter:
    """Publishes status changes a mission owns to its own ``missions.case-status-reported.<MISSION>``."""

    def __init__(self, access: Access | str, *, mission: str, system: str, **kafka: Any) -> None:
        self.source = mission_source(mission, system)
        self.topic = topics.inbound_status(mission)
        self._producer = AIOKafkaProducer(**_connection(access), enable_idempotence=True, acks="all", **kafka)

    async def __aenter__(self) -> StatusReporter:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def report(self, change: CaseStatusReported, *, event_id: str | None = None) -> CloudEvent:
        """Publish and wait for the broker's acknowledgement; resend with the same ``event_id``
        after a failure, and the platform applies it once."""
        event = CloudEvent.new(change, source=self.source, event_id=event_id)
        await self._producer.send_and_wait(
            self.topic,
            key=str(change.case_id).encode(),
            value=event.value(),
            headers=event.headers(),
        )
        return event
