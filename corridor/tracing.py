"""One case's journey as traces: case attributes on spans, per-record spans, links between traces.

Every span started while a case is in scope (``about_case``) carries ``corridor.case_id`` (and
``corridor.movement_id`` / ``corridor.vehicle_id`` where known), so a trace backend finds all of a
case's spans by that tag, in every service. The case in scope is this module's, and the one
``corridor.logs`` writes on each line: a span and a log line about the same work name the same case.
An HTTP request is about the case its path names; a request that creates its case (a registration)
names it once known (``found_case``), on its server span too. Trace context travels with each event (``traceparent``
in the record headers, written by the outbox), so a consumer's span continues its producer's trace.

A case's events are caused by several traces, though: the registration, then each HTTP command
(a departure, a clearance) starts a trace of its own. Each service remembers, per case, the span
where it first met the case (``trace_origins``); a later event it writes about the case links
(an OpenTelemetry span link) to that span, so from any command's trace the case's earlier ones are
one click away.

Spans never carry personal data: URLs are reduced to their route template, and exception messages
and error descriptions (which may quote a refused value) are dropped before export
(``RedactingExporter``); only the exception's type stays.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes
from starlette.routing import Match
from starlette.types import Scope

from contracts.base import Event
from contracts.envelope import CloudEvent, decode_headers
from corridor.redaction import described

CASE_ID = "corridor.case_id"
MOVEMENT_ID = "corridor.movement_id"
VEHICLE_ID = "corridor.vehicle_id"
CASE_COUNT = "corridor.case_count"

tracer = trace.get_tracer("corridor.tracing")


@dataclass(frozen=True)
class CaseRef:
    """What a span is about: one case, or a vehicle with several cases (``case_ids``)."""

    case_id: str | None = None
    movement_id: str | None = None
    vehicle_id: str | None = None
    case_ids: tuple[str, ...] = ()

    def attributes(self) -> dict[str, str | int]:
        attrs: dict[str, str | int] = {}
        if self.case_id:
            attrs[CASE_ID] = self.case_id
        if self.movement_id:
            attrs[MOVEMENT_ID] = self.movement_id
        if self.vehicle_id:
            attrs[VEHICLE_ID] = self.vehicle_id
        if len(self.case_ids) > 1:
            attrs[CASE_COUNT] = len(self.case_ids)
        return attrs


_REF_FIELDS = ("case_id", "movement_id", "vehicle_id", "case_ids", "passengers")


@functools.cache
def _ref_fields(cls: type) -> frozenset[str]:
    """Which of the attributes ``ref_of`` reads a type has. A pydantic model raises, slowly, for
    an attribute it lacks: asking every record's event for all five was a third of the time a
    consumer spent starting the record's span."""
    fields = getattr(cls, "model_fields", None)
    if fields is None:
        return frozenset(_REF_FIELDS)  # not a model: ``getattr`` with a default is cheap
    return frozenset(n for n in _REF_FIELDS if n in fields or hasattr(cls, n))


def ref_of(event: Event) -> CaseRef:
    """The case (or vehicle and its cases) an event is about, read from the contract's fields."""
    present = _ref_fields(type(event))

    def read(name: str) -> Any:
        return getattr(event, name, None) if name in present else None

    case_id = read("case_id")
    movement_id = read("movement_id")
    vehicle_id = read("vehicle_id")
    many: list[str] = [str(c) for c in read("case_ids") or ()]
    # A manifest lists its passengers, a case per person: the distinct cases, in order.
    many += [str(p.case_id) for p in read("passengers") or () if hasattr(p, "case_id")]
    cases = tuple(dict.fromkeys(many)) if case_id is None else (str(case_id),)
    return CaseRef(
        case_id=str(case_id) if case_id is not None else (cases[0] if len(cases) == 1 else None),
        movement_id=str(movement_id) if movement_id else None,
        vehicle_id=str(vehicle_id) if vehicle_id else None,
        case_ids=cases,
    )


