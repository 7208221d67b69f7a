"""An in-memory ``TransportStore`` for the transport use-case tests: the same methods and answers as
the real store on PostgreSQL, kept in dictionaries. Lock methods lock nothing; they record what was
locked, in order (``locks``), so a test can check the lock order the use cases keep."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from contracts.eligibility import Outcome
from contracts.intake import CaseRegistered, CaseUpdated
from contracts.transport import ManifestPassenger
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
from services.transport.store import RecordedDeparture


@dataclass
class StoredCase:
    case_id: uuid.UUID
    route_id: str
    planned_travel_date: date
    registered_at: datetime
    passengers: list[ManifestPassenger]
    needs_escort: bool
    consent_scope: list[str]
    withdrawn_at: datetime | None = None
    erased_at: datetime | None = None


class FakeTransportStore:
    def __init__(self) -> None:
        self.cases: dict[uuid.UUID, StoredCase] = {}
        self.withdrawals: dict[uuid.UUID, tuple[bool, str]] = {}
        self.decisions: dict[uuid.UUID, Decision] = {}
        self.movements: dict[str, Movement] = {}
        self.fleet: dict[tuple[str, str], MovementVehicle] = {}
        self.seats: dict[uuid.UUID, Seat] = {}
        self.progress: set[tuple[str, str, str, str]] = set()
        self.crossings: dict[tuple[uuid.UUID, str], RecordedCrossing] = {}
        self.exports: list[tuple[str, ManifestExport]] = []
        self.locks: list[tuple[str, object]] = []
        self.departures: dict[tuple[str, str], RecordedDeparture] = {}

    # --- locks ---------------------------------------------------------------------------------

    async def lock_case(self, case_id: uuid.UUID) -> Case | None:
        self.locks.append(("case", case_id))
        c = self.cases.get(case_id)
        if c is None:
            return None
        return Case(c.case_id, c.route_id, c.planned_travel_date, c.withdrawn_at, len(c.passengers))

    async def lock_case_id(self, case_id: uuid.UUID) -> None:
        self.locks.append(("case id", case_id))

    async def lock_case_ids(self, case_ids: Iterable[uuid.UUID]) -> None:
        for c in sorted(set(case_ids), key=str):
            await self.lock_case_id(c)

    async def locked_cases(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Case]:
        return {
            c: found for c in sorted(set(case_ids), key=str) if (found := await self.lock_case(c)) is not None
        }

    async def lock_cases(self, case_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
        locked = sorted({c for c in case_ids if c in self.cases}, key=str)
        self.locks.append(("cases", tuple(locked)))
        return locked

    async def lock_vehicle(self, movement_id: str, vehicle_id: str) -> MovementVehicle | None:
        self.locks.append(("vehicle", (movement_id, vehicle_id)))
        return self.fleet.get((movement_id, vehicle_id))

    # --- cases ---------------------------------------------------------------------------------

    async def save_registrations(self, cases: Sequence[CaseRegistered]) -> None:
        for case in cases:
            await self.save_case(case)

    async def save_case(self, case: CaseRegistered | CaseUpdated) -> tuple[str, date] | None:
        before = self.cases.get(case.case_id)
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
            )
            for p in case.members
        ]
        self.cases[case.case_id] = StoredCase(
            case.case_id,
            case.route_id,
            case.planned_travel_date,
            before.registered_at if before else case.registered_at,
            passengers,
            any(p.needs_escort for p in case.members),
            list(case.consent.scope) if case.consent.given else [],
            before.withdrawn_at if before else None,
        )
        return (before.route_id, before.planned_travel_date) if before else None

    async def erase_passengers(self, case_id: uuid.UUID, at: datetime) -> bool:
        case = self.cases[case_id]
        if case.erased_at is not None:
            return False
        case.erased_at = at
        case.passengers = [
            p.model_copy(
                update={
                    "surname": "",
                    "given_names": "",
                    "document_number": "-",
                    "birth_date": p.birth_date.replace(month=1, day=1),
                }
            )
            for p in case.passengers
        ]
        return True

    async def mark_withdrawn(self, case_id: uuid.UUID, at: datetime, *, applied: bool, detail: str) -> None:
        if applied:
            self.cases[case_id].withdrawn_at = at
        self.withdrawals.setdefault(case_id, (applied, detail))

    async def save_decision(self, case_id: uuid.UUID, d: Decision) -> bool:
        known = self.decisions.get(case_id)
        if known is not None and known.version >= d.version:
            return False
        self.decisions[case_id] = d
        return True

    async def save_decisions(self, decided: Sequence[tuple[uuid.UUID, Decision]]) -> set[uuid.UUID]:
        return {c for c, d in decided if await self.save_decision(c, d)}

    async def decision(self, case_id: uuid.UUID) -> Decision | None:
        return self.decisions.get(case_id)

    async def decisions_of(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Decision]:
        return {c: self.decisions[c] for c in case_ids if c in self.decisions}

    async def ready_cases(
        self,
        route_id: str,
        departure_date: date,
        abroad: list[str] | None = None,
        among: list[uuid.UUID] | None = None,
    ) -> list[ReadyCase]:
        ready = []
        for c in self.cases.values():
            decision = self.decisions.get(c.case_id)
            if (
                decision is not None
                and decision.outcome is Outcome.ELIGIBLE
                and c.case_id not in self.seats
                and c.withdrawn_at is None
                and c.route_id == route_id
                and c.planned_travel_date == departure_date
                and set(abroad or []) <= set(c.consent_scope)
                and (among is None or c.case_id in among)
            ):
                ready.append(
                    ReadyCase(
                        c.case_id, len(c.passengers), decision.priority, c.registered_at, c.needs_escort
                    )
                )
        return ready

    # --- movements and vehicles ----------------------------------------------------------------

    async def create_movement(
        self,
        movement_id: str,
        route_id: str,
        departure_date: date,
        vehicles: list[tuple[str, int, uuid.UUID]],
    ) -> bool:
        if movement_id in self.movements:
            return False
        self.movements[movement_id] = Movement(movement_id, route_id, departure_date, MovementStatus.PLANNED)
        for vehicle_id, capacity, manifest_id in vehicles:
            self.fleet[(movement_id, vehicle_id)] = MovementVehicle(
                movement_id, vehicle_id, capacity, manifest_id, 1, False, None
            )
        return True

    async def movement(self, movement_id: str) -> Movement | None:
        return self.movements.get(movement_id)

    async def vehicles(self, movement_id: str) -> list[MovementVehicle]:
        return sorted((v for (m, _), v in self.fleet.items() if m == movement_id), key=lambda v: v.vehicle_id)

    async def vehicle(self, movement_id: str, vehicle_id: str) -> MovementVehicle | None:
        return self.fleet.get((movement_id, vehicle_id))

    async def set_escort_seats(self, movement_id: str, vehicle_ids: Iterable[str]) -> None:
        for vehicle_id in vehicle_ids:
            self.fleet[(movement_id, vehicle_id)] = replace(
                self.fleet[(movement_id, vehicle_id)], escort_seat=True
            )

    async def vehicle_loads(self, movement_id: str) -> list[Vehicle]:
        return [
            Vehicle(
                v.vehicle_id,
                v.capacity,
                sum(
                    s.seats
                    for s in self.seats.values()
                    if (s.movement_id, s.vehicle_id) == (movement_id, v.vehicle_id) and s.state in HOLDS_SEAT
                ),
                v.escort_seat,
            )
            for v in await self.vehicles(movement_id)
        ]

    async def bump_manifest(self, movement_id: str, vehicle_id: str) -> int:
        v = self.fleet[(movement_id, vehicle_id)]
        self.fleet[(movement_id, vehicle_id)] = replace(v, manifest_revision=v.manifest_revision + 1)
        return v.manifest_revision + 1

    async def mark_departed(self, movement_id: str, vehicle_id: str, at: datetime) -> None:
        self.fleet[(movement_id, vehicle_id)] = replace(self.fleet[(movement_id, vehicle_id)], departed_at=at)
        if all(v.departed_at is not None for v in await self.vehicles(movement_id)):
            self.movements[movement_id] = replace(self.movements[movement_id], status=MovementStatus.DEPARTED)

    async def save_departure(self, d: RecordedDeparture) -> None:
        self.departures[(d.movement_id, d.vehicle_id)] = d

    async def departure(self, movement_id: str, vehicle_id: str) -> RecordedDeparture | None:
        return self.departures.get((movement_id, vehicle_id))

    async def close_movement_if_done(self, movement_id: str) -> bool:
        m = self.movements[movement_id]
        if m.status is MovementStatus.CLOSED:
            return False
        if any(s.movement_id == movement_id and s.state not in SETTLED for s in self.seats.values()):
            return False
        self.movements[movement_id] = replace(m, status=MovementStatus.CLOSED)
        return True

    async def close_movements_if_done(self, movement_ids: Iterable[str]) -> list[str]:
        return [m for m in sorted(set(movement_ids)) if await self.close_movement_if_done(m)]

    async def record_progress(
        self, movement_id: str, vehicle_id: str, checkpoint_id: str, stage: str, at: datetime
    ) -> bool:
        key = (movement_id, vehicle_id, checkpoint_id, stage)
        if key in self.progress:
            return False
        self.progress.add(key)
        return True

    # --- seats ---------------------------------------------------------------------------------

    async def assign_many(self, movement_id: str, seats: list[tuple[uuid.UUID, str, int, str]]) -> None:
        for case_id, vehicle_id, n, explanation in seats:
            assert case_id not in self.seats, f"case {case_id} placed twice"
            self.seats[case_id] = Seat(case_id, movement_id, vehicle_id, n, SeatState.MANIFESTED, explanation)

    async def assignment(self, case_id: uuid.UUID) -> CaseSeat | None:
        return (await self.assignments_of([case_id])).get(case_id)  # as the real store's

    async def assignments_of(self, case_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, CaseSeat]:
        return {
            c: CaseSeat(
                case_id=s.case_id,
                movement_id=s.movement_id,
                vehicle_id=s.vehicle_id,
                seats=s.seats,
                state=s.state,
                explanation=s.explanation,
                route_id=self.movements[s.movement_id].route_id,
                members=len(self.cases[c].passengers),
            )
            for c in set(case_ids)
            if (s := self.seats.get(c)) is not None
        }

    async def assignments(self, movement_id: str) -> list[Seat]:
        return sorted(
            (s for s in self.seats.values() if s.movement_id == movement_id),
            key=lambda s: (s.vehicle_id, str(s.case_id)),
        )

    async def seats_on(self, movement_id: str, vehicle_id: str) -> list[Seat]:
        return sorted(
            (s for s in self.seats.values() if (s.movement_id, s.vehicle_id) == (movement_id, vehicle_id)),
            key=lambda s: str(s.case_id),
        )

    async def remove_assignment(self, case_id: uuid.UUID) -> Seat | None:
        s = self.seats.get(case_id)
        if s is None or s.state not in reached_from(TAKEN_OFF):
            return None
        return self.seats.pop(case_id)

    async def set_assignment_state(
        self, case_id: uuid.UUID, state: SeatState, *, was: Iterable[SeatState]
    ) -> bool:
        s = self.seats.get(case_id)
        if s is None or s.state not in set(was):
            return False
        self.seats[case_id] = replace(s, state=state)
        return True

    async def set_assignment_states(
        self, case_ids: Iterable[uuid.UUID], state: SeatState, *, was: Iterable[SeatState]
    ) -> list[Seat]:
        states = tuple(was)
        moved = [c for c in set(case_ids) if await self.set_assignment_state(c, state, was=states)]
        return sorted((self.seats[c] for c in moved), key=lambda s: str(s.case_id))

    async def record_crossing(
        self, case_id: uuid.UUID, checkpoint_id: str, cleared: bool, at: datetime, reason_code: str | None
    ) -> dict[str, RecordedCrossing]:
        known = self.crossings.get((case_id, checkpoint_id))
        if known is None or not known.announced:
            self.crossings[(case_id, checkpoint_id)] = RecordedCrossing(
                checkpoint_id, cleared, at, reason_code, announced=False
            )
        return {cp: c for (case, cp), c in self.crossings.items() if case == case_id}

    async def crossings_of(
        self, case_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, RecordedCrossing]]:
        wanted = set(case_ids)
        recorded: dict[uuid.UUID, dict[str, RecordedCrossing]] = {}
        for (case_id, cp), c in self.crossings.items():
            if case_id in wanted:
                recorded.setdefault(case_id, {})[cp] = c
        return recorded

    async def save_crossings(self, crossings: Sequence[tuple[uuid.UUID, RecordedCrossing]]) -> None:
        keys = [(case_id, c.checkpoint_id) for case_id, c in crossings]
        assert len(set(keys)) == len(keys), "one statement writes each crossing once"
        for case_id, c in crossings:
            self.crossings[(case_id, c.checkpoint_id)] = c

    async def mark_announced(self, case_id: uuid.UUID, checkpoint_ids: Iterable[str]) -> None:
        for cp in checkpoint_ids:
            self.crossings[(case_id, cp)] = replace(self.crossings[(case_id, cp)], announced=True)

    # --- manifests -----------------------------------------------------------------------------

    async def passengers_on(self, movement_id: str, vehicle_id: str) -> list[ManifestPassenger]:
        on = [
            self.cases[s.case_id]
            for s in self.seats.values()
            if (s.movement_id, s.vehicle_id) == (movement_id, vehicle_id) and s.state in ON_MANIFEST
        ]
        on.sort(key=lambda c: (c.registered_at, str(c.case_id)))
        return [p for c in on for p in c.passengers]

    async def log_export(self, actor: str, purpose: str, movement_id: str, vehicle_id: str, fmt: str) -> None:
        self.exports.append(
            (movement_id, ManifestExport(datetime.now().astimezone(), actor, purpose, vehicle_id, fmt))
        )

    async def access_log(self, movement_id: str) -> list[ManifestExport]:
        return [e for m, e in self.exports if m == movement_id]
