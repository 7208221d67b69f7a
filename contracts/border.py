"""Events owned by border clearance: one decision per case per checkpoint, pseudonymous."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Event


class PersonDecision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    person_id: uuid.UUID
    cleared: bool
    reason_code: str | None = None


class _CrossingDecision(Event):
    case_id: uuid.UUID
    checkpoint_id: str
    country: str = Field(pattern=r"^[A-Z]{3}$")
    crossing: str
    direction: Literal["exit", "entry"]
    movement_id: str
    vehicle_id: str
    decisions: list[PersonDecision]
    decided_at: datetime


class BorderCrossingCleared(_CrossingDecision):
    event_type: ClassVar[str] = "org.corridor.border.crossing-cleared.v1"


class BorderCrossingRefused(_CrossingDecision):
    event_type: ClassVar[str] = "org.corridor.border.crossing-refused.v1"
