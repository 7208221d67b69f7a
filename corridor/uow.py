"""The Unit of Work: one transaction, and the events it publishes through the outbox.

A use case is a module function of (command or event, unit of work). It reads and changes the
service's state through the unit's store and publishes events with ``publish`` (the topic and key
come from the contract, ``contracts.topics.table``) or, for the public status stream, ``announce``
(which keeps the stream legal). Everything commits together or not at all; the relay publishes
after the commit. ``FakeUnitOfWork`` (``corridor.testing``) runs the same use cases in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import asyncpg

from contracts import topics
from contracts.base import Event
from contracts.envelope import CloudEvent
from contracts.status import CaseStatus, CaseStatusChanged
from corridor import outbox, statusguard

StoreT = TypeVar("StoreT", covariant=True)


class Publisher(Protocol):
    """What a use case may do with events: both the real and the fake unit provide it."""

    source: str

    def now(self) -> datetime: ...

    async def publish(self, event: Event, *, extensions: dict[str, str] | None = None) -> CloudEvent: ...

    async def announce(
        self, change: CaseStatusChanged, *, extensions: dict[str, str] | None = None
    ) -> CloudEvent | None: ...

    async def publish_many(self, events: Sequence[Event]) -> list[CloudEvent | None]: ...

    async def known_status(self, case_id: Any) -> CaseStatus | None: ...

    async def known_statuses(self, case_ids: Sequence[Any]) -> dict[Any, CaseStatus]: ...

    async def note_status(self, case_id: Any, status: CaseStatus) -> None: ...

    async def note_statuses(self, learnt: Sequence[tuple[Any, CaseStatus]]) -> None: ...

    async def forget_published(self, *keys: str) -> None: ...


class UnitOfWork(Generic[StoreT]):
    """A connection in a transaction, the service's store on it, and its outbox."""

    def __init__(
        self, conn: asyncpg.Connection, store: StoreT, *, source: str, cause: CloudEvent | None = None
    ) -> None:
        self.conn = conn
        self.store = store
        self.source = source
        self.cause = cause
        """The event being handled (its envelope: source, id), when a consumer runs the unit."""
        self._now = datetime.now(UTC)

    def now(self) -> datetime:
        """The moment the unit began: one time for every change the use case makes."""
        return self._now

    async def publish(self, event: Event, *, extensions: dict[str, str] | None = None) -> CloudEvent:
        """Write ``event`` to the outbox, on its topic, keyed as the contract says."""
        topic = topics.topic_for(type(event))
        return await outbox.enqueue(
            self.conn,
            event,
            topic=topic.address(event),
            source=self.source,
            key=topic.key_of(event),
            extensions=extensions,
        )

    async def publish_many(self, events: Sequence[Event]) -> list[CloudEvent | None]:
        """``publish`` (and, for status changes on the public stream, ``announce``) for many events
        in a few statements, in this order (``outbox.enqueue_many``)."""
        items = []
        for event in events:
            topic = topics.topic_for(type(event))
            items.append(outbox.Outgoing(event, topic.address(event), topic.key_of(event)))
        return await outbox.enqueue_many(self.conn, items, source=self.source)

    async def announce(
        self, change: CaseStatusChanged, *, extensions: dict[str, str] | None = None
    ) -> CloudEvent | None:
        """Publish a status change unless it may not follow the case's last status (a bug:
        logged, recorded, not published; the rest of the use case goes on)."""
        return await outbox.announce(self.conn, change, source=self.source, extensions=extensions)

    async def known_status(self, case_id: Any) -> CaseStatus | None:
        return await statusguard.known(self.conn, case_id)

    async def known_statuses(self, case_ids: Sequence[Any]) -> dict[Any, CaseStatus]:
        """``known_status`` for many, in one statement: the cases with a last status."""
        return await statusguard.known_many(self.conn, case_ids)

    async def note_status(self, case_id: Any, status: CaseStatus) -> None:
        await statusguard.note(self.conn, case_id, status)

    async def note_statuses(self, learnt: Sequence[tuple[Any, CaseStatus]]) -> None:
        """``note_status`` for many, in their order, in one statement."""
        await statusguard.note_many(self.conn, learnt)

    async def forget_published(self, *keys: str) -> None:
        """Drop the already published outbox rows of these record keys (an erasure: no copy of
        the personal data they carried stays in the diagnostic history)."""
        await outbox.forget_published(self.conn, keys)


def unit_of_work_factory(
    pool: Callable[[], asyncpg.Pool], store: Callable[[asyncpg.Connection], StoreT], *, source: str
) -> Callable[[], Any]:
    """``async with units() as uow:`` a pooled connection in a transaction, committed on exit."""

    @asynccontextmanager
    async def units() -> AsyncIterator[UnitOfWork[StoreT]]:
        async with pool().acquire() as conn, conn.transaction():
            yield UnitOfWork(conn, store(conn), source=source)

    return units
