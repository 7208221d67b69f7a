"""Events that country missions' own systems publish into the platform.

A mission reports a status change it owns (the destination mission's reception centre records
that a case was received; a transit mission records an incident on the road). The platform checks
that the transition is allowed and that the reporting mission may report that status, then
republishes it on the public status stream.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, Field

from contracts.base import Event
from contracts.status import CaseStatus, Place


class ReportableStatus(StrEnum):
    RECEIVED = CaseStatus.RECEIVED.value
    TRANSIT_INCIDENT = CaseStatus.TRANSIT_INCIDENT.value
    CLOSED = CaseStatus.CLOSED.value


class CaseStatusReported(Event):
    """A status change reported by a country mission's system (no personal data)."""

    event_type: ClassVar[str] = "org.corridor.mission.case-status-reported.v1"

    case_id: uuid.UUID = Field(description="The case id from the status stream; also the record key")
    status: ReportableStatus = Field(description="The status the mission reports")
    occurred_at: AwareDatetime = Field(description="When it happened, RFC 3339 with offset")
    place: Place | None = Field(default=None, description="Where it happened")
    reason_code: str | None = Field(
        default=None,
        pattern=r"^[a-z_]{3,40}$",
        examples=["vehicle_breakdown"],
        description="Machine-readable",
    )
    reason: str | None = Field(
        default=None, max_length=500, description="For caseworkers; must not name a person or a medical fact"
    )
