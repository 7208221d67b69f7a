"""Eligibility rules, without I/O. Every decision lists each rule it evaluated and why.

What eligibility knows of a case (``CaseRecord``), the decisions it recorded (``RecordedDecision``)
and the supervisors' overrides (``SupervisorOverride``) are plain values here; the store reads and
writes them, the use cases (``usecases.py``) put them together. The service's refusals are its own
exception types at the end of this module.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, ConfigDict, Field

from contracts import reasons
from contracts.border import CrossingRequirementPublished
from contracts.eligibility import Outcome, RuleOutcome, RuleResult
from contracts.intake import (
    ACCEPTABLE_RESULT,
    CaseRegistered,
    CaseUpdated,
    Consent,
    DocumentType,
    EvidenceKind,
    EvidenceResult,
    VulnerabilityFlag,
)
from contracts.routes import Route
from corridor.errors import Conflict, NotFound

CERTIFICATE_OF_RETURN_VALIDITY = timedelta(days=30)
FIT_TO_TRAVEL_HOURS = 72
MEDICAL_FLAGS = frozenset({VulnerabilityFlag.PREGNANT, VulnerabilityFlag.SERIOUS_ILLNESS})

# Weights a caseworker can reason about: the most vulnerable person sets the case's priority,
# each further vulnerable person adds one.
VULNERABILITY_WEIGHT: dict[VulnerabilityFlag, int] = {
    VulnerabilityFlag.UNACCOMPANIED_MINOR: 50,
    VulnerabilityFlag.SERIOUS_ILLNESS: 40,
    VulnerabilityFlag.PREGNANT: 40,
    VulnerabilityFlag.SURVIVOR_OF_TRAFFICKING_OR_VIOLENCE: 30,
    VulnerabilityFlag.DISABILITY: 30,
    VulnerabilityFlag.ELDERLY: 30,
    VulnerabilityFlag.SINGLE_PARENT: 20,
}


class MemberFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    person_id: uuid.UUID
    nationality: str
    document_type: DocumentType
    document_issued_on: date | None
    document_expires_on: date
    vulnerabilities: tuple[VulnerabilityFlag, ...]
    document_issuing_country: str = ""
    document_ref: str = Field(
        default="", description="Keyed hash of the document: recognises reuse, reveals nothing"
    )
    citizenship_proof_country: str | None = None


class CaseFacts(BaseModel):
    """What the rules need of a registration, and no more: no names, numbers or birth dates."""

    model_config = ConfigDict(frozen=True)

    case_id: uuid.UUID
    route_id: str
    planned_travel_date: date
    consent: Consent
    members: tuple[MemberFacts, ...]

    @classmethod
    def from_registration(cls, case: CaseRegistered | CaseUpdated) -> CaseFacts:
        return cls(
            case_id=case.case_id,
            route_id=case.route_id,
            planned_travel_date=case.planned_travel_date,
            consent=case.consent,
            members=tuple(
                MemberFacts(
                    person_id=m.person_id,
                    nationality=m.nationality,
                    document_type=m.document.type,
                    document_issued_on=m.document.issued_on,
                    document_expires_on=m.document.expires_on,
                    vulnerabilities=tuple(m.vulnerabilities),
                    document_issuing_country=m.document.issuing_country,
                    document_ref=document_ref(m.document.type, m.document.issuing_country, m.document.number),
                    citizenship_proof_country=(
                        m.proof_of_citizenship.issuing_country if m.proof_of_citizenship else None
                    ),
                )
                for m in case.members
            ),
        )

    def certificates_of_return(self) -> tuple[str, ...]:
        """The keyed hashes of the certificates of return this case travels on (single use each)."""
        return tuple(
            m.document_ref
            for m in self.members
            if m.document_type is DocumentType.CERTIFICATE_OF_RETURN and m.document_ref
        )


@dataclass(frozen=True)
class CaseRecord:
    """What eligibility knows of a case: the facts it is judged on, and whether it was withdrawn
    or left on a vehicle."""

    facts: CaseFacts
    withdrawn_at: datetime | None = None
    departed_at: datetime | None = None
    erased_at: datetime | None = None
    """Its people's personal data was erased: no decision is taken on it again."""

    @property
    def on_the_road(self) -> bool:
        """Once its vehicle has left, a case's decision is frozen: changes then are the border's."""
        return self.departed_at is not None


