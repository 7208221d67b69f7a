"""Log lines are JSON objects with the fields operations search by, and no colour codes."""

from __future__ import annotations

import json
import logging
import uuid

from opentelemetry.sdk.trace import TracerProvider

from corridor.logs import JsonLines, about_case


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
    with tracer.start_as_current_span("handle") as span, about_case(case_id):
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
