import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from contracts import reasons
from contracts.eligibility import Outcome, RuleOutcome
from contracts.intake import CaseRegistered
from contracts.routes import RouteBook
from devkit import scenario
from services.eligibility.domain import CaseFacts, document_valid_until, evaluate, priority, with_override
from services.intake import domain as intake
from tests.paths import CENTRAL_ASIA_ROUTES

ROUTE = RouteBook.load(CENTRAL_ASIA_ROUTES).routes[0]
TRAVEL = date(2026, 12, 1)


def facts(body: dict) -> CaseFacts:
    command = intake.RegisterCase.model_validate(body)
    case: CaseRegistered = intake.build_case(command, case_id=uuid.uuid4(), now=datetime.now(UTC))
    return CaseFacts.from_registration(case)


def rule(decision, name):
    return next(r for r in decision.rules if r.rule == name)


def test_family_with_valid_documents_is_eligible_and_prioritised() -> None:
    decision = evaluate(facts(scenario.family_of_three(TRAVEL)), ROUTE)
    assert decision.outcome is Outcome.ELIGIBLE
    assert all(r.outcome is RuleOutcome.PASS for r in decision.rules)
    assert decision.priority == 30  # a member with a disability


def test_passport_expiring_the_day_before_travel_puts_the_case_on_hold() -> None:
    body = scenario.single_traveller(TRAVEL, expires_on=TRAVEL - timedelta(days=1))
    decision = evaluate(facts(body), ROUTE)
    assert decision.outcome is Outcome.PENDING
    failed = rule(decision, "document_valid_on_travel_date")
    assert failed.outcome is RuleOutcome.PENDING
    assert "2026-11-30" in failed.reason and "member 1" in failed.reason
    # The public stream gets the rule's code and the code's fixed text: no date, no member.
    code, reason = decision.summary()
    assert code == "document_valid_on_travel_date" and reason == reasons.text_of(code)


def test_passport_expiring_on_the_travel_day_is_still_valid() -> None:
    decision = evaluate(facts(scenario.single_traveller(TRAVEL, expires_on=TRAVEL)), ROUTE)
    assert decision.outcome is Outcome.ELIGIBLE


def test_certificate_of_return_is_valid_thirty_days_from_issue() -> None:
    far = date(2030, 1, 1)
    assert document_valid_until(intake.DocumentType.CERTIFICATE_OF_RETURN, far, TRAVEL) == TRAVEL + timedelta(
        days=30
    )
    assert document_valid_until(intake.DocumentType.CERTIFICATE_OF_RETURN, far, None) is None
    assert document_valid_until(intake.DocumentType.PASSPORT, far, None) == far


def test_family_member_whose_certificate_lapses_makes_the_whole_family_pending() -> None:
    body = scenario.family_of_three(TRAVEL)
    body["members"][2]["document"]["issued_on"] = (TRAVEL - timedelta(days=31)).isoformat()
    body["members"][2]["document"]["expires_on"] = (TRAVEL - timedelta(days=1)).isoformat()
    decision = evaluate(facts(body), ROUTE)
    assert decision.outcome is Outcome.PENDING
    assert (
        "member 3: certificate of return is valid only until"
        in rule(decision, "document_valid_on_travel_date").reason
    )


def test_certificate_without_issue_date_is_pending_not_refused() -> None:
    # Intake refuses such a registration; an older event could still carry one.
    f = facts(scenario.family_of_three(TRAVEL))
    child = f.members[2].model_copy(update={"document_issued_on": None})
    f = f.model_copy(update={"members": (*f.members[:2], child)})
    decision = evaluate(f, ROUTE)
    assert decision.outcome is Outcome.PENDING
    assert rule(decision, "document_valid_on_travel_date").outcome is RuleOutcome.PENDING


@pytest.mark.parametrize(
    ("consent", "expected"),
    [
        ({"given": False, "kind": "explicit", "scope": ["UZB", "TJK"]}, RuleOutcome.FAIL),
        ({"given": True, "kind": "explicit", "scope": ["TJK"]}, RuleOutcome.FAIL),
        (
            {
                "given": True,
                "kind": "proxy",
                "scope": ["UZB", "TJK"],
                "proxy_name": "Aunt",
                "proxy_reason": "minor",
            },
            RuleOutcome.PASS,
        ),
    ],
)
def test_consent_must_cover_every_mission_on_the_route(consent: dict, expected: RuleOutcome) -> None:
    body = scenario.single_traveller(TRAVEL)
    body["consent"] = consent
    assert rule(evaluate(facts(body), ROUTE), "consent_recorded").outcome is expected


