"""Intake's rules at their edges (issue 16): what a registered case carries of the form, who keeps
their identity across a correction, which dates are refused, which reports from missions are
applied, retried or refused and with which words, and what a refused erasure says."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from contracts.intake import (
    AgeBand,
    CaseRegistered,
    CitizenshipProof,
    DocumentType,
    ErasureBasis,
    Person,
    Relationship,
    VulnerabilityFlag,
)
from contracts.missions import CaseStatusReported, ReportableStatus
from contracts.routes import RouteBook
from contracts.status import CaseStatus
from corridor.errors import Invalid
from services.intake import domain, usecases
from services.intake.domain import (
    CaseStatistics,
    Problem,
    RegistrationRejected,
    build_case,
    erased_profile,
    judge_report,
    keep_identities,
    member_key,
    profile,
    registration_problems,
    unusable_report,
)
from tests.paths import CENTRAL_ASIA_ROUTES
from tests.unit.intake_doubles import FakeIntakeStore, person, registered, registration, unit

ROUTES = RouteBook.load(CENTRAL_ASIA_ROUTES)
ROUTE = ROUTES.routes[0]  # kaz-uzb-tjk: KAZ to TJK through UZB
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TODAY = NOW.date()


# --- what a registered case carries of the form -----------------------------------------------------

EVERYTHING = {
    "given_names_cyrillic": "Фаррух",
    "surname_cyrillic": "Назаров",
    "phone": "+992 93 123 45 67",
    "proof_of_citizenship": {"type": "internal_passport", "number": "IP-778899", "issuing_country": "TJK"},
    "vulnerabilities": ["disability"],
    "needs_escort": True,
    "current_city": "Karaganda",
}


def built(*people: dict[str, Any]) -> CaseRegistered:
    """The case a registration of these people makes."""
    return build_case(registration(*people), case_id=uuid.uuid4(), now=NOW)


def farrukh(surname: str = "Nazarov", **extra: Any) -> dict[str, Any]:
    return person("principal", "Farrukh", surname, "1985-03-02", "401000001", **extra)


def registered_person(**extra: Any) -> Person:
    (member,) = built(farrukh(**extra)).members
    return member


@pytest.mark.parametrize(
    ("field", "given"),
    [
        ("given_names_cyrillic", "Фаррух"),
        ("surname_cyrillic", "Назаров"),
        ("phone", "+992 93 123 45 67"),
        (
            "proof_of_citizenship",
            CitizenshipProof(type=DocumentType.INTERNAL_PASSPORT, number="IP-778899", issuing_country="TJK"),
        ),
        ("vulnerabilities", [VulnerabilityFlag("disability")]),
        ("needs_escort", True),
        ("current_city", "Karaganda"),
    ],
)
def test_the_registered_case_carries_every_detail_of_the_form(field: str, given: Any) -> None:
    # Duplicate detection reads the Cyrillic names, the escort seat is planned from needs_escort,
    # the city is where the case returns from; a detail dropped here is lost for the whole journey.
    assert getattr(registered_person(**EVERYTHING), field) == given


def test_a_detail_left_out_of_the_form_stays_empty() -> None:
    member = registered_person()
    assert (
        member.given_names_cyrillic,
        member.surname_cyrillic,
        member.phone,
        member.proof_of_citizenship,
        member.vulnerabilities,
        member.needs_escort,
        member.current_city,
    ) == (None, None, None, None, [], False, None)


# --- who keeps their identity across a correction -------------------------------------------------


def test_a_corrected_case_keeps_the_ids_of_those_still_in_it_and_gives_newcomers_their_own() -> None:
    before = built(farrukh(), person("spouse", "Malika", "Nazarova", "1988-07-11", "401000002"))
    known = {member_key(m.surname, m.given_names, m.birth_date): m.person_id for m in before.members}
    after = built(
        # The same principal, the name retyped with a doubled letter the key folds away.
        farrukh(surname="Nazzarov"),
        # The spouse's birth date corrected: a new member record.
        person("spouse", "Malika", "Nazarova", "1988-07-12", "401000002"),
        person("child", "Aziz", "Nazarov", "2015-05-20", "401000003"),
    )
    kept = keep_identities(after.members, known)
    assert kept[0].person_id == before.members[0].person_id
    assert [p.person_id for p in kept[1:]] == [p.person_id for p in after.members[1:]]
    assert len({p.person_id for p in kept}) == 3 and all(p.person_id is not None for p in kept)


def test_one_known_identity_goes_to_one_member_only() -> None:
    twice = built(farrukh(), person("relative", "Farrukh", "Nazarov", "1985-03-02", "401000009"))
    old = uuid.uuid4()
    kept = keep_identities(twice.members, {member_key("Nazarov", "Farrukh", date(1985, 3, 2)): old})
    assert [p.person_id for p in kept] == [old, twice.members[1].person_id]


# --- dates that depend on today ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "travel", "problems"),
    [
        (TODAY, TODAY, []),  # a baby born today may travel today
        (TODAY - timedelta(days=1), TODAY + timedelta(days=1), []),
        (TODAY + timedelta(days=1), TODAY, [(("members", "0", "birth_date"), "is in the future")]),
        (TODAY, TODAY - timedelta(days=1), [(("planned_travel_date",), "is in the past")]),
    ],
)
def test_birth_and_travel_dates_at_today(born: date, travel: date, problems: list[tuple[Any, str]]) -> None:
    command = registration(
        person("principal", "Aziz", "Nazarov", born.isoformat(), "401000003"),
        planned_travel_date=travel.isoformat(),
    )
    assert [(p.loc, p.msg) for p in registration_problems(command, ROUTES, TODAY)] == problems


def test_a_rejected_registration_is_an_invalid_value_naming_its_first_problem() -> None:
    command = registration(
        person("principal", "Aziz", "Nazarov", (TODAY + timedelta(days=1)).isoformat(), "401000003"),
        route_id="kaz-nowhere",
    )
    with pytest.raises(RegistrationRejected) as caught:
        domain.check_registration(command, ROUTES, TODAY)
    # Answered as any Invalid is where intake's own handler is not installed: the first field.
    assert isinstance(caught.value, Invalid)
    assert (caught.value.loc, caught.value.msg) == (("body", "route_id"), "unknown route 'kaz-nowhere'")
    assert (
        str(caught.value) == "route_id: unknown route 'kaz-nowhere'; members.0.birth_date: is in the future"
    )


def test_a_rejection_naming_no_problem_is_a_programming_error() -> None:
    # It would answer a 422 that names no field: refused where it is made, with the reason.
    with pytest.raises(AssertionError, match=r"^a rejection names at least one problem$"):
        RegistrationRejected([])
    assert RegistrationRejected([Problem(("consent",), "missing")]).msg == "missing"


# --- reports from the missions ---------------------------------------------------------------------

S = CaseStatus
ON_THE_ROAD = {S.DEPARTED, S.EXIT_CLEARED, S.ENTRY_CLEARED, S.TRANSIT_INCIDENT}
BEFORE_DEPARTURE = {S.REGISTERED, S.ON_HOLD, S.ELIGIBLE, S.MANIFESTED}

# For each status a mission reports: the case statuses it applies to, and those it may follow once
# the status stream catches up (retried); every other status refuses it for good. Written out here,
# not derived from the rule's tables.
EXPECTED: dict[ReportableStatus, tuple[set[CaseStatus], set[CaseStatus]]] = {
    ReportableStatus.RECEIVED: ({S.ARRIVED}, BEFORE_DEPARTURE | ON_THE_ROAD),
    ReportableStatus.CLOSED: ({S.RECEIVED}, BEFORE_DEPARTURE | ON_THE_ROAD | {S.ARRIVED}),
    ReportableStatus.TRANSIT_INCIDENT: (ON_THE_ROAD, BEFORE_DEPARTURE),
}
SOURCE = {
    ReportableStatus.RECEIVED: "/missions/TJK/reception",
    ReportableStatus.CLOSED: "/missions/TJK/reception",
    ReportableStatus.TRANSIT_INCIDENT: "/missions/UZB/transit-desk",
}


@pytest.mark.parametrize("reported", list(ReportableStatus))
@pytest.mark.parametrize("current", list(CaseStatus))
def test_a_missions_report_against_every_case_status(reported: ReportableStatus, current: CaseStatus) -> None:
    apply, later = EXPECTED[reported]
    verdict = judge_report(SOURCE[reported], reported, current, ROUTE)
    if current in apply:
        assert (verdict.action, verdict.code) == ("apply", None)
    elif current in later:
        assert (verdict.action, verdict.code) == ("later", "illegal_transition")
    else:
        assert (verdict.action, verdict.code) == ("reject", "illegal_transition")


@pytest.mark.parametrize(
    ("source", "reported", "current", "detail"),
    [
        (
            "/missions/TJK/reception",
            ReportableStatus.TRANSIT_INCIDENT,
            S.DEPARTED,
            "source '/missions/TJK/reception' may not report transit_incident; on route kaz-uzb-tjk only "
            "/missions/KAZ/..., /missions/UZB/... may",
        ),
        (
            "/missions/UZB/transit-desk",
            ReportableStatus.RECEIVED,
            S.ARRIVED,
            "source '/missions/UZB/transit-desk' may not report received; on route kaz-uzb-tjk only "
            "/missions/TJK/... may",
        ),
        (
            "/missions/UZB/transit-desk",
            ReportableStatus.TRANSIT_INCIDENT,
            S.ARRIVED,
            "case is arrived; transit_incident may follow only departed or entry_cleared or exit_cleared "
            "or transit_incident",
        ),
        (
            "/missions/TJK/reception",
            ReportableStatus.CLOSED,
            S.MANIFESTED,
            "case is manifested; closed may follow only received",
        ),
    ],
)
def test_a_refused_report_tells_the_mission_why_in_words(
    source: str, reported: ReportableStatus, current: CaseStatus, detail: str
) -> None:
    # The mission's operator reads this in the answer or the dead letter: who may report, or what
    # the case must be first.
    assert judge_report(source, reported, current, ROUTE).detail == detail


def at(when: datetime) -> CaseStatusReported:
    return CaseStatusReported(case_id=uuid.uuid4(), status=ReportableStatus.RECEIVED, occurred_at=when)


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=5))),  # before year 1 in UTC
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),  # after year 9999 in UTC
        datetime(1899, 12, 31, 23, 59, tzinfo=UTC),
    ],
)
def test_a_report_at_a_time_no_store_can_hold_is_refused_in_words(when: datetime) -> None:
    assert unusable_report(at(when)) == "occurred_at is out of range"


@pytest.fixture
def server_west_of_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone five hours behind UTC."""
    monkeypatch.setenv("TZ", "EST+05")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("server_west_of_utc")
