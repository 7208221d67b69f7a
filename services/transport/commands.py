"""What coordinators, drivers and officers ask transport to do: the use cases' inputs, free of HTTP.

The API parses its request bodies (``services.transport.api``) into these; the use cases
(``services.transport.usecases``) take them with a unit of work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Literal


@dataclass(frozen=True)
class VehicleSpec:
    vehicle_id: str
    capacity: int


@dataclass(frozen=True)
class PlanMovement:
    """Place the eligible cases travelling that day on these vehicles."""

    route_id: str
    departure_date: date
    vehicles: tuple[VehicleSpec, ...]
    movement_id: str | None = None


@dataclass(frozen=True)
class RecordDeparture:
    """Board a vehicle against its manifest and let it leave."""

    movement_id: str
    vehicle_id: str
    no_shows: tuple[uuid.UUID, ...] = ()
    fill_freed_seats: bool = True


@dataclass(frozen=True)
class RecordProgress:
    """A vehicle reached or left a checkpoint on its route."""

    movement_id: str
    vehicle_id: str
    checkpoint_id: str
    stage: Literal["arrived", "departed"]


@dataclass(frozen=True)
class ExportManifest:
    """Somebody (``actor``) takes a vehicle's manifest, with personal data, for a ``purpose``."""

    movement_id: str
    vehicle_id: str
    actor: str
    purpose: str
    format: Literal["csv", "pdf"]
