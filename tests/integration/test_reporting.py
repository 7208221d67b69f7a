"""Reporting on a small movement run through the whole platform: the figures match the status
stream exactly (counted here, independently), the HXL exports pass libhxl validation with a schema
of the expected tags, small cells are suppressed, no name, birth date or document number of anyone
registered appears in any report, and the situation report's PDF says the figures (its text is
extracted; its page is rendered to an image kept in the test's artefacts).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import subprocess
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import hxl
import pytest
from pypdf import PdfReader

from contracts import topics
from contracts.routes import Route
from contracts.status import CaseStatus
from corridor.auth import Role
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.integration.conftest import repo_root, wait_group_caught_up
from tests.unit.test_reporting import SCHEMA

THRESHOLD = 5  # the service's default
ARTEFACTS = repo_root() / ".run" / "test-artefacts" / "reporting"

# The statuses each figure counts, and what a figure is split by: the reports' definitions
# (docs/reporting.md), written out again here so the test counts on its own.
FIGURES = {
    CaseStatus.REGISTERED: "registered",
    CaseStatus.ELIGIBLE: "eligible",
    CaseStatus.INELIGIBLE: "ineligible",
    CaseStatus.ON_HOLD: "held",
    CaseStatus.DEPARTED: "departed",
    CaseStatus.EXIT_CLEARED: "cleared",
    CaseStatus.ENTRY_CLEARED: "cleared",
    CaseStatus.REFUSED_AT_BORDER: "refused",
    CaseStatus.ARRIVED: "arrived",
    CaseStatus.WITHDRAWN: "withdrawn",
    CaseStatus.NO_SHOW: "no_show",
}
AT_CROSSING = {"cleared", "refused"}
BY_REASON = {"held", "ineligible", "refused", "withdrawn"}
CITIES = ("Karaganda", "Pavlodar")
BANDS = {"infants": (0, 4), "children": (5, 17), "adults": (18, 59), "elderly": (60, 200)}

Key = tuple[str, str, str]  # figure, crossing, reason


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _band(born: date, on: date) -> str:
    age = _age(born, on)
    return next(name for name, (low, high) in BANDS.items() if low <= age <= high)


def _people(travel: date) -> dict[str, dict[str, Any]]:
    """Four families of three and eight single travellers: 20 people from two cities."""
    bodies: dict[str, dict[str, Any]] = {}
    for i in range(4):
        bodies[f"family-{i}"] = scenario.family_of_three(travel)
    singles = [("F", "1991-04-02"), ("F", "1993-09-12"), ("F", "1988-01-20"), ("F", "1995-06-30")]
    singles += [("M", "1955-02-14"), ("M", "1951-10-01"), ("M", "1979-01-30"), ("M", "1984-08-08")]
    for i, (sex, born) in enumerate(singles):
        body = scenario.single_traveller(travel)
        body["members"][0].update(sex=sex, birth_date=born)
        if born < "1960":
            body["members"][0]["vulnerabilities"] = ["elderly"]
        bodies[f"single-{i}"] = body
    for i, body in enumerate(bodies.values()):
        for m in body["members"]:
            m["current_city"] = CITIES[i % 2]
    # One traveller's passport lapses before the travel date: held, and never on the movement.
    bodies["single-7"]["members"][0]["document"]["expires_on"] = (travel - timedelta(days=3)).isoformat()
    return bodies


def _day_of(at: datetime) -> date | None:
    """The UTC day, or None for a time at the calendar's edge (the fuzz tests write 9999-12-31)."""
    try:
        return at.astimezone(UTC).date()
    except OverflowError:
        return None


