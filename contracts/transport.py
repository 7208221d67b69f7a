"""Events owned by transport. A manifest carries the personal data a border post needs and goes
only to the crossing points on the route, one topic per checkpoint."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Event
from contracts.intake import DocumentType


class ManifestPassenger(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    case_id: uuid.UUID
    person_id: uuid.UUID
    surname: str
    given_names: str
    birth_date: date
    sex: str
    nationality: str
    document_type: DocumentType
    document_number: str


class ManifestIssued(Event):
    event_type: ClassVar[str] = "org.corridor.transport.manifest-issued.v1"

    manifest_id: uuid.UUID
    revision: int = Field(ge=1, description="An amended manifest replaces earlier revisions")
    movement_id: str
    vehicle_id: str
    route_id: str
    checkpoint_id: str
    departure_date: date
    passengers: list[ManifestPassenger]
    issued_at: datetime

    def subject(self) -> str:
        return f"{self.movement_id}/{self.vehicle_id}"


class MovementDeparted(Event):
    event_type: ClassVar[str] = "org.corridor.transport.movement-departed.v1"

    movement_id: str
    vehicle_id: str
    case_ids: list[uuid.UUID]
    departed_at: datetime

    def subject(self) -> str:
        return f"{self.movement_id}/{self.vehicle_id}"
