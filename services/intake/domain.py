"""Intake's rules, without I/O: what a registration must contain to become a case."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.intake import CaseRegistered, Consent, DocumentType, Person, TravelDocument, VulnerabilityFlag


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
    role: str = Field(pattern=r"^(principal|spouse|child|parent|sibling|relative)$")
    given_names: str = Field(min_length=1, max_length=100)
    surname: str = Field(min_length=1, max_length=100)
    birth_date: date
    sex: str = Field(pattern=r"^[MFX]$")
    nationality: str = Field(pattern=r"^[A-Z]{3}$")
    document: DocumentIn
    vulnerabilities: list[VulnerabilityFlag] = Field(default_factory=list)


class ConsentIn(_Command):
    given: bool
    kind: str = Field(default="explicit", pattern=r"^(explicit|proxy)$")
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
            )
            for m in command.members
        ],
    )
