"""Every service's /metrics, scraped as operations staff would, while cases move."""

from __future__ import annotations

import re
from datetime import date

import httpx
from prometheus_client.parser import text_string_to_metric_families

from contracts.status import CaseStatus
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


async def test_every_service_exposes_its_figures_to_operations_and_no_case_id(
    stack: Stack, stream: StatusStream, travel_date: date
) -> None:
    async with httpx.AsyncClient(timeout=15.0) as client:
        cases = [
            await scenario.register(client, stack, scenario.single_traveller(travel_date)) for _ in range(3)
        ]
        await stream.wait_for(cases, CaseStatus.ELIGIBLE, 60)

        scraped: dict[str, dict[str, list[tuple[dict[str, str], float]]]] = {}
        for name in stack.specs:
            url = stack.url(name) + "/metrics"
            assert (await client.get(url)).status_code == 401
            assert (await client.get(url, headers=stack.headers("caseworker"))).status_code == 403
            answer = await client.get(
                url, headers=stack.headers("operations_viewer", mission=stack.specs[name].mission)
            )
            assert answer.status_code == 200, (name, answer.text)
            assert answer.headers["content-type"].startswith("text/plain")
            assert not UUID.search(answer.text), f"{name}: a case id in a label"
            scraped[name] = samples(answer.text)

    intake, eligibility, transport = scraped["intake"], scraped["eligibility"], scraped["transport"]
    registered = {
        (s["method"], s["route"], s["status"]): v for s, v in intake["corridor_http_requests_total"]
    }
    assert registered.get(("POST", "/cases", "201"), 0) >= len(cases)
    assert any(s["status"] == "401" for s, _ in intake["corridor_http_requests_total"])
    applied = {(s["consumer"], s["outcome"]): v for s, v in eligibility["corridor_consumer_records_total"]}
    assert applied[("eligibility", "applied")] >= len(cases)
    by_status = {s["status"]: v for s, v in transport["corridor_cases"]}
    assert by_status.get("eligible", 0) >= len(cases)
    for name, figures in scraped.items():
        assert "corridor_outbox_pending_events" in figures, name
        assert "corridor_outbox_oldest_pending_age_seconds" in figures, name
