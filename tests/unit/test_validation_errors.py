"""A 422 names the field in ``loc`` and shows none of the personal data it was sent: not in the
input FastAPI echoes by default, not in a message, not in the context."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from corridor import problems
from corridor.mrz import check_digit
from devkit import scenario
from services.intake import domain

TRAVEL = date(2026, 12, 1)


def passport_mrz(
    surname: str, given: str, number: str, born: str, sex: str, expires: str, nationality: str = "TJK"
) -> str:
    """A TD3 zone with correct check digits over whatever is given (dates as YYMMDD text)."""
    line1 = f"P<TJK{surname}<<{given}".upper().ljust(44, "<")
    num, opt = number.ljust(9, "<"), "<" * 14
    body = (
        f"{num}{check_digit(num)}{nationality}{born}{check_digit(born)}{sex}"
        f"{expires}{check_digit(expires)}{opt}{check_digit(opt)}"
    )
    return f"{line1}\n{body}{check_digit(body[0:10] + body[13:20] + body[21:43])}"


def traveller() -> tuple[dict[str, Any], dict[str, Any]]:
    body = scenario.single_traveller(TRAVEL)
    return body, body["members"][0]


def good_mrz(member: dict[str, Any], **changes: str) -> str:
    fields = {
        "surname": member["surname"],
        "given": member["given_names"].split()[0],
        "number": member["document"]["number"],
        "born": date.fromisoformat(member["birth_date"]).strftime("%y%m%d"),
        "sex": member["sex"],
        "expires": date.fromisoformat(member["document"]["expires_on"]).strftime("%y%m%d"),
    }
    return passport_mrz(**(fields | changes))


def personal_values(member: dict[str, Any]) -> list[str]:
    born = date.fromisoformat(member["birth_date"])
    values = [
        member["given_names"],
        *member["given_names"].split(),
        member["surname"],
        member["birth_date"],
        born.strftime("%y%m%d"),
        member["document"]["number"],
    ]
    if member["document"].get("mrz"):
        values += member["document"]["mrz"].split("\n")
    return values


def assert_no_personal_data(text: str, member: dict[str, Any]) -> None:
    for value in personal_values(member):
        assert value.lower() not in text.lower(), value


def mrz_error(body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        domain.RegisterCase.model_validate(body)
    (error,) = caught.value.errors(include_url=False)
    return error


def test_a_zone_that_does_not_verify_is_located_at_the_members_mrz() -> None:
    body, member = traveller()
    zone = good_mrz(member)
    member["document"]["mrz"] = zone[:-1] + str((int(zone[-1]) + 1) % 10)
    error = mrz_error(body)
    assert error["loc"] == ("members", 0, "document", "mrz")
    assert error["msg"] == (
        f"Value error, document.mrz: composite: check digit is {(int(zone[-1]) + 1) % 10}, "
        f"expected {zone[-1]}"
    )
    assert error["type"] == "value_error"


def test_a_zone_that_disagrees_with_the_form_is_located_at_the_members_mrz() -> None:
    body, member = traveller()
    member["document"]["mrz"] = good_mrz(member, born="790131", sex="F")
    error = mrz_error(body)
    assert error["loc"] == ("members", 0, "document", "mrz")
    assert error["msg"] == "Value error, document.mrz does not match birth_date, sex"
    assert_no_personal_data(error["msg"], member)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"number": "40<123456"}, "document.mrz: document_number: the value has a filler inside the data"),
        ({"born": "791332"}, "document.mrz: birth_date: the value is not a calendar date"),
    ],
)
def test_an_unreadable_zone_is_named_without_quoting_what_it_read(changes: dict[str, str], says: str) -> None:
    body, member = traveller()
    member["document"]["mrz"] = good_mrz(member, **changes)
    error = mrz_error(body)
    assert error["loc"] == ("members", 0, "document", "mrz")
    assert error["msg"] == f"Value error, {says}"
    assert_no_personal_data(error["msg"], member)
    for value in changes.values():
        assert value not in error["msg"]


def test_a_matching_zone_is_accepted() -> None:
    body, member = traveller()
    member["document"]["mrz"] = good_mrz(member)
    assert domain.RegisterCase.model_validate(body).members[0].document.mrz is not None


# --- the 422 every service answers ---------------------------------------------------------------


def app() -> FastAPI:
    api = FastAPI()
    problems.install(api)

    @api.post("/cases")
    async def register(command: domain.RegisterCase) -> dict[str, str]:
        return {}

    return api


async def post(body: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/cases", json=body)


async def test_a_422_names_each_field_and_echoes_none_of_the_person() -> None:
    body, member = traveller()
    member["document"]["mrz"] = good_mrz(member)
    del member["sex"]  # FastAPI's default body echoes the whole person for a missing field
    member["phone"] = "call me"
    r = await post(body)
    assert (r.status_code, r.headers["content-type"]) == (422, problems.MEDIA_TYPE)
    assert r.json()["code"] == problems.VALIDATION
    detail = r.json()["errors"]
    assert {tuple(e["loc"]) for e in detail} == {
        ("body", "members", 0, "sex"),
        ("body", "members", 0, "phone"),
    }
    for error in detail:
        assert set(error) <= {"loc", "msg", "type", "ctx"}
        assert {"loc", "msg", "type"} <= set(error)
    phone = next(e for e in detail if e["loc"][-1] == "phone")
    assert phone["type"] == "string_pattern_mismatch"
    assert phone["ctx"] == {"pattern": r"^\+?[0-9 ()-]{6,30}$"}
    assert_no_personal_data(r.text, member)
    assert "call me" not in r.text


async def test_a_422_for_a_bad_zone_ends_its_loc_at_the_mrz_and_quotes_nothing() -> None:
    body, member = traveller()
    member["document"]["mrz"] = good_mrz(member, born="790131")
    r = await post(body)
    assert r.status_code == 422
    (error,) = r.json()["errors"]
    assert error == {
        "loc": ["body", "members", 0, "document", "mrz"],
        "msg": "Value error, document.mrz does not match birth_date",
        "type": "value_error",
    }
    assert_no_personal_data(r.text, member)
    assert "790131" not in r.text


async def test_a_422_keeps_constraints_and_drops_context_that_holds_the_input() -> None:
    exc = RequestValidationError(
        [
            {
                "type": "string_too_short",
                "loc": ("body", "reason"),
                "msg": "String should have at least 3 characters",
                "input": "Rahimov",
                "ctx": {"min_length": 3},
                "url": "https://errors.pydantic.dev/2/v/string_too_short",
            },
            {
                "type": "value_error",
                "loc": ("body", "members", 0),
                "msg": "Value error, something",
                "input": {"surname": "Rahimov"},
                "ctx": {"error": ValueError("Rahimov")},
            },
            {
                "type": "union_tag_invalid",
                "loc": ("body", "kind"),
                "msg": "Input tag does not match",
                "input": {"kind": "Rahimov"},
                "ctx": {"tag": "Rahimov", "expected_tags": "'a', 'b'", "discriminator": "'kind'"},
            },
        ]
    )
    r = problems.response(422, problems.VALIDATION, "3 values", errors=problems.field_errors(exc.errors()))
    assert r.status_code == 422
    detail = json.loads(bytes(r.body))["errors"]
    assert detail == [
        {
            "loc": ["body", "reason"],
            "msg": "String should have at least 3 characters",
            "type": "string_too_short",
            "ctx": {"min_length": 3},
        },
        {"loc": ["body", "members", 0], "msg": "Value error, something", "type": "value_error"},
        {"loc": ["body", "kind"], "msg": "Input tag does not match", "type": "union_tag_invalid"},
    ]
    assert "Rahimov" not in bytes(r.body).decode()
