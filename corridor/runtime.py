"""The process shape every service shares: HTTP API, Kafka consumers, outbox relay, health.

A service builds a ``ServiceRuntime``, registers its consumers and routes, and calls ``run()``.
Start order matters: the database and its migrations first, then the producer and relay, then
the consumers, so no record is taken before the service can apply it. A process started with
``CORRIDOR_BACKGROUND=false`` answers HTTP only: what it writes to the outbox is published by the
relay of another process of the same service (the outbox is in their shared database).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from pydantic import BaseModel, Field

from contracts.base import Event
from contracts.envelope import CloudEvent, mission_source
from contracts.routes import RouteBook
from corridor import auth, db, idempotency, problems
from corridor.apidocs import offline_app
from corridor.asyncapi import declare_publication, mount_asyncapi
from corridor.consumer import TRANSIENT_ERRORS, BatchLock, EventConsumer, Handler, SetHandler
from corridor.consumerlag import ConsumerLag
from corridor.errors import DomainError, Invalid
from corridor.http import http_server
from corridor.inbox import InboxPruner
from corridor.kafkaclient import KafkaAccess
from corridor.logs import RequestLog, setup_logging
from corridor.metrics import CONTENT_TYPE, HttpMetrics, ServiceMetrics
from corridor.outbox import OutboxRelay, make_producer, pending_count
from corridor.redaction import RedactedServerErrors, described
from corridor.settings import ServiceSettings
from corridor.telemetry import instrument_http, setup_tracing
from corridor.uow import StoreT, UnitOfWork, unit_of_work_factory

log = logging.getLogger(__name__)

UseCase = Callable[[Any, UnitOfWork[StoreT]], Awaitable[Any]]
"""A use case for an event: (the event's data, a unit of work)."""

SetUseCase = Callable[[Sequence[CloudEvent], UnitOfWork[StoreT]], Awaitable[Any]]
"""A use case for many events of one type at once: (their envelopes, in order, with the data typed;
a unit of work). It must leave what applying them one after the other would (``SetHandler``)."""


def with_context(table: Mapping[type[Event], Callable[..., Any]], **context: Any) -> dict[type[Event], Any]:
    """A service's table of use cases with its context given to each, as a consumer calls them.
    Each distinct use case is bound once: the types one set use case serves share one callable,
    so a consumer makes one run of their consecutive records (``subscribe``'s ``in_sets``)."""
    bound = {id(use_case): partial(use_case, **context) for use_case in table.values()}
    return {event: bound[id(use_case)] for event, use_case in table.items()}


class Liveness(BaseModel):
    status: Literal["live"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, bool] = Field(
        description="database, relay (where this process runs it), kafka: each true when reachable"
    )


class ConsumerStats(BaseModel):
    applied: int
    duplicates: int = Field(description="Deliveries recognised in the inbox and skipped")
    dead_lettered: int
    transactions: int = Field(
        description="Database transactions opened to apply records (a batch's, or a record's alone)"
    )


class Stats(BaseModel):
    instance: str
    outbox_pending: int = Field(description="Events written and not yet published")
    outbox_published: int
    relay_leader: bool = Field(description="Whether this process's relay is the one publishing")
    consumers: dict[str, ConsumerStats]


class ServiceRuntime:
    def __init__(
        self,
        service: str,
        settings: ServiceSettings,
        *,
        migrations: Path,
        instance: str | None = None,
        title: str,
        checkpoint: str | None = None,
    ) -> None:
        self.service = service
        self.instance = instance or service
        self.settings = settings
        self.migrations = migrations
        self.source = mission_source(settings.mission, service)
        self.routes = RouteBook.load(settings.routes_file)
        self.kafka = settings.kafka_access()
        setup_logging(settings.log_level, service=service, instance=self.instance, levels=settings.log_levels)
        self.tracer_provider = setup_tracing(
            self.instance, console=settings.trace_console, otlp_endpoint=settings.otlp_endpoint
        )
        self.broker = KafkaBroker(
            # FastStream takes a list; a comma-separated string would be read as one host.
            self.kafka.servers,
            # Without credentials (built offline for the AsyncAPI documents) start() refuses to run.
            security=self.kafka.faststream_security() if self.kafka.username else None,
            client_id=self.instance,
            enable_idempotence=True,
            acks="all",
            graceful_timeout=20.0,
            # Topics are the admin step's (a service may not create them): without this, every
            # subscriber tries at start and logs each refusal as a failure.
            allow_auto_create_topics=False,
            middlewares=[KafkaTelemetryMiddleware(tracer_provider=self.tracer_provider)],
            # Ours, not the one FastStream would make (its own handler, with colour codes).
            logger=logging.getLogger("corridor.broker"),
        )
        self.consumers: list[EventConsumer] = []
        self.produced_topics: set[str] = set()
        self._periodic: list[tuple[str, float, Callable[[], Awaitable[Any]]]] = []
        self._periodic_tasks: list[asyncio.Task[None]] = []
        self._pool: asyncpg.Pool | None = None
        self._producer: AIOKafkaProducer | None = None
        self.relay: OutboxRelay | None = None
        self.http = offline_app(title=title, lifespan=self._lifespan)
        self.http.add_middleware(RedactedServerErrors)  # logs never quote what a request carried
        # Health checks are public: orchestrators and load balancers probe them without a token,
        # and they answer nothing but up/down.
        self.http.add_api_route(
            "/health/live",
            self._live,
            methods=["GET"],
            tags=["health"],
            response_model=Liveness,
            openapi_extra=auth.PUBLIC,
        )
        self.http.add_api_route(
            "/health/ready",
            self._ready,
            methods=["GET"],
            tags=["health"],
            response_model=Readiness,
            responses={503: {"model": Readiness, "description": "Not ready: the failing checks say why"}},
            openapi_extra=auth.PUBLIC,
        )
        # Figures of the service's own machinery (no personal data), for whoever watches operations.
        self.http.add_api_route(
            "/stats",
            self._stats,
            methods=["GET"],
            tags=["health"],
            response_model=Stats,
            dependencies=[Depends(auth.allow(auth.Role.OPERATIONS_VIEWER, auth.Role.SUPERVISOR))],
        )
        self.metrics = ServiceMetrics(lambda: self.consumers)
        self.lag = ConsumerLag(self.kafka, lambda: self.consumers, self.metrics.registry)
        self.every(settings.lag_refresh_seconds, self.lag.refresh, name="consumer lag")
        self.inbox = InboxPruner(
            lambda: self.pool,
            self.kafka,
            lambda: self.consumers,
            keep_at_least=timedelta(seconds=settings.inbox_keep_seconds),
            registry=self.metrics.registry,
        )
        self.every(settings.inbox_prune_seconds, self.inbox.run, name="inbox pruning")
        self.http.add_api_route(
            "/metrics",
            self._metrics,
            methods=["GET"],
            tags=["health"],
            response_class=Response,
            responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus exposition format"}},
            dependencies=[Depends(auth.allow(auth.Role.OPERATIONS_VIEWER, auth.Role.SUPERVISOR))],
        )
        mount_asyncapi(self)  # GET /asyncapi.json, /asyncapi.yaml
        # Answers kept for Idempotency-Key repeats (corridor.idempotency) are dropped once expired.
        self.every(idempotency.SWEEP_SECONDS, lambda: idempotency.sweep(self.pool), name="idempotency-sweep")
        for error in TRANSIENT_ERRORS:
            self.http.add_exception_handler(error, self._unavailable)
        self.http.add_exception_handler(DomainError, _domain_error)
        self.http.add_exception_handler(asyncpg.DataError, _unstorable_value)
        self.http.add_exception_handler(asyncpg.ProgramLimitExceededError, _unstorable_value)
        self.body_limits: dict[str, int] = {}
        self.http.add_exception_handler(BodyTooLarge, _body_too_large)
        self.http.add_middleware(BodyLimit, default=settings.http_body_limit_bytes, limits=self.body_limits)
        self._verifier: auth.TokenVerifier | None = None
        try:
            self._verifier = auth.TokenVerifier.from_settings(settings)
        except auth.AuthNotConfigured as exc:
            # Built without an identity provider (the offline AsyncAPI export does): every route
            # but the health checks answers 401, and start() refuses to run.
            self._auth_problem: str | None = str(exc)
        else:
            self._auth_problem = None
        # Added last, so outermost: a request is authenticated before anything reads it.
        auth.install(
            self.http,
            scope=auth.ServiceScope(settings.mission, checkpoint),
            verifier=lambda: self._verifier,
        )
        # After the rules: the statuses an operation answers follow from them (corridor.problems).
        problems.install(self.http, body_limit=True)
        # A line per request, naming its case; inside the server span (its trace id on the line).
        self.http.add_middleware(RequestLog, routes=lambda: self.http.routes)
        # Outermost of all: every answer is counted, refusals of the authentication included.
        self.http.add_middleware(HttpMetrics, metrics=self.metrics, routes=lambda: self.http.routes)
        instrument_http(self.http, self.tracer_provider)  # a server span around all of the above

    def allow_body(self, path: str, limit: int) -> None:
        """Let ``path`` take bodies up to ``limit`` bytes (files), instead of the settings' limit."""
        self.body_limits[path] = limit

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("service not started")
        return self._pool

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("service not started")
        return self._producer

    def consume(
        self,
        *topics: str,
        handlers: dict[type[Event], Handler],
        name: str | None = None,
        lock_batch: BatchLock | None = None,
        set_handlers: dict[type[Event], SetHandler] | None = None,
        read_model: bool = False,
    ) -> EventConsumer:
        """``read_model``: a consumer nobody waits on and nothing decides from (a projection such
        as the statistics): its fetches gather records for ``read_model_gather_ms``."""
        consumer = EventConsumer(
            name=name or self.instance,
            topics=topics,
            handlers=handlers,
            pool=lambda: self.pool,
            producer=lambda: self.producer,
            backoff_max_seconds=self.settings.retry_backoff_max_seconds,
            max_attempts=self.settings.max_handler_attempts,
            checkpoint_country=self.routes.country_of,
            batch_size=self.settings.consumer_batch_size,
            commit_interval_seconds=self.settings.consumer_commit_interval_seconds,
            gather_ms=self.settings.read_model_gather_ms if read_model else 0,
            lock_batch=lock_batch,
            set_handlers=set_handlers,
        )
        consumer.register(self.broker)
        declare_publication(self.broker, consumer.dead_letter_topic)
        self.consumers.append(consumer)
        return consumer

    def units(self, store: Callable[[asyncpg.Connection], StoreT]) -> Callable[[], Any]:
        """``async with rt.units(Store)() as uow``: a transaction on a pooled connection, with the
        service's store and outbox (``corridor.uow``); committed when the block ends."""
        return unit_of_work_factory(lambda: self.pool, store, source=self.source)

    def subscribe(
        self,
        *topics: str,
        handlers: Mapping[type[Event], UseCase[StoreT]],
        store: Callable[[asyncpg.Connection], StoreT],
        name: str | None = None,
        lock_batch: Callable[[StoreT, Sequence[Event]], Awaitable[None]] | None = None,
        in_sets: Mapping[type[Event], SetUseCase[StoreT]] | None = None,
        read_model: bool = False,
    ) -> EventConsumer:
        """Consume ``topics`` and hand each event's data, typed, to its use case with a unit of
        work in the consumer's transaction (the one that records the event in the inbox).
        ``lock_batch(store, events)`` takes a batch's locks before any of its events is applied.
        ``in_sets``: event types whose records are applied many at once by a set use case.
        ``read_model``: as in ``consume``."""

        def adapt(use_case: UseCase[StoreT]) -> Handler:
            async def handle(conn: asyncpg.Connection, envelope: CloudEvent) -> None:
                await use_case(
                    envelope.data, UnitOfWork(conn, store(conn), source=self.source, cause=envelope)
                )

            return handle

        def adapt_set(use_case: SetUseCase[StoreT]) -> SetHandler:
            async def handle(conn: asyncpg.Connection, envelopes: Sequence[CloudEvent]) -> None:
                await use_case(envelopes, UnitOfWork(conn, store(conn), source=self.source))

            return handle

        # One handler per use case, so that the types one set use case serves make a single run.
        set_adapted: dict[int, SetHandler] = {}
        for use_case in (in_sets or {}).values():
            set_adapted.setdefault(id(use_case), adapt_set(use_case))

        async def lock(conn: asyncpg.Connection, envelopes: Sequence[CloudEvent]) -> None:
            assert lock_batch is not None
            await lock_batch(store(conn), [e.data for e in envelopes])

        return self.consume(
            *topics,
            handlers={t: adapt(u) for t, u in handlers.items()},
            name=name,
            lock_batch=lock if lock_batch is not None else None,
            set_handlers={t: set_adapted[id(u)] for t, u in (in_sets or {}).items()},
            read_model=read_model,
        )

    def produces(self, *topics: str) -> None:
        """Declare the topics this service publishes to (through its outbox relay).

        Each is also declared to FastStream as a documentation-only publisher, never used to
        publish, so that the AsyncAPI document lists it with the events the contract puts on it.
        """
        self.produced_topics.update(topics)
        for topic in topics:
            declare_publication(self.broker, topic)

    def every(self, seconds: float, job: Callable[[], Awaitable[Any]], *, name: str) -> None:
        """Run ``job`` every ``seconds`` while the service runs (first after ``seconds``). A failed
        run is logged and the next one comes as usual: housekeeping must not stop the service."""
        self._periodic.append((name, seconds, job))

    async def _repeat(self, name: str, seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception as exc:
                log.error("%s failed (%s); next run in %.0f s", name, type(exc).__name__, seconds)

    async def start(self) -> None:
        s = self.settings
        dsn = s.database_dsn()
        if self._verifier is None:
            raise auth.AuthNotConfigured(f"{self.instance} will not start: {self._auth_problem}")
        self._verifier.check()
        if self.kafka.uses_sasl and not (self.kafka.username and self.kafka.password):
            raise RuntimeError(
                f"{self.instance}: Kafka {self.kafka.security_protocol} needs CORRIDOR_KAFKA_USERNAME and "
                "CORRIDOR_KAFKA_PASSWORD (or CORRIDOR_KAFKA_PASSWORD_FILE)"
            )
        if s.create_database:
            await db.ensure_database(dsn)
        self._pool = await db.create_pool(dsn)
        await db.migrate(self._pool, "corridor", db.SHARED_MIGRATIONS)
        await db.migrate(self._pool, self.service, self.migrations)
        # Topics, with their ACLs and retention, are the admin step's (opstools.kafkaadmin): a
        # service may not create any, and starting without one it needs would only fail later.
        await verify_topics(self.kafka, self._all_topics())
        self._producer = make_producer(self.kafka, client_id=f"{self.instance}-relay")
        await self._producer.start()
        if not s.background:
            log.info("%s started for HTTP only (source %s)", self.instance, self.source)
            return
        self.relay = OutboxRelay(
            dsn,
            self._producer,
            poll_seconds=s.outbox_poll_seconds,
            retention_seconds=s.outbox_retention_seconds,
            backoff_max_seconds=s.retry_backoff_max_seconds,
            observe=self.metrics.relay_published,
        )
        self.relay.start()
        await self.broker.start()
        self._periodic_tasks = [
            asyncio.create_task(self._repeat(name, seconds, job), name=name)
            for name, seconds, job in self._periodic
        ]
        log.info("%s started (source %s)", self.instance, self.source)

    async def stop(self) -> None:
        # Consumers first: in-flight handlers finish (graceful_timeout) and nothing new is taken;
        # then the relay drains what they wrote.
        for task in self._periodic_tasks:
            task.cancel()
        await asyncio.gather(*self._periodic_tasks, return_exceptions=True)
        await self.lag.close()
        if self.settings.background:
            await asyncio.gather(*(c.stop_soon() for c in self.consumers))
            await self.broker.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self._producer is not None:
            await self._producer.stop()
        if self._pool is not None:
            await self._pool.close()
        self.tracer_provider.shutdown()
        log.info("%s stopped", self.instance)

    def _all_topics(self) -> set[str]:
        names = set(self.produced_topics)
        for consumer in self.consumers:
            names.update(consumer.topics)
            names.add(consumer.dead_letter_topic)
        return names

    @asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def _unavailable(self, request: Request, exc: Exception) -> Response:
        # A database restart or a dropped connection: the client should retry, not give up.
        instance = problems.occurrence()  # what the caller may quote, found in this line
        log.warning("%s %s: %r (%s)", request.method, request.url.path, exc, instance)
        return problems.response(
            503,
            "unavailable",
            f"temporarily unavailable ({type(exc).__name__}); retry",
            instance=instance,
            headers={"Retry-After": "1"},
        )

    async def _live(self) -> Liveness:
        return Liveness(status="live")

    async def _ready(self, request: Request) -> JSONResponse:
        checks: dict[str, bool] = {}
        try:
            async with self.pool.acquire(timeout=2) as conn:
                checks["database"] = await conn.fetchval("SELECT true")
        except Exception:
            checks["database"] = False
        if self.settings.background:
            checks["relay"] = self.relay is not None and self.relay.alive
        try:
            if self.settings.background:
                checks["kafka"] = await self.broker.ping(timeout=2.0)
            else:  # no consumer here: the producer (dead letters, the DLT replay) must reach Kafka
                assert self._producer is not None
                await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2.0)
                checks["kafka"] = True
        except Exception:
            checks["kafka"] = False
        ready = all(checks.values())
        body = Readiness(status="ready" if ready else "not_ready", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    async def _metrics(self) -> Response:
        async with self.pool.acquire() as conn:
            await self.metrics.refresh(conn, self.relay.published if self.relay else 0)
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE)

    async def _stats(self) -> Stats:
        async with self.pool.acquire() as conn:
            pending = await pending_count(conn)
        return Stats(
            instance=self.instance,
            outbox_pending=pending,
            outbox_published=self.relay.published if self.relay else 0,
            relay_leader=bool(self.relay and self.relay.is_leader),
            consumers={
                c.name: ConsumerStats(
                    applied=c.applied,
                    duplicates=c.duplicates,
                    dead_lettered=c.dead_lettered,
                    transactions=c.transactions,
                )
                for c in self.consumers
            },
        )

    def run(self) -> None:
        server = http_server(self.http, self.settings, graceful_shutdown_seconds=25)
        collect_garbage_rarely()
        asyncio.run(server.serve())


GC_THRESHOLDS = (50_000, 20, 20)
"""Allocations of container objects between collections of the youngest generation, and how many
collections of each before one of the next (CPython's default: 700, 10, 10)."""


def collect_garbage_rarely() -> None:
    """Keep the cycle collector off the hot paths. With CPython's defaults it ran every 700 new
    objects, and every few of those scanned what a batch or a request had built so far: on a bulk
    import more than half of the import's own CPU (275 µs a row, 146 without the collector, 162
    with these thresholds: ``bench/RESULTS.md``). Objects are freed by reference counting as they
    were; only garbage in cycles waits longer. What is loaded at start (modules, the app) is frozen
    out of every collection first: it lives as long as the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _domain_error(request: Request, exc: Exception) -> Response:
    """A use case's refusal as a problem: its class's code (or the one its detail names), its
    text, and for an ``Invalid`` the field at fault."""
    assert isinstance(exc, DomainError)
    if isinstance(exc, Invalid):
        return problems.invalid_request(
            [{"loc": list(exc.loc), "msg": exc.msg, "type": "value_error"}], code=exc.code
        )
    detail = jsonable_encoder(exc.detail)
    if isinstance(detail, dict):
        extensions = {k: v for k, v in detail.items() if k not in ("code", "message")}
        code = detail.get("code", exc.code)
        text = str(detail.get("message", code))
        return problems.response(exc.status_code, code, text, **extensions)
    return problems.response(exc.status_code, exc.code, str(detail))


async def _unstorable_value(request: Request, exc: Exception) -> Response:
    """A value PostgreSQL refuses (a NUL character, an unpaired surrogate, a number or a date out of
    its range, a key too long to index) is bad input, not a server fault: 422 in the shape of a
    validation error."""
    # PostgreSQL's text may quote the value (a name with a NUL): the caller gets it, the log does not.
    log.warning("%s %r: value refused by the database: %s", request.method, request.url.path, described(exc))
    error = {"loc": ["request"], "msg": f"value cannot be stored: {str(exc)[:300]}", "type": "value_error"}
    return problems.invalid_request([error], code="unstorable_value")


class BodyTooLarge(HTTPException):
    """Raised while a body is read past its limit: an HTTPException, so FastAPI's body parsing
    passes it on (it turns other errors into a 400) to the handler that answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413)
        self.limit = limit