@dataclass(frozen=True)
class Evidence:
    person_id: uuid.UUID
    kind: EvidenceKind
    result: EvidenceResult
    taken_at: datetime


@dataclass(frozen=True)
class Requirement:
    requirement_id: uuid.UUID
    checkpoint_id: str
    country: str
    post: str
    code: str
    description: str
    evidence_kind: EvidenceKind
    valid_hours: int
    effective_from: date
    effective_until: date | None = None
    """The last travel date it applies to; None: every date from ``effective_from`` on"""

    @classmethod
    def from_published(cls, r: CrossingRequirementPublished) -> Requirement:
        return cls(
            r.requirement_id,
            r.checkpoint_id,
            r.country,
            r.post,
            r.code,
            r.description,
            r.evidence_kind,
            r.valid_hours,
            r.effective_from,
            r.effective_until,
        )

    def applies_on(self, travel_date: date) -> bool:
        return self.effective_from <= travel_date and (
            self.effective_until is None or travel_date <= self.effective_until
        )


def routes_through(routes: Iterable[Route], checkpoint_id: str) -> list[str]:
    """The routes whose cases a requirement at ``checkpoint_id`` may affect."""
    return [r.route_id for r in routes if r.checkpoint(checkpoint_id) is not None]


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    priority: int
    rules: tuple[RuleResult, ...]

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.rules if r.outcome is RuleOutcome.FAIL)

    @property
    def pending(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.rules if r.outcome is RuleOutcome.PENDING)

    def same_as(self, outcome: str, rules: list[dict[str, str]]) -> bool:
        """True when a stored decision says the same: then nothing new is published."""
        return outcome == self.outcome.value and rules == [r.model_dump(mode="json") for r in self.rules]

    def repeats(self, latest: RecordedDecision | None) -> bool:
        """True when the latest recorded decision has the same outcome and the same reasons."""
        return latest is not None and self.same_as(
            latest.outcome.value, [r.model_dump(mode="json") for r in latest.rules]
        )

    def summary(self) -> tuple[str | None, str | None]:
        """Reason code and its fixed text for the public status stream (``contracts.reasons``): no
        rule's own words, which name members, dates and test results, and no supervisor's note."""
        code = public_code(self)
        return code, (reasons.text_of(code) if code is not None else None)


def public_code(decision: Decision) -> str | None:
    """What the public stream may say about a decision: the supervisor's override when one
    decided it, else the first rule that blocks the case, by a code that names no medical fact."""
    override = next((r for r in decision.rules if r.rule == "supervisor_override"), None)
    if override is not None:
        return f"supervisor_override_{decision.outcome.value}"
    blocking = decision.failed or decision.pending
    if not blocking:
        return None
    first = blocking[0]
    if first.rule == "fit_to_travel":
        # Only members flagged pregnant or seriously ill need the check: the rule is a health fact.
        return "travel_condition_not_met" if first.outcome is RuleOutcome.FAIL else "evidence_pending"
    return _PUBLIC_RULE_CODES.get(first.rule, "eligibility_decided")


_PUBLIC_RULE_CODES: dict[str, str] = {
    "not_withdrawn": "withdrawn_by_applicant",
    "consent_recorded": "consent_recorded",
    "nationality_matches_destination": "nationality_matches_destination",
    "document_valid_on_travel_date": "document_valid_on_travel_date",
    "certificate_of_return_usable": "certificate_of_return_usable",
    "crossing_requirements_met": "evidence_pending",
    "route_known": "route_known",
}
"""Each rule's public reason code; a rule not listed is published as ``eligibility_decided``."""


