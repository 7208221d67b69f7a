import uuid
from datetime import UTC, datetime

import pytest

from contracts.missions import CaseStatusReported, ReportableStatus
from contracts.routes import RouteBook
from contracts.status import CaseStatus, Place
from services.intake.domain import (
    countries_that_may_report,
    judge_report,
    public_place,
    reporting_country,
    unusable_report,
)
from tests.paths import CENTRAL_ASIA_ROUTES

ROUTE = RouteBook.load(CENTRAL_ASIA_ROUTES).routes[0]
TJK = "/missions/TJK/reception"
UZB = "/missions/UZB/transit-desk"


def test_destination_mission_reports_reception_after_arrival() -> None:
    assert judge_report(TJK, ReportableStatus.RECEIVED, CaseStatus.ARRIVED, ROUTE).action == "apply"
    assert judge_report(TJK, ReportableStatus.CLOSED, CaseStatus.RECEIVED, ROUTE).action == "apply"


def test_transit_mission_reports_incidents_on_the_road_only() -> None:
    for current in (CaseStatus.DEPARTED, CaseStatus.EXIT_CLEARED, CaseStatus.ENTRY_CLEARED):
        assert judge_report(UZB, ReportableStatus.TRANSIT_INCIDENT, current, ROUTE).action == "apply"
    verdict = judge_report(UZB, ReportableStatus.TRANSIT_INCIDENT, CaseStatus.ARRIVED, ROUTE)
    assert (verdict.action, verdict.code) == ("reject", "illegal_transition")


@pytest.mark.parametrize(
    ("source", "status"),
    [
        (UZB, ReportableStatus.RECEIVED),
        ("/missions/KAZ/intake", ReportableStatus.CLOSED),
        (TJK, ReportableStatus.TRANSIT_INCIDENT),
        ("/missions/tjk/reception", ReportableStatus.RECEIVED),
        ("https://example.org/reception", ReportableStatus.RECEIVED),
    ],
)
def test_only_the_mission_that_owns_a_status_may_report_it(source: str, status: ReportableStatus) -> None:
    verdict = judge_report(source, status, CaseStatus.ARRIVED, ROUTE)
    assert (verdict.action, verdict.code) == ("reject", "unauthorised_source")


def test_a_status_ahead_of_the_stream_is_retried_one_that_cannot_follow_is_refused() -> None:
    ahead = judge_report(TJK, ReportableStatus.RECEIVED, CaseStatus.ENTRY_CLEARED, ROUTE)
    assert (ahead.action, ahead.code) == ("later", "illegal_transition")
    for terminal in (CaseStatus.INELIGIBLE, CaseStatus.WITHDRAWN, CaseStatus.REFUSED_AT_BORDER):
        assert judge_report(TJK, ReportableStatus.RECEIVED, terminal, ROUTE).action == "reject"
    again = judge_report(TJK, ReportableStatus.RECEIVED, CaseStatus.RECEIVED, ROUTE)
    assert again.action == "reject" and "case is received" in (again.detail or "")


def test_who_may_report_follows_the_route() -> None:
    assert countries_that_may_report(ReportableStatus.RECEIVED, ROUTE) == {"TJK"}
    assert countries_that_may_report(ReportableStatus.TRANSIT_INCIDENT, ROUTE) == {"KAZ", "UZB"}
    assert reporting_country("/missions/UZB/x") == "UZB" and reporting_country("/missions/UZ/x") is None


@pytest.mark.parametrize(
    ("reported", "public"),
    [
        (None, None),
        (
            Place(country="TJK", name="Flat of Asel Karimova, 12 Lenin St"),
            Place(country="TJK", name="Reception centre, Sughd"),
        ),
        (
            Place(country="UZB", name="Roadside near Zqx's house", checkpoint_id="uzb-oybek-exit"),
            Place(country="UZB", name="Oybek", checkpoint_id="uzb-oybek-exit"),
        ),
        (Place(country="UZB", name="Hospital ward 3"), Place(country="UZB", name="Gisht-Kuprik")),
        (
            Place(country="KAZ", name="Somewhere"),
            Place(country="KAZ", name="Zhibek-Zholy gathering point, Shymkent"),
        ),
        (Place(country="KGZ", name="Bishkek"), None),
    ],
)
def test_a_reported_place_reaches_the_stream_as_a_place_of_the_route(
    reported: Place | None, public: Place | None
) -> None:
    # A mission types the place's name: free text, which may name a person or a hospital.
    assert public_place(reported, ROUTE) == public


def _report(**fields: object) -> CaseStatusReported:
    values: dict[str, object] = {
        "case_id": uuid.uuid4(),
        "status": ReportableStatus.RECEIVED,
        "occurred_at": datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
    }
    return CaseStatusReported.model_validate({**values, **fields})


def test_a_report_that_could_never_be_stored_names_the_field_at_fault() -> None:
    assert unusable_report(_report()) is None
    assert unusable_report(_report(reason="a\x00b")) == "reason contains a NUL character"
    # The contract's pattern refuses it on the way in; the rule holds for whatever gets past.
    nul_code = _report().model_copy(update={"reason_code": "a\x00b"})
    assert unusable_report(nul_code) == "reason_code contains a NUL character"
    place = {"country": "TJK", "name": "Khu\x00jand"}
    assert unusable_report(_report(place=place)) == "place.name contains a NUL character"


def test_a_report_from_1900_is_usable_and_one_from_1899_is_not() -> None:
    assert unusable_report(_report(occurred_at=datetime(1900, 1, 1, tzinfo=UTC))) is None
    before = _report(occurred_at=datetime(1899, 12, 31, 23, 59, tzinfo=UTC))
    assert unusable_report(before) == "occurred_at is out of range"


def test_a_refused_report_says_who_may_report_it_and_after_what() -> None:
    refused = judge_report(UZB, ReportableStatus.RECEIVED, CaseStatus.ARRIVED, ROUTE)
    assert refused.detail == (
        f"source {UZB!r} may not report received; on route {ROUTE.route_id} only /missions/TJK/... may"
    )
    early = judge_report(TJK, ReportableStatus.CLOSED, CaseStatus.ARRIVED, ROUTE)
    assert (early.action, early.code) == ("later", "illegal_transition")
    assert early.detail == "case is arrived; closed may follow only received"