def test_a_reports_time_is_judged_in_utc_whatever_the_servers_time_zone() -> None:
    # 1900-01-01 00:30 UTC is in range; in the server's local time it is still 1899.
    assert unusable_report(at(datetime(1900, 1, 1, 0, 30, tzinfo=UTC))) is None
    assert unusable_report(at(datetime(1900, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5))))) is None


# --- a refused erasure ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(set(CaseStatus) - domain.ERASABLE))
async def test_a_refused_erasure_says_where_the_case_stands_and_what_to_do(status: CaseStatus) -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    store.cases[case_id].status = status
    with pytest.raises(domain.NotErasable) as caught:
        await usecases.erase_personal_data(
            domain.EraseCase(case_id, ErasureBasis.DATA_SUBJECT_REQUEST, "aida"), unit(store)
        )
    assert caught.value.status is status
    assert str(caught.value) == (
        f"case is {status.value}: personal data can be erased once the case has ended "
        "(arrived, closed, withdrawn, no-show or ineligible); withdraw it first"
    )


# --- what reporting sees of a case --------------------------------------------------------------


def family(*cities: str | None, principal_at: int = 0) -> CaseRegistered:
    """A registered case of three, each member from the given city, the principal at that place."""
    roles = ["spouse", "child", "relative"]
    roles.insert(principal_at, "principal")
    people = [
        person(role, given, "Nazarov", born, number, current_city=city, vulnerabilities=flags)
        for role, given, born, number, city, flags in zip(
            roles,
            ["Farrukh", "Malika", "Aziz"],
            ["1985-03-02", "1988-07-11", "2015-05-20"],
            ["401000001", "401000002", "401000003"],
            cities,
            [[], ["disability"], ["unaccompanied_minor"]],
            strict=False,
        )
    ]
    return built(*people)


