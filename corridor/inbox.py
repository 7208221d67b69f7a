"""Idempotent consumer: remember which events a consumer has applied."""

from __future__ import annotations

import asyncpg

from contracts.envelope import CloudEvent


async def first_delivery(conn: asyncpg.Connection, consumer: str, event: CloudEvent) -> bool:
    """Record ``event`` for ``consumer``; False when it was applied before.

    Must run inside the transaction that applies the event's effect: if that transaction rolls
    back, the record goes with it and the redelivery is applied.
    """
    status = await conn.execute(
        """INSERT INTO inbox (consumer, event_source, event_id, event_type)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING""",
        consumer,
        event.source,
        event.id,
        event.type,
    )
    return status.endswith(" 1")


async def keep_outcome(conn: asyncpg.Connection, consumer: str, event: CloudEvent, outcome_id: str) -> None:
    """What applying ``event`` produced (an event's id), kept with its inbox row so that a repeat
    of ``event`` can be answered it (``outcome_of``). In the transaction that recorded the row."""
    await conn.execute(
        "UPDATE inbox SET outcome_id = $4 WHERE consumer = $1 AND event_source = $2 AND event_id = $3",
        consumer,
        event.source,
        event.id,
        outcome_id,
    )


async def outcome_of(conn: asyncpg.Connection, consumer: str, event: CloudEvent) -> str | None:
    """What applying ``event`` produced (``keep_outcome``); None if nothing was kept."""
    found: str | None = await conn.fetchval(
        "SELECT outcome_id FROM inbox WHERE consumer = $1 AND event_source = $2 AND event_id = $3",
        consumer,
        event.source,
        event.id,
    )
    return found


async def first_deliveries(
    conn: asyncpg.Connection, consumer: str, events: list[CloudEvent]
) -> set[tuple[str, str]]:
    """``first_delivery`` for many events in one statement: the (source, id) of those not applied
    before. The same rule: inside the transaction that applies their effects."""
    if not events:
        return set()
    rows = await conn.fetch(
        """INSERT INTO inbox (consumer, event_source, event_id, event_type)
           SELECT $1, s, i, t FROM unnest($2::text[], $3::text[], $4::text[]) AS u(s, i, t)
           ON CONFLICT DO NOTHING
           RETURNING event_source, event_id""",
        consumer,
        [e.source for e in events],
        [e.id for e in events],
        [e.type for e in events],
    )
    return {(r["event_source"], r["event_id"]) for r in rows}
