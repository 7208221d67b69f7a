"""Transport's persistence: cases ready to travel, movements, vehicles, seat assignments.

Every change to a case is decided under a lock on its ``cases`` row, and several cases are locked
in one statement in case-id order, always before any vehicle row: so a planning run, a departure,
a withdrawal, a decision and a border crossing on the same case follow one another, each reading
what the one before committed, and two of them never wait for each other in a circle. A case that
has no row yet (a decision that overtook its registration) is locked by its id (``lock_case_id``,
an advisory lock the registration takes too). The use cases take these locks with the lock methods
(``lock_case_id``, ``lock_case``, ``lock_cases``, ``lock_vehicle``), in that order; a
consumer's batch first locks the rows of all its cases at once (``lock_cases``, case-id order).

``TransportStore`` is bound to one connection (in the unit of work's transaction) and returns the
domain's dataclasses; which seat states a query or a conditional update means comes from the
domain (``services.transport.domain``), never from literals here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from contracts.eligibility import Outcome
from contracts.intake import CaseRegistered, CaseUpdated
from contracts.transport import ManifestPassenger
from corridor import db
from services.transport.domain import (
    HOLDS_SEAT,
    ON_MANIFEST,
    SETTLED,
    TAKEN_OFF,
    Case,
    CaseSeat,
    Decision,
    ManifestExport,
    Movement,
    MovementStatus,
    MovementVehicle,
    ReadyCase,
    RecordedCrossing,
    Seat,
    SeatState,
    Vehicle,
    reached_from,
)

_CASE_ID_LOCKS = 7_241_201  # advisory lock class: case ids (see lock_case_id)
_VEHICLE = "movement_id, vehicle_id, capacity, manifest_id, manifest_revision, escort_seat, departed_at"
_SEAT = "case_id, movement_id, vehicle_id, seats, state, explanation"


def _states(states: Iterable[SeatState]) -> list[str]:
    return sorted(s.value for s in states)


def _vehicle(r: asyncpg.Record) -> MovementVehicle:
    return MovementVehicle(
        movement_id=r["movement_id"],
        vehicle_id=r["vehicle_id"],
        capacity=r["capacity"],
        manifest_id=r["manifest_id"],
        manifest_revision=r["manifest_revision"],
        escort_seat=r["escort_seat"],
        departed_at=r["departed_at"],
    )


def _seat(r: asyncpg.Record) -> Seat:
    return Seat(
        case_id=r["case_id"],
        movement_id=r["movement_id"],
        vehicle_id=r["vehicle_id"],
        seats=r["seats"],
        state=SeatState(r["state"]),
        explanation=r["explanation"],
    )


READY_CASES = """SELECT c.case_id, jsonb_array_length(c.passengers) AS members, d.priority, c.registered_at,
                        c.needs_escort
                 FROM cases c JOIN decisions d USING (case_id)
                 LEFT JOIN assignments a USING (case_id)
                 WHERE d.outcome = $4 AND a.case_id IS NULL AND c.withdrawn_at IS NULL AND NOT c.placed
                   AND c.route_id = $1 AND c.planned_travel_date = $2 AND c.consent_scope @> $3::text[]"""
"""A day's ready cases on a route (``TransportStore.ready_cases``): eligible, not withdrawn, consent
covering every country abroad ($3), and not placed. "NOT c.placed" (kept by triggers on
assignments) reads the day's cases still to place through cases_unplaced, not every case of the day
(10 ms a call with 3,000 on one day); the seat itself is still what excludes a case. The locked
cases' read adds its keys as a second statement, not "$5 IS NULL OR case_id = ANY($5)", which a
prepared statement's generic plan cannot answer from the key."""


class TransportStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # --- locks: the case rows first (one statement, case-id order), then a vehicle -------------

    async def lock_case(self, case_id: uuid.UUID) -> Case | None:
        """Lock one case for a change; None when this service has not received it yet."""
        return (await self.locked_cases([case_id])).get(case_id)

    async def lock_case_id(self, case_id: uuid.UUID) -> None:
        """A lock on the case id itself, for the moment before its row exists: a decision and the
        registration it may overtake are applied one after the other."""
        await self.lock_case_ids([case_id])

    async def lock_case_ids(self, case_ids: Iterable[uuid.UUID]) -> None:
        """``lock_case_id`` for many, in one statement, in one order for everyone."""
        await db.lock_keys(self.conn, _CASE_ID_LOCKS, case_ids)

    async def locked_cases(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Case]:
        """``lock_case`` for many, in one statement, in case-id order: those received here."""
        rows = await self.conn.fetch(
            """SELECT case_id, route_id, planned_travel_date, withdrawn_at,
                      jsonb_array_length(passengers) AS members
               FROM cases WHERE case_id = ANY($1::uuid[]) ORDER BY case_id FOR UPDATE""",
            list(set(case_ids)),
        )
        return {
            r["case_id"]: Case(
                r["case_id"], r["route_id"], r["planned_travel_date"], r["withdrawn_at"], r["members"]
            )
            for r in rows
        }

    async def lock_cases(self, case_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
        """Lock these cases (those this service has received) in one statement, in case-id order:
        a consumer's batch takes its cases' locks before applying any of its records, in the order
        planning and departures take them, so the two never wait for each other in a circle."""
        ids = list(set(case_ids))
        if not ids:
            return []
        rows = await self.conn.fetch(
            "SELECT case_id FROM cases WHERE case_id = ANY($1::uuid[]) ORDER BY case_id FOR UPDATE", ids
        )
        return [r["case_id"] for r in rows]

    async def lock_vehicle(self, movement_id: str, vehicle_id: str) -> MovementVehicle | None:
        r = await self.conn.fetchrow(
            f"SELECT {_VEHICLE} FROM vehicles WHERE movement_id = $1 AND vehicle_id = $2 FOR UPDATE",
            movement_id,
            vehicle_id,
        )
        return _vehicle(r) if r else None

    # --- cases ---------------------------------------------------------------------------------

    async def erase_passengers(self, case_id: uuid.UUID, at: datetime) -> bool:
        """Anonymise the case's passengers (what manifests are made of); sex, nationality, document
        type and birth year stay for the statistics. False if erased before."""
        done = await self.conn.execute(
            """UPDATE cases SET erased_at = $2, passengers = (
                   SELECT coalesce(jsonb_agg(p || jsonb_build_object(
                       'surname', '', 'given_names', '', 'document_number', '-',
                       'birth_date', to_char(date_trunc('year', (p->>'birth_date')::date), 'YYYY-MM-DD'))),
                       '[]'::jsonb)
                   FROM jsonb_array_elements(passengers) AS p)
               WHERE case_id = $1 AND erased_at IS NULL""",
            case_id,
            at,
        )
        return bool(done.endswith(" 1"))

    async def save_registrations(self, cases: Sequence[CaseRegistered]) -> None:
        """``save_case`` for many registrations (each case once), in one statement."""
        await self.conn.execute(
            """INSERT INTO cases (case_id, route_id, planned_travel_date, registered_at, passengers,
                                  needs_escort, consent_scope)
               SELECT c, r, d, at, p, e, string_to_array(s, ' ')
               FROM unnest($1::uuid[], $2::text[], $3::date[], $4::timestamptz[], $5::jsonb[], $6::boolean[],
                           $7::text[]) AS u(c, r, d, at, p, e, s)
               ON CONFLICT (case_id) DO UPDATE SET route_id = EXCLUDED.route_id,
                   planned_travel_date = EXCLUDED.planned_travel_date, passengers = EXCLUDED.passengers,
                   needs_escort = EXCLUDED.needs_escort, consent_scope = EXCLUDED.consent_scope""",
            [c.case_id for c in cases],
            [c.route_id for c in cases],
            [c.planned_travel_date for c in cases],
            [c.registered_at for c in cases],
            [json.dumps(_passengers(c)) for c in cases],
            [any(p.needs_escort for p in c.members) for c in cases],
            # text[][] must be rectangular: each scope travels as one string (country codes).
            [" ".join(_scope(c)) for c in cases],
        )

    async def save_case(self, case: CaseRegistered | CaseUpdated) -> tuple[str, date] | None:
        """Store or refresh a case; returns its previous route and travel date when it had one."""
        before = await self.conn.fetchrow(
            "SELECT route_id, planned_travel_date FROM cases WHERE case_id = $1 FOR UPDATE", case.case_id
        )
        await self.conn.execute(
            """INSERT INTO cases (case_id, route_id, planned_travel_date, registered_at, passengers,
                                  needs_escort, consent_scope)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
               ON CONFLICT (case_id) DO UPDATE SET route_id = EXCLUDED.route_id,
                   planned_travel_date = EXCLUDED.planned_travel_date, passengers = EXCLUDED.passengers,
                   needs_escort = EXCLUDED.needs_escort, consent_scope = EXCLUDED.consent_scope""",
            case.case_id,
            case.route_id,
            case.planned_travel_date,
            case.registered_at,
            json.dumps(_passengers(case)),
            any(p.needs_escort for p in case.members),
            _scope(case),
        )
        return (before["route_id"], before["planned_travel_date"]) if before else None

    async def mark_withdrawn(self, case_id: uuid.UUID, at: datetime, *, applied: bool, detail: str) -> None:
        if applied:
            await self.conn.execute("UPDATE cases SET withdrawn_at = $2 WHERE case_id = $1", case_id, at)
        await self.conn.execute(
            """INSERT INTO withdrawals (case_id, applied, detail) VALUES ($1, $2, $3)
               ON CONFLICT (case_id) DO NOTHING""",
            case_id,
            applied,
            detail,
        )

    async def save_decision(self, case_id: uuid.UUID, d: Decision) -> bool:
        """Keep the newest decision; False when a newer one is already here (arrived out of order)."""
        return case_id in await self.save_decisions([(case_id, d)])

    async def save_decisions(self, decided: Sequence[tuple[uuid.UUID, Decision]]) -> set[uuid.UUID]:
        """``save_decision`` for many (each case once), in one statement: the cases whose decision
        was kept (the others had a newer one already)."""
        rows = await self.conn.fetch(
            """INSERT INTO decisions (case_id, version, outcome, priority, reason_code, reason, withdrawn,
                                      decided_at)
               SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[], $5::text[], $6::text[],
                                    $7::boolean[], $8::timestamptz[])
               ON CONFLICT (case_id) DO UPDATE
               SET version = EXCLUDED.version, outcome = EXCLUDED.outcome, priority = EXCLUDED.priority,
                   reason_code = EXCLUDED.reason_code, reason = EXCLUDED.reason,
                   withdrawn = EXCLUDED.withdrawn, decided_at = EXCLUDED.decided_at
               WHERE decisions.version < EXCLUDED.version
               RETURNING case_id""",
            [c for c, _ in decided],
            [d.version for _, d in decided],
            [d.outcome.value for _, d in decided],
            [d.priority for _, d in decided],
            [d.reason_code for _, d in decided],
            [d.reason for _, d in decided],
            [d.withdrawn for _, d in decided],
            [d.decided_at for _, d in decided],
        )
        return {r["case_id"] for r in rows}

    async def decisions_of(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Decision]:
        """The newest decision kept for each of these cases (those with one)."""
        rows = await self.conn.fetch(
            """SELECT case_id, version, outcome, priority, reason_code, reason, withdrawn, decided_at
               FROM decisions WHERE case_id = ANY($1::uuid[])""",
            list(set(case_ids)),
        )
        return {r["case_id"]: _decision_of(r) for r in rows}

    async def decision(self, case_id: uuid.UUID) -> Decision | None:
        """The newest decision kept for the case (perhaps before its registration arrived)."""
        return (await self.decisions_of([case_id])).get(case_id)

    async def ready_cases(
        self,
        route_id: str,
        departure_date: date,
        abroad: list[str] | None = None,
        among: list[uuid.UUID] | None = None,
    ) -> list[ReadyCase]:
        """Eligible, unplaced, not withdrawn cases for that route and day whose consent covers every
        country abroad; only ``among`` (the cases the caller has locked) when given."""
        args: list[Any] = [route_id, departure_date, abroad or [], Outcome.ELIGIBLE.value]
        if among is not None:
            args.append(among)
        ready = READY_CASES if among is None else READY_CASES + " AND c.case_id = ANY($5::uuid[])"
        rows = await self.conn.fetch(ready, *args)
        return [
            ReadyCase(r["case_id"], r["members"], r["priority"], r["registered_at"], r["needs_escort"])
            for r in rows
        ]

    # --- movements and vehicles ----------------------------------------------------------------

    async def create_movement(
        self,
        movement_id: str,
        route_id: str,
        departure_date: date,
        vehicles: list[tuple[str, int, uuid.UUID]],
    ) -> bool:
        """False when a movement with that id exists (planned before, or by a concurrent request)."""
        created = await self.conn.execute(
            """INSERT INTO movements (movement_id, route_id, departure_date, status) VALUES ($1, $2, $3, $4)
               ON CONFLICT (movement_id) DO NOTHING""",
            movement_id,
            route_id,
            departure_date,
            MovementStatus.PLANNED.value,
        )
        if not created.endswith(" 1"):
            return False
        await self.conn.executemany(
            "INSERT INTO vehicles (movement_id, vehicle_id, capacity, manifest_id) VALUES ($1, $2, $3, $4)",
            [(movement_id, v, cap, mid) for v, cap, mid in vehicles],
        )
        return True

    async def movement(self, movement_id: str) -> Movement | None:
        r = await self.conn.fetchrow(
            "SELECT movement_id, route_id, departure_date, status FROM movements WHERE movement_id = $1",
            movement_id,
        )
        if r is None:
            return None
        return Movement(r["movement_id"], r["route_id"], r["departure_date"], MovementStatus(r["status"]))

    async def vehicles(self, movement_id: str) -> list[MovementVehicle]:
        rows = await self.conn.fetch(
            f"SELECT {_VEHICLE} FROM vehicles WHERE movement_id = $1 ORDER BY vehicle_id", movement_id
        )
        return [_vehicle(r) for r in rows]

    async def vehicle(self, movement_id: str, vehicle_id: str) -> MovementVehicle | None:
        """A vehicle as it stands, without a lock (``lock_vehicle`` to change it)."""
        r = await self.conn.fetchrow(
            f"SELECT {_VEHICLE} FROM vehicles WHERE movement_id = $1 AND vehicle_id = $2",
            movement_id,
            vehicle_id,
        )
        return _vehicle(r) if r else None

    async def set_escort_seats(self, movement_id: str, vehicle_ids: Iterable[str]) -> None:
        """Keep an escort's seat on these vehicles."""
        ids = sorted(set(vehicle_ids))
        if ids:
            await self.conn.execute(
                "UPDATE vehicles SET escort_seat = true WHERE movement_id = $1 AND vehicle_id = ANY($2::text[])",
                movement_id,
                ids,
            )

    async def vehicle_loads(self, movement_id: str) -> list[Vehicle]:
        """Each vehicle's seats taken by cases still travelling on it."""
        rows = await self.conn.fetch(
            """SELECT v.vehicle_id, v.capacity, v.escort_seat,
                      coalesce(sum(a.seats) FILTER (WHERE a.state = ANY($2::text[])), 0) AS taken
               FROM vehicles v LEFT JOIN assignments a USING (movement_id, vehicle_id)
               WHERE v.movement_id = $1 GROUP BY v.vehicle_id, v.capacity, v.escort_seat
               ORDER BY v.vehicle_id""",
            movement_id,
            _states(HOLDS_SEAT),
        )
        return [Vehicle(r["vehicle_id"], r["capacity"], int(r["taken"]), r["escort_seat"]) for r in rows]

    async def bump_manifest(self, movement_id: str, vehicle_id: str) -> int:
        return int(
            await self.conn.fetchval(
                """UPDATE vehicles SET manifest_revision = manifest_revision + 1
                   WHERE movement_id = $1 AND vehicle_id = $2 RETURNING manifest_revision""",
                movement_id,
                vehicle_id,
            )
        )

    async def mark_departed(self, movement_id: str, vehicle_id: str, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE vehicles SET departed_at = $3 WHERE movement_id = $1 AND vehicle_id = $2",
            movement_id,
            vehicle_id,
            at,
        )
        await self.conn.execute(
            """UPDATE movements SET status = $2 WHERE movement_id = $1
               AND NOT EXISTS (SELECT 1 FROM vehicles WHERE movement_id = $1 AND departed_at IS NULL)""",
            movement_id,
            MovementStatus.DEPARTED.value,
        )

    async def close_movement_if_done(self, movement_id: str) -> bool:
        return bool(await self.close_movements_if_done([movement_id]))

    async def close_movements_if_done(self, movement_ids: Iterable[str]) -> list[str]:
        """Close each of these movements whose every seat is settled, in one statement; those
        closed now."""
        ids = sorted(set(movement_ids))
        if not ids:
            return []
        rows = await self.conn.fetch(
            """UPDATE movements m SET status = $2 WHERE m.movement_id = ANY($1::text[]) AND m.status <> $2
               AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.movement_id = m.movement_id
                               AND a.state <> ALL($3::text[]))
               RETURNING m.movement_id""",
            ids,
            MovementStatus.CLOSED.value,
            _states(SETTLED),
        )
        return sorted(r["movement_id"] for r in rows)

    async def record_progress(
        self, movement_id: str, vehicle_id: str, checkpoint_id: str, stage: str, at: datetime
    ) -> bool:
        """False when that vehicle's stage at that checkpoint was recorded before."""
        status = await self.conn.execute(
            """INSERT INTO vehicle_progress (movement_id, vehicle_id, checkpoint_id, stage, at)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
            movement_id,
            vehicle_id,
            checkpoint_id,
            stage,
            at,
        )
        return status.endswith(" 1")

    # --- seats ---------------------------------------------------------------------------------

    async def assign_many(self, movement_id: str, seats: list[tuple[uuid.UUID, str, int, str]]) -> None:
        """Place cases on the movement's vehicles in one statement: (case, vehicle, seats,
        explanation) each. A case has at most one seat: one placed before makes it raise."""
        if not seats:
            return
        await self.conn.execute(
            """INSERT INTO assignments (case_id, movement_id, vehicle_id, seats, state, explanation)
               SELECT case_id, $1, vehicle_id, seats, $6, explanation
               FROM unnest($2::uuid[], $3::text[], $4::int[], $5::text[])
                    AS s(case_id, vehicle_id, seats, explanation)""",
            movement_id,
            [case_id for case_id, _, _, _ in seats],
            [vehicle_id for _, vehicle_id, _, _ in seats],
            [n for _, _, n, _ in seats],
            [why for _, _, _, why in seats],
            SeatState.MANIFESTED.value,
        )

    async def assignment(self, case_id: uuid.UUID) -> CaseSeat | None:
        return (await self.assignments_of([case_id])).get(case_id)

    async def assignments_of(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, CaseSeat]:
        """The seats of these cases (those that have one), with their routes, in one statement."""
        rows = await self.conn.fetch(
            """SELECT a.case_id, a.movement_id, a.vehicle_id, a.seats, a.state, a.explanation, m.route_id,
                      jsonb_array_length(c.passengers) AS members
               FROM assignments a JOIN movements m USING (movement_id) JOIN cases c USING (case_id)
               WHERE a.case_id = ANY($1::uuid[])""",
            list(set(case_ids)),
        )
        return {
            r["case_id"]: CaseSeat(**vars(_seat(r)), route_id=r["route_id"], members=r["members"])
            for r in rows
        }

    async def assignments(self, movement_id: str) -> list[Seat]:
        rows = await self.conn.fetch(
            f"SELECT {_SEAT} FROM assignments WHERE movement_id = $1 ORDER BY vehicle_id, case_id",
            movement_id,
        )
        return [_seat(r) for r in rows]

    async def seats_on(self, movement_id: str, vehicle_id: str) -> list[Seat]:
        """Every seat on one vehicle, whatever its state, in case-id order."""
        rows = await self.conn.fetch(
            f"""SELECT {_SEAT} FROM assignments WHERE movement_id = $1 AND vehicle_id = $2
                ORDER BY case_id""",
            movement_id,
            vehicle_id,
        )
        return [_seat(r) for r in rows]

    async def remove_assignment(self, case_id: uuid.UUID) -> Seat | None:
        """Take a case off its vehicle before departure; returns the seat it had (where it was)."""
        r = await self.conn.fetchrow(
            f"DELETE FROM assignments WHERE case_id = $1 AND state = ANY($2::text[]) RETURNING {_SEAT}",
            case_id,
            _states(reached_from(TAKEN_OFF)),
        )
        return _seat(r) if r else None

    async def set_assignment_state(
        self, case_id: uuid.UUID, state: SeatState, *, was: Iterable[SeatState]
    ) -> bool:
        """Move a case's seat to ``state`` only from one of the states the decision was made in
        (``state.reached_from``, the domain's transitions)."""
        status = await self.conn.execute(
            "UPDATE assignments SET state = $2 WHERE case_id = $1 AND state = ANY($3::text[])",
            case_id,
            state.value,
            _states(was),
        )
        return status.endswith(" 1")

    async def set_assignment_states(
        self, case_ids: Iterable[uuid.UUID], state: SeatState, *, was: Iterable[SeatState]
    ) -> list[Seat]:
        """``set_assignment_state`` for many cases in one statement; the seats moved, in case-id
        order."""
        ids = list(case_ids)
        if not ids:
            return []
        rows = await self.conn.fetch(
            f"""UPDATE assignments SET state = $2 WHERE case_id = ANY($1::uuid[]) AND state = ANY($3::text[])
                RETURNING {_SEAT}""",
            ids,
            state.value,
            _states(was),
        )
        return sorted((_seat(r) for r in rows), key=lambda seat: seat.case_id)

    async def record_crossing(
        self, case_id: uuid.UUID, checkpoint_id: str, cleared: bool, at: datetime, reason_code: str | None
    ) -> dict[str, RecordedCrossing]:
        """Record a post's decision (again: unchanged once announced, the stream said it); every
        decision on the case recorded now, by checkpoint."""
        await self.conn.execute(
            """INSERT INTO crossings (case_id, checkpoint_id, cleared, decided_at, reason_code)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (case_id, checkpoint_id) DO UPDATE SET cleared = EXCLUDED.cleared,
                   decided_at = EXCLUDED.decided_at, reason_code = EXCLUDED.reason_code
               WHERE NOT crossings.announced""",
            case_id,
            checkpoint_id,
            cleared,
            at,
            reason_code,
        )
        return (await self.crossings_of([case_id])).get(case_id, {})

    async def crossings_of(
        self, case_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, RecordedCrossing]]:
        """Every decision recorded on these cases, by case and checkpoint, in one statement."""
        rows = await self.conn.fetch(
            """SELECT case_id, checkpoint_id, cleared, decided_at, reason_code, announced
               FROM crossings WHERE case_id = ANY($1::uuid[])""",
            list(set(case_ids)),
        )
        recorded: dict[uuid.UUID, dict[str, RecordedCrossing]] = {}
        for r in rows:
            recorded.setdefault(r["case_id"], {})[r["checkpoint_id"]] = RecordedCrossing(
                r["checkpoint_id"], r["cleared"], r["decided_at"], r["reason_code"], r["announced"]
            )
        return recorded

    async def save_crossings(self, crossings: Sequence[tuple[uuid.UUID, RecordedCrossing]]) -> None:
        """Write these decisions as they now stand, each (case, checkpoint) once, in one statement:
        a run of crossings decided in memory under its cases' locks, on what ``crossings_of`` read
        (so each row's ``announced`` is already the truth: nothing here needs to check it again)."""
        if not crossings:
            return
        await self.conn.execute(
            """INSERT INTO crossings (case_id, checkpoint_id, cleared, decided_at, reason_code, announced)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::boolean[], $4::timestamptz[], $5::text[],
                                    $6::boolean[])
               ON CONFLICT (case_id, checkpoint_id) DO UPDATE SET cleared = EXCLUDED.cleared,
                   decided_at = EXCLUDED.decided_at, reason_code = EXCLUDED.reason_code,
                   announced = EXCLUDED.announced""",
            [case_id for case_id, _ in crossings],
            [c.checkpoint_id for _, c in crossings],
            [c.cleared for _, c in crossings],
            [c.decided_at for _, c in crossings],
            [c.reason_code for _, c in crossings],
            [c.announced for _, c in crossings],
        )

    async def mark_announced(self, case_id: uuid.UUID, checkpoint_ids: Iterable[str]) -> None:
        """The stream now shows these decisions on the case."""
        ids = list(checkpoint_ids)
        if ids:
            await self.conn.execute(
                "UPDATE crossings SET announced = true WHERE case_id = $1 AND checkpoint_id = ANY($2::text[])",
                case_id,
                ids,
            )

    # --- manifests -----------------------------------------------------------------------------

    async def passengers_on(self, movement_id: str, vehicle_id: str) -> list[ManifestPassenger]:
        """Who the vehicle's manifest lists, each case's people together, first registered first."""
        rows = await self.conn.fetch(
            """SELECT c.passengers FROM assignments a JOIN cases c USING (case_id)
               WHERE a.movement_id = $1 AND a.vehicle_id = $2 AND a.state = ANY($3::text[])
               ORDER BY c.registered_at, c.case_id""",
            movement_id,
            vehicle_id,
            _states(ON_MANIFEST),
        )
        return [ManifestPassenger.model_validate(p) for r in rows for p in json.loads(r["passengers"])]

    async def log_export(self, actor: str, purpose: str, movement_id: str, vehicle_id: str, fmt: str) -> None:
        await self.conn.execute(
            """INSERT INTO pii_access_log (actor, purpose, movement_id, vehicle_id, format)
               VALUES ($1, $2, $3, $4, $5)""",
            actor,
            purpose,
            movement_id,
            vehicle_id,
            fmt,
        )

    async def access_log(self, movement_id: str) -> list[ManifestExport]:
        rows = await self.conn.fetch(
            """SELECT accessed_at, actor, purpose, vehicle_id, format FROM pii_access_log
               WHERE movement_id = $1 ORDER BY id""",
            movement_id,
        )
        return [
            ManifestExport(r["accessed_at"], r["actor"], r["purpose"], r["vehicle_id"], r["format"])
            for r in rows
        ]

    # --- departures, as decided (for repeats and reads) -----------------------------------------

    async def save_departure(self, d: RecordedDeparture) -> None:
        await self.conn.execute(
            """INSERT INTO departure_outcomes
                   (movement_id, vehicle_id, departed, no_shows, seats_offered, fill_freed_seats, departed_at)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)""",
            d.movement_id,
            d.vehicle_id,
            d.departed,
            d.no_shows,
            json.dumps([{"case_id": str(c), "explanation": why} for c, why in d.seats_offered]),
            d.fill_freed_seats,
            d.departed_at,
        )

    async def departure(self, movement_id: str, vehicle_id: str) -> RecordedDeparture | None:
        r = await self.conn.fetchrow(
            """SELECT departed, no_shows, seats_offered, fill_freed_seats, departed_at
               FROM departure_outcomes WHERE movement_id = $1 AND vehicle_id = $2""",
            movement_id,
            vehicle_id,
        )
        if r is None:
            return None
        return RecordedDeparture(
            movement_id,
            vehicle_id,
            list(r["departed"]),
            list(r["no_shows"]),
            [(uuid.UUID(o["case_id"]), o["explanation"]) for o in json.loads(r["seats_offered"])],
            r["fill_freed_seats"],
            r["departed_at"],
        )


@dataclass(frozen=True)
class RecordedDeparture:
    """What a departure decided: case ids only."""

    movement_id: str
    vehicle_id: str
    departed: list[uuid.UUID]
    no_shows: list[uuid.UUID]
    seats_offered: list[tuple[uuid.UUID, str]]
    fill_freed_seats: bool
    departed_at: datetime


def _passengers(case: CaseRegistered | CaseUpdated) -> list[dict[str, object]]:
    """The case's people as its manifests list them (what transport keeps of them)."""
    return [
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


def _scope(case: CaseRegistered | CaseUpdated) -> list[str]:
    """The countries the case's consent lets its manifests go to."""
    return list(case.consent.scope) if case.consent.given else []


def _decision_of(r: asyncpg.Record) -> Decision:
    return Decision(
        version=r["version"],
        outcome=Outcome(r["outcome"]),
        priority=r["priority"],
        reason_code=r["reason_code"],
        reason=r["reason"],
        withdrawn=r["withdrawn"],
        decided_at=r["decided_at"],
    )
