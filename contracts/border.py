"""Events owned by border clearance: one decision per case per checkpoint, pseudonymous."""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.base import Event
from contracts.intake import EvidenceKind


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
    # Transport announces the post's decision on the public stream (the stream's single home is
    # the host mission), so the post passes on what the stream may say of a refusal. Optional: a
    # post of an earlier release does not send it, and the stream then gives no reason.
    public_reason_code: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]{3,60}$",
        description="For a refusal, where it came from as a public reason code (contracts/reasons.py: "
        "an officer, a document check, the hold list); the officer's own code and words stay in "
        "``decisions`` and the post's records. None when cleared.",
        examples=["refused_by_officer"],
    )


class BorderCrossingCleared(_CrossingDecision):
    """Everyone in the case was cleared at this checkpoint."""

    event_type: ClassVar[str] = "org.corridor.border.crossing-cleared.v1"


class BorderCrossingRefused(_CrossingDecision):
    """Someone in the case was refused at this checkpoint: the family is held together."""

    event_type: ClassVar[str] = "org.corridor.border.crossing-refused.v1"


class CrossingRequirementPublished(Event):
    """A checkpoint's new entry or exit requirement, effective for crossings from a date (to a
    date, when it has an end).

    Every case whose route passes the checkpoint is re-evaluated against it.
    """

    event_type: ClassVar[str] = "org.corridor.border.crossing-requirement-published.v1"

    requirement_id: uuid.UUID
    checkpoint_id: str = Field(pattern=r"^[a-z0-9-]+$")
    country: str = Field(pattern=r"^[A-Z]{3}$")
    post: str = Field(description="The border post's name", examples=["Gisht-Kuprik"])
    code: str = Field(pattern=r"^[a-z0-9_]{3,60}$", examples=["negative_covid19_test"])
    description: str = Field(max_length=500, examples=["Negative COVID-19 PCR test taken within 72 hours"])
    evidence_kind: EvidenceKind
    valid_hours: int = Field(
        ge=1, le=24 * 60, description="Evidence must be at most this old on the crossing day"
    )
    effective_from: date = Field(description="First travel date the requirement applies to")
    effective_until: date | None = Field(
        default=None,
        description="Last travel date the requirement applies to; none: every later date, until it "
        "is lifted. A reader that does not know the field applies the requirement to later dates too.",
    )
    published_at: AwareDatetime

    @model_validator(mode="after")
    def _a_window(self) -> CrossingRequirementPublished:
        if self.effective_until is not None and self.effective_until < self.effective_from:
            raise ValueError("effective_until is before effective_from")
        return self

    def subject(self) -> str:
        return self.checkpoint_id


class CrossingRequirementLifted(Event):
    event_type: ClassVar[str] = "org.corridor.border.crossing-requirement-lifted.v1"

    requirement_id: uuid.UUID
    checkpoint_id: str = Field(pattern=r"^[a-z0-9-]+$")
    lifted_at: AwareDatetime

    def subject(self) -> str:
        return self.checkpoint_id
