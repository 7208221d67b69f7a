"""Intake's persistence: cases, persons, the status timeline projection, the PII access log."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from contracts.intake import CaseRegistered, CaseWithdrawn, HealthEvidenceRecorded
from contracts.status import CaseStatusChanged


async def case_for_key(conn: asyncpg.Connection, registration_key: str) -> uuid.UUID | None:
    return await conn.fetchval("SELECT case_id FROM cases WHERE registration_key = $1", registration_key)


async def insert_case(
    conn: asyncpg.Connection, case: CaseRegistered, *, registration_key: str | None, status: str
) -> None:
    await conn.execute(
        """INSERT INTO cases (case_id, registration_key, route_id, planned_travel_date, consent,
                              status, registered_at)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)""",
        case.case_id,
        registration_key,
        case.route_id,
        case.planned_travel_date,
        case.consent.model_dump_json(),
        status,
        case.registered_at,
    )
    await conn.executemany(
        """INSERT INTO persons (person_id, case_id, role, given_names, surname, birth_date, sex,
                                nationality, document, vulnerabilities, needs_escort, current_city)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12)""",
        [
            (
                p.person_id,
                case.case_id,
                p.role,
                p.given_names,
                p.surname,
                p.birth_date,
                p.sex,
                p.nationality,
                p.document.model_dump_json(),
                [str(v) for v in p.vulnerabilities],
                p.needs_escort,
                p.current_city,
            )
            for p in case.members
        ],
    )


async def record_status(
    conn: asyncpg.Connection, source: str, event_id: str, change: CaseStatusChanged
) -> None:
    await conn.execute(
        """INSERT INTO status_timeline (event_source, event_id, case_id, status, occurred_at, place,
                                        movement_id, reason_code, reason)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)
           ON CONFLICT DO NOTHING""",
        source,
        event_id,
        change.case_id,
        change.status.value,
        change.occurred_at,
        change.place.model_dump_json() if change.place else None,
        change.movement_id,
        change.reason_code,
        change.reason,
    )
    await conn.execute(
        "UPDATE cases SET status = $2, updated_at = now() WHERE case_id = $1",
        change.case_id,
        change.status.value,
    )


async def case_exists(conn: asyncpg.Connection, case_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM cases WHERE case_id = $1", case_id))


async def timeline(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT status, occurred_at, place, movement_id, reason_code, reason, event_source, event_id
           FROM status_timeline WHERE case_id = $1 ORDER BY seq""",
        case_id,
    )
    return [
        {
            "status": r["status"],
            "occurred_at": r["occurred_at"].isoformat(),
            "place": json.loads(r["place"]) if r["place"] else None,
            "movement_id": r["movement_id"],
            "reason_code": r["reason_code"],
            "reason": r["reason"],
            "event": {"source": r["event_source"], "id": r["event_id"]},
        }
        for r in rows
    ]


async def read_case(
    conn: asyncpg.Connection, case_id: uuid.UUID, *, actor: str, purpose: str
) -> dict[str, Any] | None:
    """Read a case with its personal data; the read is recorded in the same transaction."""
    case = await conn.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
    if case is None:
        return None
    await conn.execute(
        "INSERT INTO pii_access_log (actor, purpose, case_id) VALUES ($1, $2, $3)",
        actor,
        purpose,
        case_id,
    )
    persons = await conn.fetch(
        "SELECT * FROM persons WHERE case_id = $1 ORDER BY role <> 'principal', surname", case_id
    )
    return {
        "case_id": str(case["case_id"]),
        "route_id": case["route_id"],
        "planned_travel_date": case["planned_travel_date"].isoformat(),
        "status": case["status"],
        "consent": json.loads(case["consent"]),
        "members": [
            {
                "person_id": str(p["person_id"]),
                "role": p["role"],
                "given_names": p["given_names"],
                "surname": p["surname"],
                "birth_date": p["birth_date"].isoformat(),
                "sex": p["sex"],
                "nationality": p["nationality"],
                "document": json.loads(p["document"]),
                "vulnerabilities": list(p["vulnerabilities"]),
            }
            for p in persons
        ],
    }


async def access_log(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT accessed_at, actor, purpose FROM pii_access_log WHERE case_id = $1 ORDER BY id", case_id
    )
    return [
        {"accessed_at": r["accessed_at"].isoformat(), "actor": r["actor"], "purpose": r["purpose"]}
        for r in rows
    ]


async def case_for_update(conn: asyncpg.Connection, case_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT c.case_id, c.route_id, c.status, (SELECT count(*) FROM persons p WHERE p.case_id = c.case_id) AS members
           FROM cases c WHERE c.case_id = $1 FOR UPDATE""",
        case_id,
    )


async def set_status(conn: asyncpg.Connection, case_id: uuid.UUID, status: str) -> None:
    await conn.execute("UPDATE cases SET status = $2, updated_at = now() WHERE case_id = $1", case_id, status)


async def person_in_case(conn: asyncpg.Connection, case_id: uuid.UUID, person_id: uuid.UUID) -> bool:
    return bool(
        await conn.fetchval("SELECT 1 FROM persons WHERE case_id = $1 AND person_id = $2", case_id, person_id)
    )


async def save_health_evidence(
    conn: asyncpg.Connection, event: HealthEvidenceRecorded, recorded_by: str
) -> None:
    await conn.execute(
        """INSERT INTO health_evidence (case_id, person_id, kind, result, taken_at, recorded_by, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        event.case_id,
        event.person_id,
        event.kind.value,
        event.result.value,
        event.taken_at,
        recorded_by,
        event.recorded_at,
    )


async def save_withdrawal(conn: asyncpg.Connection, event: CaseWithdrawn, recorded_by: str) -> None:
    await conn.execute(
        "INSERT INTO withdrawals (case_id, reason, recorded_by, withdrawn_at) VALUES ($1, $2, $3, $4)",
        event.case_id,
        event.reason,
        recorded_by,
        event.withdrawn_at,
    )


async def is_withdrawn(conn: asyncpg.Connection, case_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM withdrawals WHERE case_id = $1", case_id))
