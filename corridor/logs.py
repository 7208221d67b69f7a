"""A service's logs as JSON lines: one object per record, the same fields everywhere, no colour.

Every line carries when, how bad, which service and instance, the trace and span it happened in
(so a log line leads to the trace of the request or record, and back), and the case it concerns
where there is one. Messages are what the code logs, which never quotes a person's data
(``corridor.redaction``); a case id is a pseudonym, and the one identifier operations need.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

_case_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("corridor_log_case_id", default=None)


@contextlib.contextmanager
def about_case(case_id: object | None) -> Iterator[None]:
    """Every line logged inside names ``case_id`` (a consumer handling one case's event)."""
    token = _case_id.set(str(case_id) if case_id is not None else None)
    try:
        yield
    finally:
        _case_id.reset(token)


class JsonLines(JsonFormatter):
    """``{"time", "level", "service", "instance", "logger", "message", "trace_id", "span_id",
    "case_id", ...}``: the record's extra fields (FastStream's topic and group, a ``case_id=`` passed
    in ``extra``) follow."""

    def __init__(self, *, service: str, instance: str) -> None:
        super().__init__(
            json_ensure_ascii=False,
            rename_fields={"exc_info": "exception", "stack_info": "stack"},
            # uvicorn adds its message again with colour codes.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )
        self.service = service
        self.instance = instance

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname
        log_data["service"] = self.service
        log_data["instance"] = self.instance
        log_data["logger"] = record.name
        log_data["message"] = record.getMessage()
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            log_data["trace_id"] = trace.format_trace_id(context.trace_id)
            log_data["span_id"] = trace.format_span_id(context.span_id)
        case_id = record.__dict__.get("case_id") or _case_id.get()
        if case_id is not None:
            log_data["case_id"] = str(case_id)
        # The record's extras (the base class skips the standard attributes) and the formatted
        # exception, ours winning.
        extras: dict[str, Any] = {}
        super().add_fields(extras, record, message_dict)
        for key, value in extras.items():
            log_data.setdefault(key, value)


def setup_logging(level: str, *, service: str, instance: str) -> None:
    """JSON lines on stderr for the whole process, unless logging was set up already (a test
    runner's capture, or another service built in the same process)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLines(service=service, instance=instance))
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # FastStream gives its own logger a handler with colour codes: its records go through ours.
    faststream = logging.getLogger("faststream")
    faststream.handlers.clear()
    faststream.propagate = True