def ref_of_key(key: str) -> CaseRef:
    """The case or vehicle a record key names (``contracts.topics``: a case id, or
    ``movement/vehicle``; a checkpoint's id names neither)."""
    if "/" in key:
        movement, _, vehicle = key.partition("/")
        return CaseRef(movement_id=movement, vehicle_id=vehicle)
    try:
        return CaseRef(case_id=str(uuid.UUID(key)), case_ids=(key,))
    except ValueError:
        return CaseRef()


_in_scope: contextvars.ContextVar[CaseRef | None] = contextvars.ContextVar("corridor_case", default=None)


@contextlib.contextmanager
def about_case(ref: CaseRef | None) -> Iterator[None]:
    """Every span started inside (queries included) carries ``ref``'s attributes, and every line
    logged inside its case id."""
    token = _in_scope.set(ref)
    try:
        yield
    finally:
        _in_scope.reset(token)


def case_in_scope() -> CaseRef | None:
    return _in_scope.get()


class RequestCase:
    """What one HTTP request is about, shared by its layers: the middleware around it makes one, the
    route may learn the case only as it runs (a registration creates it), and the request's log
    line, written by the middleware after the route returned, needs it. (A context variable set by
    the route does not reach back to the middleware's context.)"""

    __slots__ = ("ref", "span")

    def __init__(self, ref: CaseRef | None, span: trace.Span) -> None:
        self.ref = ref
        self.span = span


_request: contextvars.ContextVar[RequestCase | None] = contextvars.ContextVar(
    "corridor_request", default=None
)


@contextlib.contextmanager
def request_about(ref: CaseRef | None) -> Iterator[RequestCase]:
    """Around one HTTP request (inside its server span, if traced): ``ref`` (the case its path
    names, or None) in scope for everything the request runs."""
    request = RequestCase(ref, trace.get_current_span())
    token = _request.set(request)
    try:
        with about_case(ref):
            yield request
    finally:
        _request.reset(token)


def found_case(ref: CaseRef) -> None:
    """The request being handled turned out to be about ``ref`` (a registration has created its
    case): the spans and lines that follow name it, and so do the request's server span (a trace
    backend finds the registration by the case) and its log line."""
    _in_scope.set(ref)  # the rest of this task: the request's own context, reset with it
    request = _request.get()
    if request is None:
        return
    request.ref = ref
    if request.span.is_recording():
        request.span.set_attributes(ref.attributes())


class CaseAttributes(SpanProcessor):
    """Copies the case in scope onto each span as it starts."""

    def on_start(self, span: SdkSpan, parent_context: otel_context.Context | None = None) -> None:
        ref = _in_scope.get()
        if ref is not None:
            span.set_attributes(ref.attributes())


class NoOrphanQueries(Sampler):
    """Root sampler: a database query with no request or record around it (the relay's polling,
    migrations, periodic housekeeping) is not traced; everything else is. Used under ParentBased,
    so a query inside a traced request or record always is."""

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT and attributes and "db.system" in attributes:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "NoOrphanQueries"


_REDACTED_EVENT_ATTRIBUTES = ("exception.message", "exception.stacktrace")


class RedactingExporter(SpanExporter):
    """Wraps the real exporter: exception messages, stack traces (which end with the message) and
    error descriptions may quote what a request or record carried, so only the exception's type
    leaves the process."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([redacted(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def redacted(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    if status.description:
        # "ValueError: <message>" as the SDK writes it: keep the type.
        status = Status(status.status_code, status.description.split(":", 1)[0])
    events = [
        type(e)(
            e.name,
            {k: v for k, v in (e.attributes or {}).items() if k not in _REDACTED_EVENT_ATTRIBUTES},
            e.timestamp,
        )
        for e in span.events
    ]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


# --- HTTP ---------------------------------------------------------------------------------

_URL_ATTRIBUTES = ("http.target", "http.url", "url.full", "url.path", "url.query")
_PATH_REFS = ("case_id", "movement_id", "vehicle_id")
UNTRACED_URLS = ("/health/", "/metrics$", "/stats$", "/asyncapi")
"""Probes and scrapes (patterns searched in the URL): no span, no log line; they would drown the rest."""


def route_of(routes: Iterable[Any], scope: Scope) -> tuple[str, dict[str, Any]]:
    """The template of the route a request matches and its path parameters (``""`` and ``{}`` for
    none); kept in the request's scope, for the next layer that asks."""
    found = scope.get("corridor.route")
    if found is None:
        found = _match(routes, scope) or ("", {})
        scope["corridor.route"] = found
    return found  # type: ignore[no-any-return]