def _count(events: list[Any], *, day: date | None = None) -> dict[Key, tuple[int, int]]:
    """(cases, people) per figure, crossing and reason: each case once per key."""
    seen: set[tuple[Key, uuid.UUID]] = set()
    found: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    for e in events:
        d = e.data
        figure = FIGURES.get(d.status)
        if figure is None or (day is not None and _day_of(d.occurred_at) != day):
            continue
        crossing = d.place.checkpoint_id or "" if figure in AT_CROSSING and d.place else ""
        key = (figure, crossing, (d.reason_code or "") if figure in BY_REASON else "")
        if (key, d.case_id) in seen:
            continue
        seen.add((key, d.case_id))
        found[key][0] += 1
        found[key][1] += d.members
    return {k: (v[0], v[1]) for k, v in found.items()}


def _rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """The HXL CSV's hashtag row, and its data rows by header."""
    lines = list(csv.reader(io.StringIO(text)))
    headers, tags, data = lines[0], lines[1], lines[2:]
    return tags, [dict(zip(headers, row, strict=True)) for row in data]


def _shown_matches(shown: str, expected: int) -> bool:
    """A published number equals the count, or is suppressed because the count is small."""
    return (0 < expected < THRESHOLD) if shown == "" else int(shown) == expected


def _shown(n: int) -> str:
    return f"<{THRESHOLD}" if 0 < n < THRESHOLD else f"{n:,}"


def _validate(text: str, *, dated: bool = True) -> None:
    """libhxl validates the export against the schema: every expected tag with its type."""
    tags = [f"#affected+{s}+{b}" for s in ("f", "m", "x") for b in BANDS]
    schema = [*SCHEMA, *([t, "", "number", "0", ""] for t in tags)]
    if not dated:  # a report over the whole operation has no date column
        schema = [row for row in schema if row[0] != "#date"]
    errors: list[Any] = []
    valid = hxl.schema(schema, callback=errors.append).validate(hxl.data(io.BytesIO(text.encode())))
    assert valid, [f"{e.message}: {e.value}" for e in errors[:10]]


async def _get(client: httpx.AsyncClient, url: str, **params: str) -> httpx.Response:
    r = await client.get(url, params=params, headers={})
    assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:300]}"
    return r


@pytest.fixture
def artefacts(request: pytest.FixtureRequest) -> Path:
    path = ARTEFACTS / request.node.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


