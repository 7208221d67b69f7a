"""Movement planning, without I/O: who travels on which vehicle, and why.

Cases are placed in priority order (vulnerable first, then first registered), a family always in
one vehicle, no vehicle over capacity. A vehicle that carries anyone who needs an escort keeps one
seat for the escort. Every case gets an explanation, placed or not. The same function fills seats
freed on the day of departure, starting from what is already on board.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from contracts.transport import ManifestPassenger


@dataclass(frozen=True)
class ReadyCase:
    case_id: uuid.UUID
    members: int
    priority: int
    registered_at: datetime
    needs_escort: bool = False


@dataclass
class Vehicle:
    vehicle_id: str
    capacity: int
    taken: int = 0
    escort_seat: bool = False

    @property
    def free(self) -> int:
        return self.capacity - self.taken - (1 if self.escort_seat else 0)


@dataclass(frozen=True)
class Placement:
    case_id: uuid.UUID
    vehicle_id: str | None
    explanation: str
    escort_seat_reserved: bool = False


@dataclass
class Plan:
    placements: list[Placement] = field(default_factory=list)
    vehicles: dict[str, Vehicle] = field(default_factory=dict)

    def placed(self) -> list[Placement]:
        return [p for p in self.placements if p.vehicle_id is not None]


def plan(cases: Iterable[ReadyCase], vehicles: list[Vehicle]) -> Plan:
    if len({v.vehicle_id for v in vehicles}) != len(vehicles):
        raise ValueError("vehicle ids must be unique")
    state = {v.vehicle_id: Vehicle(v.vehicle_id, v.capacity, v.taken, v.escort_seat) for v in vehicles}
    result = Plan(vehicles=state)
    order = sorted(cases, key=lambda c: (-c.priority, c.registered_at, str(c.case_id)))
    for rank, case in enumerate(order, start=1):

        def seats_needed(v: Vehicle, case: ReadyCase = case) -> int:
            return case.members + (1 if case.needs_escort and not v.escort_seat else 0)

        fitting = [v for v in state.values() if v.free >= seats_needed(v)]
        why = "vulnerability priority" if case.priority > 0 else "registration order"
        if not fitting:
            largest = max((v.free for v in state.values()), default=0)
            escort = " plus an escort seat" if case.needs_escort else ""
            result.placements.append(
                Placement(
                    case.case_id,
                    None,
                    f"Not placed: {case.members} seats needed together{escort}, the most free in one vehicle "
                    f"is {largest} (queue position {rank} by {why}, priority {case.priority})",
                )
            )
            continue
        vehicle = fitting[0]
        reserve = case.needs_escort and not vehicle.escort_seat
        vehicle.escort_seat = vehicle.escort_seat or case.needs_escort
        vehicle.taken += case.members
        escort_note = "; an escort seat is reserved on it" if reserve else ""
        result.placements.append(
            Placement(
                case.case_id,
                vehicle.vehicle_id,
                f"Placed on {vehicle.vehicle_id} with {case.members} seat(s) together "
                f"(queue position {rank} by {why}, priority {case.priority}){escort_note}",
                escort_seat_reserved=reserve,
            )
        )
    return result


MANIFEST_COLUMNS = (
    "case_id",
    "person_id",
    "surname",
    "given_names",
    "birth_date",
    "sex",
    "nationality",
    "document_type",
    "document_number",
)


def manifest_csv(passengers: list[ManifestPassenger]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(MANIFEST_COLUMNS)
    for p in passengers:
        row = p.model_dump(mode="json")
        writer.writerow([row[c] for c in MANIFEST_COLUMNS])
    return out.getvalue()
