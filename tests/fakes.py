"""In-memory doubles for the use-case tests: they run the services' use cases without servers.

``FakeUnitOfWork`` behaves as ``corridor.uow.UnitOfWork`` does for a use case: it takes each event's
topic and key from the contract, refuses a status change that may not follow the case's last one
(recorded in ``illegal``), and keeps what was published in order. A service's fake store goes in
``store``. These are never the proof that a capability works on Kafka and PostgreSQL: the
integration tests are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from contracts import topics
from contracts.base import Event
from contracts.envelope import CloudEvent
from contracts.status import ANNOTATIONS, CaseStatus, CaseStatusChanged, is_legal

StoreT = TypeVar("StoreT")
E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Published:
    topic: str
    key: str
    event: Event
    extensions: dict[str, str] | None


class FakeUnitOfWork(Generic[StoreT]):
    def __init__(
        self,
        store: StoreT,
        *,
        source: str = "/missions/KAZ/test",
        now: datetime | None = None,
        cause: CloudEvent | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.cause = cause
        self._now = now or datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
        self.published: list[Published] = []
        self.statuses: dict[Any, CaseStatus] = {}
        self.illegal: list[tuple[CaseStatus | None, CaseStatus]] = []
        self.forgotten: list[str] = []

    def now(self) -> datetime:
        return self._now

    async def publish(self, event: Event, *, extensions: dict[str, str] | None = None) -> CloudEvent:
        topic = topics.topic_for(type(event))
        self.published.append(Published(topic.address(event), topic.key_of(event), event, extensions))
        return CloudEvent.new(event, source=self.source)

    async def announce(
        self, change: CaseStatusChanged, *, extensions: dict[str, str] | None = None
    ) -> CloudEvent | None:
        previous = self.statuses.get(change.case_id)
        if not is_legal(previous, change.status):
            self.illegal.append((previous, change.status))
            return None
        await self.note_status(change.case_id, change.status)
        return await self.publish(change, extensions=extensions)

    async def publish_many(self, events: Sequence[Event]) -> list[CloudEvent | None]:
        """As the real unit's: status changes announced, the rest published, in this order."""
        return [
            await self.announce(e) if isinstance(e, CaseStatusChanged) else await self.publish(e)
            for e in events
        ]

    async def known_status(self, case_id: Any) -> CaseStatus | None:
        return self.statuses.get(case_id)

    async def known_statuses(self, case_ids: Sequence[Any]) -> dict[Any, CaseStatus]:
        return {c: self.statuses[c] for c in case_ids if c in self.statuses}

    async def note_status(self, case_id: Any, status: CaseStatus) -> None:
        if status not in ANNOTATIONS:
            self.statuses[case_id] = status

    async def note_statuses(self, learnt: Sequence[tuple[Any, CaseStatus]]) -> None:
        for case_id, status in learnt:
            await self.note_status(case_id, status)

    async def forget_published(self, *keys: str) -> None:
        self.forgotten.extend(keys)

    # --- what a test asks ----------------------------------------------------------------------

    def events(self, kind: type[E]) -> list[E]:
        return [p.event for p in self.published if isinstance(p.event, kind)]

    def statuses_of(self, case_id: Any) -> list[CaseStatus]:
        return [e.status for e in self.events(CaseStatusChanged) if e.case_id == case_id]