async def test_a_movement_s_reports_match_the_status_stream(
    stack: Stack,
    stream: StatusStream,
    route: Route,
    client: httpx.AsyncClient,
    travel_date: date,
    artefacts: Path,
) -> None:
    bodies = _people(travel_date)
    ids = dict(
        zip(
            bodies,
            await asyncio.gather(*(scenario.register(client, stack, b) for b in bodies.values())),
            strict=True,
        )
    )
    held, no_show = ids["single-7"], ids["single-6"]
    travelling = [c for c in ids.values() if c != held]
    await stream.wait_for(travelling, CaseStatus.ELIGIBLE, 60)
    await stream.wait_for([held], {CaseStatus.ON_HOLD, CaseStatus.INELIGIBLE}, 60)

    # A crossing requirement published (for a day no case travels on) and lifted: what changed.
    officer = stack.headers(Role.BORDER_OFFICER, checkpoint=route.checkpoints[1].checkpoint_id)
    requirements = stack.border_url(route.checkpoints[1].checkpoint_id) + "/requirements"
    r = await client.post(
        requirements,
        json={
            "code": "reporting_test_requirement",
            "description": "A requirement published for the reporting test",
            "evidence_kind": "covid19_test",
            "valid_hours": 72,
            "effective_from": (date.today() + timedelta(days=3650)).isoformat(),
        },
        headers=officer,
    )
    assert r.status_code == 201, r.text
    lifted = await client.delete(f"{requirements}/{r.json()['requirement_id']}", headers=officer)
    assert lifted.status_code == 200, lifted.text

    movement = await scenario.plan_movement(
        client, stack, stream, route, travel_date, vehicles=[("BUS-1", 30)], expect=travelling
    )
    movement_id = movement["movement_id"]
    await scenario.drive_vehicle(client, stack, route, movement_id, "BUS-1", no_shows=[no_show])
    arrived = [c for c in travelling if c != no_show]
    await stream.wait_for(arrived, CaseStatus.ARRIVED, 90)

    # Reporting has read everything the platform wrote so far.
    operations = stack.kafka_access("operations")
    for topic in (topics.STATUS, topics.PROFILES, topics.requirements(route.checkpoints[1].checkpoint_id)):
        await wait_group_caught_up(operations, "reporting", topic, timeout=60)
    reports = stack.url("reporting") + "/reports"

    # --- the movement: every figure and its disaggregation, from what was registered ----------
    mine = {c: stream.timelines[c] for c in ids.values()}
    on_movement = {c for c, events in mine.items() if any(e.data.movement_id == movement_id for e in events)}
    assert on_movement == set(travelling)
    expected = _count([e for c in on_movement for e in mine[c]])
    csv_text = (await _get(client, f"{reports}/hxl/movements.csv", movement_id=movement_id)).text
    (artefacts / "movement.csv").write_text(csv_text)
    _validate(csv_text, dated=False)
    tags, rows = _rows(csv_text)
    assert tags[:3] == ["#activity+code", "#indicator+code", "#indicator+name"]
    got = {(r["Figure"], r["Crossing"], r["Reason"]): r for r in rows}
    assert set(got) == set(expected), (sorted(got), sorted(expected))
    people_of = {ids[name]: body["members"] for name, body in bodies.items()}
    for key, (cases, people) in expected.items():
        row = got[key]
        assert _shown_matches(row["Cases (families)"], cases), (key, row)
        assert _shown_matches(row["People"], people), (key, row)
        # Women and girls 18-59 and men and boys 5-17, counted from the registrations.
        reached = {c for c in on_movement if any(_key_of(e) == key for e in mine[c])}
        members = [m for c in reached for m in people_of[c]]
        bands = Counter((m["sex"], _band(date.fromisoformat(m["birth_date"]), travel_date)) for m in members)
        assert _shown_matches(row["Women and girls 18-59"], bands["F", "adults"]), (key, row)
        assert _shown_matches(row["Men and boys 60+"], bands["M", "elderly"]), (key, row)
    departed = got[("departed", "", "")]
    assert departed["People"] == "18" and departed["Men and boys 60+"] == ""  # 2 men over 60: small
    assert departed["Suppressed"] == "yes"

    # --- the day: every case of every test, against the whole stream ----------------------------
    today = max(e.data.occurred_at.astimezone(UTC).date() for c in arrived for e in mine[c])
    # Both sides read the same records: reporting has committed every status change on the stream
    # now, and the test's reader has read them all (other tests' cases may still be moving).
    await wait_group_caught_up(stack.kafka_access("operations"), "reporting", topics.STATUS, 60)
    await stream.caught_up(60)
    all_events = [e for events in list(stream.timelines.values()) for e in events]
    daily_text = (await _get(client, f"{reports}/hxl/daily.csv", date=today.isoformat())).text
    (artefacts / f"daily-{today}.csv").write_text(daily_text)
    _validate(daily_text)
    _, daily = _rows(daily_text)
    expected_day = _count(all_events, day=today)
    got_day = {(r["Figure"], r["Crossing"], r["Reason"]): r for r in daily}
    assert set(got_day) == set(expected_day)
    for key, (cases, people) in expected_day.items():
        assert _shown_matches(got_day[key]["Cases (families)"], cases), (key, got_day[key])
        assert _shown_matches(got_day[key]["People"], people), (key, got_day[key])

    origins = (await _get(client, f"{reports}/hxl/origins.csv")).text
    crossings = (await _get(client, f"{reports}/hxl/crossings.csv", date=today.isoformat())).text
    for name, text, dated in (("origins", origins, False), ("crossings", crossings, True)):
        (artefacts / f"{name}.csv").write_text(text)
        _validate(text, dated=dated)
    assert {r["Origin city"] for r in _rows(origins)[1]} >= set(CITIES)

    # --- the situation report --------------------------------------------------------------------
    pdf = (await _get(client, f"{reports}/situation/{today.isoformat()}.pdf")).content
    page = (await _get(client, f"{reports}/situation/{today.isoformat()}.html")).text
    (artefacts / "situation.pdf").write_bytes(pdf)
    (artefacts / "situation.html").write_text(page)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert f"{today:%A %d %B %Y}" in text
    cases, people = expected_day[("arrived", "", "")]
    assert f"Arrived (returned) {_shown(cases)} {_shown(people)}" in text.replace("\n", " "), text
    # The page lists the day's first five changes (other tests publish requirements too); the HTML
    # report lists every one.
    assert "What changed" in text
    assert "reporting_test_requirement" in page and "lifted" in page
    listed = (await _get(client, f"{reports}/situation")).json()["reports"]
    assert today.isoformat() in {r["day"] for r in listed}
    _render_page(artefacts / "situation.pdf", artefacts)

    # --- nothing personal, anywhere ----------------------------------------------------------------
    everything = "\n".join([csv_text, daily_text, origins, crossings, page, text])
    raw_pdf = pdf.decode("latin-1")
    for body in bodies.values():
        for m in body["members"]:
            born = date.fromisoformat(m["birth_date"])
            for secret in (
                *m["given_names"].split(),
                m["surname"],
                m["birth_date"],
                f"{born:%d.%m.%Y}",
                m["document"]["number"],
            ):
                assert secret not in everything and secret not in raw_pdf, f"{secret!r} is in a report"


