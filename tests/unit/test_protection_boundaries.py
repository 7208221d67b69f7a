"""Every rule that protects a person, at its edge and one past it (issue 16): the escort seat, the
certificate of return's 30 days, the 72-hour fit-to-travel window, a document's last valid day, and
consent to every mission on the route, overrides included. Duplicate names have their own file
(test_duplicate_name_boundaries.py), the identity card's zone too (test_mrz_td1.py)."""

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from pydantic import ValidationError

from contracts.eligibility import Outcome, RuleOutcome
from contracts.intake import DocumentType, EvidenceKind, EvidenceResult
from contracts.routes import Route, RouteBook
from devkit import scenario
from services.eligibility.domain import (
    CaseFacts,
    Evidence,
    OverrideRefused,
    check_override,
    consent_recorded,
    document_valid_on_travel_date,
    evaluate,
    fit_to_travel,
    with_override,
)
from services.intake import domain as intake
from services.transport.domain import ReadyCase, Vehicle, plan
from tests.paths import CENTRAL_ASIA_ROUTES

ROUTE = RouteBook.load(CENTRAL_ASIA_ROUTES).routes[0]
TRAVEL = date(2026, 12, 1)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def facts(body: dict) -> CaseFacts:
    command = intake.RegisterCase.model_validate(body)
    return CaseFacts.from_registration(intake.build_case(command, case_id=uuid.uuid4(), now=T0))


def rule(decision, name):
    return next(r for r in decision.rules if r.rule == name)


# --- the escort seat (transport's planner) -------------------------------------------------------


def escorted(members: int) -> ReadyCase:
    return ReadyCase(uuid.uuid4(), members, 50, T0, needs_escort=True)


def test_three_people_and_their_escort_do_not_go_on_a_three_seat_bus() -> None:
    family = escorted(3)
    result = plan([family], [Vehicle("BUS-1", 3)])
    [placement] = result.placements
    assert placement.vehicle_id is None
    assert "3 seats needed together plus an escort seat" in placement.explanation
    assert result.vehicles["BUS-1"].taken == 0 and not result.vehicles["BUS-1"].escort_seat


def test_three_people_and_their_escort_fill_a_four_seat_bus_exactly() -> None:
    family = escorted(3)
    result = plan([family], [Vehicle("BUS-1", 4)])
    [placement] = result.placements
    assert placement.vehicle_id == "BUS-1" and placement.escort_seat_reserved
    assert result.vehicles["BUS-1"].free == 0


def test_an_escorted_family_skips_the_vehicle_that_fits_them_only_without_the_escort() -> None:
    family = escorted(3)
    result = plan([family], [Vehicle("BUS-1", 3), Vehicle("BUS-2", 4)])
    assert result.placements[0].vehicle_id == "BUS-2"


def test_a_reserved_escort_seat_is_not_given_to_anyone_else() -> None:
    # BUS-1 already carries an escort: of its four seats three are left, for anyone.
    three, four = ReadyCase(uuid.uuid4(), 3, 0, T0), ReadyCase(uuid.uuid4(), 4, 0, T0)
    assert plan([three], [Vehicle("BUS-1", 4, escort_seat=True)]).placements[0].vehicle_id == "BUS-1"
    assert plan([four], [Vehicle("BUS-1", 4, escort_seat=True)]).placements[0].vehicle_id is None
    # A second escorted family shares the escort already on board: no second seat for it.
    shared = plan([escorted(3)], [Vehicle("BUS-1", 4, escort_seat=True)]).placements[0]
    assert shared.vehicle_id == "BUS-1" and not shared.escort_seat_reserved


# --- certificate of return: 30 days from issue (intake and eligibility) --------------------------


def _certificate_body(issued: date, expires: date) -> dict:
    body = scenario.single_traveller(TRAVEL)
    body["members"][0]["document"].update(
        type="certificate_of_return", issued_on=issued.isoformat(), expires_on=expires.isoformat()
    )
    return body


def test_intake_accepts_a_certificate_valid_thirty_days_and_refuses_thirty_one() -> None:
    issued = TRAVEL - timedelta(days=10)
    command = intake.RegisterCase.model_validate(_certificate_body(issued, issued + timedelta(days=30)))
    assert command.members[0].document.expires_on == issued + timedelta(days=30)
    with pytest.raises(ValidationError, match="valid at most 30 days"):
        intake.RegisterCase.model_validate(_certificate_body(issued, issued + timedelta(days=31)))