def _match(routes: Iterable[Any], scope: Scope) -> tuple[str, dict[str, Any]] | None:
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str) and hasattr(route, "matches"):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return path, child.get("path_params", {})
        else:
            # A router included as a whole: FastAPI's entry for it keeps the router's own routes
            # (whose paths are the whole paths: Corridor includes routers without a prefix).
            inner = getattr(route, "routes", None) or getattr(
                getattr(route, "original_router", None), "routes", None
            )
            found = _match(inner, scope) if inner else None
            if found is not None:
                return found
    return None


def path_ref(params: Mapping[str, Any]) -> CaseRef | None:
    """The case, movement or vehicle a request's path names, if any."""
    if not any(p in params for p in _PATH_REFS):
        return None
    return CaseRef(
        case_id=str(params["case_id"]) if "case_id" in params else None,
        movement_id=str(params["movement_id"]) if "movement_id" in params else None,
        vehicle_id=str(params["vehicle_id"]) if "vehicle_id" in params else None,
    )


def http_request_hook(app: Any) -> Any:
    """For the FastAPI instrumentation: the server span gets the route template instead of the
    path and query (a path or query may hold a document number), and the case, movement or
    vehicle the path names, in scope for the request's other spans too."""

    def hook(span: trace.Span, scope: Scope) -> None:
        if not span.is_recording():
            return
        template, params = route_of(app.router.routes, scope)
        existing = getattr(span, "attributes", None) or {}
        for name in _URL_ATTRIBUTES:
            if name in existing:
                span.set_attribute(name, template if name != "url.query" else "")
        ref = path_ref(params)
        if ref is not None:
            span.set_attributes(ref.attributes())
            # The request's task: set for what it runs next, gone with it.
            _in_scope.set(ref)

    return hook


# --- consumed records ---------------------------------------------------------------------


def _record_span(
    record: ConsumerRecord[Any, Any], event: CloudEvent, consumer: str
) -> tuple[CaseRef, trace.Span]:
    """A record's span (started, not current), continuing the trace of whoever wrote the record
    (its ``traceparent``), whatever span the consumer machinery has around it."""
    # Only the headers the propagator reads (traceparent, ...), not the record's ce_* headers.
    wanted = propagate.get_global_textmap().fields
    carrier = {k: v.decode(errors="replace") for k, v in decode_headers(record.headers) if k in wanted}
    written = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    around = trace.get_current_span()
    around_ctx = around.get_span_context()
    ref = ref_of(event.data)
    links: list[Link] = []
    parent: otel_context.Context | None = None
    if written.is_valid and not (around_ctx.is_valid and around_ctx.trace_id == written.trace_id):
        parent = trace.set_span_in_context(trace.NonRecordingSpan(written))
        if around_ctx.is_valid:
            links.append(Link(around_ctx))
    elif around_ctx.trace_id == written.trace_id and around.is_recording():
        around.set_attributes(ref.attributes())  # the record's own span (FastStream's)
    with about_case(ref):  # the span carries the case's attributes (``_CaseAttributes``)
        span = tracer.start_span(
            f"handle {event.type.rsplit('.', 2)[-2] if event.type.count('.') >= 2 else event.type}",
            context=parent,
            kind=SpanKind.CONSUMER if parent is not None else SpanKind.INTERNAL,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "messaging.consumer.group.name": consumer,
                "messaging.message.id": event.id,
                "cloudevents.event_type": event.type,
            },
        )
    return ref, span


@contextlib.asynccontextmanager
async def handling(
    conn: asyncpg.Connection, record: ConsumerRecord[Any, Any], event: CloudEvent, consumer: str
) -> AsyncIterator[None]:
    """One span per record handled, continuing the trace of whoever wrote the record (its
    ``traceparent``), whatever span the consumer machinery has around it (one per batch, or
    none); the cases it is about remember this span as where this service met them."""
    ref, span = _record_span(record, event, consumer)
    with (
        about_case(ref),
        trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False),
    ):
        if span.is_recording():
            await remember_origins(conn, ref.case_ids, span.get_span_context())
        try:
            yield
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, described(exc)))
            raise


