"""What a report may group a fact by: the crossing only where the change happened at one, the
reason only where the change says why, the case's route and movement, the day where the report's
time zone puts it; and which cities of origin are named or pooled as ``other``."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from contracts.intake import AgeBand
from contracts.status import CaseStatus
from services.reporting import domain
from services.reporting.domain import Figure, Member, Profile, StatusRecord

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
ROUTE = "KAZ-UZB-1"


def profile(case: uuid.UUID, people: int, origin: str | None = "Karaganda") -> Profile:
    members = tuple(Member("F", AgeBand.ADULT) for _ in range(people))
    return Profile(case, ROUTE, date(2026, 11, 20), date(2026, 12, 1), origin, members)


def record(
    case: uuid.UUID,
    status: CaseStatus,
    members: int = 1,
    minutes: int = 0,
    place: dict[str, str] | None = None,
) -> StatusRecord:
    return StatusRecord(case, status.value, T0 + timedelta(minutes=minutes), members, **(place or {}))  # type: ignore[arg-type]


AT_A_POST = {"checkpoint_id": "UZB-OYBEK", "place_name": "Oybek", "country": "UZB", "reason_code": "R-1"}

# Spelled out rather than read from the module: a crossing is named only for what happens at one,
# and a reason only for the figures a report breaks down by why.
CROSSING_NAMED = {CaseStatus.EXIT_CLEARED, CaseStatus.ENTRY_CLEARED, CaseStatus.REFUSED_AT_BORDER}
REASON_NAMED = {CaseStatus.ON_HOLD, CaseStatus.INELIGIBLE, CaseStatus.REFUSED_AT_BORDER, CaseStatus.WITHDRAWN}
COUNTED = [s for s in CaseStatus if s in domain.FIGURE_OF]


@pytest.mark.parametrize("status", COUNTED, ids=str)
def test_a_fact_names_the_crossing_and_the_reason_only_where_the_change_has_them(status: CaseStatus) -> None:
    case = uuid.uuid4()
    [fact] = domain.facts([record(case, status, place=AT_A_POST)], {}, UTC)
    crossing = (fact.checkpoint_id, fact.crossing, fact.country)
    if status in CROSSING_NAMED:
        assert crossing == ("UZB-OYBEK", "Oybek", "UZB")
    else:
        assert crossing == ("", "", "")
    assert fact.reason_code == ("R-1" if status in REASON_NAMED else "")


@pytest.mark.parametrize("status", COUNTED, ids=str)
def test_a_change_without_a_place_or_reason_is_grouped_under_none(status: CaseStatus) -> None:
    [fact] = domain.facts([record(uuid.uuid4(), status)], {}, UTC)
    assert (fact.checkpoint_id, fact.crossing, fact.country, fact.reason_code) == ("", "", "", "")
    assert fact.movement_id == ""  # a case on no movement yet is on none, not on an unnamed one


def test_statuses_no_report_asks_for_make_no_fact() -> None:
    case = uuid.uuid4()
    skipped = [s for s in CaseStatus if s not in COUNTED] + ["a_status_added_later"]
    records = [StatusRecord(case, str(s), T0, 1) for s in skipped]
    assert domain.facts(records, {}, UTC) == []
    assert {str(s) for s in skipped} >= {"manifested", "received", "closed", "transit_incident"}


def test_the_route_and_origin_come_from_the_profile_or_are_unknown() -> None:
    profiled, unprofiled, no_city = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    records = [
        record(profiled, CaseStatus.REGISTERED, 2),
        record(unprofiled, CaseStatus.REGISTERED, 2, 1),
        record(no_city, CaseStatus.REGISTERED, 1, 2),
    ]
    profiles = {profiled: profile(profiled, 2), no_city: profile(no_city, 1, origin=None)}
    found = {f.case_id: f for f in domain.facts(records, profiles, UTC)}
    assert (found[profiled].route_id, found[profiled].origin) == (ROUTE, "Karaganda")
    assert (found[unprofiled].route_id, found[unprofiled].origin) == (domain.UNKNOWN, domain.UNKNOWN)
    assert (found[no_city].route_id, found[no_city].origin) == (ROUTE, domain.UNKNOWN)


ALMATY, HONOLULU = timezone(timedelta(hours=6)), timezone(timedelta(hours=-10))


@pytest.mark.parametrize(
    ("at", "tz", "day"),
    [
        (datetime(2026, 12, 1, 20, 0, tzinfo=UTC), ALMATY, date(2026, 12, 2)),
        (datetime(2026, 12, 1, 20, 0, tzinfo=UTC), HONOLULU, date(2026, 12, 1)),
        (datetime(2026, 12, 1, 2, 0, tzinfo=UTC), ALMATY, date(2026, 12, 1)),
        (datetime(2026, 12, 1, 2, 0, tzinfo=UTC), HONOLULU, date(2026, 11, 30)),
    ],
)
def test_a_fact_falls_on_the_day_of_the_report_s_time_zone(at: datetime, tz: timezone, day: date) -> None:
    [fact] = domain.facts([StatusRecord(uuid.uuid4(), "registered", at, 1)], {}, tz)
    assert fact.day == day


# --- cities of origin ------------------------------------------------------------------------------


def origins(records: list[StatusRecord], profiles: dict[uuid.UUID, Profile], threshold: int) -> set[str]:
    return {f.origin for f in domain.pooled_origins(domain.facts(records, profiles, UTC), threshold)}


@pytest.mark.parametrize(("people", "named"), [(4, False), (5, True), (6, True)])
def test_a_city_is_named_from_threshold_people_registered_from_it(people: int, named: bool) -> None:
    case = uuid.uuid4()
    records = [record(case, CaseStatus.REGISTERED, people), record(case, CaseStatus.ELIGIBLE, people, 1)]
    assert origins(records, {case: profile(case, people)}, 5) == ({"Karaganda"} if named else {"other"})


def test_a_case_registered_twice_is_counted_once_for_its_city() -> None:
    case = uuid.uuid4()
    records = [record(case, CaseStatus.REGISTERED, 3), record(case, CaseStatus.REGISTERED, 3, 1)]
    assert origins(records, {case: profile(case, 3)}, 5) == {"other"}


@pytest.mark.parametrize("threshold", [1, 5])
def test_people_only_seen_travelling_do_not_make_their_city_named(threshold: int) -> None:
    """The people a city counts are those registered from it: a case whose registration the
    projection does not hold is seen travelling but gives its city no one."""
    case = uuid.uuid4()
    records = [record(case, CaseStatus.DEPARTED, 6), record(case, CaseStatus.EXIT_CLEARED, 6, 1, AT_A_POST)]
    found = domain.pooled_origins(domain.facts(records, {case: profile(case, 6)}, UTC), threshold)
    assert [(f.figure, f.origin) for f in found] == [(Figure.DEPARTED, "other"), (Figure.CLEARED, "other")]


def test_unknown_origins_are_never_pooled() -> None:
    case = uuid.uuid4()
    assert origins([record(case, CaseStatus.REGISTERED, 1)], {}, 5) == {domain.UNKNOWN}