def test_foreign_national_fails_the_nationality_rule() -> None:
    body = scenario.single_traveller(TRAVEL)
    body["members"][0]["nationality"] = "KGZ"
    decision = evaluate(facts(body), ROUTE)
    assert decision.outcome is Outcome.INELIGIBLE
    assert "not TJK" in rule(decision, "nationality_matches_destination").reason


def test_priority_follows_the_most_vulnerable_member_then_counts_others() -> None:
    body = scenario.family_of_three(TRAVEL)
    body["members"][0]["vulnerabilities"] = ["elderly"]
    body["members"][2]["vulnerabilities"] = ["unaccompanied_minor"]
    assert priority(facts(body)) == 50 + 2
    assert priority(facts(scenario.single_traveller(TRAVEL))) == 0


def test_case_facts_keep_no_names_or_document_numbers() -> None:
    dumped = facts(scenario.family_of_three(TRAVEL)).model_dump_json()
    for secret in ("Nazarov", "Farrukh", "401234567", "1986-03-14"):
        assert secret not in dumped


def _evidence(f: CaseFacts, kind: str, result: str, hours_before: int, members: range | None = None):
    from contracts.intake import EvidenceKind, EvidenceResult
    from services.eligibility.domain import Evidence

    start = datetime.combine(f.planned_travel_date, datetime.min.time(), tzinfo=UTC)
    chosen = members if members is not None else range(len(f.members))
    return [
        Evidence(
            f.members[i].person_id,
            EvidenceKind(kind),
            EvidenceResult(result),
            start - timedelta(hours=hours_before),
        )
        for i in chosen
    ]


def _requirement(checkpoint: str = "uzb-zhibek-zholy-entry", effective: date = TRAVEL):
    from contracts.intake import EvidenceKind
    from services.eligibility.domain import Requirement

    return Requirement(
        uuid.uuid4(),
        checkpoint,
        "UZB",
        "Gisht-Kuprik",
        "negative_covid19_test",
        "a negative COVID-19 test taken within 72 hours",
        EvidenceKind.COVID19_TEST,
        72,
        effective,
    )


def test_a_pregnant_member_needs_a_recent_fit_to_travel_check() -> None:
    body = scenario.family_of_three(TRAVEL)
    body["members"][1]["vulnerabilities"] = ["pregnant"]
    f = facts(body)
    assert evaluate(f, ROUTE).outcome is Outcome.PENDING
    assert "member 2" in rule(evaluate(f, ROUTE), "fit_to_travel").reason
    assert (
        evaluate(f, ROUTE, evidence=_evidence(f, "fit_to_travel", "fit", 48, range(1, 2))).outcome
        is Outcome.ELIGIBLE
    )
    stale = _evidence(f, "fit_to_travel", "fit", 80, range(1, 2))
    assert evaluate(f, ROUTE, evidence=stale).outcome is Outcome.PENDING
    unfit = _evidence(f, "fit_to_travel", "unfit", 10, range(1, 2))
    assert evaluate(f, ROUTE, evidence=unfit).outcome is Outcome.INELIGIBLE


def test_a_new_crossing_requirement_holds_exactly_the_members_without_evidence() -> None:
    f = facts(scenario.family_of_three(TRAVEL))
    req = [_requirement()]
    held = evaluate(
        f, ROUTE, requirements=req, evidence=_evidence(f, "covid19_test", "negative", 24, range(0, 2))
    )
    assert held.outcome is Outcome.PENDING
    reason = rule(held, "crossing_requirements_met").reason
    assert "Gisht-Kuprik (UZB)" in reason and "member 3" in reason and "member 1" not in reason
    ok = evaluate(f, ROUTE, requirements=req, evidence=_evidence(f, "covid19_test", "negative", 24))
    assert ok.outcome is Outcome.ELIGIBLE
    positive = evaluate(f, ROUTE, requirements=req, evidence=_evidence(f, "covid19_test", "positive", 24))
    assert positive.outcome is Outcome.PENDING


def test_requirements_elsewhere_or_later_do_not_apply() -> None:
    f = facts(scenario.single_traveller(TRAVEL))
    elsewhere = _requirement(checkpoint="kgz-somewhere-entry")
    later = _requirement(effective=TRAVEL + timedelta(days=1))
    assert evaluate(f, ROUTE, requirements=[elsewhere, later]).outcome is Outcome.ELIGIBLE


