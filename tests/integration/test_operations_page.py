"""The live operations page in a real browser (Debian's Chromium, driven by Selenium through Debian's
chromedriver) while a movement runs: it signs in, follows the board over server-sent events without
reloading, and shows what the status stream, read here independently, says.

Screenshots go to the test's own directory, and also to ``CORRIDOR_SCREENSHOTS_DIR`` when set: the
operator's guide's images are taken with

    CORRIDOR_SCREENSHOTS_DIR=docs/images .venv/bin/python -m pytest tests/integration/test_operations_page.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from contracts import topics
from contracts.routes import Route
from contracts.status import CaseStatus
from corridor.auth import Role
from devkit import scenario
from devkit.devstack import Stack
from opstools import deadletters
from opstools.statusreader import StatusStream

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# What works in a container without a display, a GPU, a sandbox or the internet.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1700",
]
STUCK_AFTER = 12.0
DECISIONS = {CaseStatus.EXIT_CLEARED, CaseStatus.ENTRY_CLEARED, CaseStatus.REFUSED_AT_BORDER}
T = TypeVar("T")

# One DOM read per call, as plain data: the page re-renders while we look.
READ_BOARD = """
const rows = (id) => [...document.querySelectorAll('#' + id + ' tbody tr')];
const cells = (tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent);
return {
  live: document.getElementById('live').textContent,
  marker: window.__loadedOnce || null,
  funnel: Object.fromEntries([...document.querySelectorAll('#funnel .stage')]
    .map((d) => [d.dataset.status, Number(d.querySelector('.count').textContent)])),
  crossings: Object.fromEntries(rows('crossings').filter((r) => r.dataset.checkpoint)
    .map((r) => [r.dataset.checkpoint, cells(r)])),
  vehicles: Object.fromEntries(rows('vehicles').filter((r) => r.dataset.vehicle)
    .map((r) => [r.dataset.vehicle, cells(r)])),
  stuck: rows('stuck').filter((r) => r.dataset.case).map((r) => r.dataset.case),
  dead_letters: Object.fromEntries(rows('dead-letters').filter((r) => r.dataset.consumer)
    .map((r) => [r.dataset.consumer, cells(r)])),
  services: Object.fromEntries(rows('services').filter((r) => r.dataset.service)
    .map((r) => [r.dataset.service, cells(r)])),
  lag: Object.fromEntries(rows('lag').filter((r) => r.dataset.group)
    .map((r) => [r.dataset.group, Number(cells(r)[1])])),
};
"""


@pytest.fixture
def page_url(stack: Stack) -> Iterator[str]:
    """The stack's operations page, for this test only: the rest of the session does without its
    polling."""
    started = time.monotonic()
    url = stack.start_operations_page(stuck_after_seconds=STUCK_AFTER)
    print(f"\noperations page ready in {time.monotonic() - started:.1f}s")
    yield url
    stack.stop_operations_page()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "Debian's chromium and chromium-driver are needed: make setup installs them (as root)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    # The system's driver, named: Selenium then fetches nothing (no Selenium Manager download).
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    started = time.monotonic()
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    print(f"\nChromium started in {time.monotonic() - started:.1f}s")
    try:
        yield driver
    finally:
        driver.quit()


class Screens:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.publish = (
            Path(os.environ["CORRIDOR_SCREENSHOTS_DIR"])
            if os.environ.get("CORRIDOR_SCREENSHOTS_DIR")
            else None
        )

    def take(self, driver: webdriver.Chrome, name: str) -> Path:
        path = self.directory / f"{name}.png"
        assert driver.save_screenshot(str(path)), name
        if self.publish is not None:
            self.publish.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.publish / path.name)
        return path


async def in_browser(fn: Callable[..., T], *args: Any) -> T:
    """Selenium blocks: off the event loop, so the status stream and the scenario keep going."""
    return await asyncio.to_thread(fn, *args)


async def until(
    driver: webdriver.Chrome, ok: Callable[[dict[str, Any]], bool], what: str, timeout: float = 45.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        board: dict[str, Any] = await in_browser(driver.execute_script, READ_BOARD)
        if ok(board):
            return board
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never showed {what}; it shows {board}")
        await asyncio.sleep(0.3)


def stream_funnel(stream: StatusStream) -> Counter[str]:
    return Counter(events[-1].data.status.value for events in list(stream.timelines.values()) if events)  # type: ignore[attr-defined]


def stream_crossings(stream: StatusStream, route: Route) -> dict[str, tuple[int, int]]:
    """Per checkpoint: (cleared, refused or held), as the status stream says."""
    out = {cp.checkpoint_id: [0, 0] for cp in route.checkpoints}
    for events in list(stream.timelines.values()):
        decided: dict[str, CaseStatus] = {}
        for e in events:
            place = e.data.place  # type: ignore[attr-defined]
            if place and place.checkpoint_id in out and e.data.status in DECISIONS:  # type: ignore[attr-defined]
                decided[place.checkpoint_id] = e.data.status  # type: ignore[attr-defined]
        for cp, status in decided.items():
            if status in (CaseStatus.EXIT_CLEARED, CaseStatus.ENTRY_CLEARED):
                out[cp][0] += 1
            elif status is CaseStatus.REFUSED_AT_BORDER:
                out[cp][1] += 1
    return {cp: (c, r) for cp, (c, r) in out.items()}


def page_crossings(board: dict[str, Any]) -> dict[str, tuple[int, int]]:
    # columns: post, expected, at the post, cleared, refused, held
    return {cp: (int(c[3]), int(c[4]) + int(c[5])) for cp, c in board["crossings"].items()}


def funnel_of(board: dict[str, Any]) -> Counter[str]:
    return Counter({s: n for s, n in board["funnel"].items() if n})


async def test_the_operations_page_follows_a_movement_live_in_chromium(
    stack: Stack,
    stream: StatusStream,
    route: Route,
    client: httpx.AsyncClient,
    travel_date: date,
    page_url: str,
    browser: webdriver.Chrome,  # after the page: the browser goes first, the page has no client left
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    screens = Screens(tmp_path)
    url = page_url

    # Behind the operations-viewer role: no data without a token, and a caseworker's is refused.
    async with httpx.AsyncClient(base_url=url, timeout=10) as raw:
        assert (await raw.get("/api/board")).status_code == 401
        assert (await raw.get("/api/events")).status_code == 401
        refused = await raw.post("/session", json={"token": stack.token(Role.CASEWORKER)})
        assert refused.status_code == 403, refused.text

    # Sign in once, as a person would: the token becomes an HttpOnly cookie.
    await in_browser(browser.get, url)
    await in_browser(
        lambda: browser.find_element(By.ID, "token").send_keys(stack.token(Role.OPERATIONS_VIEWER))
    )
    await in_browser(lambda: browser.find_element(By.ID, "signin-button").click())
    await until(browser, lambda b: b["live"] == "live", "a live connection")
    cookies = await in_browser(browser.get_cookies)
    session = next(c for c in cookies if c["name"] == "corridor_ops_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert await in_browser(browser.execute_script, "return document.cookie") == ""
    # Set once: still there at the end means the page was never reloaded.
    await in_browser(browser.execute_script, "window.__loadedOnce = 'yes'")
    before = await until(browser, lambda b: bool(b["services"]), "the services")

    bodies = [scenario.family_of_three(travel_date), scenario.single_traveller(travel_date)]
    cases = [await scenario.register(client, stack, body) for body in bodies]
    await stream.wait_for(cases, CaseStatus.ELIGIBLE, 60)
    movement = await scenario.plan_movement(
        client, stack, stream, route, travel_date, vehicles=[("OPS-1", 3), ("OPS-2", 3)], expect=cases
    )
    vehicles = [v["vehicle_id"] for v in movement["vehicles"] if v["cases"]]
    mid = movement["movement_id"]
    first, *rest = vehicles

    # One vehicle leaves and waits on the road past the threshold: the page shows it, and its cases
    # as stuck; meanwhile the other drives through every crossing.
    held_back = rest[0] if rest else None
    if held_back is not None:
        r = await scenario.post(
            client,
            f"{stack.url('transport')}/movements/{mid}/vehicles/{held_back}/departure",
            {"no_shows": []},
            headers=scenario.coordinator(stack),
        )
        assert r.status_code == 200, r.text
    driving = asyncio.create_task(scenario.drive_vehicle(client, stack, route, mid, first))
    places_seen: set[str] = set()
    while not driving.done():
        board = await in_browser(browser.execute_script, READ_BOARD)
        row = board["vehicles"].get(f"{mid}/{first}")
        if row:
            places_seen.add(row[1])
        await asyncio.sleep(0.2)
    await driving
    during = await until(
        browser,
        lambda b: held_back is None or f"{mid}/{held_back}" in b["vehicles"],
        "the waiting vehicle on the road",
    )
    # Where a vehicle is: the one left on the road is shown with its place. The one driven through
    # every post may finish between two refreshes on a loaded machine: what the page caught of it
    # is printed, not asserted.
    print(f"\nthe page showed the driven vehicle at {sorted(places_seen)}")
    if held_back is not None:
        assert during["vehicles"][f"{mid}/{held_back}"][1], "the waiting vehicle is shown without its place"
    if held_back is not None:
        held_cases = {
            c["case_id"] for v in movement["vehicles"] if v["vehicle_id"] == held_back for c in v["cases"]
        }
        await until(browser, lambda b: held_cases <= set(b["stuck"]), "the waiting vehicle's cases as stuck")
        await in_browser(screens.take, browser, "operations-page-during-movement")
        await scenario.drive_vehicle(client, stack, route, mid, held_back)
    await stream.wait_for(cases, CaseStatus.ARRIVED, 90)

    # A record that is not an event, from a mission's system: intake dead-letters it.
    marker = f"not-an-event-{uuid.uuid4().hex}"
    producer = AIOKafkaProducer(**stack.kafka_access("mission-uzb").aiokafka(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topics.inbound_status("UZB"), key=b"x", value=marker.encode())
    finally:
        await producer.stop()
    operations = stack.kafka_access("operations")
    async with asyncio.timeout(30):
        while not [
            d
            for d in await deadletters.list_dead_letters(operations, "intake-inbound")
            if marker.encode() == d.value
        ]:
            await asyncio.sleep(0.3)
    parked = await deadletters.list_dead_letters(operations, "intake-inbound")
    reasons = Counter(d.reason for d in parked)

    # What the page shows is what the status stream says (read here on its own), once settled.
    def agrees(board: dict[str, Any]) -> bool:
        row = board["dead_letters"].get("intake-inbound")
        return (
            funnel_of(board) == stream_funnel(stream)
            and page_crossings(board) == stream_crossings(stream, route)
            and row is not None
            and int(row[1]) == len(parked)
        )

    after = await until(browser, agrees, "the status stream's funnel, crossings and the dead letters")
    # Once every service has taken every record: no lag, and intake's metrics count what it parked.
    after = await until(
        browser,
        lambda b: (
            agrees(b)
            and bool(b["lag"])
            and not any(b["lag"].values())
            and int(b["services"]["intake"][3]) >= 1
        ),
        "every consumer group caught up and intake's dead letter in its metrics",
    )
    assert after["funnel"]["arrived"] >= before["funnel"]["arrived"] + len(cases)
    assert after["marker"] == "yes", "the page was reloaded: it must update live"
    for reason, count in reasons.items():
        assert f"{reason} \N{MULTIPLICATION SIGN}{count}" in after["dead_letters"]["intake-inbound"][2]
    assert set(after["services"]) == set(stack.specs)
    assert all(cells[1].startswith("ready") for cells in after["services"].values()), after["services"]
    assert {"intake-timeline", "intake-inbound", "transport", "eligibility"} <= set(after["lag"])
    await in_browser(screens.take, browser, "operations-page-after-movement")

    # Case lookup: the family's timeline, as the stream has it.
    family = cases[0]
    await in_browser(lambda: browser.find_element(By.ID, "lookup-id").send_keys(str(family)))
    await in_browser(lambda: browser.find_element(By.ID, "lookup-button").click())
    expected = [s.value for s in stream.statuses(family)]

    def timeline() -> list[str]:
        return [
            tr.get_attribute("data-status") or ""
            for tr in browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr[data-status]")
        ]

    async with asyncio.timeout(15):
        while await in_browser(timeline) != expected:
            await asyncio.sleep(0.2)
    await in_browser(browser.execute_script, "document.getElementById('lookup-form').scrollIntoView()")
    await in_browser(screens.take, browser, "operations-page-case-lookup")

    # No personal data, and no dead letter's body, anywhere on the page.
    source = await in_browser(lambda: browser.page_source)
    text = await in_browser(lambda: browser.find_element(By.TAG_NAME, "body").text)
    for body in bodies:
        for m in body["members"]:
            for secret in (m["given_names"], m["document"]["number"], m["birth_date"]):
                assert secret not in source and secret not in text, "personal data on the operations page"
    assert marker not in source
    print(
        f"\noperations page browser test: {time.monotonic() - started:.1f}s; the page showed {during['vehicles']}"
    )
