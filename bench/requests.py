"""``python -m bench requests``: SQL statements and wall time of the request paths that concern a
whole vehicle or movement (issue 13, point 4), as functions of how many people they concern.

Starts one PostgreSQL (``fsync`` and synchronous commit on unless ``--no-durable``) in a temporary
directory, with transport's and one border post's databases migrated, and runs the use cases
themselves (``services.transport.usecases``, ``services.border_clearance.usecases``) in units of
work whose connection counts every call that goes to the server (``execute``, ``executemany``,
``fetch``, ``fetchrow``, ``fetchval``, ``copy_*``); the transaction's ``BEGIN`` and ``COMMIT`` are
two more each. The counts are deterministic: the same data gives the same figure on any machine.

For N people (one traveller a case), per repetition, on a day of its own:

* **plan**: N eligible cases planned onto one vehicle of N seats (``plan_movement``).
* **depart**: N/10 of them no-shows, N/10 cases that became ready after planning offered the freed
  seats (``record_departure``): N cases change.
* **progress**: the vehicle reached the route's first post (``record_progress``).
* **clear**: the route's first post clears the N people on the vehicle, one refused by the officer
  (``clear_vehicle``), after its manifest and its departure were applied there.

Wall time is from taking a pooled connection to the commit's answer, median of ``--repeat``; the
machine's load (printed) moves it, never the statement counts. Tracing is off, as the services run
by default (with it on, every event written adds a statement to note the case's trace).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

import services.border_clearance
import services.transport
from bench.stats import machine
from contracts.eligibility import EligibilityDecided, Outcome, RuleOutcome, RuleResult
from contracts.intake import CaseRegistered, Consent, DocumentType, Person, TravelDocument
from contracts.routes import RouteBook
from contracts.transport import ManifestIssued, ManifestPassenger, MovementDeparted
from corridor import db
from corridor.settings import ServiceSettings
from corridor.uow import UnitOfWork
from devkit.devinfra.postgres import PostgresServer
from services.border_clearance import usecases as border
from services.border_clearance.domain import Refusal
from services.border_clearance.store import BorderStore
from services.transport import commands
from services.transport import usecases as transport
from services.transport.store import TransportStore

app = typer.Typer(add_completion=False, help=__doc__)
console = Console(width=max(150, Console().width))

ROUTES = RouteBook.load(ServiceSettings.model_fields["routes_file"].default)
ROUTE = ROUTES.routes[0]
TRANSPORT = transport.Context(routes=ROUTES, mission="KAZ")
FIRST_POST = border.Context.of(ROUTE.checkpoints[0], ROUTES)
PATHS = ("plan", "depart", "progress", "clear")
COUNTED = frozenset(
    {
        "execute",
        "executemany",
        "fetch",
        "fetchrow",
        "fetchval",
        "copy_records_to_table",
        "copy_to_table",
        "copy_from_query",
        "copy_from_table",
    }
)
StoreT = TypeVar("StoreT")


class CountingConnection:
    """An asyncpg connection that counts the calls that reach the server (and which SQL)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.calls: Counter[str] = Counter()

    @property
    def statements(self) -> int:
        return sum(self.calls.values())

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._conn, name)
        if name not in COUNTED:
            return attr

        async def counted(*args: Any, **kwargs: Any) -> Any:
            what = args[0] if args and isinstance(args[0], str) else name
            self.calls[" ".join(what.split())[:90]] += 1
            return await attr(*args, **kwargs)

        return counted


@dataclass
class Measured:
    statements: dict[tuple[str, int], int] = field(default_factory=dict)
    seconds: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    calls: dict[tuple[str, int], Counter[str]] = field(default_factory=dict)

    def note(self, path: str, n: int, conn: CountingConnection, seconds: float) -> None:
        known = self.statements.setdefault((path, n), conn.statements)
        if known != conn.statements:  # the same work must take the same statements
            raise RuntimeError(f"{path} at N={n}: {conn.statements} statements, {known} before")
        self.calls[(path, n)] = conn.calls
        self.seconds.setdefault((path, n), []).append(seconds)


@asynccontextmanager
async def _unit(
    pool: asyncpg.Pool, store: type[StoreT], source: str
) -> AsyncIterator[tuple[UnitOfWork[StoreT], CountingConnection]]:
    async with pool.acquire() as conn, conn.transaction():
        counting = CountingConnection(conn)
        as_conn = cast(asyncpg.Connection, counting)
        yield UnitOfWork(as_conn, store(as_conn), source=source), counting  # type: ignore[call-arg]


