"""Border clearance persistence: expected arrivals, how cases reach the post, decisions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from contracts.transport import ManifestIssued


async def save_manifest(conn: asyncpg.Connection, m: ManifestIssued) -> bool:
    """Store a manifest unless a newer revision is already here; True if stored."""
    current = await conn.fetchval(
        "SELECT revision FROM manifests WHERE movement_id = $1 AND vehicle_id = $2",
        m.movement_id,
        m.vehicle_id,
    )
    if current is not None and current >= m.revision:
        return False
    await conn.execute(
        "DELETE FROM manifests WHERE movement_id = $1 AND vehicle_id = $2", m.movement_id, m.vehicle_id
    )
    await conn.execute(
        """INSERT INTO manifests (movement_id, vehicle_id, manifest_id, revision, route_id, departure_date)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        m.movement_id,
        m.vehicle_id,
        m.manifest_id,
        m.revision,
        m.route_id,
        m.departure_date,
    )
    await conn.executemany(
        """INSERT INTO expected_passengers (movement_id, vehicle_id, case_id, person_id, surname, given_names,
               birth_date, sex, nationality, document_type, document_number)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        [
            (
                m.movement_id,
                m.vehicle_id,
                p.case_id,
                p.person_id,
                p.surname,
                p.given_names,
                p.birth_date,
                p.sex,
                p.nationality,
                p.document_type.value,
                p.document_number,
            )
            for p in m.passengers
        ],
    )
    return True


async def record_departure(
    conn: asyncpg.Connection, case_id: uuid.UUID, movement_id: str, vehicle_id: str
) -> None:
    await conn.execute(
        "INSERT INTO departures (case_id, movement_id, vehicle_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        case_id,
        movement_id,
        vehicle_id,
    )


async def record_upstream_clearance(conn: asyncpg.Connection, case_id: uuid.UUID, checkpoint_id: str) -> None:
    await conn.execute(
        "INSERT INTO upstream_clearances (case_id, checkpoint_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        case_id,
        checkpoint_id,
    )


async def manifest(conn: asyncpg.Connection, movement_id: str, vehicle_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM manifests WHERE movement_id = $1 AND vehicle_id = $2 FOR UPDATE",
        movement_id,
        vehicle_id,
    )


async def passengers(conn: asyncpg.Connection, movement_id: str, vehicle_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM expected_passengers WHERE movement_id = $1 AND vehicle_id = $2
           ORDER BY case_id, person_id""",
        movement_id,
        vehicle_id,
    )


async def has_departed(conn: asyncpg.Connection, case_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM departures WHERE case_id = $1", case_id))


async def cleared_upstream(conn: asyncpg.Connection, case_id: uuid.UUID, checkpoint_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM upstream_clearances WHERE case_id = $1 AND checkpoint_id = $2",
            case_id,
            checkpoint_id,
        )
    )


async def decided(conn: asyncpg.Connection, case_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM decisions WHERE case_id = $1", case_id))


async def save_decision(
    conn: asyncpg.Connection,
    *,
    case_id: uuid.UUID,
    person_id: uuid.UUID,
    movement_id: str,
    vehicle_id: str,
    cleared: bool,
    reason_code: str | None,
    reason: str | None,
    officer: str,
    at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO decisions (case_id, person_id, movement_id, vehicle_id, cleared, reason_code, reason,
                                  officer, decided_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        case_id,
        person_id,
        movement_id,
        vehicle_id,
        cleared,
        reason_code,
        reason,
        officer,
        at,
    )


async def expected_arrivals(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT m.movement_id, m.vehicle_id, m.revision, m.departure_date,
                  count(p.person_id) AS people, count(DISTINCT p.case_id) AS cases,
                  count(d.person_id) AS decided
           FROM manifests m
           LEFT JOIN expected_passengers p USING (movement_id, vehicle_id)
           LEFT JOIN decisions d ON d.person_id = p.person_id AND d.case_id = p.case_id
           GROUP BY m.movement_id, m.vehicle_id, m.revision, m.departure_date
           ORDER BY m.departure_date, m.movement_id, m.vehicle_id"""
    )
    return [
        {
            "movement_id": r["movement_id"],
            "vehicle_id": r["vehicle_id"],
            "manifest_revision": r["revision"],
            "departure_date": r["departure_date"].isoformat(),
            "people": r["people"],
            "cases": r["cases"],
            "decided": r["decided"],
        }
        for r in rows
    ]