def _certificate_facts(issued: date) -> CaseFacts:
    """A certificate whose stated expiry lies far ahead (an older event could carry one): only the
    30 days from issue bound it."""
    f = facts(_certificate_body(TRAVEL - timedelta(days=5), TRAVEL + timedelta(days=25)))
    member = f.members[0].model_copy(
        update={"document_issued_on": issued, "document_expires_on": date(2030, 1, 1)}
    )
    return f.model_copy(update={"members": (member,)})


def test_eligibility_takes_a_certificate_issued_thirty_days_before_travel_and_holds_thirty_one() -> None:
    on_the_edge = _certificate_facts(TRAVEL - timedelta(days=30))
    assert document_valid_on_travel_date(on_the_edge).outcome is RuleOutcome.PASS
    assert evaluate(on_the_edge, ROUTE).outcome is Outcome.ELIGIBLE
    one_past = _certificate_facts(TRAVEL - timedelta(days=31))
    result = document_valid_on_travel_date(one_past)
    assert result.outcome is RuleOutcome.PENDING
    assert f"certificate of return is valid only until {(TRAVEL - timedelta(days=1)).isoformat()}" in (
        result.reason
    )
    assert evaluate(one_past, ROUTE).outcome is Outcome.PENDING


# --- a document's last valid day ----------------------------------------------------------------


def test_a_passport_expiring_on_the_travel_date_is_valid_and_the_day_before_is_not() -> None:
    on_the_day = facts(scenario.single_traveller(TRAVEL, expires_on=TRAVEL))
    assert document_valid_on_travel_date(on_the_day).outcome is RuleOutcome.PASS
    day_before = facts(scenario.single_traveller(TRAVEL, expires_on=TRAVEL - timedelta(days=1)))
    assert document_valid_on_travel_date(day_before).outcome is RuleOutcome.PENDING


def test_a_certificate_expiring_on_the_travel_date_is_valid_and_the_day_before_is_not() -> None:
    on_the_day = facts(_certificate_body(TRAVEL - timedelta(days=5), TRAVEL))
    assert document_valid_on_travel_date(on_the_day).outcome is RuleOutcome.PASS
    day_before = facts(_certificate_body(TRAVEL - timedelta(days=5), TRAVEL - timedelta(days=1)))
    assert document_valid_on_travel_date(day_before).outcome is RuleOutcome.PENDING


# --- fit to travel: within 72 hours before the travel day starts ---------------------------------

TRAVEL_DAY_STARTS = datetime.combine(TRAVEL, time.min, tzinfo=UTC)


def _pregnant() -> CaseFacts:
    body = scenario.single_traveller(TRAVEL)
    body["members"][0]["vulnerabilities"] = ["pregnant"]
    return facts(body)


def _fit_at(f: CaseFacts, taken_at: datetime) -> list[Evidence]:
    return [Evidence(f.members[0].person_id, EvidenceKind.FIT_TO_TRAVEL, EvidenceResult.FIT, taken_at)]


def test_a_fit_to_travel_check_exactly_72_hours_before_counts_and_one_minute_more_does_not() -> None:
    f = _pregnant()
    edge = TRAVEL_DAY_STARTS - timedelta(hours=72)
    assert fit_to_travel(f, _fit_at(f, edge)).outcome is RuleOutcome.PASS
    assert evaluate(f, ROUTE, evidence=_fit_at(f, edge)).outcome is Outcome.ELIGIBLE
    late = edge - timedelta(minutes=1)
    assert fit_to_travel(f, _fit_at(f, late)).outcome is RuleOutcome.PENDING
    assert evaluate(f, ROUTE, evidence=_fit_at(f, late)).outcome is Outcome.PENDING


def test_a_fit_to_travel_check_counts_through_the_travel_day_and_not_after_it() -> None:
    f = _pregnant()
    last_minute = TRAVEL_DAY_STARTS + timedelta(days=1, minutes=-1)
    assert fit_to_travel(f, _fit_at(f, last_minute)).outcome is RuleOutcome.PASS
    next_day = TRAVEL_DAY_STARTS + timedelta(days=1)
    assert fit_to_travel(f, _fit_at(f, next_day)).outcome is RuleOutcome.PENDING


# --- consent to every mission on the route, overrides included ----------------------------------


def _checkpoint(country: str, direction: str) -> dict:
    return {
        "checkpoint_id": f"{country.lower()}-{direction}",
        "crossing": f"{country} crossing",
        "post": f"{country} post",
        "country": country,
        "direction": direction,
    }


