"""Edges of the border post's rules an officer or a caller meets: a surname spelt as on the manifest
matches its machine-readable zone as ICAO transliterates it, a zone's two-digit years are read as of
the day of the check, and a reference reused for other content is refused with its own code."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

import pytest

from corridor import runtime
from services.border_clearance import domain
from services.border_clearance.domain import Scan
from tests.unit.test_border_clearance_domain import TODAY, passenger, td3


@pytest.mark.parametrize(
    ("manifest", "zone", "matches"),
    [
        ("Straße", "STRASSE", True),  # Doc 9303 writes ß as SS; upper() does too, lower() keeps ß
        ("Karimov", "KARIMOV", True),
        ("O'Neil", "ONEIL", True),
        ("Straße", "STRASE", False),
        ("Karimova", "KARIMOV", False),
    ],
)
def test_a_surname_is_compared_as_the_zone_spells_it(manifest: str, zone: str, matches: bool) -> None:
    p = passenger(surname=manifest)
    [check] = domain.check_documents([Scan(p.person_id, td3(zone, "401234567", p.birth_date))], [p], TODAY)
    assert check.mismatches == (() if matches else ("surname",))


def test_a_zone_s_birth_year_is_read_as_of_the_day_of_the_check() -> None:
    """YY 30 is 2030 for a check in 2090, 1930 for one before 2030: the day given decides, not the
    machine's clock."""
    born = date(2030, 1, 1)
    p = passenger(birth_date=born)
    scan = Scan(p.person_id, td3("KARIMOV", "401234567", born))
    assert domain.check_documents([scan], [p], date(2090, 6, 1))[0].mismatches == ()
    assert domain.check_documents([scan], [p], date(2029, 6, 1))[0].mismatches == ("birth_date",)


def problem_of(exc: Exception) -> tuple[int, dict[str, Any]]:
    answer = asyncio.run(runtime._domain_error(None, exc))  # type: ignore[arg-type]
    return answer.status_code, json.loads(bytes(answer.body))


def test_a_reused_reference_is_a_409_naming_the_reference() -> None:
    status, problem = problem_of(domain.ReferenceReused("KAZ-2026-014"))
    assert status == 409 and problem["code"] == "reference_reused"
    assert problem["detail"] == "requirement reference 'KAZ-2026-014' was published before with other content"
    assert set(problem) == {"type", "title", "status", "detail", "instance", "code"}