class BodyLimit:
    """Every request body has a limit (``http_body_limit_bytes``; a route taking files has its own,
    ``ServiceRuntime.allow_body``). A declared ``Content-Length`` over it is answered 413 before
    anything is read; a body sent without one (chunked) is counted as it arrives and refused the
    moment it passes the limit. Starlette itself has no limit."""

    def __init__(self, app: Any, *, default: int, limits: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.limits = limits

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(scope, send, limit)
            return
        received = 0
        started = False

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await _too_large(scope, send, limit)


def _too_large_detail(limit: int) -> str:
    size = f"{limit // 2**20} MB" if limit >= 2**20 else f"{limit // 1024} KB"
    return f"a request body here is at most {size}"


async def _too_large(scope: Any, send: Any, limit: int) -> None:
    await problems.send(scope, send, 413, "too_large", _too_large_detail(limit))


async def _body_too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    return problems.response(413, "too_large", _too_large_detail(exc.limit))


class MissingTopics(RuntimeError):
    """Topics a service needs that do not exist (or that its principal may not describe)."""


async def verify_topics(access: KafkaAccess, names: Iterable[str], timeout: float = 30.0) -> None:
    """Fail unless every topic exists and this principal may describe it.

    Waits a little: the admin step may have created a topic that has not reached every broker's
    metadata yet, or a broker of several may be down (a service restarted during a broker's
    restart): the request went to it, and the next goes to a broker picked again."""
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                visible = set(await admin.list_topics())
            except KafkaError as exc:
                if not exc.retriable or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
                continue
            missing = sorted(set(names) - visible)
            if not missing:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise MissingTopics(
                    f"topics missing or not visible to principal {access.username!r}: {', '.join(missing)}; "
                    "run the admin step (python -m opstools.kafkaadmin apply) first"
                )
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def ensure_topics(access: KafkaAccess, names: Iterable[str], partitions: int, replication: int) -> None:
    """Create topics (needs a principal allowed to: the admin step, tests' scratch topics)."""
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=partitions, replication_factor=replication)
            for name in sorted(set(names) - existing)
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
