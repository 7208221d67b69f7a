"""Details of the domain rules that the mutation run (docs/mutation-report.md) found no unit test
for: each test here fails on a mutant that survived the rest of the suite."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, date, datetime, timedelta

from contracts.border import CrossingRequirementPublished
from contracts.eligibility import RuleOutcome, RuleResult
from contracts.intake import EvidenceKind, EvidenceResult
from contracts.routes import RouteBook
from contracts.status import CaseStatus
from devkit import scenario
from services.eligibility.domain import (
    CaseFacts,
    Evidence,
    Outcome,
    Requirement,
    crossing_requirements_met,
    nationality_matches_destination,
    route_unknown,
)
from services.intake import domain as intake
from services.transport.domain import new_movement_id
from tests.paths import CENTRAL_ASIA_ROUTES

ROUTE = RouteBook.load(CENTRAL_ASIA_ROUTES).routes[0]
CP = [c.checkpoint_id for c in ROUTE.checkpoints]
TRAVEL = date(2026, 12, 1)


def test_only_certificates_of_return_are_counted_as_certificates() -> None:
    command = intake.RegisterCase.model_validate(scenario.single_traveller(TRAVEL))
    facts = CaseFacts.from_registration(
        intake.build_case(command, case_id=uuid.uuid4(), now=datetime(2026, 11, 1, tzinfo=UTC))
    )
    assert facts.members[0].document_ref  # a passport has a reference too
    assert facts.certificates_of_return() == ()


def test_a_published_requirement_keeps_every_field() -> None:
    published = CrossingRequirementPublished(
        requirement_id=uuid.uuid4(),
        checkpoint_id=CP[1],
        country="UZB",
        post="Gisht-Kuprik",
        code="negative_covid19_test",
        description="a negative COVID-19 test taken within 72 hours",
        evidence_kind=EvidenceKind.COVID19_TEST,
        valid_hours=72,
        effective_from=TRAVEL,
        published_at=datetime(2026, 11, 28, tzinfo=UTC),
    )
    kept = Requirement.from_published(published)
    for field in dataclasses.fields(Requirement):
        assert getattr(kept, field.name) == getattr(published, field.name), field.name


def test_a_case_on_an_unconfigured_route_waits_with_no_priority() -> None:
    command = intake.RegisterCase.model_validate(scenario.single_traveller(TRAVEL))
    facts = CaseFacts.from_registration(
        intake.build_case(command, case_id=uuid.uuid4(), now=datetime(2026, 11, 1, tzinfo=UTC))
    )
    decision = route_unknown(facts)
    assert decision.outcome is Outcome.PENDING and decision.priority == 0
    assert [r.rule for r in decision.rules] == ["route_known"]
    assert facts.route_id in decision.rules[0].reason


def test_a_withdrawal_too_late_says_where_the_case_is() -> None:
    error = intake.WithdrawalTooLate(CaseStatus.DEPARTED)
    assert error.status is CaseStatus.DEPARTED
    assert "departed" in str(error)


def test_a_rejected_registration_names_every_problem_with_its_place() -> None:
    rejected = intake.RegistrationRejected(
        [
            intake.Problem(("members", "0", "birth_date"), "in the future"),
            intake.Problem(("consent",), "missing"),
        ]
    )
    assert str(rejected) == "members.0.birth_date: in the future; consent: missing"


def test_a_movement_id_names_its_day_and_six_hex_digits() -> None:
    assert re.fullmatch(r"MOV-20261201-[0-9a-f]{6}", new_movement_id(TRAVEL))


# --- the reasons a caseworker reads: exact, for every branch of the rule -------------------------


def _family(travel: date = TRAVEL) -> CaseFacts:
    command = intake.RegisterCase.model_validate(scenario.family_of_three(travel))
    return CaseFacts.from_registration(
        intake.build_case(command, case_id=uuid.uuid4(), now=datetime(2026, 11, 1, tzinfo=UTC))
    )


def _members(case: CaseFacts, **changes: dict[str, object]) -> CaseFacts:
    """``changes``: per member index as ``m0``, ``m1``..., the fields to change."""
    members = [m.model_copy(update=changes.get(f"m{i}", {})) for i, m in enumerate(case.members)]
    return case.model_copy(update={"members": tuple(members)})


def test_nationality_names_the_members_proven_by_citizenship_and_those_who_are_not_nationals() -> None:
    family = _family()
    assert nationality_matches_destination(family, ROUTE) == RuleResult(
        rule="nationality_matches_destination",
        outcome=RuleOutcome.PASS,
        reason="Every member is a TJK national",
    )
    proven = _members(
        family,
        m0={"nationality": "KAZ", "citizenship_proof_country": "TJK"},
        m2={"nationality": "UZB", "citizenship_proof_country": "TJK"},
    )
    assert nationality_matches_destination(proven, ROUTE) == RuleResult(
        rule="nationality_matches_destination",
        outcome=RuleOutcome.PASS,
        reason="Every member is a TJK national (member 1, member 3 by proof of citizenship)",
    )
    foreign = _members(family, m1={"nationality": "KAZ"}, m2={"nationality": "UZB"})
    assert nationality_matches_destination(foreign, ROUTE) == RuleResult(
        rule="nationality_matches_destination",
        outcome=RuleOutcome.FAIL,
        reason="member 2, member 3: nationality is not TJK, the route's destination",
    )


def _requirement(checkpoint: int, code: str, kind: EvidenceKind, description: str) -> Requirement:
    cp = ROUTE.checkpoints[checkpoint]
    return Requirement(
        uuid.uuid4(), cp.checkpoint_id, cp.country, cp.post, code, description, kind, 72, TRAVEL
    )


def test_crossing_requirements_name_each_post_in_route_order_and_each_member_held() -> None:
    family = _family()
    later = _requirement(3, "a_fit", EvidenceKind.FIT_TO_TRAVEL, "a fit-to-travel check")
    earlier = _requirement(1, "z_test", EvidenceKind.COVID19_TEST, "a negative test")
    same_post = _requirement(1, "a_test", EvidenceKind.COVID19_TEST, "another negative test")
    requirements = [later, earlier, same_post]
    assert crossing_requirements_met(family, ROUTE, [], []) == RuleResult(
        rule="crossing_requirements_met",
        outcome=RuleOutcome.PASS,
        reason="No crossing on the route has an extra requirement",
    )
    day_before = datetime.combine(TRAVEL, datetime.min.time(), UTC) - timedelta(hours=20)
    positive = Evidence(
        family.members[1].person_id, EvidenceKind.COVID19_TEST, EvidenceResult.POSITIVE, day_before
    )
    result = crossing_requirements_met(family, ROUTE, requirements, [positive])
    second, fourth = ROUTE.checkpoints[1], ROUTE.checkpoints[3]
    test_missing = "member 2's test taken 2026-11-30 was positive; missing for member 1, member 3"
    assert result == RuleResult(
        rule="crossing_requirements_met",
        outcome=RuleOutcome.PENDING,
        reason=f"{second.post} ({second.country}) requires another negative test: {test_missing}; "
        f"{second.post} ({second.country}) requires a negative test: {test_missing}; "
        f"{fourth.post} ({fourth.country}) requires a fit-to-travel check: "
        "missing for member 1, member 2, member 3",
    )
    met = [
        Evidence(m.person_id, kind, ok, day_before)
        for m in family.members
        for kind, ok in (
            (EvidenceKind.COVID19_TEST, EvidenceResult.NEGATIVE),
            (EvidenceKind.FIT_TO_TRAVEL, EvidenceResult.FIT),
        )
    ]
    assert crossing_requirements_met(family, ROUTE, [earlier], met) == RuleResult(
        rule="crossing_requirements_met",
        outcome=RuleOutcome.PASS,
        reason=f"Meets {second.post} ({second.country}): a negative test",
    )
    assert crossing_requirements_met(family, ROUTE, [earlier, later], met).reason == (
        f"Meets {second.post} ({second.country}): a negative test; "
        f"{fourth.post} ({fourth.country}): a fit-to-travel check"
    )


def test_a_member_held_only_for_a_positive_result_is_not_said_to_be_missing_a_test() -> None:
    family = _family()
    earlier = _requirement(1, "z_test", EvidenceKind.COVID19_TEST, "a negative test")
    day_before = datetime.combine(TRAVEL, datetime.min.time(), UTC) - timedelta(hours=20)
    negative = [
        Evidence(m.person_id, EvidenceKind.COVID19_TEST, EvidenceResult.NEGATIVE, day_before)
        for m in family.members[1:]
    ]
    positive = Evidence(
        family.members[0].person_id, EvidenceKind.COVID19_TEST, EvidenceResult.POSITIVE, day_before
    )
    second = ROUTE.checkpoints[1]
    assert crossing_requirements_met(family, ROUTE, [earlier], [positive, *negative]).reason == (
        f"{second.post} ({second.country}) requires a negative test: member 1's test taken 2026-11-30 was positive"
    )
