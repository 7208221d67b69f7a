"""Intake's rules, without I/O: what a registration must contain to become a case, when a case may
still change or be withdrawn, which duplicate flags a caseworker resolves, and which mission may
report which status. The use cases (``usecases.py``) apply them under the locks they need."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from contracts.intake import (
    CITIZENSHIP_PROOFS,
    TRAVEL_DOCUMENTS,
    CaseProfiled,
    CaseRegistered,
    CaseUpdated,
    CitizenshipProof,
    Consent,
    DocumentType,
    ErasureBasis,
    EvidenceKind,
    EvidenceResult,
    Person,
    ProfiledMember,
    Relationship,
    TravelDocument,
    VulnerabilityFlag,
    age_band,
)
from contracts.missions import CaseStatusReported, ReportableStatus
from contracts.routes import Route, RouteBook
from contracts.status import CaseStatus, Place
from corridor.errors import Conflict, Gone, Invalid, NotFound
from corridor.mrz import MRZError
from corridor.mrz import parse as parse_mrz
from services.intake.duplicates import normalise_name

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
"""Characters below 32 but tab, line feed and carriage return."""


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: object) -> object:
        # A NUL or other control character is never part of a name or a number, and PostgreSQL
        # and the border posts' systems refuse it: refuse it here, with the field named.
        if isinstance(value, str) and _CONTROL.search(value):
            raise ValueError("contains a control character")
        return value


class DocumentIn(_Command):
    type: DocumentType
    number: str = Field(min_length=1, max_length=20, pattern=r"^[A-Z0-9<]+$")
    issuing_country: str = Field(pattern=r"^[A-Z]{3}$")
    issued_on: date | None = None
    expires_on: date
    mrz: str | None = Field(
        default=None,
        min_length=88,
        max_length=100,
        description="A passport's machine-readable zone (two lines of 44), checked against the fields",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DocumentIn:
        if self.type not in TRAVEL_DOCUMENTS:
            raise ValueError(f"{self.type.value} is not a travel document: give it as proof_of_citizenship")
        if self.issued_on is not None and self.issued_on > self.expires_on:
            raise ValueError("issued_on is after expires_on")
        if self.type is DocumentType.CERTIFICATE_OF_RETURN:
            if self.issued_on is None:
                raise ValueError("a certificate of return needs its issue date (valid 30 days from it)")
            if (self.expires_on - self.issued_on).days > 30:
                raise ValueError("a certificate of return is valid at most 30 days from its issue date")
        if self.mrz is not None and self.type is not DocumentType.PASSPORT:
            raise ValueError("only a passport has a machine-readable zone here")
        return self


class CitizenshipProofIn(_Command):
    type: DocumentType
    number: str = Field(min_length=1, max_length=20, pattern=r"^[A-Z0-9-]+$")
    issuing_country: str = Field(pattern=r"^[A-Z]{3}$")

    @model_validator(mode="after")
    def _a_proof(self) -> CitizenshipProofIn:
        if self.type not in CITIZENSHIP_PROOFS:
            raise ValueError("proof of citizenship is an internal passport or a birth certificate")
        return self


class PersonIn(_Command):
    role: Relationship
    given_names: str = Field(
        min_length=1, max_length=100, description="As in the travel document, Latin script"
    )
    surname: str = Field(min_length=1, max_length=100, description="As in the travel document, Latin script")
    given_names_cyrillic: str | None = Field(default=None, min_length=1, max_length=100)
    surname_cyrillic: str | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ()-]{6,30}$")
    birth_date: date
    sex: str = Field(pattern=r"^[MFX]$")
    nationality: str = Field(pattern=r"^[A-Z]{3}$")
    document: DocumentIn
    vulnerabilities: list[VulnerabilityFlag] = Field(default_factory=list)
    needs_escort: bool = False
    current_city: str | None = Field(default=None, max_length=100)
    proof_of_citizenship: CitizenshipProofIn | None = None

    @model_validator(mode="after")
    def _mrz_matches(self) -> PersonIn:
        """A passport's MRZ must verify and say what the form says: a misread or a typo is named.
        The error is located at ``document.mrz``, and its message names fields, never their values."""
        zone_text = self.document.mrz
        if zone_text is None:
            return self
        try:
            zone = parse_mrz(zone_text)
        except MRZError as exc:
            raise _at_mrz(f"document.mrz: {exc.field}: {_without_values(exc.reason)}") from exc
        differs = [
            name
            for name, ok in (
                ("document.number", zone.document_number == self.document.number.rstrip("<")),
                ("document.expires_on", zone.expiry_date == self.document.expires_on),
                ("birth_date", zone.birth_date == self.birth_date),
                ("sex", zone.sex == self.sex),
                ("nationality", zone.nationality == self.nationality),
            )
            if not ok
        ]
        if differs:
            raise _at_mrz(f"document.mrz does not match {', '.join(differs)}")
        return self


# A value an MRZ error quotes ('P<TJK...', the document number with a filler inside) or a
# six-digit date it could not read: replaced, so a 422 or an import report shows no personal data.
_QUOTED_VALUE = re.compile(r"'[^']{2,}'|\b\d{6}\b")


def _without_values(reason: str) -> str:
    return _QUOTED_VALUE.sub("the value", reason)


def _at_mrz(message: str) -> ValidationError:
    """A value error located at the person's ``document.mrz`` rather than at the person: raised
    inside a validator, pydantic puts the enclosing location (``members.0``) before it."""
    return ValidationError.from_exception_data(
        "PersonIn",
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", f"Value error, {message}"),
                loc=("document", "mrz"),
                input=None,
            )
        ],
    )


class ConsentIn(_Command):
    given: bool
    kind: Literal["explicit", "proxy"] = "explicit"
    proxy_name: str | None = Field(default=None, min_length=2, max_length=100)
    proxy_reason: str | None = Field(default=None, min_length=5, max_length=300)

    @model_validator(mode="after")
    def _proxy_says_who_and_why(self) -> ConsentIn:
        if self.kind == "proxy" and (self.proxy_name is None or self.proxy_reason is None):
            raise ValueError("proxy consent needs proxy_name and proxy_reason")
        if self.kind == "explicit" and (self.proxy_name or self.proxy_reason):
            raise ValueError("proxy_name and proxy_reason belong to proxy consent")
        return self

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


class UpdateCase(RegisterCase):
    """Replace the case's details (before departure). A member whose name and birth date stay the
    same keeps their identity; a corrected name or birth date makes a new member record."""


class ResolveDuplicate(_Command):
    decision: Literal["duplicate", "not_duplicate"]
    note: str = Field(min_length=3, max_length=500)


class RecordHealthEvidence(_Command):
    """A test result or fit-to-travel examination for one member of the case."""

    person_id: uuid.UUID
    kind: EvidenceKind
    result: EvidenceResult
    taken_at: AwareDatetime


class WithdrawCase(_Command):
    """The person withdraws; possible at any time before departure."""

    reason: str = Field(min_length=3, max_length=500)


# --- what a use case is asked to do (the HTTP body together with the path and the headers) -------


@dataclass(frozen=True)
class ChangeCase:
    case_id: uuid.UUID
    details: UpdateCase


@dataclass(frozen=True)
class RequestWithdrawal:
    case_id: uuid.UUID
    reason: str
    recorded_by: str


@dataclass(frozen=True)
class AddHealthEvidence:
    case_id: uuid.UUID
    evidence: RecordHealthEvidence
    recorded_by: str


@dataclass(frozen=True)
class ReadCase:
    case_id: uuid.UUID
    actor: str
    purpose: str


@dataclass(frozen=True)
class ResolveFlag:
    flag_id: int
    resolution: ResolveDuplicate
    resolved_by: str
    """The token's subject: who decided is who proved it, not a name typed in the request."""


