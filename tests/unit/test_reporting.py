"""Reporting's rules: facts from the status stream and the profiles, tables, small-cell suppression,
the HXL export (checked with libhxl against a schema) and the situation report's content and PDF."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import hxl
import pytest
from pypdf import PdfReader

from contracts.intake import AgeBand
from contracts.routes import RouteBook
from contracts.status import CaseStatus
from devkit.devstack import DEFAULT_ROUTES
from services.reporting import domain, render, sitrep
from services.reporting import hxl as hxl_export
from services.reporting.domain import Count, Figure, Member, Profile, StatusRecord

DAY = date(2026, 12, 1)
T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
ROUTES = RouteBook.load(DEFAULT_ROUTES)
ROUTE = ROUTES.routes[0]
EXIT, ENTRY = ROUTE.checkpoints[0], ROUTE.checkpoints[1]
A, C, OLD = AgeBand.ADULT, AgeBand.CHILD, AgeBand.OLDER


def profile(case_id: uuid.UUID, members: list[Member], origin: str | None = "Karaganda") -> Profile:
    return Profile(case_id, ROUTE.route_id, DAY - timedelta(days=10), DAY, origin, tuple(members))


def change(
    case_id: uuid.UUID, status: CaseStatus, minutes: int, members: int, **extra: object
) -> StatusRecord:
    return StatusRecord(case_id, status.value, T0 + timedelta(minutes=minutes), members, **extra)  # type: ignore[arg-type]


def journey(case_id: uuid.UUID, members: int, start: int = 0) -> list[StatusRecord]:
    at = {"checkpoint_id": EXIT.checkpoint_id, "place_name": EXIT.post, "country": EXIT.country}
    return [
        change(case_id, CaseStatus.REGISTERED, start, members),
        change(case_id, CaseStatus.ELIGIBLE, start + 1, members),
        change(case_id, CaseStatus.MANIFESTED, start + 2, members, movement_id="MOV-1"),
        change(case_id, CaseStatus.DEPARTED, start + 3, members, movement_id="MOV-1"),
        change(case_id, CaseStatus.EXIT_CLEARED, start + 4, members, movement_id="MOV-1", **at),
    ]


FAMILY = [Member("M", A), Member("F", A, ("disability",)), Member("F", C)]


def test_a_fact_per_counted_change_with_the_profile_s_people_and_the_journey_s_movement() -> None:
    case = uuid.uuid4()
    found = domain.facts(journey(case, 3), {case: profile(case, FAMILY)}, UTC)
    assert [f.figure for f in found] == [Figure.REGISTERED, Figure.ELIGIBLE, Figure.DEPARTED, Figure.CLEARED]
    registered = found[0]
    assert registered.movement_id == "MOV-1"  # the case's movement, named later on its stream
    assert dict(registered.cells) == {("F", A): 1, ("F", C): 1, ("M", A): 1}
    assert registered.vulnerable == 1 and registered.origin == "Karaganda"
    assert found[-1].checkpoint_id == EXIT.checkpoint_id and found[0].checkpoint_id == ""


def test_people_a_profile_does_not_describe_are_counted_unknown() -> None:
    known, unprofiled, changed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    records = [
        change(known, CaseStatus.REGISTERED, 0, 3),
        change(unprofiled, CaseStatus.REGISTERED, 1, 2),
        change(changed, CaseStatus.REGISTERED, 2, 4),  # the profile counts 3: an update not read yet
    ]
    profiles = {known: profile(known, FAMILY), changed: profile(changed, FAMILY)}
    [row] = domain.tabulate(domain.facts(records, profiles, UTC), ("day",))
    assert (row.count.cases, row.count.people, row.count.unknown) == (3, 9, 6)
    assert sum(row.count.cells.values()) == 3


def test_a_case_counts_once_per_row_however_often_it_reaches_the_figure() -> None:
    case = uuid.uuid4()
    records = [
        change(case, CaseStatus.REGISTERED, 0, 1),
        change(case, CaseStatus.ON_HOLD, 1, 1, reason_code="evidence_pending"),
        change(case, CaseStatus.ELIGIBLE, 2, 1),
        change(case, CaseStatus.ON_HOLD, 3, 1, reason_code="evidence_pending"),
        change(case, CaseStatus.ON_HOLD, 4, 1, reason_code="supervisor_override_pending"),
    ]
    rows = domain.tabulate(domain.facts(records, {}, UTC), ("day",))
    held = {r.get("reason_code"): r.count.cases for r in rows if r.get("figure") == "held"}
    assert held == {"evidence_pending": 1, "supervisor_override_pending": 1}


def test_small_cells_are_suppressed_and_one_alone_is_not_left_to_subtraction() -> None:
    count = Count(cases=4, people=12, unknown=0, vulnerable=2)
    count.cells.update({("F", A): 7, ("M", A): 3, ("M", C): 2})
    shown = domain.suppress(count, 5)
    assert shown.people == 12 and shown.cases is None and shown.vulnerable is None
    assert shown.cells[("F", A)] == 7 and shown.cells[("M", A)] is None and shown.cells[("M", C)] is None
    assert shown.cells[("X", OLD)] == 0  # nobody is shown as nobody

    alone = Count(cases=6, people=13)
    alone.cells.update({("F", A): 7, ("M", A): 5, ("M", C): 1})
    shown = domain.suppress(alone, 5)
    # 13 - 7 - 5 would give the 1 away: the next smallest is hidden with it.
    assert shown.cells[("M", C)] is None and shown.cells[("M", A)] is None and shown.cells[("F", A)] == 7

    few = Count(cases=1, people=3)
    few.cells.update({("F", A): 3})
    shown = domain.suppress(few, 5)
    assert shown.people is None and all(v in (None, 0) for v in shown.cells.values())
    assert domain.suppress(few, 3).people == 3  # the threshold is configuration


def test_threshold_one_suppresses_nothing() -> None:
    count = Count(cases=1, people=1)
    count.cells.update({("M", A): 1})
    assert not domain.suppress(count, 1).suppressed


# --- HXL ------------------------------------------------------------------------------------------

SCHEMA = [
    ["#valid_tag", "#valid_required", "#valid_datatype", "#valid_value+min", "#valid_value+list"],
    ["#indicator+code", "true", "text", "", "|".join(Figure)],
    ["#affected+total", "", "number", "0", ""],
    ["#affected+hh", "", "number", "0", ""],
    ["#affected+f+adults", "", "number", "0", ""],
    ["#affected+m+children", "", "number", "0", ""],
    ["#affected+unknown", "", "number", "0", ""],
    ["#date", "true", "date", "", ""],
]


def movement(people: int) -> tuple[list[StatusRecord], dict[uuid.UUID, Profile]]:
    """``people`` single women and a family of three, through the exit crossing."""
    records: list[StatusRecord] = []
    profiles: dict[uuid.UUID, Profile] = {}
    for i in range(people):
        case = uuid.uuid4()
        records += journey(case, 1, start=i)
        profiles[case] = profile(case, [Member("F", A)], origin="Pavlodar")
    family = uuid.uuid4()
    records += journey(family, 3, start=50)
    profiles[family] = profile(family, FAMILY)
    return records, profiles


def test_the_daily_hxl_export_passes_libhxl_validation_with_the_schema() -> None:
    records, profiles = movement(8)
    found = domain.facts(records, profiles, UTC)
    text = hxl_export.to_csv(hxl_export.REPORTS["daily"], hxl_export.select(found, day=DAY), 5)
    data = hxl.data(io.BytesIO(text.encode()))
    tags = data.display_tags
    assert {"#date", "#indicator+code", "#affected+total", "#affected+f+adults", "#meta+suppressed"} <= set(
        tags
    )
    errors: list[object] = []
    assert hxl.schema(SCHEMA, callback=errors.append).validate(data), errors
    rows = list(csv.DictReader(io.StringIO(text.split("\n", 2)[0] + "\n" + text.split("\n", 2)[2])))
    departed = next(r for r in rows if r["Figure"] == "departed")
    assert (departed["People"], departed["Cases (families)"]) == ("11", "9")
    assert departed["Women and girls 18-59"] == "9"
    # The family's man (1) and girl (1) are small cells: suppressed, and the row says so.
    assert departed["Men and boys 18-59"] == "" and departed["Women and girls 5-17"] == ""
    assert departed["Suppressed"] == "yes"


def test_a_figure_the_schema_does_not_know_fails_validation() -> None:
    bad = "Figure,People,Date\n#indicator+code,#affected+total,#date\nteleported,3,2026-12-01\n"
    errors: list[object] = []
    assert not hxl.schema(SCHEMA, callback=errors.append).validate(hxl.data(io.BytesIO(bad.encode())))
    assert errors


def test_per_origin_and_per_crossing_exports() -> None:
    records, profiles = movement(6)
    found = domain.facts(records, profiles, UTC)
    origins = list(csv.reader(io.StringIO(hxl_export.to_csv(hxl_export.REPORTS["origins"], found, 5))))
    assert origins[1][0] == "#loc+origin+name"
    assert {(r[0], r[1]) for r in origins[2:]} >= {("Pavlodar", "registered"), ("Karaganda", "departed")}
    crossings = list(csv.reader(io.StringIO(hxl_export.to_csv(hxl_export.REPORTS["crossings"], found, 5))))
    assert {r[2] for r in crossings[2:]} == {"cleared"}
    assert {r[4] for r in crossings[2:]} == {EXIT.checkpoint_id}


# --- the situation report ------------------------------------------------------------------------


def report_of(records: list[StatusRecord], profiles: dict[uuid.UUID, Profile]) -> sitrep.SituationReport:
    found = domain.facts(records, profiles, UTC)
    change_ = sitrep.RequirementChange(
        uuid.uuid4(),
        ENTRY.checkpoint_id,
        "published",
        T0,
        "negative_covid19_test",
        "Negative COVID-19 test within 72 hours",
        DAY,
    )
    return sitrep.build(
        DAY, found, records, [change_], ROUTES, threshold=5, tz=UTC, generated_at=T0 + timedelta(hours=20)
    )


def test_the_situation_report_counts_the_day_and_the_operation() -> None:
    records, profiles = movement(8)
    held = uuid.uuid4()
    records += [
        change(held, CaseStatus.REGISTERED, 100, 5),
        change(held, CaseStatus.ON_HOLD, 101, 5, reason_code="evidence_pending"),
    ]
    arrived = uuid.uuid4()
    records += [
        *journey(arrived, 6, start=120),
        change(arrived, CaseStatus.ARRIVED, 130, 6, movement_id="MOV-1"),
    ]
    profiles[arrived] = profile(arrived, [Member("F", C)] * 3 + [Member("F", OLD)] * 3)
    report = report_of(records, profiles)
    heads = {h.figure: h for h in report.headlines}
    assert heads[Figure.REGISTERED].people == 8 + 3 + 5 + 6 and heads[Figure.DEPARTED].people == 8 + 3 + 6
    assert heads[Figure.ARRIVED].people == 6 and heads[Figure.ARRIVED].cases is None
    assert (report.returned_women, report.returned_children, report.returned_elderly) == (6, None, None)
    [hold] = report.holds
    assert (hold.reason_code, hold.new_today, hold.on_hold_at_end) == ("evidence_pending", 5, 5)
    flow = {c.checkpoint_id: c for c in report.crossings}
    assert flow[EXIT.checkpoint_id].cleared == 17 and flow[ENTRY.checkpoint_id].cleared == 0
    assert report.cumulative_returns[-1] == (DAY, 6)
    assert [c.code for c in report.changes] == ["negative_covid19_test"]


def test_the_pdf_is_one_page_whose_text_says_the_figures(tmp_path: pytest.TempPathFactory) -> None:
    records, profiles = movement(8)
    report = report_of(records, profiles)
    drawn = render.charts(report)
    assert drawn.crossings.startswith(b"\x89PNG") and drawn.returns.startswith(b"\x89PNG")
    pdf = render.to_pdf(report, drawn)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Corridor daily situation report" in text and "Tuesday 01 December 2026" in text
    assert "Departed" in text and "11" in text
    assert "negative_covid19_test" in text and "<5" in text
    page = render.to_html(report, drawn)
    assert "<img" in page and "Holds and their reasons" in page and "negative_covid19_test" in page


CYRILLIC = "Справка о здоровье — Ўзбекистон"  # noqa: RUF001  (Cyrillic on purpose)


def test_names_in_any_script_reach_the_pdf() -> None:
    records, profiles = movement(5)
    report = report_of(records, profiles)
    cyrillic = sitrep.RequirementChange(
        uuid.uuid4(), EXIT.checkpoint_id, "published", T0, "spravka", CYRILLIC, DAY
    )
    report = sitrep.SituationReport(**{**report.__dict__, "changes": (cyrillic,)})
    text = PdfReader(io.BytesIO(render.to_pdf(report, render.charts(report)))).pages[0].extract_text()
    assert CYRILLIC in text


def test_a_city_few_people_come_from_is_pooled_as_other() -> None:
    records, profiles = movement(6)  # six from Pavlodar, a family of three from Karaganda
    found = domain.pooled_origins(domain.facts(records, profiles, UTC), 5)
    assert {f.origin for f in found} == {"Pavlodar", domain.OTHER_ORIGINS}
    text = hxl_export.to_csv(hxl_export.REPORTS["origins"], found, 5)
    assert "Karaganda" not in text
    assert {f.origin for f in domain.pooled_origins(domain.facts(records, profiles, UTC), 3)} == {
        "Pavlodar",
        "Karaganda",
    }
