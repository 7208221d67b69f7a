"""The public status stream: every change of every case's status, with no personal data.

Anyone with access to the stream (every country mission, operations dashboards) may read it, so
it carries only a pseudonymous case id, the status, where and when, and a reason: an enumerated
code with its one fixed text (``contracts.reasons.PUBLIC_REASONS``), never free text, a name or a
medical fact.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from contracts import reasons
from contracts.base import Event, is_reading


class CaseStatus(StrEnum):
    """Where a case stands. Readers must tolerate values added in later minor releases."""

    REGISTERED = "registered"
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    ON_HOLD = "on_hold"
    MANIFESTED = "manifested"
    DEPARTED = "departed"
    NO_SHOW = "no_show"
    EXIT_CLEARED = "exit_cleared"
    ENTRY_CLEARED = "entry_cleared"
    REFUSED_AT_BORDER = "refused_at_border"
    ARRIVED = "arrived"
    RECEIVED = "received"
    TRANSIT_INCIDENT = "transit_incident"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


class Place(BaseModel):
    """Where a status change happened: a country and, at a border, the checkpoint."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    country: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 3166-1 alpha-3", examples=["UZB"])
    name: str = Field(description="Border point or site name", examples=["Zhibek-Zholy"])
    checkpoint_id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9-]+$",
        description="The border checkpoint, at a border",
        examples=["uzb-zhibek-zholy-entry"],
    )


class CaseStatusChanged(Event):
    """A case's status changed. The public status stream's only event."""

    event_type: ClassVar[str] = "org.corridor.case.status-changed.v1"

    case_id: uuid.UUID = Field(description="Pseudonymous case reference; also the record key")
    status: CaseStatus = Field(description="The case's new status")
    occurred_at: AwareDatetime = Field(description="When the change happened (RFC 3339 with offset)")
    members: int = Field(ge=1, description="How many people travel on this case")
    place: Place | None = None
    movement_id: str | None = Field(default=None, description="Movement the case travels on")
    # The schema keeps both fields open strings (an enum would be a breaking change for readers,
    # and a reader must tolerate codes added later); the enumeration is the writers' rule.
    reason_code: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]{3,60}$",
        description="Why, as one of the enumerated public reason codes (contracts/reasons.py: "
        + ", ".join(reasons.PUBLIC_REASONS)
        + "). Readers must tolerate codes added later.",
        examples=["document_valid_on_travel_date"],
    )
    reason: str | None = Field(
        default=None,
        description="The reason code's one fixed text (contracts/reasons.py), never free text: it "
        "never names a person, a date of birth or a medical fact",
        examples=[reasons.PUBLIC_REASONS["document_valid_on_travel_date"]],
    )

    @model_validator(mode="before")
    @classmethod
    def _public_reason(cls, data: Any, info: ValidationInfo) -> Any:
        """A writer gives the code; the text is the code's. Anything else is refused, except in a
        record being read (written before, or by a newer producer with more codes)."""
        if is_reading(info.context) or not isinstance(data, dict):
            return data
        code, text = data.get("reason_code"), data.get("reason")
        if code is not None and not isinstance(code, str):
            return data  # the field's own validation says what is wrong
        if text is not None and not isinstance(text, str):
            return data
        reasons.check(code, text)  # UnknownReason is a ValueError: a validation error
        if code is not None and text is None:
            data = {**data, "reason": reasons.text_of(code)}
        return data


# The legal order of a case's public statuses, as data: every writer checks its change against the
# case's last status before publishing, and every test checks whole streams against it. One
# service writes each phase of a case's life (intake: registered and mission reports; transport:
# every status from eligibility's decisions on, the posts' crossings, which it announces in route
# order whatever order it reads the posts' topics in, and arrival), and each phase begins only after
# an event from the phase before, so the stream is legal by construction.
_S = CaseStatus
LEGAL_TRANSITIONS: dict[CaseStatus | None, frozenset[CaseStatus]] = {
    None: frozenset({_S.REGISTERED}),
    _S.REGISTERED: frozenset({_S.ELIGIBLE, _S.INELIGIBLE, _S.ON_HOLD, _S.WITHDRAWN}),
    _S.ELIGIBLE: frozenset({_S.INELIGIBLE, _S.ON_HOLD, _S.MANIFESTED, _S.WITHDRAWN}),
    _S.INELIGIBLE: frozenset({_S.ELIGIBLE, _S.ON_HOLD, _S.WITHDRAWN}),
    _S.ON_HOLD: frozenset({_S.ELIGIBLE, _S.INELIGIBLE, _S.WITHDRAWN}),
    # Taken off the vehicle before departure: back to eligible (another day, another seat count),
    # held, ineligible or withdrawn; each says why in its reason.
    _S.MANIFESTED: frozenset({_S.DEPARTED, _S.NO_SHOW, _S.ELIGIBLE, _S.INELIGIBLE, _S.ON_HOLD, _S.WITHDRAWN}),
    _S.NO_SHOW: frozenset({_S.WITHDRAWN}),
    # A route leaves its origin country first: exit and entry posts alternate, and the arrival
    # follows the entry into the destination country.
    _S.DEPARTED: frozenset({_S.EXIT_CLEARED, _S.REFUSED_AT_BORDER}),
    _S.EXIT_CLEARED: frozenset({_S.ENTRY_CLEARED, _S.REFUSED_AT_BORDER}),
    _S.ENTRY_CLEARED: frozenset({_S.EXIT_CLEARED, _S.REFUSED_AT_BORDER, _S.ARRIVED}),
    _S.REFUSED_AT_BORDER: frozenset(),
    _S.ARRIVED: frozenset({_S.RECEIVED}),
    _S.RECEIVED: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
    _S.WITHDRAWN: frozenset(),
}
"""For each status (``None``: before the first), the statuses that may follow it."""

ANNOTATIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    # A mission's report of an incident on the way notes the journey without moving it on; it may
    # reach the stream a moment after the next crossing or the arrival it happened before.
    _S.TRANSIT_INCIDENT: frozenset({_S.DEPARTED, _S.EXIT_CLEARED, _S.ENTRY_CLEARED, _S.ARRIVED}),
}
"""Statuses that annotate the journey: legal after the listed statuses, and the next status is
judged against the status before the annotation."""


def is_legal(previous: CaseStatus | None, new: CaseStatus) -> bool:
    """May ``new`` follow ``previous`` (the case's last status that is not an annotation)?"""
    if new in ANNOTATIONS:
        return previous in ANNOTATIONS[new]
    return new in LEGAL_TRANSITIONS[previous]


def illegal_steps(statuses: list[CaseStatus]) -> list[tuple[CaseStatus | None, CaseStatus]]:
    """The steps of one case's stream that the legal transitions do not allow (empty: legal)."""
    wrong: list[tuple[CaseStatus | None, CaseStatus]] = []
    phase: CaseStatus | None = None
    for status in statuses:
        if not is_legal(phase, status):
            wrong.append((phase, status))
        if status not in ANNOTATIONS:
            phase = status
    return wrong