# --- intake's own errors (answered by the runtime: 404, 409, 422) --------------------------------


class CaseNotFound(NotFound):
    def __init__(self, case_id: uuid.UUID) -> None:
        super().__init__(f"no case {case_id}")


class PersonNotInCase(NotFound):
    def __init__(self, case_id: uuid.UUID, person_id: uuid.UUID) -> None:
        super().__init__(f"no person {person_id} in case {case_id}")


class FlagNotOpen(NotFound):
    def __init__(self, flag_id: int) -> None:
        super().__init__(f"no open flag {flag_id}")


class NotBeforeDeparture(Conflict):
    """The case is past the point where it may be changed or withdrawn."""


class NotErasable(Conflict):
    """The case is still in the process: its people's data is what their journey runs on."""

    def __init__(self, status: CaseStatus) -> None:
        super().__init__(
            f"case is {status.value}: personal data can be erased once the case has ended "
            "(arrived, closed, withdrawn, no-show or ineligible); withdraw it first"
        )
        self.status = status


class CaseErased(Gone):
    """The case's personal data was erased: it cannot be read, changed or added to."""

    def __init__(self, case_id: uuid.UUID, erased_at: datetime) -> None:
        super().__init__(f"the personal data of case {case_id} was erased on {erased_at.date().isoformat()}")


