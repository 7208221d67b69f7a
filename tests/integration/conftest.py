"""One real platform per test session: Kafka (KRaft) and PostgreSQL started from the project's
own files, every service as its own process.

``running_platform`` and ``following`` are how any test module gets a platform and its status
stream: the session's ``stack`` and ``stream`` here, a module's own where it needs another shape
(the fault injection's three-broker cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from contracts.routes import Route, RouteBook
from corridor import db
from corridor.kafkaclient import KafkaAccess
from corridor.kafkatools import partitions_of
from corridor.uow import unit_of_work_factory
from devkit import scenario
from devkit.devstack import DEFAULT_ROUTES, Stack
from opstools.statusreader import StatusStream
from services.intake import app as intake_app
from services.intake.store import IntakeStore
from tests.problemcheck import DocumentedAnswers, documents_by_port

_dates = itertools.count(30)

# A case's whole journey on the route the tests use (the deployment's first), as the status stream
# shows it.
JOURNEY = scenario.journey(RouteBook.load(DEFAULT_ROUTES).routes[0])


@contextlib.contextmanager
def running_platform(workdir: Path, **options: Any) -> Iterator[Stack]:
    """PostgreSQL, Kafka and every service started in ``workdir`` (``options`` go to ``Stack``:
    ``kafka_nodes``, ``log_level`` ...); everything stopped at the end, whatever happened."""
    platform = Stack(workdir, **options)
    try:
        platform.start_infra()
        platform.start_services()
        yield platform
    finally:
        platform.stop()


@contextlib.asynccontextmanager
async def following(stack: Stack) -> AsyncIterator[StatusStream]:
    """The platform's public status stream, read from the beginning."""
    reader = StatusStream(stack.kafka_access("operations"))
    await reader.start()
    try:
        yield reader
    finally:
        await reader.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory is an integration test (it needs real Kafka and PostgreSQL),
    so ``-m "not integration"`` runs the fast ones and starts no server."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)
    # The bad-input tests write junk onto the shared platform on purpose (any valid date, NULs,
    # forged sources): they run last, so tests comparing platform-wide figures (the operations
    # page, reporting, Prometheus) compare what the platform did, not what fuzzing left behind.
    items.sort(key=lambda item: item.path.name.startswith("test_bad_input"))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # A line per event applied (DEBUG by default): the operations test follows a case through the
    # services' logs, as an operator raising that logger would.
    applied = {"CORRIDOR_LOG_LEVELS": json.dumps({"corridor.applied": "DEBUG"})}
    # Inbox pruning runs hourly; here every 30 s, so that a test sees it run in every service,
    # under the platform's ACLs (test_inbox_pruning). It prunes nothing younger than a week. A run
    # costs about 50 ms of CPU (the broker's and the service's: a SCRAM login, DescribeConfigs).
    applied["CORRIDOR_INBOX_PRUNE_SECONDS"] = "30"
    with running_platform(tmp_path_factory.mktemp("platform"), extra_env=applied) as platform:
        yield platform


@pytest.fixture(scope="session")
def route(stack: Stack) -> Route:
    return RouteBook.load(stack.routes_file).routes[0]


@pytest.fixture(scope="session")
async def stream(stack: Stack) -> AsyncIterator[StatusStream]:
    """The public status stream from the beginning. When the session ends, every case's stream
    must be a legal sequence and no service may have held back an illegal change (each is a bug)."""
    async with following(stack) as reader:
        yield reader
        # The positive signal before "no illegal stream": every running service has published all it
        # committed, and the reader has read all of it (not a fixed sleep that hopes so).
        running = [n for n in stack.specs if n in stack.processes and stack.processes[n].poll() is None]
        async with httpx.AsyncClient(timeout=15.0, auth=stack.role_auth()) as client:
            await settled(stack, reader, client, *running)
    illegal = reader.illegal(registered=await registered_by_intake(stack))
    assert not illegal, (
        f"{len(illegal)} case(s) with an illegal status stream, e.g. {list(illegal.items())[:5]}"
    )
    held_back = await illegal_changes_held_back(stack)
    assert not held_back, f"services refused to publish illegal status changes (bugs): {held_back}"


async def registered_by_intake(stack: Stack) -> set[uuid.UUID]:
    conn = await asyncpg.connect(stack.postgres.dsn(stack.specs["intake"].database))
    try:
        return {r["case_id"] for r in await conn.fetch("SELECT case_id FROM cases")}
    finally:
        await conn.close()


