"""Logging and OpenTelemetry tracing, configured once per process."""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

from corridor import tracing


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def otlp_configured(endpoint: str | None) -> bool:
    """An OTLP endpoint from the settings, or OpenTelemetry's own environment variables."""
    return bool(
        endpoint
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def setup_tracing(service: str, *, console: bool, otlp_endpoint: str | None = None) -> TracerProvider:
    """Spans to an OTLP endpoint (protobuf over HTTP; ``otlp_endpoint`` is the collector's base
    URL, e.g. ``http://127.0.0.1:4318``) and/or the console. With neither, nothing is recorded,
    but trace context still passes through (a ``traceparent`` received is forwarded)."""
    otlp = otlp_configured(otlp_endpoint)
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(tracing.NoOrphanQueries()) if otlp or console else ALWAYS_OFF,
    )
    provider.add_span_processor(tracing.CaseAttributes())
    if otlp:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=otlp_endpoint.rstrip("/") + "/v1/traces" if otlp_endpoint else None
        )
        provider.add_span_processor(BatchSpanProcessor(tracing.RedactingExporter(exporter)))
    if console:
        provider.add_span_processor(BatchSpanProcessor(tracing.RedactingExporter(ConsoleSpanExporter())))
    trace.set_tracer_provider(provider)
    if otlp or console:  # with tracing off, no query pays for a wrapper
        _instrument_queries(provider)
    return provider


def _instrument_queries(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor()  # one per process (a singleton); patches asyncpg itself
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


def instrument_http(app: Any, provider: TracerProvider) -> None:
    """A server span per request (not for health checks and scrapes, which would drown the rest),
    with the route template in place of the URL (``tracing.http_request_hook``)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    if provider.sampler is ALWAYS_OFF:
        # Tracing off: FastAPI's own telemetry (on whenever a tracer provider is set) still starts a
        # non-recording span a request, from a received traceparent or a new trace id, which each
        # request's log line carries (tests/integration/test_prometheus.py, test_personal_data.py).
        return
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=",".join(tracing.UNTRACED_URLS),
        exclude_spans=["receive", "send"],
        server_request_hook=tracing.http_request_hook(app),
    )