class WithdrawalTooLate(Conflict):
    """The case's vehicle left before transport applied the withdrawal."""

    def __init__(self, status: CaseStatus) -> None:
        super().__init__(f"case is {status.value}: its vehicle left before the withdrawal took effect")
        self.status = status


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a registration: where in the body (``members.0.birth_date``) and why."""

    loc: tuple[str, ...]
    msg: str


class RegistrationRejected(Invalid):
    """The registration cannot be accepted as it stands; ``problems`` name every field at fault
    (answered as one 422 listing them all, or as the reasons of an import row)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        assert problems, "a rejection names at least one problem"
        super().__init__(problems[0].loc, problems[0].msg)
        self.problems = list(problems)

    def __str__(self) -> str:
        return "; ".join(f"{'.'.join(p.loc)}: {p.msg}" for p in self.problems)


# --- where a case stands, for intake ----------------------------------------------------------

# A case can be changed or withdrawn until its vehicle leaves; after that it is on the road.
WITHDRAWABLE = frozenset(
    {
        CaseStatus.REGISTERED,
        CaseStatus.ELIGIBLE,
        CaseStatus.INELIGIBLE,
        CaseStatus.ON_HOLD,
        CaseStatus.MANIFESTED,
    }
)

# Statuses that say the case's vehicle left: a withdrawal not applied before them came too late.
ON_THE_ROAD = frozenset(CaseStatus) - WITHDRAWABLE - {CaseStatus.WITHDRAWN, CaseStatus.NO_SHOW}


# A case whose journey has ended, or that left the process: its people's personal data may be erased
# (on request, or when the retention period has passed). Before that it is what their journey runs
# on. An ineligible case is included: eligibility and transport stop deciding on an erased case, and
# transport withdraws it.
ERASABLE = frozenset(
    {
        CaseStatus.INELIGIBLE,
        CaseStatus.WITHDRAWN,
        CaseStatus.NO_SHOW,
        CaseStatus.ARRIVED,
        CaseStatus.RECEIVED,
        CaseStatus.CLOSED,
    }
)


@dataclass(frozen=True)
class EraseCase:
    """Erase the personal data of a case's people, everywhere the platform holds it."""

    case_id: uuid.UUID
    basis: ErasureBasis
    requested_by: str


def may_change(status: CaseStatus, *, withdrawn: bool) -> bool:
    """A case's details may change before departure, unless a withdrawal was recorded."""
    return status in WITHDRAWABLE and not withdrawn


def withdrawal_settled(status: CaseStatus) -> bool:
    """The stream shows the withdrawal's outcome: applied (withdrawn) or too late (on the road)."""
    return status is CaseStatus.WITHDRAWN or status in ON_THE_ROAD