def _person(n: int) -> Person:
    return Person(
        person_id=uuid.uuid4(),
        role="principal",
        given_names="Murod",
        surname=f"Rahimov{chr(65 + n % 26)}",
        birth_date=date(1979, 1, 30) + timedelta(days=n),
        sex="M",
        nationality="TJK",
        document=TravelDocument(
            type=DocumentType.PASSPORT, number=f"P{n:08d}", issuing_country="TJK", expires_on=date(2031, 1, 1)
        ),
    )


async def _ready_cases(pool: asyncpg.Pool, day: date, count: int, first: int) -> list[uuid.UUID]:
    """Cases registered and found eligible, as transport's consumer applies them (not counted)."""
    ids = []
    for i in range(count):
        case = CaseRegistered(
            case_id=uuid.uuid4(),
            registered_at=datetime.now(UTC),
            route_id=ROUTE.route_id,
            planned_travel_date=day,
            consent=Consent(given=True, kind="explicit", scope=["UZB", "TJK"]),
            members=[_person(first + i)],
        )
        async with _unit(pool, TransportStore, "/bench/transport") as (uow, _):
            await transport.on_case_registered(case, uow, TRANSPORT)
            await transport.on_eligibility_decided(
                EligibilityDecided(
                    case_id=case.case_id,
                    version=1,
                    outcome=Outcome.ELIGIBLE,
                    priority=0,
                    rules=[
                        RuleResult(rule="not_withdrawn", outcome=RuleOutcome.PASS, reason="Not withdrawn")
                    ],
                    decided_at=datetime.now(UTC),
                ),
                uow,
                TRANSPORT,
            )
        ids.append(case.case_id)
    return ids


