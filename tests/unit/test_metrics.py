"""The metrics' names and labels: Prometheus conventions, and never a value about a person."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import httpx
from fastapi import APIRouter, FastAPI
from prometheus_client.parser import text_string_to_metric_families

from corridor.consumer import EventConsumer
from corridor.metrics import UNMATCHED, ConsumerCounters, HttpMetrics, ServiceMetrics


def families(metrics: ServiceMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


async def test_requests_are_counted_by_route_template_never_by_the_path_asked() -> None:
    consumer = SimpleNamespace(
        name="intake-timeline",
        applied=3,
        duplicates=1,
        dead_lettered=2,
        retried=4,
        source_mismatches=0,
        transactions=2,
    )
    metrics = ServiceMetrics(lambda: [consumer])
    app = FastAPI()
    router = APIRouter()

    @router.get("/cases/{case_id}")
    async def read(case_id: uuid.UUID) -> dict[str, str]:
        return {"case_id": str(case_id)}

    app.include_router(router)  # as the services do

    app.add_middleware(HttpMetrics, metrics=metrics, routes=lambda: app.routes)
    case_ids = [uuid.uuid4() for _ in range(5)]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for case_id in case_ids:
            assert (await client.get(f"/cases/{case_id}")).status_code == 200
        assert (await client.get("/cases/not-a-uuid")).status_code == 422
        assert (await client.get(f"/elsewhere/{case_ids[0]}")).status_code == 404

    found = families(metrics)
    requests = {(s["route"], s["status"]): v for s, v in found["corridor_http_requests_total"]}
    assert requests == {("/cases/{case_id}", "200"): 5, ("/cases/{case_id}", "422"): 1, (UNMATCHED, "404"): 1}
    durations = [s for s, _ in found["corridor_http_request_duration_seconds_count"]]
    assert {d["route"] for d in durations} == {"/cases/{case_id}", UNMATCHED}
    # No label anywhere holds an id someone asked for.
    text = metrics.exposition().decode()
    assert not any(str(c) in text for c in case_ids)

    records = {s["outcome"]: v for s, v in found["corridor_consumer_records_total"]}
    assert records == {
        "applied": 3,
        "duplicates": 1,
        "dead_lettered": 2,
        "retried": 4,
        "source_mismatches": 0,
    }
    assert found["corridor_consumer_transactions_total"] == [({"consumer": "intake-timeline"}, 2)]


def test_every_outcome_is_a_counter_the_consumer_keeps() -> None:
    # A name that is not one of the consumer's counters fails here rather than reporting 0 forever.
    consumer = EventConsumer(
        name="c",
        topics=("t",),
        handlers={},
        pool=lambda: None,
        producer=lambda: None,  # type: ignore[arg-type,return-value]
    )
    for outcome in (*ConsumerCounters.OUTCOMES, "transactions"):
        assert isinstance(getattr(consumer, outcome), int), outcome


def test_names_follow_the_prometheus_conventions() -> None:
    metrics = ServiceMetrics(lambda: [])
    names = {f.name: f.type for f in text_string_to_metric_families(metrics.exposition().decode())}
    for name, kind in names.items():
        assert name.startswith("corridor_"), name
        if kind == "counter":
            assert not name.endswith("_total"), "the exposition adds _total to a counter's name"
        if "duration" in name or "age" in name:
            assert name.endswith("_seconds"), f"{name}: a time is in seconds, and says so"
    assert {"corridor_http_requests", "corridor_outbox_pending_events", "corridor_cases"} <= set(names)
