"""One case's journey in a real trace backend: a platform of its own with Jaeger, every service
sending its spans over OTLP, and Jaeger's query API asked for the case's spans by their
``corridor.case_id`` tag."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from contracts.routes import RouteBook
from contracts.status import CaseStatus
from devkit import journey, scenario
from devkit.devstack import Stack
from devkit.journey import service_of, tags
from tests.integration.conftest import following, running_platform

pytestmark = pytest.mark.go_tool("jaeger")

CASE_TAG = journey.CASE_TAG


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_platform(tmp_path_factory.mktemp("traced"), tracing=True) as platform:
        yield platform


def personal_values(body: dict[str, Any]) -> set[str]:
    """What the registration said about its people that no span may repeat."""
    found: set[str] = set()
    for member in body["members"]:
        found.update(member["given_names"].split())
        found.update({member["surname"], member["birth_date"], member["document"]["number"]})
    return found


async def case_spans(jaeger: str, service: str, case_id: uuid.UUID) -> list[dict[str, Any]]:
    """The traces Jaeger holds with a span of ``service`` tagged with the case."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        r = await http.get(
            f"{jaeger}/api/traces",
            params={
                "service": service,
                "tags": json.dumps({CASE_TAG: str(case_id)}),
                "limit": 500,
                "lookback": "1h",
            },
        )
    r.raise_for_status()
    traces: list[dict[str, Any]] = r.json()["data"] or []
    return traces


def clearance_requests(traces: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The traces holding a post's clearance request (its server span)."""
    return [
        t
        for t in traces
        if any(
            tags(s).get("span.kind") == "server" and tags(s).get("http.route", "").endswith("/clearance")
            for s in t["spans"]
        )
    ]


@pytest.mark.timeout(900)
async def test_one_case_journey_is_found_in_jaeger_across_every_service(
    traced: Stack, travel_date: date
) -> None:
    assert traced.jaeger is not None
    route = RouteBook.load(traced.routes_file).routes[0]
    body = scenario.family_of_three(travel_date)
    started = time.monotonic()
    async with following(traced) as stream, httpx.AsyncClient(timeout=15.0) as client:
        case = await scenario.register(client, traced, body)
        await stream.wait_for([case], CaseStatus.ELIGIBLE, 90)
        await scenario.run_movement(
            client, traced, stream, route, travel_date, vehicles=[("BUS-T1", 45)], expect=[case]
        )
        await stream.wait_for([case], CaseStatus.ARRIVED, 90)
    journey_seconds = time.monotonic() - started

    services = ["intake", "eligibility", "transport"] + [
        f"border-clearance.{cp.checkpoint_id}" for cp in route.checkpoints
    ]
    # Spans leave each service in batches (every half second here) and Jaeger stores them
    # shortly after; a request's server span ends (and leaves) after the spans inside it. Ask until
    # every service has some and every post's clearance request is there, or give up after a
    # minute and let the assertions below say what is missing.
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        async with asyncio.timeout(60):
            while True:
                for service in services:
                    found[service] = await case_spans(traced.jaeger.url, service, case)
                every_service = all(
                    any(
                        service_of(t, s) == service and tags(s).get(CASE_TAG) == str(case)
                        for t in found[service]
                        for s in t["spans"]
                    )
                    for service in services
                )
                seen = {t["traceID"]: t for ts in found.values() for t in ts}
                if every_service and len(clearance_requests(seen.values())) >= len(route.checkpoints):
                    break
                await asyncio.sleep(1.0)
    except TimeoutError:
        pass
    traces = {t["traceID"]: t for ts in found.values() for t in ts}
    spans = [(t, s) for t in traces.values() for s in t["spans"]]
    print(
        f"\njourney {journey_seconds:.1f}s; {len(traces)} traces, {len(spans)} spans of case {case}; "
        f"Jaeger resident memory {traced.jaeger.rss_bytes() / 2**20:.0f} MiB"
    )

    # Every service the case passed through tagged its own spans with the case.
    tagged = {service_of(t, s) for t, s in spans if tags(s).get(CASE_TAG) == str(case)}
    assert set(services) <= tagged, f"no spans of the case from {set(services) - tagged}"

    # The registration's trace continues through the outbox and Kafka: the consumers' spans of
    # the case registered are in the caseworker's request's trace.
    registration = next(
        t
        for t in traces.values()
        if any(
            tags(s).get("http.route") == "/cases" and tags(s).get("http.method") == "POST" for s in t["spans"]
        )
    )
    assert {"intake", "eligibility", "transport"} <= {
        service_of(registration, s) for s in registration["spans"]
    }
    # The registration request itself names the case it created (its path names none), so it is
    # found by the case like the rest.
    [posted] = [
        s
        for s in registration["spans"]
        if tags(s).get("span.kind") == "server" and tags(s).get("http.route") == "/cases"
    ]
    assert tags(posted).get(CASE_TAG) == str(case), tags(posted)

    # Each HTTP command on the case (planning, departure, progress, each post's clearance) starts a
    # trace of its own, which links back to a trace of the same case.
    commands = [
        t
        for t in traces.values()
        if t is not registration
        and any(
            tags(s).get("span.kind") == "server" and tags(s).get("http.method") == "POST" for s in t["spans"]
        )
    ]
    linked = {
        t["traceID"]
        for t in commands
        for s in t["spans"]
        for ref in s.get("references", [])
        if ref["traceID"] != t["traceID"] and ref["traceID"] in traces
    }
    clearances = clearance_requests(commands)
    assert len(clearances) >= len(route.checkpoints)
    unlinked = [t["traceID"] for t in commands if t["traceID"] not in linked]
    assert not unlinked, f"{len(unlinked)} of {len(commands)} command traces link to no trace of the case"

    # No span says anything about the people: not in a name, an attribute, a log, a link.
    personal = personal_values(body)
    leaks = []
    for t, s in spans:
        texts = [s["operationName"], *(str(v) for v in tags(s).values())]
        texts += [str(f["value"]) for log in s.get("logs", []) for f in log.get("fields", [])]
        texts += [str(tag["value"]) for tag in t["processes"][s["processID"]].get("tags", [])]
        leaks += [(service_of(t, s), s["operationName"], p) for p in personal for text in texts if p in text]
    assert not leaks, f"personal data in spans: {leaks[:5]}"

    # What `python -m devkit journey` prints: the same spans, from every service, registration first.
    trail = journey.steps(await asyncio.to_thread(journey.case_traces, traced.jaeger.url, case), case)
    assert trail[0].service == "intake" and set(services) <= {step.service for step in trail}
    assert [step.start_us for step in trail] == sorted(step.start_us for step in trail)