# Out of Kazakhstan through Kyrgyzstan and Uzbekistan to Tajikistan: three missions to consent to.
LONG_ROUTE = Route.model_validate(
    {
        "route_id": "kaz-kgz-uzb-tjk",
        "origin_country": "KAZ",
        "destination_country": "TJK",
        "gathering_point": {"name": "Gathering point", "country": "KAZ"},
        "reception_point": {"name": "Reception centre", "country": "TJK"},
        "checkpoints": [
            _checkpoint("KAZ", "exit"),
            _checkpoint("KGZ", "entry"),
            _checkpoint("KGZ", "exit"),
            _checkpoint("UZB", "entry"),
            _checkpoint("UZB", "exit"),
            _checkpoint("TJK", "entry"),
        ],
    }
)
MISSIONS = {ROUTE.route_id: ["UZB", "TJK"], LONG_ROUTE.route_id: ["KGZ", "UZB", "TJK"]}
CASES = [(route, missing) for route in (ROUTE, LONG_ROUTE) for missing in MISSIONS[route.route_id]]


def _consenting(route: Route, scope: list[str]) -> CaseFacts:
    body = scenario.single_traveller(TRAVEL)
    body["consent"]["scope"] = scope
    return facts(body).model_copy(update={"route_id": route.route_id})


def test_consent_to_every_mission_on_the_route_passes() -> None:
    for route in (ROUTE, LONG_ROUTE):
        f = _consenting(route, MISSIONS[route.route_id])
        assert consent_recorded(f, route).outcome is RuleOutcome.PASS
        assert evaluate(f, route).outcome is Outcome.ELIGIBLE


@pytest.mark.parametrize(("route", "missing"), CASES, ids=[f"{r.route_id}-{m}" for r, m in CASES])
def test_each_mission_missing_from_the_consent_fails_it(route: Route, missing: str) -> None:
    f = _consenting(route, [c for c in MISSIONS[route.route_id] if c != missing])
    result = consent_recorded(f, route)
    assert result.outcome is RuleOutcome.FAIL
    assert missing in result.reason.removeprefix("Consent does not cover sharing data with the ")
    assert evaluate(f, route).outcome is Outcome.INELIGIBLE


@pytest.mark.parametrize(("route", "missing"), CASES, ids=[f"{r.route_id}-{m}" for r, m in CASES])
def test_no_override_makes_a_case_eligible_without_consent_to_each_mission(
    route: Route, missing: str
) -> None:
    decision = evaluate(_consenting(route, [c for c in MISSIONS[route.route_id] if c != missing]), route)
    with pytest.raises(OverrideRefused, match="consent cannot be overridden"):
        check_override(decision, Outcome.ELIGIBLE)
    kept = with_override(decision, Outcome.ELIGIBLE, "supervisor-1", "urgent medical return")
    assert kept == decision and kept.outcome is Outcome.INELIGIBLE


def test_no_override_makes_a_case_eligible_when_consent_was_not_given() -> None:
    body = scenario.single_traveller(TRAVEL)
    body["consent"]["given"] = False
    decision = evaluate(facts(body), ROUTE)
    with pytest.raises(OverrideRefused):
        check_override(decision, Outcome.ELIGIBLE)
    assert with_override(decision, Outcome.ELIGIBLE, "supervisor-1", "urgent").outcome is Outcome.INELIGIBLE


def test_overrides_that_do_not_make_a_case_travel_or_that_have_consent_stand() -> None:
    without = _consenting(ROUTE, ["TJK"])
    for outcome in (Outcome.PENDING, Outcome.INELIGIBLE):
        check_override(evaluate(without, ROUTE), outcome)
        assert with_override(evaluate(without, ROUTE), outcome, "s", "held").outcome is outcome
    # Consent in full, a passport lapsed the day before: the supervisor may let the case travel.
    lapsed = facts(scenario.single_traveller(TRAVEL, expires_on=TRAVEL - timedelta(days=1)))
    decision = evaluate(lapsed, ROUTE)
    check_override(decision, Outcome.ELIGIBLE)
    overridden = with_override(decision, Outcome.ELIGIBLE, "supervisor-1", "new passport seen")
    assert overridden.outcome is Outcome.ELIGIBLE
    assert rule(overridden, "supervisor_override").outcome is RuleOutcome.PASS


def test_the_document_type_is_what_the_certificate_rules_key_on() -> None:
    assert _certificate_facts(TRAVEL).members[0].document_type is DocumentType.CERTIFICATE_OF_RETURN