class Handled:
    """One record of a set handled together: ``within()`` makes its span and case current again
    (for its log line), as ``handling`` does for a record handled alone."""

    def __init__(self, ref: CaseRef, span: trace.Span) -> None:
        self.ref = ref
        self.span = span

    @contextlib.contextmanager
    def within(self) -> Iterator[None]:
        with about_case(self.ref), trace.use_span(self.span, end_on_exit=False):
            yield


@contextlib.asynccontextmanager
async def handling_together(
    conn: asyncpg.Connection, items: Sequence[tuple[ConsumerRecord[Any, Any], CloudEvent]], consumer: str
) -> AsyncIterator[list[Handled]]:
    """``handling`` for records one set-based use case applies together: each keeps its own span
    in its writer's trace (they begin and end together, with the same outcome), and its cases
    remember it as where this service met them."""
    handled = [Handled(*_record_span(record, event, consumer)) for record, event in items]
    try:
        for h in handled:
            if h.span.is_recording():
                await remember_origins(conn, h.ref.case_ids, h.span.get_span_context())
        yield handled
    except BaseException as exc:
        for h in handled:
            h.span.set_status(Status(StatusCode.ERROR, described(exc)))
        raise
    finally:
        for h in handled:
            h.span.end()


# --- where a service met a case, and links to it ------------------------------------------


def _traceparent(ctx: trace.SpanContext) -> str:
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def _context(traceparent: str) -> trace.SpanContext | None:
    span = trace.get_current_span(propagate.extract({"traceparent": traceparent}))
    ctx = span.get_span_context()
    return ctx if ctx.is_valid else None


async def remember_origins(
    conn: asyncpg.Connection, case_ids: Sequence[str], here: trace.SpanContext
) -> dict[str, trace.SpanContext]:
    """Record ``here`` as where this service met each case it did not know yet; return the
    earlier meeting of each case it knew. One round trip, in the caller's transaction."""
    if not case_ids or not here.is_valid:
        return {}
    rows = await conn.fetch(
        # The SELECT reads the rows as they were before this statement: the earlier origins only.
        """WITH noted AS (
               INSERT INTO trace_origins (case_id, traceparent)
               SELECT unnest($1::text[]), $2 ON CONFLICT (case_id) DO NOTHING RETURNING 1)
           SELECT case_id, traceparent FROM trace_origins WHERE case_id = ANY($1::text[])""",
        list(case_ids),
        _traceparent(here),
    )
    found = {r["case_id"]: _context(r["traceparent"]) for r in rows}
    return {k: v for k, v in found.items() if v is not None}


@contextlib.asynccontextmanager
async def writing(conn: asyncpg.Connection, event: Event, topic: str) -> AsyncIterator[None]:
    """A span around writing one event to the outbox, about the event's case: the ``traceparent``
    the outbox stores is this span's. If the service met the case in another trace, the span links
    to it (so an HTTP command's trace leads back to the case's earlier ones)."""
    ref = ref_of(event)
    with (
        about_case(ref),
        tracer.start_as_current_span(
            f"write {topic}",
            kind=SpanKind.INTERNAL,
            attributes={"messaging.destination.name": topic, "cloudevents.event_type": event.event_type},
        ) as span,
    ):
        if span.is_recording() and ref.case_ids:
            here = span.get_span_context()
            for case_id, origin in (await remember_origins(conn, ref.case_ids, here)).items():
                if origin.trace_id != here.trace_id:
                    span.add_link(origin, {CASE_ID: case_id})
        yield


@functools.lru_cache(maxsize=65_536)
def relay_attributes(key: str) -> Mapping[str, str | int]:
    """The attributes of the relay's span for a record of ``key`` (read only: shared between calls,
    as a case's key recurs in every event of its journey)."""
    return MappingProxyType(dict(ref_of_key(key).attributes()))
