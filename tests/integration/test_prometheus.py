"""A real Prometheus scraping the session's platform: what it reports after a movement is what the
test did (requests, status changes consumed, each post's queue, requirement holds, lag, outbox).
And the services' log files: JSON lines, with the trace, span and case of what was being done.

Prometheus joins the session's platform for this module only (a second platform would cost a
minute of CI); figures are compared as differences from before the test's own actions, since
other tests' cases live on the same platform.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from contracts.routes import Route
from contracts.status import CaseStatus
from corridor.auth import Purpose, Role
from devkit import scenario
from devkit.devinfra.prometheus import PrometheusServer
from devkit.devstack import Stack
from opstools.statusreader import StatusStream

SCRAPE_SECONDS = 1.0
REQUIREMENT_POST = "uzb-zhibek-zholy-entry"


@pytest.fixture(scope="module")
def prometheus(stack: Stack) -> Iterator[PrometheusServer]:
    started = time.monotonic()
    server = stack.start_prometheus(scrape_seconds=SCRAPE_SECONDS)
    print(f"\nPrometheus started in {time.monotonic() - started:.1f}s")
    try:
        yield server
    finally:
        stack.stop_prometheus()


def value(server: PrometheusServer, expr: str) -> float:
    """The single value of ``expr`` (0 when it has no series)."""
    result = server.query(expr)
    assert len(result) <= 1, (expr, result)
    return float(result[0]["value"][1]) if result else 0.0


def by(server: PrometheusServer, expr: str, label: str) -> dict[str, float]:
    return {r["metric"][label]: float(r["value"][1]) for r in server.query(expr)}


async def settled(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        await asyncio.sleep(0.5)


async def fresh_scrape(server: PrometheusServer) -> None:
    """Wait until every target was scraped after now (what the services show now is in Prometheus)."""
    since = time.time()

    async def scraped() -> bool:
        targets = server.targets()
        return all(t["health"] == "up" and _epoch(t["lastScrape"]) > since + 0.1 for t in targets)

    await settled(scraped, "a scrape of every target")


def _epoch(stamp: str) -> float:
    """Prometheus' RFC 3339 time with nanoseconds, which ``fromisoformat`` does not take."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp() + float("0." + (fraction or "0"))


async def test_operations_see_the_movement_in_prometheus_and_in_the_logs(
    stack: Stack, stream: StatusStream, route: Route, travel_date: date, prometheus: PrometheusServer
) -> None:
    instances = {s.principal for s in stack.specs.values()}
    await settled(
        lambda: _true(by(prometheus, 'up{job=~"corridor-.*"}', "instance") == dict.fromkeys(instances, 1.0)),
        "every service instance up in Prometheus",
    )
    checkpoints = [cp.checkpoint_id for cp in route.checkpoints]
    crossing = 'corridor_crossing_cases{{checkpoint="{}", stage="{}"}}'
    figures = {
        "registered": 'corridor_http_requests_total{service="intake", method="POST", route="/cases", status="201"}',
        "timeline": 'corridor_consumer_records_total{consumer="intake-timeline", outcome="applied"}',
        "arrived": 'corridor_cases{service="transport", status="arrived"}',
        "refused_status": 'corridor_cases{service="transport", status="refused_at_border"}',
        **{
            f"{cp}:{stage}": crossing.format(cp, stage)
            for cp in checkpoints
            for stage in ("cleared", "refused")
        },
    }
    await fresh_scrape(prometheus)
    before = {k: value(prometheus, e) for k, e in figures.items()}
    # Other tests share the platform and may leave people at a post: this test's own are compared.
    waiting_before = by(prometheus, 'corridor_crossing_cases{stage="arrived"}', "checkpoint")

    async with httpx.AsyncClient(timeout=15.0) as client:
        cases = [
            await scenario.register(client, stack, scenario.single_traveller(travel_date)) for _ in range(3)
        ]
        await stream.wait_for(cases, CaseStatus.ELIGIBLE, 60)
        refused_case = cases[0]
        member = (await scenario.members_of(client, stack, refused_case, Purpose.BORDER_CHECK))[0]
        refused_at = checkpoints[2]
        refusals = {
            refused_at: [
                {"person_id": member["person_id"], "reason_code": "document_damaged", "reason": "Torn"}
            ]
        }
        await scenario.run_movement(
            client,
            stack,
            stream,
            route,
            travel_date,
            vehicles=[("BUS-P", 45)],
            expect=cases,
            refusals=refusals,
        )
        await stream.wait_for(cases[1:], CaseStatus.ARRIVED, 60)
        await stream.wait_for([refused_case], CaseStatus.REFUSED_AT_BORDER, 60)
        changes = sum(len(stream.timelines[c]) for c in cases)

        # Every consumer caught up, every outbox drained: then the figures stop moving.
        await settled(
            lambda: _true(value(prometheus, "sum(corridor_consumer_lag_records)") == 0.0),
            "no consumer lag",
        )
        await settled(
            lambda: _true(value(prometheus, "sum(corridor_outbox_pending_events)") == 0.0),
            "every outbox drained",
        )
        await fresh_scrape(prometheus)
        after = {k: value(prometheus, e) for k, e in figures.items()}
        delta = {k: after[k] - before[k] for k in figures}

        assert delta["registered"] == 3
        assert delta["timeline"] == changes, "intake's timeline consumer applied every status change once"
        assert delta["arrived"] == 2 and delta["refused_status"] == 1
        for i, cp in enumerate(checkpoints):
            expected_cleared = 3 if i < 2 else 2
            assert delta[f"{cp}:cleared"] == expected_cleared, (cp, delta)
            assert delta[f"{cp}:refused"] == (1 if cp == refused_at else 0), (cp, delta)
        # Nobody of this test's waits at a post: each decided what reached it.
        waiting = by(prometheus, 'corridor_crossing_cases{stage="arrived"}', "checkpoint")
        assert {
            cp: waiting.get(cp, 0.0) - waiting_before.get(cp, 0.0) for cp in checkpoints
        } == dict.fromkeys(checkpoints, 0.0)

        # Lag is known for every partition of every topic each consumer reads, and its latency
        # histogram saw every row each relay published.
        lag_series = prometheus.query("corridor_consumer_lag_records")
        consumers = {s["metric"]["consumer"] for s in lag_series}
        assert {"eligibility", "transport", "intake-timeline"} <= consumers
        assert {"border-clearance." + cp for cp in checkpoints} <= consumers
        published = value(prometheus, "sum(corridor_outbox_published_events)")
        observed = value(prometheus, "sum(corridor_outbox_publish_delay_seconds_count)")
        assert observed == published > 0

        # A requirement at a post holds a case travelling after it comes into force: counted at that
        # checkpoint, and gone when the requirement is lifted.
        # A requirement holds every case travelling on its days: a day no other test travels on.
        later = travel_date + timedelta(days=5000)
        held = await _held_by_requirement(client, stack, stream, prometheus, later)
        assert held == 1

    # Each service's log names the cases it applied events of, in the trace of the record.
    # (the first post applies manifests and departures, of whole vehicles: the second, the case's
    # clearance at the first)
    for name in ("intake", "eligibility", "transport", f"border-{checkpoints[1]}"):
        about = _lines_about(stack, name, cases[1])
        assert about, f"{name} logged nothing about the case"
        for line in about:
            assert len(str(line["trace_id"])) == 32 and len(str(line["span_id"])) == 16, line
    for name in stack.specs:
        lines = _json_lines(stack, name)
        assert lines, name
        assert member["surname"] not in stack.log_path(name).read_text(), f"{name} logged a name"
        for line in lines:
            assert {"time", "level", "service", "instance", "message"} <= set(line), (name, line)
            assert line["instance"] == stack.specs[name].principal, (name, line)


