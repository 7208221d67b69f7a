"""Intake's rules, without I/O: what a registration must contain to become a case."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.intake import (
    CaseRegistered,
    Consent,
    DocumentType,
    EvidenceKind,
    EvidenceResult,
    Person,
    Relationship,
    TravelDocument,
    VulnerabilityFlag,
)
from contracts.missions import ReportableStatus
from contracts.routes import Route
from contracts.status import CaseStatus


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DocumentIn(_Command):
    type: DocumentType
    number: str = Field(min_length=1, max_length=20, pattern=r"^[A-Z0-9<]+$")
    issuing_country: str = Field(pattern=r"^[A-Z]{3}$")
    issued_on: date | None = None
    expires_on: date

    @model_validator(mode="after")
    def _dates_in_order(self) -> DocumentIn:
        if self.issued_on is not None and self.issued_on > self.expires_on:
            raise ValueError("issued_on is after expires_on")
        return self


class PersonIn(_Command):
    role: Relationship
    given_names: str = Field(min_length=1, max_length=100)
    surname: str = Field(min_length=1, max_length=100)
    birth_date: date
    sex: str = Field(pattern=r"^[MFX]$")
    nationality: str = Field(pattern=r"^[A-Z]{3}$")
    document: DocumentIn
    vulnerabilities: list[VulnerabilityFlag] = Field(default_factory=list)
    needs_escort: bool = False
    current_city: str | None = Field(default=None, max_length=100)


class ConsentIn(_Command):
    given: bool
    kind: Literal["explicit", "proxy"] = "explicit"
    scope: list[str] = Field(default_factory=list)


class RegisterCase(_Command):
    """Register a case: one person, or a family group that travels together."""

    registration_key: str | None = Field(
        default=None,
        max_length=200,
        description="Client-chosen key; registering the same key again returns the same case",
    )
    route_id: str
    planned_travel_date: date
    consent: ConsentIn
    members: list[PersonIn] = Field(min_length=1, max_length=30)

    @model_validator(mode="after")
    def _one_principal(self) -> RegisterCase:
        principals = sum(1 for m in self.members if m.role == "principal")
        if principals != 1:
            raise ValueError(f"a case needs exactly one principal applicant, got {principals}")
        return self


class RecordHealthEvidence(_Command):
    """A test result or fit-to-travel examination for one member of the case."""

    person_id: uuid.UUID
    kind: EvidenceKind
    result: EvidenceResult
    taken_at: AwareDatetime


class WithdrawCase(_Command):
    """The person withdraws; possible at any time before departure."""

    reason: str = Field(min_length=3, max_length=500)


# A case can be withdrawn until its vehicle leaves; after that it is on the road.
WITHDRAWABLE = frozenset(
    {
        CaseStatus.REGISTERED,
        CaseStatus.ELIGIBLE,
        CaseStatus.INELIGIBLE,
        CaseStatus.ON_HOLD,
        CaseStatus.MANIFESTED,
    }
)


def validate_against_today(command: RegisterCase, today: date) -> list[str]:
    """Problems that depend on the date: the caller answers 422 with them."""
    problems = []
    for i, member in enumerate(command.members):
        if member.birth_date > today:
            problems.append(f"members.{i}.birth_date: is in the future")
    if command.planned_travel_date < today:
        problems.append("planned_travel_date: is in the past")
    return problems


def build_case(command: RegisterCase, *, case_id: uuid.UUID, now: datetime) -> CaseRegistered:
    return CaseRegistered(
        case_id=case_id,
        registered_at=now,
        route_id=command.route_id,
        planned_travel_date=command.planned_travel_date,
        consent=Consent(**command.consent.model_dump()),
        members=[
            Person(
                person_id=uuid.uuid4(),
                role=m.role,
                given_names=m.given_names,
                surname=m.surname,
                birth_date=m.birth_date,
                sex=m.sex,
                nationality=m.nationality,
                document=TravelDocument(**m.document.model_dump()),
                vulnerabilities=m.vulnerabilities,
                needs_escort=m.needs_escort,
                current_city=m.current_city,
            )
            for m in command.members
        ],
    )


# --- status changes reported by country missions --------------------------------------------

_SOURCE = re.compile(r"^/missions/(?P<country>[A-Z]{3})/[A-Za-z0-9._-]+$")

ALLOWED_FROM: dict[ReportableStatus, frozenset[CaseStatus]] = {
    ReportableStatus.RECEIVED: frozenset({CaseStatus.ARRIVED}),
    ReportableStatus.CLOSED: frozenset({CaseStatus.RECEIVED}),
    ReportableStatus.TRANSIT_INCIDENT: frozenset(
        {CaseStatus.DEPARTED, CaseStatus.EXIT_CLEARED, CaseStatus.ENTRY_CLEARED, CaseStatus.TRANSIT_INCIDENT}
    ),
}

# Where a case stands in its journey; a reported status that needs a later stage than the case's
# current one may simply be ahead of the status stream, one that needs an earlier stage never fits.
_STAGE: dict[CaseStatus, int] = {
    CaseStatus.REGISTERED: 0,
    CaseStatus.ON_HOLD: 1,
    CaseStatus.ELIGIBLE: 1,
    CaseStatus.MANIFESTED: 2,
    CaseStatus.DEPARTED: 3,
    CaseStatus.EXIT_CLEARED: 3,
    CaseStatus.ENTRY_CLEARED: 3,
    CaseStatus.TRANSIT_INCIDENT: 3,
    CaseStatus.ARRIVED: 4,
    CaseStatus.RECEIVED: 5,
    CaseStatus.CLOSED: 6,
}
_TERMINAL = frozenset(
    {
        CaseStatus.INELIGIBLE,
        CaseStatus.WITHDRAWN,
        CaseStatus.NO_SHOW,
        CaseStatus.REFUSED_AT_BORDER,
        CaseStatus.CLOSED,
    }
)


@dataclass(frozen=True)
class Verdict:
    """``apply``, ``later`` (may become valid when the stream catches up) or ``reject``."""

    action: str
    code: str | None = None
    detail: str | None = None


def reporting_country(source: str) -> str | None:
    match = _SOURCE.match(source)
    return match.group("country") if match else None


def countries_that_may_report(status: ReportableStatus, route: Route) -> frozenset[str]:
    if status is ReportableStatus.TRANSIT_INCIDENT:
        on_route = {route.origin_country, *(cp.country for cp in route.checkpoints)}
        return frozenset(on_route - {route.destination_country})
    return frozenset({route.destination_country})


def judge_report(source: str, reported: ReportableStatus, current: CaseStatus, route: Route) -> Verdict:
    country = reporting_country(source)
    allowed = countries_that_may_report(reported, route)
    if country is None or country not in allowed:
        return Verdict(
            "reject",
            "unauthorised_source",
            f"source {source!r} may not report {reported.value}; on route {route.route_id} only "
            f"{', '.join(f'/missions/{c}/...' for c in sorted(allowed))} may",
        )
    needed = ALLOWED_FROM[reported]
    if current in needed:
        return Verdict("apply")
    detail = (
        f"case is {current.value}; {reported.value} may follow only "
        f"{' or '.join(sorted(s.value for s in needed))}"
    )
    if current in _TERMINAL or _STAGE.get(current, 99) >= min(_STAGE[s] for s in needed):
        return Verdict("reject", "illegal_transition", detail)
    return Verdict("later", "illegal_transition", detail)
