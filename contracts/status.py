"""The public status stream: every change of every case's status, with no personal data.

Anyone with access to the stream (every country mission, operations dashboards) may read it, so
it carries only a pseudonymous case id, the status, where and when, a machine-readable reason
code and a reason text written for caseworkers that never names a person or a medical fact.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import Event


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
    reason_code: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]{3,60}$",
        description="Machine-readable reason",
        examples=["document_valid_on_travel_date"],
    )
    reason: str | None = Field(
        default=None,
        description="Why, for a caseworker; never names a person or a medical fact",
        examples=["A travel document expires before the planned travel date"],
    )