@pytest.mark.parametrize(
    ("cities", "principal_at", "origin"),
    [
        (("Karaganda", "Almaty", "Shymkent"), 0, "Karaganda"),
        (("Almaty", "Karaganda", "Shymkent"), 1, "Karaganda"),  # the principal's, wherever they stand
        ((None, "Almaty", "Shymkent"), 0, "Almaty"),  # else the first member's who gave one
        (("Shymkent", None, "Almaty"), 1, "Shymkent"),
        ((None, None, None), 0, None),
    ],
)
def test_a_case_returns_from_its_principals_city_or_else_the_first_one_given(
    cities: tuple[str | None, ...], principal_at: int, origin: str | None
) -> None:
    assert profile(family(*cities, principal_at=principal_at), NOW).origin_city == origin


def test_a_case_recorded_without_a_principal_returns_from_its_first_members_city() -> None:
    # The event's contract does not require a principal (only a registration does).
    case = family(None, "Almaty", "Shymkent")
    leaderless = case.model_copy(
        update={"members": [m.model_copy(update={"role": Relationship.RELATIVE}) for m in case.members]}
    )
    assert profile(leaderless, NOW).origin_city == "Almaty"


def test_reporting_sees_each_members_sex_age_band_and_vulnerability_categories() -> None:
    seen = profile(family("Karaganda", None, None), NOW)
    assert [(m.sex, m.age_band, m.vulnerabilities) for m in seen.members] == [
        ("M", AgeBand.ADULT, []),
        ("F", AgeBand.ADULT, [VulnerabilityFlag("disability")]),
        ("M", AgeBand.CHILD, [VulnerabilityFlag("unaccompanied_minor")]),
    ]


@pytest.mark.usefixtures("server_west_of_utc")
def test_the_day_a_case_was_registered_is_the_utc_day_whatever_the_servers_time_zone() -> None:
    late = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # still 30 November five hours west
    case = family("Karaganda", None, None).model_copy(update={"registered_at": late})
    assert profile(case, NOW).registered_on == date(2026, 12, 1)
    stats = CaseStatistics("kaz-uzb-tjk", late, date(2026, 12, 5), (("F", date(1988, 7, 11)),))
    assert erased_profile(case.case_id, stats, NOW).registered_on == date(2026, 12, 1)