@dataclass(frozen=True)
class RecordedDecision:
    """A decision as recorded: versioned per case, never changed."""

    version: int
    outcome: Outcome
    priority: int
    rules: tuple[RuleResult, ...]
    decided_at: datetime

    def as_decision(self) -> Decision:
        return Decision(self.outcome, self.priority, self.rules)


@dataclass(frozen=True)
class SupervisorOverride:
    """A supervisor's decision over the rules, with a written reason; kept, never edited."""

    outcome: Outcome
    reason: str
    supervisor: str
    created_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None


@dataclass(frozen=True)
class DecisionHistory:
    """Every decision taken on a case, oldest first, and every override with its reason."""

    case_id: uuid.UUID
    decisions: tuple[RecordedDecision, ...]
    overrides: tuple[SupervisorOverride, ...]


def _ordinal(i: int) -> str:
    return f"member {i + 1}"


def consent_recorded(case: CaseFacts, route: Route) -> RuleResult:
    rule = "consent_recorded"
    if not case.consent.given:
        return RuleResult(
            rule=rule, outcome=RuleOutcome.FAIL, reason="No consent to travel and share data recorded"
        )
    needed = [c for c in (*route.transit_countries, route.destination_country) if c != route.origin_country]
    missing = [c for c in needed if c not in case.consent.scope]
    if missing:
        return RuleResult(
            rule=rule,
            outcome=RuleOutcome.FAIL,
            reason=f"Consent does not cover sharing data with the {', '.join(missing)} mission(s) on the route",
        )
    return RuleResult(
        rule=rule,
        outcome=RuleOutcome.PASS,
        reason=f"{case.consent.kind.capitalize()} consent covers {', '.join(needed)}",
    )


def document_ref(doc_type: DocumentType, country: str, number: str) -> str:
    return hashlib.sha256(f"{doc_type.value}|{country}|{number}".encode()).hexdigest()[:24]


def nationality_matches_destination(case: CaseFacts, route: Route) -> RuleResult:
    rule = "nationality_matches_destination"
    others = [
        i
        for i, m in enumerate(case.members)
        if m.nationality != route.destination_country
        and m.citizenship_proof_country != route.destination_country
    ]
    if others:
        who = ", ".join(_ordinal(i) for i in others)
        return RuleResult(
            rule=rule,
            outcome=RuleOutcome.FAIL,
            reason=f"{who}: nationality is not {route.destination_country}, the route's destination",
        )
    proven = [i for i, m in enumerate(case.members) if m.nationality != route.destination_country]
    if proven:
        who = ", ".join(_ordinal(i) for i in proven)
        return RuleResult(
            rule=rule,
            outcome=RuleOutcome.PASS,
            reason=f"Every member is a {route.destination_country} national ({who} by proof of citizenship)",
        )
    return RuleResult(
        rule=rule, outcome=RuleOutcome.PASS, reason=f"Every member is a {route.destination_country} national"
    )


def document_valid_until(doc_type: DocumentType, expires_on: date, issued_on: date | None) -> date | None:
    """Last day a document can be used; None when it cannot be judged (missing issue date)."""
    if doc_type is DocumentType.CERTIFICATE_OF_RETURN:
        if issued_on is None:
            return None
        return min(expires_on, issued_on + CERTIFICATE_OF_RETURN_VALIDITY)
    return expires_on


