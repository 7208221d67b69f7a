"""Movement planning, without I/O: who travels on which vehicle, and why.

Cases are placed in priority order (vulnerable first, then first registered), a family always in
one vehicle, no vehicle over capacity. Every case gets an explanation, placed or not.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ReadyCase:
    case_id: uuid.UUID
    members: int
    priority: int
    registered_at: datetime


@dataclass(frozen=True)
class Vehicle:
    vehicle_id: str
    capacity: int


@dataclass(frozen=True)
class Placement:
    case_id: uuid.UUID
    vehicle_id: str | None
    explanation: str


def plan(cases: list[ReadyCase], vehicles: list[Vehicle]) -> list[Placement]:
    if len({v.vehicle_id for v in vehicles}) != len(vehicles):
        raise ValueError("vehicle ids must be unique")
    free = {v.vehicle_id: v.capacity for v in vehicles}
    order = sorted(cases, key=lambda c: (-c.priority, c.registered_at, str(c.case_id)))
    placements: list[Placement] = []
    for rank, case in enumerate(order, start=1):
        fitting = [v for v in vehicles if free[v.vehicle_id] >= case.members]
        if not fitting:
            largest = max(free.values(), default=0)
            placements.append(
                Placement(
                    case.case_id,
                    None,
                    f"Not placed: {case.members} seats needed together, the most free in one vehicle "
                    f"is {largest} (queue position {rank}, priority {case.priority})",
                )
            )
            continue
        vehicle = fitting[0]
        free[vehicle.vehicle_id] -= case.members
        why = "vulnerability priority" if case.priority > 0 else "registration order"
        placements.append(
            Placement(
                case.case_id,
                vehicle.vehicle_id,
                f"Placed on {vehicle.vehicle_id} with {case.members} seat(s) together "
                f"(queue position {rank} by {why}, priority {case.priority})",
            )
        )
    return placements


def is_last_checkpoint(checkpoint_ids: list[str], checkpoint_id: str) -> bool:
    return bool(checkpoint_ids) and checkpoint_ids[-1] == checkpoint_id