async def illegal_changes_held_back(stack: Stack) -> dict[str, list[str]]:
    """Per service, the status changes it was about to publish and did not (illegal)."""
    found: dict[str, list[str]] = {}
    for spec in stack.specs.values():
        conn = await asyncpg.connect(stack.postgres.dsn(spec.database))
        try:
            rows = await conn.fetch(
                "SELECT case_id, from_status, to_status FROM illegal_status_changes ORDER BY id LIMIT 20"
            )
        finally:
            await conn.close()
        if rows:
            found[spec.name] = [f"{r['case_id']}: {r['from_status']} -> {r['to_status']}" for r in rows]
    return found


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the session's platform that acts, per request, in the first role the route
    admits (read from the service's OpenAPI document: ``devkit.devidp.RoleAuth``), in that
    service's mission and checkpoint. Functional tests prove what an allowed caller can do; that
    every other caller is refused is proven once, for every route, by test_http_authorisation.
    A request that sends its own ``Authorization`` header (a test that needs a particular actor
    or role) is left as it is. Every answer is checked against the route's OpenAPI document
    (``tests.problemcheck.DocumentedAnswers``): a status it does not list fails the test that met it."""
    documents = documents_by_port({spec.port: spec.url for spec in stack.specs.values()})
    async with httpx.AsyncClient(timeout=15.0, auth=DocumentedAnswers(stack.role_auth(), documents)) as c:
        yield c


# The days a health check taken now still counts for (72 h before the travel day starts): only
# three, so each belongs to one test, said here, and no two tests plan on the same day.
NEAR_DAYS = {"bulk import": 1, "december": 2, "personal data": 3}


def near_day(owner: str) -> date:
    """Eligibility's windows are in UTC days, so the near days are counted from today in UTC."""
    return datetime.now(UTC).date() + timedelta(days=NEAR_DAYS[owner])


def checked_recently() -> datetime:
    """When a health check counted for every near day was taken: an hour ago, but never before
    today's UTC midnight, where the third day's 72 h window opens. A fresh clone's CI ran the
    personal-data test at 00:2x UTC once and its "hour ago" check fell on the day before."""
    now = datetime.now(UTC)
    return max(now - timedelta(hours=1), datetime.combine(now.date(), time.min, tzinfo=UTC))


@pytest.fixture
def travel_date() -> date:
    """A travel date of this test's own: planning takes every ready case of a date."""
    return date.today() + timedelta(days=next(_dates))


async def wait_group_caught_up(access: KafkaAccess, group: str, topic: str, timeout: float = 30.0) -> None:
    """Wait until ``group`` has committed every record currently on ``topic`` (``access``: a principal
    that may describe the group and the topic, e.g. operations)."""
    admin = AIOKafkaAdminClient(**access.aiokafka())
    probe = AIOKafkaConsumer(**access.aiokafka())
    partitions = await partitions_of(access, topic)
    await admin.start()
    await probe.start()
    try:
        ends = await probe.end_offsets(partitions)
        async with asyncio.timeout(timeout):
            while True:
                committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
                if all(tp in committed and committed[tp].offset >= end for tp, end in ends.items()):
                    return
                await asyncio.sleep(0.2)
    finally:
        await probe.stop()
        await admin.close()


async def settled(stack: Stack, stream: StatusStream, client: httpx.AsyncClient, *services: str) -> None:
    """The positive signal before asserting that something did not happen: each of ``services`` has
    published everything it committed (its outbox is empty), and ``stream`` has read all of it."""
    async with asyncio.timeout(30):
        for name in services:
            while (await client.get(stack.url(name) + "/stats")).json()["outbox_pending"]:
                await asyncio.sleep(0.1)
    await stream.caught_up()


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def fresh_database(
    stack: Stack, service: str | None = None, migrations: Path | None = None
) -> AsyncIterator[asyncpg.Pool]:
    """A new database of the session's PostgreSQL with the shared messaging tables and, given a
    service, its own: for a use case or a statement examined on its own."""
    dsn = stack.postgres.dsn(f"{service or 'corridor'}_{uuid.uuid4().hex[:8]}")
    await db.ensure_database(dsn)
    pool = await db.create_pool(dsn, max_size=4)
    try:
        await db.migrate(pool, "corridor", db.SHARED_MIGRATIONS)
        if service is not None and migrations is not None:
            await db.migrate(pool, service, migrations)
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def intake_units(stack: Stack) -> AsyncIterator[tuple[asyncpg.Pool, Any]]:
    """Intake's store and outbox on a fresh database (the pool, and units of work on it)."""
    async with fresh_database(stack, "intake", intake_app.MIGRATIONS) as pool:
        yield pool, unit_of_work_factory(lambda: pool, IntakeStore, source="/missions/KAZ/intake")


def rows_read_from(plan: dict[str, Any], table: str) -> int:
    """Rows an EXPLAIN ANALYZE plan's scans of ``table`` returned, over all their loops."""
    own = (
        plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1) if plan.get("Relation Name") == table else 0
    )
    return own + sum(rows_read_from(p, table) for p in plan.get("Plans", []))