async def _transport_paths(pool: asyncpg.Pool, n: int, day: date, measured: Measured) -> None:
    movement_id = f"MOV-{day:%Y%m%d}"
    placed = await _ready_cases(pool, day, n, 0)
    began = time.perf_counter()
    async with _unit(pool, TransportStore, "/bench/transport") as (uow, conn):
        planned = await transport.plan_movement(
            commands.PlanMovement(ROUTE.route_id, day, (commands.VehicleSpec("BUS-1", n),), movement_id),
            uow,
            TRANSPORT,
        )
    measured.note("plan", n, conn, time.perf_counter() - began)
    assert len(planned.view.seats) == n, planned.not_placed
    late = max(1, n // 10)
    await _ready_cases(pool, day, late, n)
    began = time.perf_counter()
    async with _unit(pool, TransportStore, "/bench/transport") as (uow, conn):
        departure = await transport.record_departure(
            commands.RecordDeparture(movement_id, "BUS-1", tuple(placed[:late]), True), uow, TRANSPORT
        )
    measured.note("depart", n, conn, time.perf_counter() - began)
    assert len(departure.departed) == n and len(departure.seats_offered) == late, departure
    began = time.perf_counter()
    async with _unit(pool, TransportStore, "/bench/transport") as (uow, conn):
        await transport.record_progress(
            commands.RecordProgress(movement_id, "BUS-1", ROUTE.checkpoints[0].checkpoint_id, "arrived"),
            uow,
            TRANSPORT,
        )
    measured.note("progress", n, conn, time.perf_counter() - began)


async def _border_path(pool: asyncpg.Pool, n: int, day: date, measured: Measured) -> None:
    movement_id = f"MOV-{day:%Y%m%d}"
    people = [_person(i) for i in range(n)]
    passengers = [
        ManifestPassenger(
            case_id=uuid.uuid4(),
            person_id=p.person_id,
            surname=p.surname,
            given_names=p.given_names,
            birth_date=p.birth_date,
            sex=p.sex,
            nationality=p.nationality,
            document_type=p.document.type,
            document_number=p.document.number,
        )
        for p in people
    ]
    now = datetime.now(UTC)
    async with _unit(pool, BorderStore, "/bench/border") as (uow, _):
        await border.on_manifest(
            ManifestIssued(
                manifest_id=uuid.uuid4(),
                revision=1,
                movement_id=movement_id,
                vehicle_id="BUS-1",
                route_id=ROUTE.route_id,
                checkpoint_id=FIRST_POST.checkpoint_id,
                departure_date=day,
                passengers=passengers,
                issued_at=now,
            ),
            uow,
            FIRST_POST,
        )
        await border.on_departed(
            MovementDeparted(
                movement_id=movement_id,
                vehicle_id="BUS-1",
                case_ids=[p.case_id for p in passengers],
                departed_at=now,
            ),
            uow,
            FIRST_POST,
        )
    refusal = Refusal(passengers[0].person_id, "no_visa", "No visa for the country ahead")
    began = time.perf_counter()
    async with _unit(pool, BorderStore, "/bench/border") as (uow, conn):
        cleared = await border.clear_vehicle(
            border.ClearVehicle(movement_id, "BUS-1", "officer-1", refusals=(refusal,)), uow, FIRST_POST
        )
    measured.note("clear", n, conn, time.perf_counter() - began)
    assert len(cleared.cleared) == n - 1 and len(cleared.refused) == 1, cleared


async def _pool(server: PostgresServer, name: str, component: str, migrations: Path) -> asyncpg.Pool:
    dsn = server.dsn(name)
    await db.ensure_database(dsn)
    pool = await db.create_pool(dsn, max_size=2)
    await db.migrate(pool, "corridor", db.SHARED_MIGRATIONS)
    await db.migrate(pool, component, migrations)
    return pool


async def _run(server: PostgresServer, sizes: list[int], repeat: int) -> Measured:
    transport_pool = await _pool(
        server, "transport", "transport", Path(services.transport.__file__).parent / "migrations"
    )
    border_pool = await _pool(
        server,
        "border",
        "border_clearance",
        Path(services.border_clearance.__file__).parent / "migrations",
    )
    measured = Measured()
    day = date(2027, 1, 4)
    try:
        # One warm-up round (prepared statements, caches), not counted; then repetitions, sizes
        # interleaved so that a change of load touches every size alike.
        for i in range(repeat + 1):
            for n in sizes:
                target = measured if i > 0 else Measured()
                day += timedelta(days=1)
                await _transport_paths(transport_pool, n, day, target)
                await _border_path(border_pool, n, day, target)
    finally:
        await transport_pool.close()
        await border_pool.close()
    return measured


def _print(measured: Measured, sizes: list[int]) -> list[dict[str, Any]]:
    table = Table(title="Statements per call (and wall time at the largest N)")
    low, high = sizes[0], sizes[-1]
    table.add_column("path")
    for n in sizes:
        table.add_column(f"N={n}", justify="right")
    table.add_column("per person", justify="right")
    table.add_column(f"wall ms at N={high}: median (min-max)", justify="right")
    rows = []
    for path in PATHS:
        counts = [measured.statements[(path, n)] for n in sizes]
        slope = (counts[-1] - counts[0]) / (high - low) if high > low else 0.0
        times = [s * 1000 for s in measured.seconds[(path, high)]]
        median = statistics.median(times)
        table.add_row(
            path,
            *(str(c) for c in counts),
            f"{slope:.2f}",
            f"{median:.1f} ({min(times):.1f}-{max(times):.1f})",
        )
        rows.append(
            {
                "path": path,
                "statements": dict(zip(map(str, sizes), counts, strict=True)),
                "per_person": slope,
                "wall_ms": times,
                "calls": dict(measured.calls[(path, high)]),
            }
        )
    console.print(table)
    return rows


@app.command()
def main(
    people: Annotated[str, typer.Option(help="People per call, comma-separated (one a case).")] = "10,50",
    repeat: Annotated[int, typer.Option(min=1, help="Repetitions; wall time is their median.")] = 5,
    durable: Annotated[
        bool, typer.Option("--durable/--no-durable", help="PostgreSQL with fsync=on (as production).")
    ] = True,
    show_sql: Annotated[bool, typer.Option(help="Print each path's statements at the largest N.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures here.")] = None,
) -> None:
    """Count the SQL statements of planning, departure, progress and clearance, and time them."""
    sizes = sorted({int(x) for x in people.split(",") if x.strip()})
    info = machine()
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="corridor-bench-requests-"))
    server = PostgresServer(workdir / "postgres", durable=durable)
    try:
        server.start()
        measured = asyncio.run(_run(server, sizes, repeat))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = _print(measured, sizes)
    if show_sql:
        for row in rows:
            console.print(f"[bold]{row['path']}[/] at N={sizes[-1]}:")
            for sql, count in row["calls"].items():
                console.print(f"  {count:4d} x {sql}", highlight=False, markup=False)
    load_after = os.getloadavg()
    console.print(
        f"Machine: {info.get('cpu', '?')}, {os.cpu_count()} cores; PostgreSQL fsync "
        f"{'on' if durable else 'off'}; load average before {' '.join(f'{x:.2f}' for x in load_before)}, "
        f"after {' '.join(f'{x:.2f}' for x in load_after)}. Statement counts exclude BEGIN and COMMIT.",
        highlight=False,
    )
    if json_out is not None:
        json_out.write_text(json.dumps({"machine": info, "durable": durable, "paths": rows}, indent=2))
