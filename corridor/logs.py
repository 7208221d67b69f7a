"""A service's logs as JSON lines: one object per record, the same fields everywhere, no colour;
and a line per HTTP request answered (``RequestLog``).

Every line carries when, how bad, which service and instance, the trace and span it happened in
(so a log line leads to the trace of the request or record, and back), and the case it concerns
where there is one. Messages are what the code logs, which never quotes a person's data
(``corridor.redaction``); a case id is a pseudonym, and the one identifier operations need.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from starlette.types import ASGIApp, Receive, Scope, Send

from corridor import tracing
from corridor.metrics import UNMATCHED, Answered

_requests = logging.getLogger("corridor.requests")


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
        # The case in scope is tracing's (``tracing.about_case``): the span the line is logged in
        # names the same case.
        ref = tracing.case_in_scope()
        case_id = record.__dict__.get("case_id") or (ref.case_id if ref is not None else None)
        if case_id is not None:
            log_data["case_id"] = str(case_id)
        # The record's extras (the base class skips the standard attributes) and the formatted
        # exception, ours winning.
        extras: dict[str, Any] = {}
        super().add_fields(extras, record, message_dict)
        for key, value in extras.items():
            log_data.setdefault(key, value)


def setup_logging(
    level: str, *, service: str, instance: str, levels: Mapping[str, str] | None = None
) -> None:
    """JSON lines on stderr for the whole process, unless logging was set up already (a test
    runner's capture, or another service built in the same process). ``levels``: single loggers'
    levels over ``level`` (``corridor.applied``: DEBUG for a line per event applied)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLines(service=service, instance=instance))
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    for name, named_level in (levels or {}).items():
        logging.getLogger(name).setLevel(named_level)
    # FastStream gives its own logger a handler with colour codes: its records go through ours.
    faststream = logging.getLogger("faststream")
    faststream.handlers.clear()
    faststream.propagate = True


_QUIET = re.compile("|".join(tracing.UNTRACED_URLS))


class RequestLog:
    """ASGI middleware: one line per HTTP request answered, ``"POST /cases/{case_id}/withdrawal 200"``,
    with ``method``, ``route``, ``status``, ``duration_ms`` and the case (movement, vehicle) it is
    about: the one its path names, or the one its route found (a registration's new case,
    ``tracing.found_case``). The route's template, never the path or query, which may hold a
    document number (``/hold-list/{document_number}``); probes and scrapes are not logged.

    Installed outside the authentication, so a refused request is logged too, and inside the
    server span, so the line carries the request's trace id."""

    def __init__(self, app: ASGIApp, *, routes: Callable[[], Iterable[Any]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _QUIET.search(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            template, params = tracing.route_of(self.routes(), scope)
        except Exception:  # logging must not fail a request
            template, params = "", {}
        answer = Answered(send)
        with tracing.request_about(tracing.path_ref(params)) as request:
            try:
                await self.app(scope, receive, answer)
            finally:
                method, route, status = scope.get("method", ""), template or UNMATCHED, answer.status
                extra: dict[str, Any] = {
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                }
                if request.ref is not None:
                    extra |= {
                        name: value
                        for name, value in (
                            ("case_id", request.ref.case_id),
                            ("movement_id", request.ref.movement_id),
                            ("vehicle_id", request.ref.vehicle_id),
                        )
                        if value
                    }
                _requests.info("%s %s %s", method, route, status, extra=extra)