def document_valid_on_travel_date(case: CaseFacts) -> RuleResult:
    rule = "document_valid_on_travel_date"
    travel = case.planned_travel_date
    expired: list[str] = []
    unknown: list[str] = []
    for i, member in enumerate(case.members):
        until = document_valid_until(
            member.document_type, member.document_expires_on, member.document_issued_on
        )
        kind = member.document_type.value.replace("_", " ")
        if until is None:
            unknown.append(f"{_ordinal(i)}: {kind} has no issue date")
        elif until < travel:
            expired.append(f"{_ordinal(i)}: {kind} is valid only until {until.isoformat()}")
    if expired:
        # Pending, not refused: a new passport or certificate of return puts the case back on track.
        return RuleResult(
            rule=rule,
            outcome=RuleOutcome.PENDING,
            reason=f"Travel document not valid on the planned travel date {travel.isoformat()} ({'; '.join(expired)})",
        )
    if unknown:
        return RuleResult(rule=rule, outcome=RuleOutcome.PENDING, reason="; ".join(unknown))
    return RuleResult(
        rule=rule, outcome=RuleOutcome.PASS, reason=f"Every travel document is valid on {travel.isoformat()}"
    )


def _window(travel: date, hours: int) -> tuple[datetime, datetime]:
    """Evidence counts if taken at most ``hours`` before the travel day starts, or on that day."""
    start = datetime.combine(travel, time.min, tzinfo=UTC)
    return start - timedelta(hours=hours), start + timedelta(days=1)


def _newest(
    evidence: list[Evidence], person: uuid.UUID, kind: EvidenceKind, travel: date, hours: int
) -> Evidence | None:
    """The newest evidence of ``kind`` for ``person`` inside the window, if any."""
    earliest, latest = _window(travel, hours)
    found = [
        e for e in evidence if e.person_id == person and e.kind is kind and earliest <= e.taken_at < latest
    ]
    return max(found, key=lambda e: e.taken_at) if found else None


def _has(
    evidence: list[Evidence], person: uuid.UUID, kind: EvidenceKind, travel: date, hours: int
) -> EvidenceResult | None:
    """The newest result of ``kind`` for ``person`` inside the window, if any."""
    found = _newest(evidence, person, kind, travel, hours)
    return found.result if found else None


def not_withdrawn(withdrawn_at: datetime | None) -> RuleResult:
    rule = "not_withdrawn"
    if withdrawn_at is not None:
        return RuleResult(
            rule=rule,
            outcome=RuleOutcome.FAIL,
            reason=f"Withdrawn by the applicant on {withdrawn_at.date().isoformat()}",
        )
    return RuleResult(rule=rule, outcome=RuleOutcome.PASS, reason="Not withdrawn")


def certificate_of_return_usable(case: CaseFacts, route: Route, used: frozenset[str]) -> RuleResult:
    """A certificate of return is issued once, for one journey, to return to its issuing country."""
    rule = "certificate_of_return_usable"
    problems = []
    for i, m in enumerate(case.members):
        if m.document_type is not DocumentType.CERTIFICATE_OF_RETURN:
            continue
        if m.document_issuing_country != route.destination_country:
            problems.append(
                f"{_ordinal(i)}: issued by {m.document_issuing_country}, usable only to return there, "
                f"not to {route.destination_country}"
            )
        elif m.document_ref in used:
            problems.append(f"{_ordinal(i)}: already used for an earlier journey")
    if problems:
        return RuleResult(
            rule=rule, outcome=RuleOutcome.FAIL, reason="Certificate of return: " + "; ".join(problems)
        )
    return RuleResult(
        rule=rule,
        outcome=RuleOutcome.PASS,
        reason="No certificate of return, or each is unused and for this destination",
    )


