from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from devkit import scenario
from services.intake.domain import RegisterCase, validate_against_today

TRAVEL = date(2026, 12, 1)


def test_family_registration_is_accepted() -> None:
    command = RegisterCase.model_validate(scenario.family_of_three(TRAVEL))
    assert len(command.members) == 3


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["members"][0].update(role="spouse"), "principal"),
        (lambda b: b["members"][0].update(sex="male"), "sex"),
        (lambda b: b["members"][0].update(nationality="tj"), "nationality"),
        (lambda b: b["members"][0]["document"].update(type="visa"), "type"),
        (lambda b: b["members"][0]["document"].update(number="40 12"), "number"),
        (lambda b: b.update(members=[]), "members"),
        (lambda b: b.update(unexpected=1), "unexpected"),
        (lambda b: b["members"][0].update(surname="Rahi\x00mov"), "surname"),
        (lambda b: b["members"][0]["document"].update(issued_on="2031-01-01"), "issued_on"),
    ],
)
def test_invalid_registrations_name_the_field(mutate, field: str) -> None:
    body = scenario.single_traveller(TRAVEL)
    mutate(body)
    with pytest.raises(ValidationError) as caught:
        RegisterCase.model_validate(body)
    assert field in str(caught.value)


def test_dates_are_checked_against_today() -> None:
    body = scenario.single_traveller(TRAVEL)
    body["members"][0]["birth_date"] = (TRAVEL + timedelta(days=1)).isoformat()
    command = RegisterCase.model_validate(body)
    problems = validate_against_today(command, today=TRAVEL + timedelta(days=-0))
    assert problems == ["members.0.birth_date: is in the future"]
    assert validate_against_today(command, today=TRAVEL + timedelta(days=2)) == [
        "planned_travel_date: is in the past"
    ]
