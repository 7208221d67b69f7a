"""Transport's persistence: cases ready to travel, movements, vehicles, seat assignments.

Every change to a case is decided under a lock on its ``cases`` row, and several cases are locked
in one statement in case-id order, always before any vehicle row: so a planning run, a departure,
a withdrawal, a decision and a border crossing on the same case follow one another, each reading
what the one before committed, and two of them never wait for each other in a circle."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from contracts.intake import CaseRegistered, CaseUpdated
from contracts.transport import ManifestPassenger
from services.transport.domain import ReadyCase, Vehicle

_CASE_ID_LOCKS = 7_241_201  # advisory lock class: case ids (see lock_case_id)


async def save_case(conn: asyncpg.Connection, case: CaseRegistered | CaseUpdated) -> tuple[str, date] | None:
    """Store or refresh a case; returns its previous route and travel date when it had one."""
    passengers = [
        ManifestPassenger(
            case_id=case.case_id,
            person_id=p.person_id,
            surname=p.surname,
            given_names=p.given_names,
            birth_date=p.birth_date,
            sex=p.sex,
            nationality=p.nationality,
            document_type=p.document.type,
            document_number=p.document.number,
        ).model_dump(mode="json")
        for p in case.members
    ]
    before = await conn.fetchrow(
        "SELECT route_id, planned_travel_date FROM cases WHERE case_id = $1 FOR UPDATE", case.case_id
    )
    await conn.execute(
        """INSERT INTO cases (case_id, route_id, planned_travel_date, registered_at, passengers, needs_escort,
                              consent_scope)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
           ON CONFLICT (case_id) DO UPDATE SET route_id = EXCLUDED.route_id,
               planned_travel_date = EXCLUDED.planned_travel_date, passengers = EXCLUDED.passengers,
               needs_escort = EXCLUDED.needs_escort, consent_scope = EXCLUDED.consent_scope""",
        case.case_id,
        case.route_id,
        case.planned_travel_date,
        case.registered_at,
        json.dumps(passengers),
        any(p.needs_escort for p in case.members),
        list(case.consent.scope) if case.consent.given else [],
    )
    return (before["route_id"], before["planned_travel_date"]) if before else None


async def lock_case(conn: asyncpg.Connection, case_id: uuid.UUID) -> asyncpg.Record | None:
    """Lock one case for a change; None when this service has not received it yet."""
    return await conn.fetchrow(
        """SELECT case_id, route_id, planned_travel_date, withdrawn_at,
                  jsonb_array_length(passengers) AS members
           FROM cases WHERE case_id = $1 FOR UPDATE""",
        case_id,
    )


async def lock_cases_for_day(
    conn: asyncpg.Connection, route_id: str, departure_date: date, also: list[uuid.UUID] | None = None
) -> list[uuid.UUID]:
    """Lock every case travelling that route on that day (and ``also``), in case-id order."""
    rows = await conn.fetch(
        """SELECT case_id FROM cases
           WHERE (route_id = $1 AND planned_travel_date = $2) OR case_id = ANY($3::uuid[])
           ORDER BY case_id FOR UPDATE""",
        route_id,
        departure_date,
        also or [],
    )
    return [r["case_id"] for r in rows]


async def lock_vehicle(conn: asyncpg.Connection, movement_id: str, vehicle_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM vehicles WHERE movement_id = $1 AND vehicle_id = $2 FOR UPDATE",
        movement_id,
        vehicle_id,
    )


async def mark_withdrawn(
    conn: asyncpg.Connection, case_id: uuid.UUID, at: datetime, *, applied: bool, detail: str
) -> None:
    if applied:
        await conn.execute("UPDATE cases SET withdrawn_at = $2 WHERE case_id = $1", case_id, at)
    await conn.execute(
        """INSERT INTO withdrawals (case_id, applied, detail) VALUES ($1, $2, $3)
           ON CONFLICT (case_id) DO NOTHING""",
        case_id,
        applied,
        detail,
    )


@dataclass(frozen=True)
class Decision:
    """Eligibility's newest decision on a case, as transport applies it."""

    version: int
    outcome: str
    priority: int
    reason_code: str | None
    reason: str | None
    withdrawn: bool
    decided_at: datetime


