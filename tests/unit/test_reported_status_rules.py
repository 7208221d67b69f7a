import pytest

from contracts.missions import ReportableStatus
from contracts.routes import RouteBook
from contracts.status import CaseStatus, Place
from services.intake.domain import countries_that_may_report, judge_report, public_place, reporting_country
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
