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
