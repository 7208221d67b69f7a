"""Border clearance persistence: expected arrivals, how cases reach the post, decisions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from contracts.border import CrossingRequirementPublished
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
    document_check: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO decisions (case_id, person_id, movement_id, vehicle_id, cleared, reason_code, reason,
                                  officer, decided_at, document_check)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        case_id,
        person_id,
        movement_id,
        vehicle_id,
        cleared,
        reason_code,
        reason,
        officer,
        at,
        document_check,
    )


async def add_requirement(
    conn: asyncpg.Connection, req: CrossingRequirementPublished, published_by: str
) -> None:
    await conn.execute(
        """INSERT INTO requirements (requirement_id, code, description, evidence_kind, valid_hours, effective_from,
                                     published_by, published_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        req.requirement_id,
        req.code,
        req.description,
        req.evidence_kind.value,
        req.valid_hours,
        req.effective_from,
        published_by,
        req.published_at,
    )


async def lift_requirement(conn: asyncpg.Connection, requirement_id: uuid.UUID, at: datetime) -> bool:
    status = await conn.execute(
        "UPDATE requirements SET lifted_at = $2 WHERE requirement_id = $1 AND lifted_at IS NULL",
        requirement_id,
        at,
    )
    return status.endswith(" 1")


async def requirements(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM requirements ORDER BY published_at")
    return [
        {
            "requirement_id": str(r["requirement_id"]),
            "code": r["code"],
            "description": r["description"],
            "evidence_kind": r["evidence_kind"],
            "valid_hours": r["valid_hours"],
            "effective_from": r["effective_from"].isoformat(),
            "published_by": r["published_by"],
            "published_at": r["published_at"].isoformat(),
            "lifted_at": r["lifted_at"].isoformat() if r["lifted_at"] else None,
        }
        for r in rows
    ]


async def hold(
    conn: asyncpg.Connection, document_number: str, reason_code: str, reason: str, by: str
) -> None:
    await conn.execute(
        """INSERT INTO hold_list (document_number, reason_code, reason, added_by) VALUES ($1, $2, $3, $4)
           ON CONFLICT (document_number) DO UPDATE SET reason_code = EXCLUDED.reason_code,
               reason = EXCLUDED.reason, added_by = EXCLUDED.added_by, added_at = now()""",
        document_number,
        reason_code,
        reason,
        by,
    )


async def release(conn: asyncpg.Connection, document_number: str) -> bool:
    status = await conn.execute("DELETE FROM hold_list WHERE document_number = $1", document_number)
    return status.endswith(" 1")


async def holds_for(conn: asyncpg.Connection, document_numbers: list[str]) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT * FROM hold_list WHERE document_number = ANY($1::text[])", document_numbers
    )
    return {r["document_number"]: r for r in rows}


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
