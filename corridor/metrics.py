"""A service's figures in the Prometheus exposition format (``GET /metrics``).

What an operator watches on the day of a movement, and nothing about a person: every label takes
values from a bounded set (a route template, a status code, a consumer name, a case status), never
a case id, a name or a document.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any

import asyncpg
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from corridor import tracing

# The 0.0.4 text format Prometheus scrapes shows each counter's and histogram's creation time as a
# gauge series of its own: noise on every dashboard, and nothing an alert uses.
disable_created_metrics()

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

UNMATCHED = "unmatched"
"""The route label of a request no route matches (a 404, or a probe): one value, not its path."""


class ConsumerCounters(Collector):
    """Each consumer's records by outcome, read from the consumer when scraped (the counters live
    where they are counted, in ``corridor.consumer``)."""

    OUTCOMES = ("applied", "duplicates", "dead_lettered", "retried", "source_mismatches")

    def __init__(self, consumers: Callable[[], Iterable[Any]]) -> None:
        self._consumers = consumers

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "corridor_consumer_records",
            "Records each consumer took, by outcome: applied, duplicates (seen in the inbox), "
            "dead_lettered, retried (sent back to be read again), source_mismatches (forged origin)",
            labels=["consumer", "outcome"],
        )
        transactions = CounterMetricFamily(
            "corridor_consumer_transactions",
            "Database transactions each consumer opened to apply records (a batch's, or a record's "
            "alone); records applied per transaction is how well its batches form",
            labels=["consumer"],
        )
        for consumer in self._consumers():
            for outcome in self.OUTCOMES:
                family.add_metric([consumer.name, outcome], getattr(consumer, outcome))
            transactions.add_metric([consumer.name], consumer.transactions)
        yield family
        yield transactions


class ServiceMetrics:
    """One service instance's metrics, in a registry of its own (several services may share a
    process in tests)."""

    def __init__(self, consumers: Callable[[], Iterable[Any]]) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "corridor_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "corridor_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.outbox_pending = Gauge(
            "corridor_outbox_pending_events", "Events written and not yet published", registry=self.registry
        )
        self.outbox_oldest = Gauge(
            "corridor_outbox_oldest_pending_age_seconds",
            "Age of the oldest event not yet published (0 when none waits): a relay not draining",
            registry=self.registry,
        )
        self.outbox_published = Gauge(
            "corridor_outbox_published_events",
            "Events this process's relay published since it started",
            registry=self.registry,
        )
        self.outbox_publish_delay = Histogram(
            "corridor_outbox_publish_delay_seconds",
            "Time from an event's row being written to the broker acknowledging it",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
            registry=self.registry,
        )
        self.outbox_publish_duration = Histogram(
            "corridor_outbox_publish_batch_duration_seconds",
            "Time the relay took to publish one batch of rows and have every one acknowledged",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.cases = Gauge(
            "corridor_cases",
            "Cases by the public status this service last published or learnt for each",
            ["status"],
            registry=self.registry,
        )
        self.registry.register(ConsumerCounters(consumers))
        self.readers: list[Callable[[asyncpg.Connection], Awaitable[None]]] = []
        """A service's own figures, read from its database when scraped (``read``)."""

    def read(self, reader: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
        """Have ``reader`` set the service's own gauges (in ``registry``) at each scrape."""
        self.readers.append(reader)

    def relay_published(self, delays: Sequence[float], seconds: float) -> None:
        """The outbox relay's ``observe``: one acknowledged batch."""
        for delay in delays:
            self.outbox_publish_delay.observe(delay)
        self.outbox_publish_duration.observe(seconds)

    async def refresh(self, conn: asyncpg.Connection, published: int) -> None:
        """What is read from the database, read when scraped."""
        row = await conn.fetchrow(
            """SELECT count(*) AS pending,
                      coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest
               FROM outbox WHERE published_at IS NULL"""
        )
        assert row is not None
        self.outbox_pending.set(row["pending"])
        self.outbox_oldest.set(float(row["oldest"]))
        self.outbox_published.set(published)
        self.cases.clear()
        for r in await conn.fetch("SELECT status, count(*) AS n FROM case_status_known GROUP BY status"):
            self.cases.labels(status=r["status"]).set(r["n"])
        for reader in self.readers:
            await reader(conn)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class Answered:
    """An ASGI ``send`` that passes an answer on and notes its status: 500 until one starts (the
    application raised before answering)."""

    def __init__(self, send: Any) -> None:
        self.send = send
        self.status = 500

    async def __call__(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        await self.send(message)


class HttpMetrics:
    """ASGI middleware counting every answer (refusals by the authentication in front included) by
    its route's template, so the label set stays bounded whatever paths are asked for."""

    def __init__(self, app: Any, *, metrics: ServiceMetrics, routes: Callable[[], Iterable[Any]]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer = Answered(send)
        try:
            await self.app(scope, receive, answer)
        finally:
            route = self._template(scope)
            method = scope.get("method", "GET")
            self.metrics.http_requests.labels(method, route, str(answer.status)).inc()
            self.metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)

    def _template(self, scope: Any) -> str:
        """The template of the route that answered (set by routing), or of the one that would have
        (a request refused before routing); never the path itself. Counting must not fail a
        request: anything unexpected is ``UNMATCHED``."""
        answered = scope.get("route")
        if isinstance(getattr(answered, "path", None), str):
            return str(answered.path)
        try:
            return _match(self.routes(), scope) or UNMATCHED
        except Exception:
            return UNMATCHED


def _match(routes: Iterable[Any], scope: Any) -> str | None:
    return tracing.route_of(routes, scope)[0] or None
