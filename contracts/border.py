"""Events owned by border clearance: one decision per case per checkpoint, pseudonymous."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import Event


class PersonDecision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    person_id: uuid.UUID
    cleared: bool
    reason_code: str | None = None


class _CrossingDecision(Event):
    case_id: uuid.UUID
    checkpoint_id: str = Field(pattern=r"^[a-z0-9-]+$")
    country: str = Field(pattern=r"^[A-Z]{3}$")
    crossing: str
    direction: Literal["exit", "entry"]
    movement_id: str
    vehicle_id: str
    decisions: list[PersonDecision]
    decided_at: AwareDatetime


class BorderCrossingCleared(_CrossingDecision):
    """Everyone in the case was cleared at this checkpoint."""

    event_type: ClassVar[str] = "org.corridor.border.crossing-cleared.v1"


class BorderCrossingRefused(_CrossingDecision):
    """Someone in the case was refused at this checkpoint: the family is held together."""

    event_type: ClassVar[str] = "org.corridor.border.crossing-refused.v1"