def _key_of(event: Any) -> Key | None:
    d = event.data
    figure = FIGURES.get(d.status)
    if figure is None:
        return None
    crossing = d.place.checkpoint_id or "" if figure in AT_CROSSING and d.place else ""
    return (figure, crossing, (d.reason_code or "") if figure in BY_REASON else "")


def _render_page(pdf: Path, artefacts: Path) -> None:
    """The page as an image a person can look at (poppler's pdftoppm, installed by make setup)."""
    if shutil.which("pdftoppm") is None:
        print(f"pdftoppm is missing (Debian's poppler-utils): no page image in {artefacts}")
        return
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf), str(artefacts / "situation-page")],
        check=True,
        timeout=60,
    )
    image = artefacts / "situation-page.png"
    assert image.stat().st_size > 10_000, "the page rendered empty"
    print(f"situation report page: {image}")


async def _profile_in_reporting(stack: Stack, case_id: uuid.UUID, *, erased: bool) -> Any:
    conn = await asyncpg.connect(stack.postgres.dsn(stack.specs["reporting"].database))
    try:
        async with asyncio.timeout(60):
            while True:
                row = await conn.fetchrow("SELECT * FROM profiles WHERE case_id = $1", case_id)
                if row is not None and row["erased"] is erased:
                    return row
                await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def test_after_an_erasure_reporting_keeps_only_sex_and_age_band(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    body = scenario.single_traveller(travel_date)
    person = body["members"][0]
    person.update(nationality="UZB", current_city="Taraz", vulnerabilities=["disability"])  # ineligible
    case_id = await scenario.register(client, stack, body)
    before = await _profile_in_reporting(stack, case_id, erased=False)
    assert before["origin_city"] == "Taraz"
    assert json.loads(before["members"]) == [["M", "18-59", ["disability"]]]
    await stream.wait_for([case_id], CaseStatus.INELIGIBLE, 60)

    await scenario.wait_read_by_intake(client, stack, [case_id], CaseStatus.INELIGIBLE, 60)

    supervisor = stack.headers(Role.SUPERVISOR, subject="supervisor@reporting-test")
    r = await client.post(f"{stack.url('intake')}/cases/{case_id}/erasure", headers=supervisor)
    assert r.status_code == 201, r.text

    after = await _profile_in_reporting(stack, case_id, erased=True)
    assert after["origin_city"] is None
    assert json.loads(after["members"]) == [["M", "18-59", []]]  # the exact band, read before truncation
