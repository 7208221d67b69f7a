"""Intake's persistence: cases, persons, the status timeline projection, the PII access log."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from contracts.intake import CaseRegistered, CaseUpdated, CaseWithdrawn, HealthEvidenceRecorded, Person
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
    await upsert_persons(conn, case.case_id, case.members)


_UPSERT_PERSON = """
    INSERT INTO persons (person_id, case_id, role, given_names, surname, birth_date, sex, nationality, document,
                         vulnerabilities, needs_escort, current_city, given_names_cyrillic, surname_cyrillic, phone,
                         proof_of_citizenship)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16::jsonb)
    ON CONFLICT (person_id) DO UPDATE SET role = EXCLUDED.role, given_names = EXCLUDED.given_names,
        surname = EXCLUDED.surname, birth_date = EXCLUDED.birth_date, sex = EXCLUDED.sex,
        nationality = EXCLUDED.nationality, document = EXCLUDED.document,
        vulnerabilities = EXCLUDED.vulnerabilities, needs_escort = EXCLUDED.needs_escort,
        current_city = EXCLUDED.current_city, given_names_cyrillic = EXCLUDED.given_names_cyrillic,
        surname_cyrillic = EXCLUDED.surname_cyrillic, phone = EXCLUDED.phone,
        proof_of_citizenship = EXCLUDED.proof_of_citizenship"""


async def upsert_persons(conn: asyncpg.Connection, case_id: uuid.UUID, members: list[Person]) -> None:
    await conn.executemany(
        _UPSERT_PERSON,
        [
            (
                p.person_id,
                case_id,
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
                p.given_names_cyrillic,
                p.surname_cyrillic,
                p.phone,
                p.proof_of_citizenship.model_dump_json() if p.proof_of_citizenship else None,
            )
            for p in members
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
                "needs_escort": p["needs_escort"],
                "current_city": p["current_city"],
                "given_names_cyrillic": p["given_names_cyrillic"],
                "surname_cyrillic": p["surname_cyrillic"],
                "phone": p["phone"],
                "proof_of_citizenship": json.loads(p["proof_of_citizenship"])
                if p["proof_of_citizenship"]
                else None,
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
        """SELECT c.case_id, c.route_id, c.status, c.registered_at,
                  (SELECT count(*) FROM persons p WHERE p.case_id = c.case_id) AS members
           FROM cases c WHERE c.case_id = $1 FOR UPDATE""",
        case_id,
    )


async def case_status(conn: asyncpg.Connection, case_id: uuid.UUID) -> str:
    return str(await conn.fetchval("SELECT status FROM cases WHERE case_id = $1", case_id))


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


async def people_of(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT person_id, surname, given_names, birth_date FROM persons WHERE case_id = $1", case_id
    )


async def replace_case(conn: asyncpg.Connection, case: CaseUpdated) -> None:
    await conn.execute(
        """UPDATE cases SET route_id = $2, planned_travel_date = $3, consent = $4::jsonb,
                            version = version + 1, updated_at = now()
           WHERE case_id = $1""",
        case.case_id,
        case.route_id,
        case.planned_travel_date,
        case.consent.model_dump_json(),
    )
    await conn.execute("DELETE FROM person_keys WHERE case_id = $1", case.case_id)
    keep = [p.person_id for p in case.members]
    await conn.execute(
        "DELETE FROM persons WHERE case_id = $1 AND NOT (person_id = ANY($2::uuid[]))", case.case_id, keep
    )
    await upsert_persons(conn, case.case_id, case.members)


DUPLICATE_KEY_LOCKS = 7_241_101
"""Class id of the duplicate-key advisory locks (the two-int form, a key space apart from the single
bigint locks of corridor.db and corridor.outbox)."""


async def lock_duplicate_keys(conn: asyncpg.Connection, lock_ids: list[int]) -> None:
    """Wait for, and hold until the transaction ends, the locks of these duplicate keys.

    One statement takes them all in ascending order, so two registrations sharing several keys
    cannot deadlock. A lookup made by a later statement of the transaction sees every case that
    held one of these locks before (READ COMMITTED: each statement sees what committed before it).
    """
    assert conn.is_in_transaction(), "a transaction-level lock outside a transaction is released at once"
    if not lock_ids:
        return
    await conn.execute(
        # ORDER BY in a subquery: it is sorted before the outer query takes the locks row by row.
        """SELECT pg_advisory_xact_lock($1::int4, k)
           FROM (SELECT DISTINCT k FROM unnest($2::int4[]) AS k ORDER BY k) AS ordered""",
        DUPLICATE_KEY_LOCKS,
        lock_ids,
    )


async def add_person_key(
    conn: asyncpg.Connection, person_id: uuid.UUID, case_id: uuid.UUID, kind: str, key: str
) -> None:
    await conn.execute(
        "INSERT INTO person_keys (person_id, case_id, kind, key) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        person_id,
        case_id,
        kind,
        key,
    )


async def matching_people(
    conn: asyncpg.Connection, kind: str, key: str, *, exclude_case: uuid.UUID
) -> list[asyncpg.Record]:
    return await conn.fetch(
        # A handful of candidates is enough for a caseworker to act on; a name shared by hundreds
        # of registrations must not turn one registration into hundreds of flags.
        """SELECT DISTINCT person_id, case_id FROM person_keys WHERE kind = $1 AND key = $2 AND case_id <> $3
           LIMIT 10""",
        kind,
        key,
        exclude_case,
    )


async def flag_duplicate(
    conn: asyncpg.Connection,
    case_id: uuid.UUID,
    person_id: uuid.UUID,
    other_case_id: uuid.UUID,
    other_person_id: uuid.UUID,
    basis: str,
) -> dict[str, Any] | None:
    flag_id = await conn.fetchval(
        """INSERT INTO duplicate_flags (case_id, person_id, other_case_id, other_person_id, basis)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (person_id, other_person_id) DO NOTHING RETURNING flag_id""",
        case_id,
        person_id,
        other_case_id,
        other_person_id,
        basis,
    )
    if flag_id is None:
        return None
    return {
        "flag_id": flag_id,
        "person_id": str(person_id),
        "other_case_id": str(other_case_id),
        "basis": basis,
    }


async def duplicate_flags(
    conn: asyncpg.Connection, status: str | None, case_id: uuid.UUID | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT * FROM duplicate_flags
           WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR case_id = $2 OR other_case_id = $2)
           ORDER BY flag_id""",
        status,
        case_id,
    )
    return [
        {
            "flag_id": r["flag_id"],
            "case_id": str(r["case_id"]),
            "person_id": str(r["person_id"]),
            "other_case_id": str(r["other_case_id"]),
            "other_person_id": str(r["other_person_id"]),
            "basis": r["basis"],
            "status": r["status"],
            "flagged_at": r["flagged_at"].isoformat(),
            "resolved_by": r["resolved_by"],
            "resolution_note": r["resolution_note"],
        }
        for r in rows
    ]


async def resolve_flag(conn: asyncpg.Connection, flag_id: int, status: str, by: str, note: str) -> bool:
    result = await conn.execute(
        """UPDATE duplicate_flags SET status = $2, resolved_by = $3, resolution_note = $4, resolved_at = now()
           WHERE flag_id = $1 AND status = 'open'""",
        flag_id,
        status,
        by,
        note,
    )
    return result.endswith(" 1")


async def access_log_query(
    conn: asyncpg.Connection, actor: str | None, since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT accessed_at, actor, purpose, case_id FROM pii_access_log
           WHERE ($1::text IS NULL OR actor = $1) AND ($2::timestamptz IS NULL OR accessed_at >= $2)
           ORDER BY id DESC LIMIT $3""",
        actor,
        since,
        limit,
    )
    return [
        {
            "accessed_at": r["accessed_at"].isoformat(),
            "actor": r["actor"],
            "purpose": r["purpose"],
            "case_id": str(r["case_id"]),
        }
        for r in rows
    ]
