"""Events owned by eligibility: explainable decisions, no personal data."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import Event


class RuleOutcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    PENDING = "pending"


class Outcome(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    PENDING = "pending"


class RuleResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    rule: str = Field(examples=["document_valid_on_travel_date"])
    outcome: RuleOutcome
    reason: str = Field(description="Readable by a caseworker")


class EligibilityDecided(Event):
    """A new decision on a case: every rule evaluated, with a reason a caseworker can read."""

    event_type: ClassVar[str] = "org.corridor.eligibility.decided.v1"

    case_id: uuid.UUID
    version: int = Field(ge=1, description="Decisions are versioned per case")
    outcome: Outcome
    priority: int = Field(ge=0, description="Higher travels first")
    rules: list[RuleResult] = Field(min_length=1)
    decided_at: AwareDatetime

    public_reason_code: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]{3,60}$",
        description="What the public status stream says blocks the case: a public reason code "
        "(contracts/reasons.py), never a rule whose name is a health fact",
    )
    public_reason: str | None = Field(
        default=None,
        description="The public reason code's fixed text (contracts/reasons.py): no person, no date, no medical fact",
    )

    def withdrawn(self) -> bool:
        """The decision reflects the applicant's withdrawal (its effect is the withdrawal's)."""
        return any(r.rule == "not_withdrawn" and r.outcome is RuleOutcome.FAIL for r in self.rules)