async def lock_case_id(conn: asyncpg.Connection, case_id: uuid.UUID) -> None:
    """A lock on the case id itself, for the moment before its row exists: a decision and the
    registration it may overtake are applied one after the other."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _CASE_ID_LOCKS, str(case_id))


async def save_decision(conn: asyncpg.Connection, case_id: uuid.UUID, d: Decision) -> bool:
    """Keep the newest decision; False when a newer one is already here (arrived out of order)."""
    status = await conn.execute(
        """INSERT INTO decisions (case_id, version, outcome, priority, reason_code, reason, withdrawn, decided_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (case_id) DO UPDATE
           SET version = EXCLUDED.version, outcome = EXCLUDED.outcome, priority = EXCLUDED.priority,
               reason_code = EXCLUDED.reason_code, reason = EXCLUDED.reason, withdrawn = EXCLUDED.withdrawn,
               decided_at = EXCLUDED.decided_at
           WHERE decisions.version < EXCLUDED.version""",
        case_id,
        d.version,
        d.outcome,
        d.priority,
        d.reason_code,
        d.reason,
        d.withdrawn,
        d.decided_at,
    )
    return status.endswith(" 1")


async def decision(conn: asyncpg.Connection, case_id: uuid.UUID) -> Decision | None:
    row = await conn.fetchrow(
        """SELECT version, outcome, priority, reason_code, reason, withdrawn, decided_at
           FROM decisions WHERE case_id = $1""",
        case_id,
    )
    return Decision(**dict(row)) if row else None


async def ready_cases(
    conn: asyncpg.Connection,
    route_id: str,
    departure_date: date,
    abroad: list[str] | None = None,
    among: list[uuid.UUID] | None = None,
) -> list[ReadyCase]:
    """Eligible, unplaced, not withdrawn cases for that route and day whose consent covers every
    country abroad; only ``among`` (the cases the caller has locked) when given."""
    rows = await conn.fetch(
        """SELECT c.case_id, jsonb_array_length(c.passengers) AS members, d.priority, c.registered_at,
                  c.needs_escort
           FROM cases c JOIN decisions d USING (case_id)
           LEFT JOIN assignments a USING (case_id)
           WHERE d.outcome = 'eligible' AND a.case_id IS NULL AND c.withdrawn_at IS NULL
             AND c.route_id = $1 AND c.planned_travel_date = $2 AND c.consent_scope @> $3::text[]
             AND ($4::uuid[] IS NULL OR c.case_id = ANY($4::uuid[]))""",
        route_id,
        departure_date,
        abroad or [],
        among,
    )
    return [
        ReadyCase(r["case_id"], r["members"], r["priority"], r["registered_at"], r["needs_escort"])
        for r in rows
    ]


async def create_movement(
    conn: asyncpg.Connection,
    movement_id: str,
    route_id: str,
    departure_date: date,
    vehicles: list[tuple[str, int, uuid.UUID]],
) -> bool:
    """False when a movement with that id exists (planned before, or by a concurrent request)."""
    created = await conn.execute(
        """INSERT INTO movements (movement_id, route_id, departure_date, status) VALUES ($1, $2, $3, 'planned')
           ON CONFLICT (movement_id) DO NOTHING""",
        movement_id,
        route_id,
        departure_date,
    )
    if not created.endswith(" 1"):
        return False
    await conn.executemany(
        "INSERT INTO vehicles (movement_id, vehicle_id, capacity, manifest_id) VALUES ($1, $2, $3, $4)",
        [(movement_id, v, cap, mid) for v, cap, mid in vehicles],
    )
    return True


async def assign(
    conn: asyncpg.Connection,
    case_id: uuid.UUID,
    movement_id: str,
    vehicle_id: str,
    seats: int,
    explanation: str,
) -> None:
    await conn.execute(
        """INSERT INTO assignments (case_id, movement_id, vehicle_id, seats, state, explanation)
           VALUES ($1, $2, $3, $4, 'manifested', $5)""",
        case_id,
        movement_id,
        vehicle_id,
        seats,
        explanation,
    )


async def set_escort_seat(conn: asyncpg.Connection, movement_id: str, vehicle_id: str) -> None:
    await conn.execute(
        "UPDATE vehicles SET escort_seat = true WHERE movement_id = $1 AND vehicle_id = $2",
        movement_id,
        vehicle_id,
    )


async def vehicle_loads(conn: asyncpg.Connection, movement_id: str) -> list[Vehicle]:
    """Each vehicle's seats taken by cases still travelling on it."""
    rows = await conn.fetch(
        """SELECT v.vehicle_id, v.capacity, v.escort_seat,
                  coalesce(sum(a.seats) FILTER (WHERE a.state IN ('manifested', 'departed')), 0) AS taken
           FROM vehicles v LEFT JOIN assignments a USING (movement_id, vehicle_id)
           WHERE v.movement_id = $1 GROUP BY v.vehicle_id, v.capacity, v.escort_seat ORDER BY v.vehicle_id""",
        movement_id,
    )
    return [Vehicle(r["vehicle_id"], r["capacity"], int(r["taken"]), r["escort_seat"]) for r in rows]


async def remove_assignment(conn: asyncpg.Connection, case_id: uuid.UUID) -> asyncpg.Record | None:
    """Take a case off its vehicle before departure; returns where it was."""
    return await conn.fetchrow(
        "DELETE FROM assignments WHERE case_id = $1 AND state = 'manifested' RETURNING movement_id, vehicle_id",
        case_id,
    )


async def record_progress(
    conn: asyncpg.Connection, movement_id: str, vehicle_id: str, checkpoint_id: str, stage: str, at: datetime
) -> bool:
    status = await conn.execute(
        """INSERT INTO vehicle_progress (movement_id, vehicle_id, checkpoint_id, stage, at)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
        movement_id,
        vehicle_id,
        checkpoint_id,
        stage,
        at,
    )
    return status.endswith(" 1")


async def log_export(
    conn: asyncpg.Connection, actor: str, purpose: str, movement_id: str, vehicle_id: str, fmt: str
) -> None:
    await conn.execute(
        """INSERT INTO pii_access_log (actor, purpose, movement_id, vehicle_id, format)
           VALUES ($1, $2, $3, $4, $5)""",
        actor,
        purpose,
        movement_id,
        vehicle_id,
        fmt,
    )


async def access_log(conn: asyncpg.Connection, movement_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM pii_access_log WHERE movement_id = $1 ORDER BY id", movement_id)
    return [
        {
            "accessed_at": r["accessed_at"].isoformat(),
            "actor": r["actor"],
            "purpose": r["purpose"],
            "vehicle_id": r["vehicle_id"],
            "format": r["format"],
        }
        for r in rows
    ]


async def movement(conn: asyncpg.Connection, movement_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM movements WHERE movement_id = $1", movement_id)


async def vehicles(conn: asyncpg.Connection, movement_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM vehicles WHERE movement_id = $1 ORDER BY vehicle_id", movement_id)


async def passengers_on(
    conn: asyncpg.Connection, movement_id: str, vehicle_id: str
) -> list[ManifestPassenger]:
    rows = await conn.fetch(
        """SELECT c.passengers FROM assignments a JOIN cases c USING (case_id)
           WHERE a.movement_id = $1 AND a.vehicle_id = $2 AND a.state IN ('manifested', 'departed', 'arrived')
           ORDER BY c.registered_at, c.case_id""",
        movement_id,
        vehicle_id,
    )
    return [ManifestPassenger.model_validate(p) for r in rows for p in json.loads(r["passengers"])]


async def assignments(conn: asyncpg.Connection, movement_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM assignments WHERE movement_id = $1 ORDER BY vehicle_id, case_id", movement_id
    )


async def set_assignment_state(
    conn: asyncpg.Connection, case_id: uuid.UUID, state: str, *, was: tuple[str, ...]
) -> bool:
    """Move a case's seat to ``state`` only from one of the states the decision was made in."""
    status = await conn.execute(
        "UPDATE assignments SET state = $2 WHERE case_id = $1 AND state = ANY($3::text[])",
        case_id,
        state,
        list(was),
    )
    return status.endswith(" 1")


async def bump_manifest(conn: asyncpg.Connection, movement_id: str, vehicle_id: str) -> int:
    return int(
        await conn.fetchval(
            """UPDATE vehicles SET manifest_revision = manifest_revision + 1
               WHERE movement_id = $1 AND vehicle_id = $2 RETURNING manifest_revision""",
            movement_id,
            vehicle_id,
        )
    )


async def mark_departed(conn: asyncpg.Connection, movement_id: str, vehicle_id: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE vehicles SET departed_at = $3 WHERE movement_id = $1 AND vehicle_id = $2",
        movement_id,
        vehicle_id,
        at,
    )
    await conn.execute(
        """UPDATE movements SET status = 'departed' WHERE movement_id = $1
           AND NOT EXISTS (SELECT 1 FROM vehicles WHERE movement_id = $1 AND departed_at IS NULL)""",
        movement_id,
    )


async def assignment(conn: asyncpg.Connection, case_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT a.*, m.route_id, jsonb_array_length(c.passengers) AS members
           FROM assignments a JOIN movements m USING (movement_id) JOIN cases c USING (case_id)
           WHERE a.case_id = $1""",
        case_id,
    )


async def record_crossing(
    conn: asyncpg.Connection, case_id: uuid.UUID, checkpoint_id: str, cleared: bool, at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO crossings (case_id, checkpoint_id, cleared, decided_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (case_id, checkpoint_id) DO UPDATE SET cleared = EXCLUDED.cleared,
               decided_at = EXCLUDED.decided_at""",
        case_id,
        checkpoint_id,
        cleared,
        at,
    )


async def close_movement_if_done(conn: asyncpg.Connection, movement_id: str) -> bool:
    status = await conn.execute(
        """UPDATE movements SET status = 'closed' WHERE movement_id = $1 AND status <> 'closed'
           AND NOT EXISTS (SELECT 1 FROM assignments WHERE movement_id = $1
                           AND state NOT IN ('arrived', 'no_show', 'refused'))""",
        movement_id,
    )
    return status.endswith(" 1")


def describe(
    movement: asyncpg.Record, vehicles: list[asyncpg.Record], assigned: list[asyncpg.Record]
) -> dict[str, Any]:
    return {
        "movement_id": movement["movement_id"],
        "route_id": movement["route_id"],
        "departure_date": movement["departure_date"].isoformat(),
        "status": movement["status"],
        "vehicles": [
            {
                "vehicle_id": v["vehicle_id"],
                "capacity": v["capacity"],
                "escort_seat": v["escort_seat"],
                "manifest_revision": v["manifest_revision"],
                "departed_at": v["departed_at"].isoformat() if v["departed_at"] else None,
                "cases": [
                    {
                        "case_id": str(a["case_id"]),
                        "seats": a["seats"],
                        "state": a["state"],
                        "explanation": a["explanation"],
                    }
                    for a in assigned
                    if a["vehicle_id"] == v["vehicle_id"]
                ],
                "seats_taken": sum(
                    a["seats"]
                    for a in assigned
                    if a["vehicle_id"] == v["vehicle_id"] and a["state"] != "no_show"
                ),
            }
            for v in vehicles
        ],
    }
