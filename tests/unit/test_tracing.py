"""Spans about cases: which case an event names, what a request's span keeps of its URL, and what
leaves the process when something fails."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from contracts.status import CaseStatus, CaseStatusChanged
from contracts.transport import ManifestIssued, ManifestPassenger, MovementDeparted
from corridor import tracing
from corridor.logs import RequestLog
from corridor.telemetry import instrument_http


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(tracing.CaseAttributes())
    provider.add_span_processor(SimpleSpanProcessor(tracing.RedactingExporter(exported)))
    yield provider, exported
    provider.shutdown()


def test_a_case_event_names_its_case_and_movement() -> None:
    case = uuid.uuid4()
    change = CaseStatusChanged.model_construct(
        case_id=case, status=CaseStatus.MANIFESTED, movement_id="MOV-1", occurred_at=datetime.now(UTC)
    )
    ref = tracing.ref_of(change)
    assert ref.attributes() == {tracing.CASE_ID: str(case), tracing.MOVEMENT_ID: "MOV-1"}
    assert ref.case_ids == (str(case),)


def test_a_vehicle_event_names_its_vehicle_and_counts_its_cases_without_picking_one() -> None:
    cases = [uuid.uuid4(), uuid.uuid4()]
    departed = MovementDeparted.model_construct(movement_id="MOV-1", vehicle_id="BUS-1", case_ids=cases)
    ref = tracing.ref_of(departed)
    assert ref.attributes() == {
        tracing.MOVEMENT_ID: "MOV-1",
        tracing.VEHICLE_ID: "BUS-1",
        tracing.CASE_COUNT: 2,
    }
    assert ref.case_ids == tuple(str(c) for c in cases)
    # A manifest lists people: their cases, each once.
    one = uuid.uuid4()
    passengers = [
        ManifestPassenger.model_construct(case_id=one),
        ManifestPassenger.model_construct(case_id=one),
    ]
    manifest = ManifestIssued.model_construct(
        movement_id="MOV-1",
        vehicle_id="BUS-1",
        checkpoint_id="x",
        passengers=passengers,
        departure_date=date.today(),
    )
    assert tracing.ref_of(manifest).case_ids == (str(one),)
    assert tracing.ref_of(manifest).case_id == str(one)


def test_record_keys_name_a_case_or_a_vehicle_and_nothing_else() -> None:
    case = str(uuid.uuid4())
    assert tracing.ref_of_key(case).attributes() == {tracing.CASE_ID: case}
    assert tracing.ref_of_key("MOV-1/BUS-2").attributes() == {
        tracing.MOVEMENT_ID: "MOV-1",
        tracing.VEHICLE_ID: "BUS-2",
    }
    assert tracing.ref_of_key("kaz-zhibek-zholy-exit").attributes() == {}


def test_spans_started_about_a_case_carry_it(provider: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    tp, exported = provider
    tracer = tp.get_tracer("test")
    with (
        tracing.about_case(tracing.CaseRef(case_id="c-1", movement_id="m-1")),
        tracer.start_as_current_span("outer"),
    ):
        with tracer.start_as_current_span("query", kind=SpanKind.CLIENT):
            pass
    with tracer.start_as_current_span("later"):
        pass
    by_name = {s.name: dict(s.attributes or {}) for s in exported.get_finished_spans()}
    assert by_name["query"][tracing.CASE_ID] == "c-1" and by_name["outer"][tracing.MOVEMENT_ID] == "m-1"
    assert tracing.CASE_ID not in by_name["later"]


def test_failures_leave_with_their_type_only(provider: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    tp, exported = provider
    with pytest.raises(ValueError), tp.get_tracer("test").start_as_current_span("handle"):
        raise ValueError("document AB1234567 of Farrukh Nazarov refused")
    (span,) = exported.get_finished_spans()
    assert span.status.description == "ValueError"
    (event,) = span.events
    assert event.attributes is not None and event.attributes["exception.type"] == "ValueError"
    assert "AB1234567" not in repr(dict(event.attributes)) + repr(span.status)


def test_request_spans_keep_the_route_not_the_path_or_query(
    provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    tp, exported = provider
    app = FastAPI()

    @app.delete("/hold-list/{document_number}")
    async def unhold(document_number: str) -> dict[str, str]:
        return {}

    @app.post("/movements/{movement_id}/vehicles/{vehicle_id}/cases/{case_id}")
    async def act(movement_id: str, vehicle_id: str, case_id: uuid.UUID) -> dict[str, str]:
        with tp.get_tracer("test").start_as_current_span("inside"):
            return {}

    instrument_http(app, tp)
    case = uuid.uuid4()
    with TestClient(app) as client:
        assert client.delete("/hold-list/AB1234567?why=Nazarov").status_code == 200
        assert client.post(f"/movements/MOV-1/vehicles/BUS-1/cases/{case}").status_code == 200
        assert client.get("/health/live").status_code == 404  # not traced at all
    spans = exported.get_finished_spans()
    assert "AB1234567" not in repr([dict(s.attributes or {}) for s in spans]) + repr([s.name for s in spans])
    assert "Nazarov" not in repr([dict(s.attributes or {}) for s in spans])
    server = {s.name: dict(s.attributes or {}) for s in spans if s.kind == SpanKind.SERVER}
    assert server["DELETE /hold-list/{document_number}"]["http.target"] == "/hold-list/{document_number}"
    acted = server["POST /movements/{movement_id}/vehicles/{vehicle_id}/cases/{case_id}"]
    assert acted[tracing.CASE_ID] == str(case) and acted[tracing.VEHICLE_ID] == "BUS-1"
    inside = next(s for s in spans if s.name == "inside")
    assert dict(inside.attributes or {})[tracing.MOVEMENT_ID] == "MOV-1"
    assert len(server) == 2


def test_a_request_that_creates_its_case_names_it_on_its_server_span_and_log_line(
    provider: tuple[TracerProvider, InMemorySpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    """A registration: the path names no case, the use case creates one; from then on the request's
    spans, its server span (a trace backend finds the registration by the case) and its log line
    name it."""
    tp, exported = provider
    tracer = tp.get_tracer("test")
    app = FastAPI()
    case = uuid.uuid4()

    @app.post("/cases", status_code=201)
    async def register() -> dict[str, str]:
        with tracer.start_as_current_span("insert case"):
            pass
        tracing.found_case(tracing.CaseRef(case_id=str(case)))
        with tracer.start_as_current_span("write outbox"):
            pass
        return {"case_id": str(case)}

    app.add_middleware(RequestLog, routes=lambda: app.routes)
    instrument_http(app, tp)
    caplog.set_level(logging.INFO, logger="corridor.requests")
    with TestClient(app) as client:
        assert client.post("/cases").status_code == 201
        assert client.post("/cases").status_code == 201
    spans = exported.get_finished_spans()
    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    assert [dict(s.attributes or {}).get(tracing.CASE_ID) for s in servers] == [str(case)] * 2
    by_name = {s.name: dict(s.attributes or {}) for s in spans}
    assert tracing.CASE_ID not in by_name["insert case"]
    assert by_name["write outbox"][tracing.CASE_ID] == str(case)
    lines = [r for r in caplog.records if r.name == "corridor.requests"]
    assert [r.__dict__["case_id"] for r in lines] == [str(case)] * 2
    # Each request is its own: what one found is not in scope for the next, or outside.
    assert tracing.case_in_scope() is None


def test_outside_a_request_finding_a_case_sets_it_in_scope_only(
    provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    tp, exported = provider

    async def consumer_task() -> None:
        tracing.found_case(tracing.CaseRef(case_id="c-9"))
        with tp.get_tracer("test").start_as_current_span("after"):
            pass

    asyncio.run(consumer_task())
    (after,) = exported.get_finished_spans()
    assert dict(after.attributes or {})[tracing.CASE_ID] == "c-9"
