"""Log lines are JSON objects with the fields operations search by, and no colour codes."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider

from corridor.logs import JsonLines, RequestLog
from corridor.tracing import CaseRef, about_case


def line(record: logging.LogRecord) -> dict[str, object]:
    text = JsonLines(service="transport", instance="transport-2").format(record)
    assert "\n" not in text and "\x1b" not in text
    parsed: dict[str, object] = json.loads(text)
    return parsed


def record(msg: str, *args: object, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    r = logging.LogRecord("corridor.outbox", level, __file__, 1, msg, args, None)
    r.__dict__.update(extra)
    return r


def test_a_line_has_when_what_where_and_nothing_more() -> None:
    found = line(record("relay %s published %d", "transport", 3))
    assert list(found)[:6] == ["time", "level", "service", "instance", "logger", "message"]
    assert found["message"] == "relay transport published 3"
    assert (found["level"], found["service"], found["instance"]) == ("INFO", "transport", "transport-2")
    assert str(found["time"]).endswith("+00:00")
    assert "trace_id" not in found and "case_id" not in found


def test_the_current_span_and_case_are_on_every_line_inside_them() -> None:
    tracer = TracerProvider().get_tracer("test")
    case_id = uuid.uuid4()
    with tracer.start_as_current_span("handle") as span, about_case(CaseRef(case_id=str(case_id))):
        found = line(record("applied"))
    context = span.get_span_context()
    assert found["trace_id"] == f"{context.trace_id:032x}"
    assert found["span_id"] == f"{context.span_id:016x}"
    assert found["case_id"] == str(case_id)
    assert "case_id" not in line(record("after"))


def test_extras_and_exceptions_are_fields_of_the_line() -> None:
    case_id = uuid.uuid4()
    try:
        raise ValueError("broken")
    except ValueError:
        import sys

        r = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    r.__dict__.update({"case_id": case_id, "topic": "cases"})
    found = line(r)
    assert found["case_id"] == str(case_id) and found["topic"] == "cases"
    assert "ValueError: broken" in str(found["exception"])


def test_uvicorns_coloured_copy_of_the_message_is_left_out() -> None:
    found = line(record("Started server process [%d]", 7, color_message="Started [\x1b[36m%d\x1b[0m]"))
    assert found["message"] == "Started server process [7]" and "color_message" not in found


def test_a_line_about_a_vehicle_names_no_case() -> None:
    with about_case(CaseRef(movement_id="MOV-1", vehicle_id="BUS-1", case_ids=("a", "b"))):
        assert "case_id" not in line(record("departed"))


class Written(logging.Handler):
    """Lines as a service writes them: formatted when logged, in the context they were logged in."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonLines(service="transport", instance="transport-2"))
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def of(self, logger: str) -> list[dict[str, object]]:
        return [found for found in self.lines if found["logger"] == logger]


@pytest.fixture
def written() -> Iterator[Written]:
    handler, root = Written(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_request_is_one_line_naming_its_route_and_the_case_its_path_names(written: Written) -> None:
    app = FastAPI()

    @app.post("/cases/{case_id}/withdrawal")
    async def withdraw(case_id: uuid.UUID) -> dict[str, str]:
        logging.getLogger("corridor.test").info("withdrawing")  # a line inside names it too
        return {}

    @app.delete("/hold-list/{document_number}")
    async def unhold(document_number: str) -> dict[str, str]:
        return {}

    @app.post("/movements/{movement_id}/vehicles/{vehicle_id}/departure")
    async def depart(movement_id: str, vehicle_id: str) -> dict[str, str]:
        raise RuntimeError("boom")

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {}

    app.add_middleware(RequestLog, routes=lambda: app.routes)
    case = uuid.uuid4()
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post(f"/cases/{case}/withdrawal?why=Nazarov").status_code == 200
        assert client.delete("/hold-list/AB1234567").status_code == 200
        assert client.post("/movements/MOV-1/vehicles/BUS-1/departure").status_code == 500
        assert client.get("/nowhere/AB1234567").status_code == 404
        assert client.get("/health/live").status_code == 200  # probes: no line
    [inside] = written.of("corridor.test")
    assert inside["case_id"] == str(case)
    requests = written.of("corridor.requests")
    withdrawn, unheld, departed, nowhere = requests
    assert withdrawn["message"] == "POST /cases/{case_id}/withdrawal 200"
    assert (withdrawn["method"], withdrawn["route"], withdrawn["status"]) == (
        "POST",
        "/cases/{case_id}/withdrawal",
        200,
    )
    assert withdrawn["case_id"] == str(case) and isinstance(withdrawn["duration_ms"], float)
    assert unheld["route"] == "/hold-list/{document_number}" and "case_id" not in unheld
    assert (departed["status"], departed["movement_id"], departed["vehicle_id"]) == (500, "MOV-1", "BUS-1")
    assert (nowhere["route"], nowhere["status"]) == ("unmatched", 404)
    # Never the path or the query: they may hold a document number or a name.
    assert "AB1234567" not in repr(requests) and "Nazarov" not in repr(requests)


def test_one_logger_is_raised_from_the_environment_over_the_service_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from corridor.logs import setup_logging
    from corridor.settings import ServiceSettings

    monkeypatch.setenv("CORRIDOR_LOG_LEVELS", '{"corridor.applied": "DEBUG"}')
    settings = ServiceSettings()
    applied, other = logging.getLogger("corridor.applied"), logging.getLogger("corridor.outbox")
    root = logging.getLogger()
    saved = (root.level, applied.level)
    try:
        setup_logging("INFO", service="transport", instance="transport", levels=settings.log_levels)
        assert applied.isEnabledFor(logging.DEBUG)
        assert not other.isEnabledFor(logging.DEBUG) and other.isEnabledFor(logging.INFO)
    finally:
        root.setLevel(saved[0])
        applied.setLevel(saved[1])
    monkeypatch.setenv("CORRIDOR_LOG_LEVELS", '{"corridor.applied": "LOUD"}')
    with pytest.raises(ValueError, match=r"corridor\.applied"):
        ServiceSettings()  # refused at start, not ignored
