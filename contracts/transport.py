"""Events owned by transport. A manifest carries the personal data a border post needs and goes
only to the crossing points on the route, one topic per checkpoint."""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import Event
from contracts.intake import DocumentType


class ManifestPassenger(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    case_id: uuid.UUID
    person_id: uuid.UUID
    surname: str
    given_names: str
    birth_date: date
    sex: str = Field(pattern=r"^[MFX]$")
    nationality: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 3166-1 alpha-3")
    document_type: DocumentType
    document_number: str = Field(min_length=1, max_length=20)


class ManifestIssued(Event):
    """A vehicle's passenger list for one checkpoint; a later revision replaces earlier ones."""

    event_type: ClassVar[str] = "org.corridor.transport.manifest-issued.v1"

    manifest_id: uuid.UUID
    revision: int = Field(ge=1, description="An amended manifest replaces earlier revisions")
    movement_id: str
    vehicle_id: str
    route_id: str
    checkpoint_id: str = Field(pattern=r"^[a-z0-9-]+$")
    departure_date: date
    passengers: list[ManifestPassenger]
    issued_at: AwareDatetime

    def subject(self) -> str:
        return f"{self.movement_id}/{self.vehicle_id}"


class MovementDeparted(Event):
    """A vehicle left the gathering point with these cases on board."""

    event_type: ClassVar[str] = "org.corridor.transport.movement-departed.v1"

    movement_id: str
    vehicle_id: str
    case_ids: list[uuid.UUID]
    departed_at: AwareDatetime

    def subject(self) -> str:
        return f"{self.movement_id}/{self.vehicle_id}"


class VehicleProgressRecorded(Event):
    """A vehicle reached or left a checkpoint on its route."""

    event_type: ClassVar[str] = "org.corridor.transport.vehicle-progress-recorded.v1"

    movement_id: str
    vehicle_id: str
    checkpoint_id: str = Field(pattern=r"^[a-z0-9-]+$")
    stage: Literal["arrived", "departed"]
    case_ids: list[uuid.UUID] = Field(description="Cases on board")
    at: AwareDatetime

    def subject(self) -> str:
        return f"{self.movement_id}/{self.vehicle_id}"


class PassengerDataErased(Event):
    """A case's people on a vehicle's manifest for one checkpoint had their personal data erased
    (intake's ``PersonalDataErased``): the post erases its copy of them. On the checkpoint's own
    manifest topic, after the manifests it amends."""

    event_type: ClassVar[str] = "org.corridor.transport.passenger-data-erased.v1"

    case_id: uuid.UUID
    movement_id: str
    vehicle_id: str
    checkpoint_id: str = Field(pattern=r"^[a-z0-9-]+$")
    erased_at: AwareDatetime

    def subject(self) -> str:
        return f"{self.movement_id}/{self.vehicle_id}"
