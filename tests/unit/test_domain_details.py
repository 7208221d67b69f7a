"""Details of the domain rules that the mutation run (docs/mutation-report.md) found no unit test
for: each test here fails on a mutant that survived the rest of the suite."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, date, datetime

from contracts.border import CrossingRequirementPublished
from contracts.intake import EvidenceKind
from contracts.routes import RouteBook
from contracts.status import CaseStatus
from devkit import scenario
from services.border_clearance.domain import furthest_upstream
from services.eligibility.domain import CaseFacts, Outcome, Requirement, route_unknown
from services.intake import domain as intake
from services.transport.domain import new_movement_id
from tests.paths import CENTRAL_ASIA_ROUTES

ROUTE = RouteBook.load(CENTRAL_ASIA_ROUTES).routes[0]
CP = [c.checkpoint_id for c in ROUTE.checkpoints]
TRAVEL = date(2026, 12, 1)


def test_the_furthest_upstream_post_is_found_on_any_route_through_this_post() -> None:
    # A first route that does not pass this post must not stop the search.
    elsewhere = ROUTE.model_copy(
        update={"route_id": "elsewhere", "destination_country": "UZB", "checkpoints": ROUTE.checkpoints[:2]}
    )
    book = RouteBook(routes=[elsewhere, ROUTE])
    assert furthest_upstream(book, CP[3], frozenset({CP[0], CP[2], CP[1]})) == CP[2]
    assert furthest_upstream(book, CP[3], frozenset({CP[0]})) == CP[0]


def test_no_post_upstream_cleared_the_case() -> None:
    book = RouteBook(routes=[ROUTE])
    assert furthest_upstream(book, CP[1], frozenset()) is None
    # A checkpoint on no route through this post says nothing about where the case is.
    assert furthest_upstream(book, "nowhere", frozenset({CP[0]})) is None


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