async def _held_by_requirement(
    client: httpx.AsyncClient, stack: Stack, stream: StatusStream, prometheus: PrometheusServer, day: date
) -> float:
    officer = stack.headers(Role.BORDER_OFFICER, checkpoint=REQUIREMENT_POST, subject="uzb-duty-officer")
    query = f'corridor_requirement_held_cases{{checkpoint="{REQUIREMENT_POST}"}}'
    # Another test's requirement at this post may be in force: its figure is what this one's lifting
    # returns to (no series at all when there is none).
    before = await _steady(prometheus, query) if prometheus.query(query) else None
    r = await client.post(
        stack.border_url(REQUIREMENT_POST) + "/requirements",
        json={
            "code": "negative_covid19_test",
            "description": "a negative COVID-19 test taken within 72 hours",
            "evidence_kind": "covid19_test",
            "valid_hours": 72,
            "effective_from": day.isoformat(),
            "effective_until": day.isoformat(),  # this test's day only
        },
        headers=officer,
    )
    assert r.status_code == 201, r.text
    try:
        # Cases of other tests travelling that far (the HTTP fuzzing registers any valid date) are
        # held too: count what the requirement holds once eligibility has re-evaluated them.
        base = await _steady(prometheus, query)
        case = await scenario.register(client, stack, scenario.single_traveller(day))
        await stream.wait_for([case], CaseStatus.ON_HOLD, 60)
        await settled(lambda: _true(value(prometheus, query) >= base + 1), "the held case in Prometheus")
        await fresh_scrape(prometheus)
        return value(prometheus, query) - base
    finally:
        lifted = await client.delete(
            stack.border_url(REQUIREMENT_POST) + f"/requirements/{r.json()['requirement_id']}",
            headers=officer,
        )
        assert lifted.status_code == 200
        await settled(
            lambda: _true(
                not prometheus.query(query) if before is None else value(prometheus, query) == before
            ),
            "the lifted requirement's figure gone",
        )


async def _steady(prometheus: PrometheusServer, query: str) -> float:
    """The figure once two scrapes a few seconds apart agree."""
    previous: float | None = None
    for _ in range(20):
        await fresh_scrape(prometheus)
        now = value(prometheus, query)
        if now == previous:
            return now
        previous = now
        await asyncio.sleep(2)
    raise AssertionError(f"{query} did not settle")


def _json_lines(stack: Stack, name: str) -> list[dict[str, object]]:
    """Every line of the service's log file, each of which must be a JSON object without colour."""
    text = stack.log_path(name).read_text()
    assert "\x1b" not in text, f"{name}: colour codes in its log file"
    return [json.loads(line) for line in text.splitlines() if line]


def _lines_about(stack: Stack, name: str, case_id: object) -> list[dict[str, object]]:
    return [line for line in _json_lines(stack, name) if line.get("case_id") == str(case_id)]


async def _true(condition: bool) -> bool:
    return condition