def fit_to_travel(case: CaseFacts, evidence: list[Evidence]) -> RuleResult:
    rule = "fit_to_travel"
    needing = [i for i, m in enumerate(case.members) if MEDICAL_FLAGS & set(m.vulnerabilities)]
    if not needing:
        return RuleResult(rule=rule, outcome=RuleOutcome.PASS, reason="No member needs a fit-to-travel check")
    unfit, missing = [], []
    for i in needing:
        result = _has(
            evidence,
            case.members[i].person_id,
            EvidenceKind.FIT_TO_TRAVEL,
            case.planned_travel_date,
            FIT_TO_TRAVEL_HOURS,
        )
        if result is EvidenceResult.UNFIT:
            unfit.append(_ordinal(i))
        elif result is not EvidenceResult.FIT:
            missing.append(_ordinal(i))
    if unfit:
        return RuleResult(
            rule=rule, outcome=RuleOutcome.FAIL, reason=f"Found not fit to travel: {', '.join(unfit)}"
        )
    if missing:
        return RuleResult(
            rule=rule,
            outcome=RuleOutcome.PENDING,
            reason=f"Fit-to-travel check within {FIT_TO_TRAVEL_HOURS} h before departure needed for {', '.join(missing)}",
        )
    return RuleResult(
        rule=rule, outcome=RuleOutcome.PASS, reason="Fit to travel, checked within 72 h before departure"
    )


_EVIDENCE_NOUN: dict[EvidenceKind, str] = {
    EvidenceKind.COVID19_TEST: "test",
    EvidenceKind.FIT_TO_TRAVEL: "fit-to-travel check",
}


def crossing_requirements_met(
    case: CaseFacts, route: Route, requirements: list[Requirement], evidence: list[Evidence]
) -> RuleResult:
    """A member whose newest evidence in the window has the wrong result (a positive test) is named
    with its date and result, for the caseworker only: the public stream says ``evidence_pending``
    (``public_code``)."""
    rule = "crossing_requirements_met"
    on_route = {cp.checkpoint_id for cp in route.checkpoints}
    active = [
        r for r in requirements if r.checkpoint_id in on_route and r.applies_on(case.planned_travel_date)
    ]
    if not active:
        return RuleResult(
            rule=rule, outcome=RuleOutcome.PASS, reason="No crossing on the route has an extra requirement"
        )
    unmet = []
    for req in sorted(active, key=lambda r: (route.index_of(r.checkpoint_id), r.code)):
        wanted = ACCEPTABLE_RESULT[req.evidence_kind]
        held: list[str] = []  # every member without acceptable evidence, in order
        absent: list[str] = []  # no evidence in the window
        unacceptable: list[str] = []  # the newest in the window has another result (positive)
        for i, m in enumerate(case.members):
            found = _newest(
                evidence, m.person_id, req.evidence_kind, case.planned_travel_date, req.valid_hours
            )
            if found is None or found.result is not wanted:
                held.append(_ordinal(i))
            if found is None:
                absent.append(_ordinal(i))
            elif found.result is not wanted:
                taken = found.taken_at.astimezone(UTC).date().isoformat()
                noun = _EVIDENCE_NOUN[req.evidence_kind]
                unacceptable.append(f"{_ordinal(i)}'s {noun} taken {taken} was {found.result.value}")
        if held:
            requires = f"{req.post} ({req.country}) requires {req.description}"
            details = [*unacceptable, *([f"missing for {', '.join(absent)}"] if absent else [])]
            unmet.append(f"{requires}: {'; '.join(details)}")
    if unmet:
        return RuleResult(rule=rule, outcome=RuleOutcome.PENDING, reason="; ".join(unmet))
    return RuleResult(
        rule=rule,
        outcome=RuleOutcome.PASS,
        reason="Meets " + "; ".join(f"{r.post} ({r.country}): {r.description}" for r in active),
    )


def priority(case: CaseFacts) -> int:
    weights = [max((VULNERABILITY_WEIGHT[v] for v in m.vulnerabilities), default=0) for m in case.members]
    vulnerable = [w for w in weights if w > 0]
    return max(weights, default=0) + max(len(vulnerable) - 1, 0)