class FlagStatus(StrEnum):
    """A possible duplicate, open until a caseworker decides: the same person, or two people."""

    OPEN = "open"
    DUPLICATE = "duplicate"
    NOT_DUPLICATE = "not_duplicate"


FLAG_TRANSITIONS: dict[FlagStatus, frozenset[FlagStatus]] = {
    FlagStatus.OPEN: frozenset({FlagStatus.DUPLICATE, FlagStatus.NOT_DUPLICATE}),
    FlagStatus.DUPLICATE: frozenset(),
    FlagStatus.NOT_DUPLICATE: frozenset(),
}


def validate_against_today(command: RegisterCase, today: date) -> list[str]:
    """Problems that depend on the date: the caller answers 422 with them."""
    problems = []
    for i, member in enumerate(command.members):
        if member.birth_date > today:
            problems.append(f"members.{i}.birth_date: is in the future")
    if command.planned_travel_date < today:
        problems.append("planned_travel_date: is in the past")
    return problems


def registration_problems(command: RegisterCase, routes: RouteBook, today: date) -> list[Problem]:
    """What the body's own validation cannot see: the route must be configured here, and the dates
    must make sense today. Empty when the registration may go ahead."""
    problems: list[Problem] = []
    if routes.get(command.route_id) is None:
        problems.append(Problem(("route_id",), f"unknown route {command.route_id!r}"))
    for problem in validate_against_today(command, today):
        where, msg = problem.split(": ", 1)
        problems.append(Problem(tuple(where.split(".")), msg))
    return problems


def check_registration(command: RegisterCase, routes: RouteBook, today: date) -> None:
    """Raise ``RegistrationRejected`` naming every problem of the registration, if it has any."""
    problems = registration_problems(command, routes, today)
    if problems:
        raise RegistrationRejected(problems)


MemberKey = tuple[str, str, date]


def member_key(surname: str, given_names: str, birth_date: date) -> MemberKey:
    """Who a member is across a correction: the normalised name and the birth date."""
    return normalise_name(surname), normalise_name(given_names), birth_date


def keep_identities(members: Sequence[Person], known: dict[MemberKey, uuid.UUID]) -> list[Person]:
    """A member keeps their id when name and birth date still match one of the case's people (each
    id at most once), so decisions, evidence and manifests stay attached to the same person."""
    left = dict(known)
    kept: list[Person] = []
    for m in members:
        same = left.pop(member_key(m.surname, m.given_names, m.birth_date), None)
        kept.append(m.model_copy(update={"person_id": same}) if same else m)
    return kept


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
                document=TravelDocument(**m.document.model_dump(exclude={"mrz"})),
                given_names_cyrillic=m.given_names_cyrillic,
                surname_cyrillic=m.surname_cyrillic,
                phone=m.phone,
                proof_of_citizenship=(
                    CitizenshipProof(**m.proof_of_citizenship.model_dump())
                    if m.proof_of_citizenship
                    else None
                ),
                vulnerabilities=m.vulnerabilities,
                needs_escort=m.needs_escort,
                current_city=m.current_city,
            )
            for m in command.members
        ],
    )


# --- what reporting may aggregate ---------------------------------------------------------------


@dataclass(frozen=True)
class CaseStatistics:
    """What statistics keep of a case's people after an erasure: sex and birth date (read before
    the erasure truncates it to the year) of each, and the case's route and dates."""

    route_id: str
    registered_at: datetime
    planned_travel_date: date
    people: tuple[tuple[str, date], ...]


def profile(case: CaseRegistered | CaseUpdated, at: datetime) -> CaseProfiled:
    """The case as reporting may see it: each member's sex, age band on the planned travel date and
    vulnerability categories, the city the case returns from; no name, date of birth or document."""
    principal = next((m for m in case.members if m.role == Relationship.PRINCIPAL), case.members[0])
    origin = principal.current_city or next((m.current_city for m in case.members if m.current_city), None)
    return CaseProfiled(
        case_id=case.case_id,
        profiled_at=at,
        route_id=case.route_id,
        registered_on=case.registered_at.astimezone(UTC).date(),
        planned_travel_date=case.planned_travel_date,
        origin_city=origin,
        members=[
            ProfiledMember(
                sex=m.sex,
                age_band=age_band(m.birth_date, case.planned_travel_date),
                vulnerabilities=list(m.vulnerabilities),
            )
            for m in case.members
        ],
    )