def test_withdrawal_fails_the_case_and_decisions_compare_by_outcome_and_reasons() -> None:
    f = facts(scenario.single_traveller(TRAVEL))
    withdrawn = evaluate(f, ROUTE, withdrawn_at=datetime(2026, 11, 30, tzinfo=UTC))
    assert (
        withdrawn.outcome is Outcome.INELIGIBLE
        and rule(withdrawn, "not_withdrawn").outcome is RuleOutcome.FAIL
    )
    first = evaluate(f, ROUTE)
    stored = [r.model_dump(mode="json") for r in first.rules]
    assert evaluate(f, ROUTE).same_as("eligible", stored)
    assert not withdrawn.same_as("eligible", stored)


def test_a_positive_test_is_named_as_positive_for_the_caseworker_only() -> None:
    f = facts(scenario.family_of_three(TRAVEL))
    evidence = [
        *_evidence(f, "covid19_test", "positive", 24, range(0, 1)),
        *_evidence(f, "covid19_test", "negative", 24, range(1, 2)),
    ]
    held = evaluate(f, ROUTE, requirements=[_requirement()], evidence=evidence)
    assert held.outcome is Outcome.PENDING
    crossing = rule(held, "crossing_requirements_met")
    assert crossing.outcome is RuleOutcome.PENDING
    assert crossing.reason == (
        "Gisht-Kuprik (UZB) requires a negative COVID-19 test taken within 72 hours: "
        "member 1's test taken 2026-11-30 was positive; missing for member 3"
    )
    # The public status stream says only that evidence is missing: no member, no test result.
    code, public = held.summary()
    assert (code, public) == ("evidence_pending", reasons.text_of("evidence_pending"))


@pytest.mark.parametrize(
    ("result", "code"), [(None, "evidence_pending"), ("unfit", "travel_condition_not_met")]
)
def test_the_public_reason_of_a_fit_to_travel_rule_names_no_health_fact(
    result: str | None, code: str
) -> None:
    # Only a member flagged pregnant or seriously ill needs the check: "fit_to_travel" on the
    # stream would tell every mission so. Pending shares its code with the crossing requirements.
    body = scenario.family_of_three(TRAVEL)
    body["members"][1]["vulnerabilities"] = ["pregnant"]
    f = facts(body)
    evidence = _evidence(f, "fit_to_travel", result, 10, range(1, 2)) if result else []
    decision = evaluate(f, ROUTE, evidence=evidence)
    assert rule(decision, "fit_to_travel").outcome is not RuleOutcome.PASS
    summary = decision.summary()
    assert summary == (code, reasons.text_of(code))
    assert "fit" not in summary[0] and "member" not in (summary[1] or "")


@pytest.mark.parametrize("outcome", list(Outcome))
def test_an_override_is_public_as_its_outcome_alone(outcome: Outcome) -> None:
    f = facts(scenario.single_traveller(TRAVEL))
    decided = with_override(evaluate(f, ROUTE), outcome, "Supervisor Zhanna Q", "Because of Zhanna's letter")
    code, text = decided.summary()
    assert code == f"supervisor_override_{outcome.value}" and text == reasons.text_of(code)
    assert "Zhanna" not in text


def test_a_negative_test_too_old_is_missing_not_positive() -> None:
    f = facts(scenario.single_traveller(TRAVEL))
    stale = evaluate(
        f, ROUTE, requirements=[_requirement()], evidence=_evidence(f, "covid19_test", "negative", 80)
    )
    assert stale.outcome is Outcome.PENDING
    reason = rule(stale, "crossing_requirements_met").reason
    assert reason.endswith(": missing for member 1") and "positive" not in reason


def test_a_recent_negative_test_meets_the_requirement_whatever_came_before() -> None:
    f = facts(scenario.single_traveller(TRAVEL))
    evidence = [
        *_evidence(f, "covid19_test", "positive", 60),
        *_evidence(f, "covid19_test", "negative", 12),
    ]
    ok = evaluate(f, ROUTE, requirements=[_requirement()], evidence=evidence)
    assert ok.outcome is Outcome.ELIGIBLE
    assert rule(ok, "crossing_requirements_met").outcome is RuleOutcome.PASS
    # The newest test in the window counts: positive after a negative holds the case again.
    later = [*evidence, *_evidence(f, "covid19_test", "positive", 2)]
    reason = rule(
        evaluate(f, ROUTE, requirements=[_requirement()], evidence=later), "crossing_requirements_met"
    )
    assert "member 1's test taken 2026-11-30 was positive" in reason.reason
