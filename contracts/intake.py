"""Events owned by intake. ``CaseRegistered`` carries personal data: it stays on the host
mission's restricted topic and is read only by services whose purpose needs it."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import Event


class DocumentType(StrEnum):
    """Travel documents (passport, certificate of return) and proofs of citizenship."""

    PASSPORT = "passport"
    CERTIFICATE_OF_RETURN = "certificate_of_return"
    INTERNAL_PASSPORT = "internal_passport"
    BIRTH_CERTIFICATE = "birth_certificate"


TRAVEL_DOCUMENTS = frozenset({DocumentType.PASSPORT, DocumentType.CERTIFICATE_OF_RETURN})
CITIZENSHIP_PROOFS = frozenset({DocumentType.INTERNAL_PASSPORT, DocumentType.BIRTH_CERTIFICATE})


class Relationship(StrEnum):
    """A member's relationship to the case's principal applicant."""

    PRINCIPAL = "principal"
    SPOUSE = "spouse"
    CHILD = "child"
    PARENT = "parent"
    SIBLING = "sibling"
    RELATIVE = "relative"


class VulnerabilityFlag(StrEnum):
    UNACCOMPANIED_MINOR = "unaccompanied_minor"
    PREGNANT = "pregnant"
    ELDERLY = "elderly"
    DISABILITY = "disability"
    SERIOUS_ILLNESS = "serious_illness"
    SINGLE_PARENT = "single_parent"
    SURVIVOR_OF_TRAFFICKING_OR_VIOLENCE = "survivor_of_trafficking_or_violence"


class EvidenceKind(StrEnum):
    """Health evidence a rule or a crossing may require."""

    COVID19_TEST = "covid19_test"
    FIT_TO_TRAVEL = "fit_to_travel"


class EvidenceResult(StrEnum):
    NEGATIVE = "negative"
    POSITIVE = "positive"
    FIT = "fit"
    UNFIT = "unfit"


ACCEPTABLE_RESULT: dict[EvidenceKind, EvidenceResult] = {
    EvidenceKind.COVID19_TEST: EvidenceResult.NEGATIVE,
    EvidenceKind.FIT_TO_TRAVEL: EvidenceResult.FIT,
}


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class TravelDocument(_Part):
    type: DocumentType
    number: str = Field(min_length=1, max_length=20)
    issuing_country: str = Field(pattern=r"^[A-Z]{3}$")
    issued_on: date | None = None
    expires_on: date = Field(description="Last day the document is valid")


class CitizenshipProof(_Part):
    """For people without a passport: a document that proves citizenship of a country."""

    type: DocumentType
    number: str = Field(min_length=1, max_length=20)
    issuing_country: str = Field(pattern=r"^[A-Z]{3}$")


class Person(_Part):
    person_id: uuid.UUID
    role: Relationship
    given_names: str = Field(description="As written in the travel document (Latin script)")
    surname: str = Field(description="As written in the travel document (Latin script)")
    given_names_cyrillic: str | None = Field(default=None, max_length=100)
    surname_cyrillic: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=30)
    birth_date: date
    sex: str = Field(pattern=r"^[MFX]$")
    nationality: str = Field(pattern=r"^[A-Z]{3}$")
    document: TravelDocument
    vulnerabilities: list[VulnerabilityFlag] = Field(default_factory=list)
    needs_escort: bool = Field(
        default=False, description="Travels with an escort (staff seat on the vehicle)"
    )
    current_city: str | None = Field(default=None, max_length=100, examples=["Karaganda"])
    proof_of_citizenship: CitizenshipProof | None = None


class Consent(_Part):
    given: bool
    kind: Literal["explicit", "proxy"] = Field(
        description="Given by the person, or by a proxy in exceptional cases"
    )
    proxy_name: str | None = Field(default=None, max_length=100, description="Who gave it, for a proxy")
    proxy_reason: str | None = Field(default=None, max_length=300, description="Why a proxy, for a proxy")
    scope: list[str] = Field(
        default_factory=list,
        description="Missions personal data may go to",
        examples=[["UZB", "TJK"]],
    )


class CaseRegistered(Event):
    """A case was registered: one person or a family that travels together. Personal data."""

    event_type: ClassVar[str] = "org.corridor.intake.case-registered.v1"

    case_id: uuid.UUID
    registered_at: AwareDatetime
    route_id: str
    planned_travel_date: date
    consent: Consent
    members: list[Person] = Field(min_length=1)


class HealthEvidenceRecorded(Event):
    """A health result for one person (medical data: host mission's restricted topic only)."""

    event_type: ClassVar[str] = "org.corridor.intake.health-evidence-recorded.v1"

    case_id: uuid.UUID
    person_id: uuid.UUID
    kind: EvidenceKind
    result: EvidenceResult
    taken_at: AwareDatetime = Field(description="When the test or examination was done")
    recorded_at: AwareDatetime


class CaseWithdrawn(Event):
    """The person (or family) withdrew before departure."""

    event_type: ClassVar[str] = "org.corridor.intake.case-withdrawn.v1"

    case_id: uuid.UUID
    reason: str = Field(max_length=500, description="The caseworker's note; host mission only")
    withdrawn_at: AwareDatetime


class CaseUpdated(Event):
    """A case's details changed before departure: the whole case as it now stands. Personal data."""

    event_type: ClassVar[str] = "org.corridor.intake.case-updated.v1"

    case_id: uuid.UUID
    registered_at: AwareDatetime
    updated_at: AwareDatetime
    route_id: str
    planned_travel_date: date
    consent: Consent
    members: list[Person] = Field(min_length=1)


class ErasureBasis(StrEnum):
    """Why a case's personal data is erased."""

    DATA_SUBJECT_REQUEST = "data_subject_request"
    """The person asked (through a caseworker, who is recorded as the requester)."""
    RETENTION_EXPIRED = "retention_expired"
    """The case ended longer ago than the deployment keeps personal data."""


class PersonalDataErased(Event):
    """Intake erased the personal data of a case's people (names, birth dates, document numbers,
    contacts, health evidence, free-text notes); every service holding a copy does the same. Only
    what statistics need stays: the case, its statuses and dates, sex, nationality, birth year.
    Carries no personal data itself."""

    event_type: ClassVar[str] = "org.corridor.intake.personal-data-erased.v1"

    case_id: uuid.UUID
    basis: ErasureBasis
    erased_at: AwareDatetime


class AgeBand(StrEnum):
    """Age on the planned travel date, in the bands humanitarian reporting uses. Readers must
    tolerate bands added later."""

    UNDER_5 = "0-4"
    CHILD = "5-17"
    ADULT = "18-59"
    OLDER = "60+"


def age_band(birth_date: date, on: date) -> AgeBand:
    """The band of someone born on ``birth_date``, on the day ``on`` (full years)."""
    years = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    if years < 5:
        return AgeBand.UNDER_5
    if years < 18:
        return AgeBand.CHILD
    if years < 60:
        return AgeBand.ADULT
    return AgeBand.OLDER


class ProfiledMember(_Part):
    """One person of a case as statistics may see them: no name, date or document."""

    sex: str = Field(pattern=r"^[MFX]$")
    age_band: AgeBand = Field(description="Age on the planned travel date")
    vulnerabilities: list[VulnerabilityFlag] = Field(
        default_factory=list, description="Categories only; emptied when the case's data is erased"
    )


class CaseProfiled(Event):
    """What reporting may aggregate about a case, as it stands now: sex and age band of each
    member, vulnerability categories, where they return from, the route and the dates. Sent on
    registration, on every update and on erasure (``erased``: the categories and the origin are
    gone; sex and age band stay, as for every statistic). Pseudonymous, never identifying alone:
    no name, birth date, document number, contact or free text."""

    event_type: ClassVar[str] = "org.corridor.intake.case-profiled.v1"

    case_id: uuid.UUID
    profiled_at: AwareDatetime
    route_id: str
    registered_on: date = Field(description="The day the case was registered (UTC)")
    planned_travel_date: date
    origin_city: str | None = Field(
        default=None,
        max_length=100,
        description="The city the case returns from (the principal's current city at registration)",
        examples=["Karaganda"],
    )
    members: list[ProfiledMember] = Field(min_length=1)
    erased: bool = Field(default=False, description="The case's personal data was erased at intake")
