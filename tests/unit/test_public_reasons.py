"""The public status stream's reasons: enumerated codes, each with its one fixed text, checked where
a change is written and tolerated where one is read."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import reasons
from contracts.envelope import CloudEvent
from contracts.status import CaseStatusChanged

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)


def change(**fields: Any) -> CaseStatusChanged:
    return CaseStatusChanged(case_id=uuid.uuid4(), status="on_hold", occurred_at=NOW, members=2, **fields)


def test_a_public_code_brings_its_own_text() -> None:
    held = change(reason_code="held_at_border")
    assert held.reason == "Held at the border post; the family is held together"
    again = change(reason_code="held_at_border", reason=reasons.text_of("held_at_border"))
    assert again.reason == held.reason


def test_no_reason_at_all_is_fine() -> None:
    assert change().reason_code is None and change().reason is None


@pytest.mark.parametrize("code", ["court_order", "fit_to_travel", "supervisor_override", "zhanna_q"])
def test_a_code_outside_the_table_is_refused(code: str) -> None:
    with pytest.raises(ValidationError, match="not a public reason code"):
        change(reason_code=code)


@pytest.mark.parametrize(
    "text",
    [
        "Found not fit to travel: member 1",
        "Overridden to eligible by Zhanna Q (rules said ineligible): letter",
        "Not present at boarding ",  # one space more than the code's text
        "",
    ],
)
def test_a_text_that_is_not_the_code_s_own_is_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="is fixed"):
        change(reason_code="no_show", reason=text)


def test_a_text_without_a_code_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs a public reason code"):
        change(reason="Travel ban pending a hearing")


def test_a_record_read_from_the_stream_is_taken_as_written() -> None:
    # A newer producer's code, or a record written before the table: a reader keeps it.
    written = CloudEvent.new(change(reason_code="no_show"), source="/missions/KAZ/transport")
    value = written.value().replace(b'"no_show"', b'"some_later_code"')
    value = value.replace(b"Not present at boarding", b"Whatever an older writer said")
    read = CloudEvent.from_record(written.headers(), value).data
    assert isinstance(read, CaseStatusChanged)
    assert (read.reason_code, read.reason) == ("some_later_code", "Whatever an older writer said")


def test_every_code_fits_the_field_s_pattern_and_no_text_names_a_person_or_a_date() -> None:
    for code, text in reasons.PUBLIC_REASONS.items():
        assert re.fullmatch(r"[a-z0-9_]{3,60}", code), code
        assert not re.search(r"\d", text) and "{" not in text and text.strip() == text, code
        assert change(reason_code=code).reason == text


def test_the_schema_stays_an_open_string_with_the_codes_documented() -> None:
    # An enum would be a breaking change for readers (and refuse codes added later): the writers'
    # rule is documented in the field's description instead.
    field = CaseStatusChanged.model_json_schema(mode="serialization")["properties"]["reason_code"]
    assert field["anyOf"][0].keys() == {"type", "pattern"} and field["anyOf"][0]["type"] == "string"
    assert all(code in field["description"] for code in reasons.PUBLIC_REASONS)


@pytest.mark.parametrize(
    ("reported", "public"),
    [(None, None), ("vehicle_breakdown", "vehicle_breakdown"), ("no_show", "reported_by_mission")],
)
def test_a_mission_s_code_reaches_the_stream_only_when_it_is_a_mission_code(
    reported: str | None, public: str | None
) -> None:
    assert reasons.mission_code(reported) == public


def test_a_passed_on_code_outside_the_table_becomes_the_fallback() -> None:
    assert reasons.public_or("fit_to_travel", "eligibility_decided") == "eligibility_decided"
    assert reasons.public_or("evidence_pending", "eligibility_decided") == "evidence_pending"
    assert reasons.public_or(None, "eligibility_decided") is None