def erased_profile(case_id: uuid.UUID, stats: CaseStatistics, at: datetime) -> CaseProfiled:
    """After an erasure: sex and age band stay (as every statistic keeps them); the vulnerability
    categories and the origin city go with the rest of the personal data."""
    return CaseProfiled(
        case_id=case_id,
        profiled_at=at,
        route_id=stats.route_id,
        registered_on=stats.registered_at.astimezone(UTC).date(),
        planned_travel_date=stats.planned_travel_date,
        origin_city=None,
        members=[
            ProfiledMember(sex=sex, age_band=age_band(born, stats.planned_travel_date))
            for sex, born in stats.people
        ],
        erased=True,
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


class ReportAction(StrEnum):
    APPLY = "apply"
    LATER = "later"
    """May become valid when the status stream catches up: retried, not refused."""
    REJECT = "reject"


@dataclass(frozen=True)
class Verdict:
    """``apply``, ``later`` (may become valid when the stream catches up) or ``reject``."""

    action: ReportAction
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


def unusable_report(report: CaseStatusReported) -> str | None:
    """What makes a mission's report unusable whatever the case's state (it could never be stored
    or republished): judged before the report is held against the case, so it is refused at once
    (422, or a dead letter) instead of being told to come back later."""
    texts = {"reason": report.reason, "reason_code": report.reason_code}
    if report.place is not None:
        texts["place.name"] = report.place.name
    for field, text in texts.items():
        if text is not None and "\x00" in text:
            return f"{field} contains a NUL character"
    try:
        when = report.occurred_at.astimezone(UTC)
    except (OverflowError, ValueError):
        return "occurred_at is out of range"
    if when.year < 1900:
        return "occurred_at is out of range"
    return None


def public_place(reported: Place | None, route: Route) -> Place | None:
    """Where a mission's report happened, as the public stream says it: a place of the case's
    route (its checkpoint, reception or gathering point, or a post in that country), never the
    name the mission typed, which is free text; None for a country the route does not cross."""
    if reported is None:
        return None
    if reported.checkpoint_id is not None:
        cp = route.checkpoint(reported.checkpoint_id)
        if cp is not None:
            return Place(country=cp.country, name=cp.post, checkpoint_id=cp.checkpoint_id)
    for site in (route.reception_point, route.gathering_point):
        if site.country == reported.country:
            return Place(country=site.country, name=site.name)
    cp = next((c for c in route.checkpoints if c.country == reported.country), None)
    return Place(country=cp.country, name=cp.post) if cp is not None else None


def judge_report(source: str, reported: ReportableStatus, current: CaseStatus, route: Route) -> Verdict:
    country = reporting_country(source)
    allowed = countries_that_may_report(reported, route)
    if country is None or country not in allowed:
        return Verdict(
            ReportAction.REJECT,
            "unauthorised_source",
            f"source {source!r} may not report {reported.value}; on route {route.route_id} only "
            f"{', '.join(f'/missions/{c}/...' for c in sorted(allowed))} may",
        )
    needed = ALLOWED_FROM[reported]
    if current in needed:
        return Verdict(ReportAction.APPLY)
    detail = (
        f"case is {current.value}; {reported.value} may follow only "
        f"{' or '.join(sorted(s.value for s in needed))}"
    )
    if current in _TERMINAL or _STAGE.get(current, 99) >= min(_STAGE[s] for s in needed):
        return Verdict(ReportAction.REJECT, "illegal_transition", detail)
    return Verdict(ReportAction.LATER, "illegal_transition", detail)