def evaluate(
    case: CaseFacts,
    route: Route,
    *,
    evidence: list[Evidence] | None = None,
    requirements: list[Requirement] | None = None,
    withdrawn_at: datetime | None = None,
    used_certificates: frozenset[str] = frozenset(),
) -> Decision:
    evidence = evidence or []
    crossing = crossing_requirements_met(case, route, requirements or [], evidence)
    rules = (
        not_withdrawn(withdrawn_at),
        consent_recorded(case, route),
        nationality_matches_destination(case, route),
        document_valid_on_travel_date(case),
        certificate_of_return_usable(case, route, used_certificates),
        fit_to_travel(case, evidence),
        crossing,
    )
    if any(r.outcome is RuleOutcome.FAIL for r in rules):
        outcome = Outcome.INELIGIBLE
    elif any(r.outcome is RuleOutcome.PENDING for r in rules):
        outcome = Outcome.PENDING
    else:
        outcome = Outcome.ELIGIBLE
    return Decision(outcome=outcome, priority=priority(case), rules=rules)


def route_unknown(case: CaseFacts) -> Decision:
    """A case on a route eligibility has no configuration for waits: nothing can be judged."""
    return Decision(
        outcome=Outcome.PENDING,
        priority=0,
        rules=(
            RuleResult(
                rule="route_known",
                outcome=RuleOutcome.PENDING,
                reason=f"Route {case.route_id} is not configured for eligibility",
            ),
        ),
    )


class OverrideRefused(Conflict):
    """An override that no supervisor may make (answered 409)."""


def check_override(decision: Decision, outcome: Outcome) -> None:
    """Consent gates every transfer of personal data: no override makes a case travel without it."""
    consent = next((r for r in decision.rules if r.rule == "consent_recorded"), None)
    if outcome is Outcome.ELIGIBLE and consent is not None and consent.outcome is not RuleOutcome.PASS:
        raise OverrideRefused(f"consent cannot be overridden: {consent.reason}")


def with_override(decision: Decision, outcome: Outcome, supervisor: str, reason: str) -> Decision:
    """A supervisor's override replaces the outcome; the evaluated rules stay visible beside it."""
    if outcome is Outcome.ELIGIBLE:
        try:
            check_override(decision, outcome)
        except OverrideRefused:
            return decision  # consent withdrawn or narrowed since: the override no longer holds
    note = RuleResult(
        rule="supervisor_override",
        outcome=RuleOutcome.PASS
        if outcome is Outcome.ELIGIBLE
        else RuleOutcome.FAIL
        if outcome is Outcome.INELIGIBLE
        else RuleOutcome.PENDING,
        reason=f"Overridden to {outcome.value} by {supervisor} (rules said {decision.outcome.value}): {reason}",
    )
    return Decision(
        outcome=outcome,
        priority=decision.priority,
        rules=(*decision.rules, note),
    )


def overridden(decision: Decision, override: SupervisorOverride | None, case: CaseRecord) -> Decision:
    """The rules' decision with the active override applied: a withdrawal ends every override
    (the applicant's word comes before a supervisor's)."""
    if override is None or case.withdrawn_at is not None:
        return decision
    return with_override(decision, override.outcome, override.supervisor, override.reason)


ERASED_TEXT = "[erased]"
"""What replaces a text that spoke of a person whose data was erased."""


def erased_facts(facts: CaseFacts) -> CaseFacts:
    """The facts without what speaks of the people: no vulnerabilities (medical facts among them),
    no document reference; nationality, document type and dates stay for the statistics."""
    return facts.model_copy(
        update={
            "members": tuple(
                m.model_copy(update={"vulnerabilities": (), "document_ref": ""}) for m in facts.members
            )
        }
    )


class CaseErased(Conflict):
    """The case's personal data was erased: eligibility decides nothing on it any more."""


class NoSuchCase(NotFound):
    """Eligibility has not decided on this case (not registered here, or not yet)."""


class NoDecision(NotFound):
    """No decision has been taken on the case yet."""


class NoActiveOverride(NotFound):
    """The case has no override in force to revoke."""
