"""``python -m bench e2e``: the whole platform, end to end, beside a naive baseline.

Starts its own stack (``devkit.devstack.Stack``: one Kafka node with SASL/SCRAM and ACLs, producers
with acks=all and idempotence; PostgreSQL with fsync and synchronous commit on) and every service
as a process, then drives cases from registration to arrival through every service and every post
of the route, as operators do over HTTP: a caseworker bulk-imports most cases and registers the
rest one by one, the coordinator plans a movement of what is ready every second, each vehicle is
boarded, departs, and is cleared at each post in turn.

Figures, all from the public status stream (read as the operations principal) and the services'
own ``/stats``: cases/s and status events/s sustained, each stage's throughput, p50/p95/p99 from a
status change (the event's time, set in the transaction) to its record on the stream, and from
registration to arrival; CPU seconds and peak memory of each service. In the same command, on the
same servers, the naive baseline (``bench.naive``) and the ratios to it.

``--rate R`` (steady mode) registers R cases a second over HTTP for ``--seconds`` instead of the
burst, and reports the same figures: at a rate below capacity, the latencies are what a case sees.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from bench import naive
from bench.infra import StatementCounts
from bench.stats import cpu_seconds, jit_cpu, machine, machine_line, percentile, postgres_cpu
from contracts import topics
from contracts.envelope import CloudEvent, decode_headers
from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged
from corridor.auth import Role
from corridor.kafkatools import partitions_of
from devkit import scenario
from opstools.statusreader import StatusStream

app = typer.Typer(add_completion=False, help=__doc__)
console = Console(width=max(150, Console().width))

CAPACITY = 45
"""Seats per vehicle (a coach)."""


def _progress(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}")


# ------------------------------------------------------------------------------ the stream


class TimedStream(StatusStream):
    """The status stream, with the moment each status change was read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[uuid.UUID, CaseStatus, str, float, float]] = []
        """(case, status, stage label, change time, read time) as epoch seconds, first copies only."""
        self.sent: list[float] = []
        """For each of ``seen``, when its relay sent it (the record's timestamp, set by the
        producer): splits change → read into the platform's part and Kafka's and this reader's."""
        self._occurrences: dict[tuple[uuid.UUID, CaseStatus], int] = defaultdict(int)

    async def start(self) -> None:
        """Follow from the stream's end: a run reads only its own records, not the warm-up's."""
        tps = await partitions_of(self._access, topics.STATUS)
        await self._consumer.start()
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)  # returns once every position is known
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        async for record in self._consumer:
            read_at = time.time()
            self.raw_count += 1
            try:
                event = CloudEvent.from_record(decode_headers(record.headers), record.value)
            except Exception as exc:
                self.invalid.append(f"{record.partition}@{record.offset}: {exc!r}"[:500])
                continue
            if not isinstance(event.data, CaseStatusChanged) or event.dedup_key in self._seen:
                continue
            self._seen.add(event.dedup_key)
            data = event.data
            self.timelines[data.case_id].append(event)
            self._reached[data.case_id].add(data.status)
            n = self._occurrences[(data.case_id, data.status)] = (
                self._occurrences[(data.case_id, data.status)] + 1
            )
            label = data.status.value if n == 1 else f"{data.status.value} #{n}"
            self.seen.append((data.case_id, data.status, label, event.time.timestamp(), read_at))
            self.sent.append(record.timestamp / 1000)


# ------------------------------------------------------------------------------ driving cases


@dataclass
class Drive:
    travel: date
    case_ids: list[uuid.UUID] = field(default_factory=list)
    planned: set[uuid.UUID] = field(default_factory=set)
    vehicles: list[asyncio.Task[Any]] = field(default_factory=list)
    registrations_done: bool = False
    http_registrations: list[float] = field(default_factory=list)
    import_seconds: float = 0.0
    imported: int = 0


def _traveller(travel: date) -> dict[str, Any]:
    return scenario.single_traveller(travel)


async def _bulk_import(
    client: httpx.AsyncClient, stack: Any, drive: Drive, count: int, chunk: int = 500
) -> None:
    url = stack.url("intake") + "/imports"
    headers = {**stack.headers(Role.CASEWORKER, subject="clerk@bench"), "Content-Type": "application/json"}
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    for first in range(0, count, chunk):
        rows = []
        for i in range(first, min(count, first + chunk)):
            body = _traveller(drive.travel)
            body.pop("registration_key", None)
            rows.append({"row_key": f"B-{i:07d}", **body})
        r = await client.post(url, params={"namespace": namespace}, content=json.dumps(rows), headers=headers)
        r.raise_for_status()
        for entry in r.json()["entries"]:
            if entry["outcome"] in ("created", "flagged"):
                drive.case_ids.append(uuid.UUID(entry["case_id"]))
                drive.imported += 1
    drive.import_seconds = time.monotonic() - started


async def _register_over_http(client: httpx.AsyncClient, stack: Any, drive: Drive) -> None:
    started = time.monotonic()
    drive.case_ids.append(await scenario.register(client, stack, _traveller(drive.travel)))
    drive.http_registrations.append(time.monotonic() - started)


async def _http_burst(
    client: httpx.AsyncClient, stack: Any, drive: Drive, count: int, concurrency: int
) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            await _register_over_http(client, stack, drive)

    await asyncio.gather(*(one() for _ in range(count)))


async def _paced(client: httpx.AsyncClient, stack: Any, drive: Drive, rate: float, seconds: float) -> None:
    tasks: list[asyncio.Task[None]] = []
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_register_over_http(client, stack, drive)))
    await asyncio.gather(*tasks)


async def _planner(
    client: httpx.AsyncClient, stack: Any, stream: TimedStream, drive: Drive, route: Any, every: float = 1.0
) -> None:
    """Every ``every`` seconds, plan a movement of whatever is ready and send its vehicles off."""
    transport = scenario.coordinator(stack)
    wave = 0
    idle_since = time.monotonic()
    while True:
        r = await client.get(
            stack.url("transport") + "/ready-cases",
            params={"route_id": route.route_id, "departure_date": drive.travel.isoformat()},
            headers=transport,
        )
        ready = (
            [c for c in r.json()["cases"] if uuid.UUID(c["case_id"]) not in drive.planned]
            if r.is_success
            else []
        )
        if ready:
            idle_since = time.monotonic()
            wave += 1
            movement_id = f"MOV-{drive.travel:%Y%m%d}-{uuid.uuid4().hex[:6]}"
            vehicles = math.ceil(len(ready) / CAPACITY)
            response = await scenario.post(
                client,
                stack.url("transport") + "/movements",
                {
                    "movement_id": movement_id,
                    "route_id": route.route_id,
                    "departure_date": drive.travel.isoformat(),
                    "vehicles": [
                        {"vehicle_id": f"BUS-{wave}-{v}", "capacity": CAPACITY} for v in range(vehicles)
                    ],
                },
                headers=transport,
            )
            if response.status_code == 201:
                movement = response.json()
                for vehicle in movement["vehicles"]:
                    if vehicle["cases"]:
                        drive.planned.update(uuid.UUID(c["case_id"]) for c in vehicle["cases"])
                        drive.vehicles.append(
                            asyncio.create_task(_drive_vehicle(client, stack, route, movement_id, vehicle))
                        )
        elif drive.registrations_done and (
            # A departure also seats cases that became ready after its movement was planned.
            all(c in drive.planned or CaseStatus.MANIFESTED in stream._reached[c] for c in drive.case_ids)
            or time.monotonic() - idle_since > 120
        ):
            return  # all planned (or some never became ready: the wait for arrivals says which)
        await asyncio.sleep(every)


async def _drive_vehicle(
    client: httpx.AsyncClient, stack: Any, route: Any, movement_id: str, vehicle: dict[str, Any]
) -> None:
    # Boarding needs the manifest to have reached the posts (the manifested status on the stream).
    await asyncio.sleep(0.5)
    await scenario.drive_vehicle(client, stack, route, movement_id, vehicle["vehicle_id"], timeout=600)


# ------------------------------------------------------------------------------ measuring


@dataclass
class Usage:
    cpu: dict[str, float]
    peak_rss_mib: dict[str, float]
    infrastructure_cpu: dict[str, float] = field(default_factory=dict)
    """Kafka, PostgreSQL and this benchmark (the driver and the stream's reader) meanwhile."""
    kafka_jit_cpu: float = 0.0
    """Of Kafka's, its JIT compiler threads'."""


def _infrastructure_cpu(infra: Any) -> dict[str, float]:
    return {
        "kafka": sum(cpu_seconds(pid) for pid in infra.stack.kafka.pids),
        "postgresql": postgres_cpu(infra.stack.postgres.pid),
        "this benchmark (driver, stream reader)": time.process_time(),
    }


def _kafka_jit_cpu(infra: Any) -> float:
    return sum(jit_cpu(pid) for pid in infra.stack.kafka.pids)


def _peak_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def _consumed(client: httpx.AsyncClient, stack: Any) -> dict[str, int]:
    """Records the consumers of every service applied, recognised as duplicates and dead-lettered
    (their /stats)."""
    found = {"applied": 0, "duplicates": 0, "dead_lettered": 0, "transactions": 0}
    for name, spec in stack.specs.items():
        # A viewer of the service's own mission: a post in UZB answers only UZB's staff.
        headers = stack.headers(Role.OPERATIONS_VIEWER, mission=spec.mission)
        r = await client.get(stack.url(name) + "/stats", headers=headers)
        r.raise_for_status()
        if r.is_success:
            for consumer, figures in r.json()["consumers"].items():
                for outcome in ("applied", "duplicates", "dead_lettered", "transactions"):
                    found[outcome] += figures[outcome]
                    key = f"{consumer}:{outcome}"
                    found[key] = found.get(key, 0) + figures[outcome]
    return found


def _pcts(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (math.nan, math.nan, math.nan)
    return (percentile(values, 50), percentile(values, 95), percentile(values, 99))


@dataclass
class Figures:
    mode: str
    cases: int
    seconds: float
    cases_per_second: float
    events: int
    events_per_second: float
    records_applied: int
    records_per_second: float
    stages: list[dict[str, Any]]
    change_to_stream_ms: tuple[float, float, float]
    change_to_sent_ms: tuple[float, float, float]
    """Of change → stream, the part until the relay sent the record (commit, relay, producer)."""
    sent_to_read_ms: tuple[float, float, float]
    """The rest: the broker's append and acknowledgement, the fetch, this reader's event loop."""
    registration_to_arrival_s: tuple[float, float, float]
    cpu_seconds: dict[str, float]
    peak_rss_mib: dict[str, float]
    infrastructure_cpu_seconds: dict[str, float]
    kafka_jit_cpu_seconds: float
    import_rows_per_second: float
    naive: dict[str, float] = field(default_factory=dict)
    consumed: dict[str, int] = field(default_factory=dict)
    statements: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """``--statements``: PostgreSQL's counts per database and its heaviest statements."""


def _figures(mode: str, stream: TimedStream, drive: Drive, applied: int, usage: Usage, route: Any) -> Figures:
    ours = set(drive.case_ids)
    mine = [i for i, s in enumerate(stream.seen) if s[0] in ours]
    seen = [stream.seen[i] for i in mine]
    sent = [stream.sent[i] for i in mine]
    registered = {c: changed for c, status, _, changed, _ in seen if status is CaseStatus.REGISTERED}
    arrived = {c: read for c, status, _, _, read in seen if status is CaseStatus.ARRIVED}
    start = min(registered.values()) if registered else 0.0
    end = max(arrived.values()) if arrived else 0.0
    seconds = max(end - start, 1e-9)
    by_stage: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for _, _, label, changed, read in seen:
        by_stage[label].append((changed, read))
    stages = []
    for label, points in sorted(by_stage.items(), key=lambda kv: min(p[1] for p in kv[1])):
        reads = [p[1] for p in points]
        span = max(reads) - min(reads)
        stages.append(
            {
                "stage": label,
                "events": len(points),
                "per_second": (len(points) - 1) / span if span > 0 else math.nan,
                "ms": _pcts([(r - c) * 1000 for c, r in points]),
            }
        )
    return Figures(
        mode=mode,
        cases=len(arrived),
        seconds=seconds,
        cases_per_second=len(arrived) / seconds,
        events=len(seen),
        events_per_second=len(seen) / seconds,
        records_applied=applied,
        records_per_second=applied / seconds,
        stages=stages,
        change_to_stream_ms=_pcts([(r - c) * 1000 for _, _, _, c, r in seen]),
        change_to_sent_ms=_pcts([(t - c) * 1000 for (_, _, _, c, _), t in zip(seen, sent, strict=True)]),
        sent_to_read_ms=_pcts([(r - t) * 1000 for (_, _, _, _, r), t in zip(seen, sent, strict=True)]),
        registration_to_arrival_s=_pcts([arrived[c] - registered[c] for c in arrived if c in registered]),
        cpu_seconds=usage.cpu,
        peak_rss_mib=usage.peak_rss_mib,
        infrastructure_cpu_seconds=usage.infrastructure_cpu,
        kafka_jit_cpu_seconds=usage.kafka_jit_cpu,
        import_rows_per_second=drive.imported / drive.import_seconds if drive.import_seconds else math.nan,
    )


async def _measure(infra: Any, cfg: dict[str, Any], travel_in_days: int = 30) -> Figures:
    stream = TimedStream(infra.reader)
    await stream.start()
    # Each run its own travel date: the planner seats only the cases of its own run.
    drive = Drive(travel=date.today() + timedelta(days=travel_in_days))
    # Few connections: httpcore checks every pooled connection's socket whenever it assigns a
    # request (getpeername, a readability poll), which with 64 was a third of the driver's CPU at
    # 50 cases/s (py-spy), taken from the platform it measures on two cores. 16 carry 50 requests/s
    # with room to spare; more requests than that wait in the client's queue.
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    # A client retries a request whose connection dropped (httpx's ReadError, seen at 50 requests/s)
    # or that answered 503, with the same Idempotency-Key, as a mission's client would.
    with scenario.tolerating_faults(30.0):
        figures = await _measure_with(client_limits=limits, infra=infra, cfg=cfg, stream=stream, drive=drive)
    await stream.stop()
    return figures


async def _measure_with(
    *, client_limits: httpx.Limits, infra: Any, cfg: dict[str, Any], stream: TimedStream, drive: Drive
) -> Figures:
    stack = infra.stack
    route = RouteBook.load(stack.routes_file).routes[0]
    pids = {name: proc.pid for name, proc in stack.processes.items()}
    async with httpx.AsyncClient(timeout=120.0, limits=client_limits) as client:
        counts = StatementCounts(stack.postgres.dsn()) if cfg.get("statements") else None
        if counts is not None:
            await counts.reset()
        consumed_before = await _consumed(client, stack)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        infra_before = _infrastructure_cpu(infra)
        jit_before = _kafka_jit_cpu(infra)
        planner = asyncio.create_task(_planner(client, stack, stream, drive, route))
        if cfg["rate"] > 0:
            mode = f"steady {cfg['rate']:g} cases/s for {cfg['seconds']:g} s"
            await _paced(client, stack, drive, cfg["rate"], cfg["seconds"])
        else:
            mode = f"burst of {cfg['cases']} cases"
            over_http = min(cfg["cases"], cfg["http_cases"])
            await asyncio.gather(
                _bulk_import(client, stack, drive, cfg["cases"] - over_http),
                _http_burst(client, stack, drive, over_http, cfg["http_concurrency"]),
            )
            _progress(f"registered {len(drive.case_ids)} ({drive.imported} imported)")
        drive.registrations_done = True
        await planner
        await asyncio.gather(*drive.vehicles)
        await stream.wait_for(drive.case_ids, {CaseStatus.ARRIVED}, timeout=900)
        await asyncio.sleep(1.0)  # the last consumers' stats settle
        consumed = {k: v - consumed_before.get(k, 0) for k, v in (await _consumed(client, stack)).items()}
        statements = await counts.read() if counts is not None else {}
        applied = consumed["applied"] + consumed["duplicates"]
        usage = Usage(
            cpu={name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()},
            peak_rss_mib={name: _peak_rss_mib(pid) for name, pid in pids.items()},
            infrastructure_cpu={k: v - infra_before[k] for k, v in _infrastructure_cpu(infra).items()},
            kafka_jit_cpu=_kafka_jit_cpu(infra) - jit_before,
        )
    if cfg.get("settings"):
        mode += " with " + ", ".join(f"{k}={v}" for k, v in cfg["settings"].items())
    figures = _figures(mode, stream, drive, applied, usage, route)
    figures.consumed = consumed
    figures.statements = statements
    return figures


# ------------------------------------------------------------------------------ printing


def _ms(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:,.0f}" for v in values)


def _print(f: Figures) -> None:
    console.rule(f"[bold]End to end: {f.mode}")
    console.print(
        f"{f.cases} cases to arrival in {f.seconds:.1f} s: [bold]{f.cases_per_second:.1f} cases/s[/], "
        f"{f.events_per_second:.0f} status events/s, {f.records_per_second:.0f} consumer records/s "
        f"({f.consumed.get('applied', 0)} applied, {f.consumed.get('duplicates', 0)} duplicates, {f.consumed.get('dead_lettered', 0)} dead-lettered); bulk import {f.import_rows_per_second:.0f} rows/s",
        highlight=False,
    )
    console.print(
        f"status change → record on the stream p50/p95/p99: {_ms(f.change_to_stream_ms)} ms "
        f"(change → sent by the relay {_ms(f.change_to_sent_ms)}; sent → read {_ms(f.sent_to_read_ms)}); "
        f"registration → arrival p50/p95/p99: "
        + " / ".join(f"{v:.1f}" for v in f.registration_to_arrival_s)
        + " s",
        highlight=False,
    )
    table = Table("stage", "events", "events/s", "change→stream p50 / p95 / p99 ms", box=None)
    for s in f.stages:
        table.add_row(s["stage"], str(s["events"]), f"{s['per_second']:.1f}", _ms(s["ms"]))
    console.print(table)
    consumers = sorted({k.partition(":")[0] for k in f.consumed if k.endswith(":transactions")})
    if consumers:
        batches = Table("consumer", "records applied", "transactions", "records a transaction", box=None)
        for name in consumers:
            records = f.consumed[f"{name}:applied"] + f.consumed[f"{name}:duplicates"]
            done = f.consumed[f"{name}:transactions"]
            if records or done:
                batches.add_row(name, str(records), str(done), f"{records / max(done, 1):.1f}")
        console.print(batches)
    if f.statements:
        _print_statements(f)
    usage = Table("service", "CPU s", "CPU ms/case", "peak RSS MiB", box=None)
    for name in sorted(f.cpu_seconds, key=lambda n: -f.cpu_seconds[n]):
        cpu = f.cpu_seconds[name]
        usage.add_row(
            name, f"{cpu:.1f}", f"{cpu * 1000 / max(f.cases, 1):.1f}", f"{f.peak_rss_mib[name]:.0f}"
        )
    usage.add_row(
        "all services",
        f"{sum(f.cpu_seconds.values()):.1f}",
        f"{sum(f.cpu_seconds.values()) * 1000 / max(f.cases, 1):.1f}",
        "",
    )
    for name, cpu in f.infrastructure_cpu_seconds.items():
        usage.add_row(name, f"{cpu:.1f}", f"{cpu * 1000 / max(f.cases, 1):.1f}", "")
        if name == "kafka":
            jit = f.kafka_jit_cpu_seconds
            usage.add_row(
                "  of which its JIT compiler", f"{jit:.1f}", f"{jit * 1000 / max(f.cases, 1):.1f}", ""
            )
    if f.infrastructure_cpu_seconds:
        everything = sum(f.cpu_seconds.values()) + sum(f.infrastructure_cpu_seconds.values())
        usage.add_row(
            "everything",
            f"{everything:.1f}",
            f"{everything * 1000 / max(f.cases, 1):.1f}",
            f"({everything / f.seconds / (os.cpu_count() or 1):.0%} of the machine's cores)",
        )
    console.print(usage)
    if f.naive:
        n = f.naive
        console.print(
            f"naive baseline ({n['stages']:.0f} stages, one transaction and one awaited publish per record): "
            f"{n['handled_per_second']:.0f} records handled/s ({n['records_per_second']:.1f} through every stage/s). "
            f"Ratios: status events/s {f.events_per_second / n['records_per_second']:.1f}x a naive stage's records/s; "
            f"consumer records/s {f.records_per_second / n['handled_per_second']:.1f}x the naive pipeline's",
            highlight=False,
        )


def _print_statements(f: Figures) -> None:
    per_case = max(f.cases, 1)
    table = Table(
        "database (PostgreSQL)", "statements a case", "transactions a case", "execution ms a case", box=None
    )
    rows = sorted(f.statements["by_database"], key=lambda r: -r["statements"])
    for r in rows:
        table.add_row(
            r["database"],
            f"{r['statements'] / per_case:.1f}",
            f"{(r['transactions'] or 0) / per_case:.2f}",
            f"{r['exec_ms'] / per_case:.2f}",
        )
    table.add_row(
        "all",
        f"{sum(r['statements'] for r in rows) / per_case:.1f}",
        f"{sum(r['transactions'] or 0 for r in rows) / per_case:.2f}",
        f"{sum(r['exec_ms'] for r in rows) / per_case:.2f}",
    )
    console.print(table)
    heaviest = Table("heaviest statements", "calls", "execution ms", "database", box=None)
    for r in f.statements["heaviest"]:
        heaviest.add_row(str(r["query"]), str(r["calls"]), f"{r['exec_ms']:.0f}", str(r["database"]))
    console.print(heaviest)


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise typer.BadParameter(f"NAME=VALUE, not {text!r}")
    return name.strip().lower(), value


@app.command()
def e2e(
    cases: Annotated[int, typer.Option("--cases", "-n", min=1, help="Cases of the burst.")] = 1000,
    http_cases: Annotated[int, typer.Option(min=0, help="Of them, registered one by one over HTTP.")] = 100,
    http_concurrency: Annotated[int, typer.Option(min=1)] = 8,
    rate: Annotated[
        float, typer.Option(min=0.0, help="Steady mode: cases/s over HTTP (0: the burst).")
    ] = 0.0,
    seconds: Annotated[float, typer.Option(min=1.0, help="Steady mode: for how long.")] = 60.0,
    naive_records: Annotated[
        int, typer.Option(min=0, help="Records through the naive pipeline (0 skips it).")
    ] = 2000,
    naive_stages: Annotated[int, typer.Option(min=1)] = 3,
    replica: Annotated[
        list[str] | None,
        typer.Option(help="Run a second replica of this service (same consumer group), e.g. transport."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to this file.")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the temporary directory (server logs).")] = False,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            help="A setting of every service for this run, NAME=VALUE (CORRIDOR_NAME), e.g. "
            "consumer_batch_size=100; repeatable."
        ),
    ] = None,
    warmup: Annotated[
        int, typer.Option(min=0, help="Cases driven to arrival before measuring, not counted (0: none).")
    ] = 1000,
    warmup_seconds: Annotated[
        float,
        typer.Option(min=0.0, help="Steady mode: then this long at the steady rate, not counted (0: none)."),
    ] = 90.0,
    statements: Annotated[
        bool,
        typer.Option(
            help="Count the statements the platform sends PostgreSQL (pg_stat_statements, loaded for "
            "this run): per database and case, and the heaviest."
        ),
    ] = False,
) -> None:
    """Drive cases end to end through the whole platform; the naive baseline beside it."""
    from bench.infra import temporary

    info = machine()
    settings = dict(_setting(s) for s in setting or [])
    cfg: dict[str, Any] = {
        "cases": cases,
        "http_cases": http_cases,
        "http_concurrency": http_concurrency,
        "rate": rate,
        "seconds": seconds,
        "warmup": warmup,
        "warmup_seconds": warmup_seconds,
        "settings": settings,
        "statements": statements,
    }
    with temporary("corridor-bench-e2e-", keep=keep, say=_progress, statements=statements) as infra:
        infra.stack.extra_env.update({f"CORRIDOR_{k.upper()}": v for k, v in settings.items()})
        _progress(
            f"starting Kafka, PostgreSQL (fsync, synchronous_commit on) and every service in {infra.workdir}"
        )
        infra.start()
        infra.stack.start_services(timeout=300)
        for name in replica or []:
            infra.stack.start_replica(name, f"{name}-2")
        if warmup:
            # Not counted: a fresh JVM spends its first minute of load compiling Kafka's hot paths
            # (in a cold 60 s run at 20 cases/s, 43 % of Kafka's CPU went to its JIT compiler
            # threads), which a broker that has run for days did long ago; the services' first
            # requests also open their pools and fill their caches.
            _progress(f"warm-up: {warmup} cases to arrival, not counted")
            warm = asyncio.run(
                _measure(
                    infra,
                    {**cfg, "rate": 0.0, "cases": warmup, "http_cases": min(http_cases, warmup // 10)},
                    travel_in_days=29,
                )
            )
            _progress(f"warm-up done: {warm.cases} cases in {warm.seconds:.1f} s")
        if rate > 0 and warmup_seconds > 0:
            # A burst leaves a trickle's paths cold (small fetches and batches, a record per unit of
            # work): after the burst, Kafka's JIT compiler still took 2.7 ms of CPU a case in a
            # measured 50/s minute, on the two cores the measured latency shares. Sampled every 10 s
            # from the broker's first load (the burst, then 50/s), its compiler threads took 2.4-2.8
            # CPU-s each 10 s in the first 40 s, 1.2-1.6 in the next 30 (where a 30 s warm-up ended
            # and the measured minute began: 1.1 ms a case) and 0.1-0.5 from about 80 s on (with
            # this 90 s warm-up: 0.4-0.6 ms a case). A broker that has run for days compiles next
            # to nothing.
            _progress(f"warm-up at {rate:g} cases/s for {warmup_seconds:g} s, not counted")
            warm = asyncio.run(_measure(infra, {**cfg, "seconds": warmup_seconds}, travel_in_days=28))
            _progress(f"warm-up done: {warm.cases} cases in {warm.seconds:.1f} s")
        load_before = os.getloadavg()
        figures = asyncio.run(_measure(infra, cfg))
        if naive_records:  # after the platform's run, on the same servers (now idle)
            _progress(f"naive baseline: {naive_records} records through {naive_stages} stages")
            result = asyncio.run(
                naive.run(
                    infra.stack.kafka.admin_access(), infra.dsn, stages=naive_stages, records=naive_records
                )
            )
            figures.naive = {
                "stages": naive_stages,
                "records": result.records,
                "seconds": result.seconds,
                "records_per_second": result.records_per_second,
                "handled_per_second": result.handled_per_second,
            }
        _print(figures)
        console.print(
            machine_line(info, load_before)
            + " (other processes on the machine depress absolute figures; the ratios are measured in the same run).",
            highlight=False,
        )
        if json_out is not None:
            json_out.write_text(
                json.dumps(
                    {
                        "machine": info,
                        "config": cfg,
                        "at": datetime.now(UTC).isoformat(),
                        "figures": figures.__dict__,
                    },
                    indent=2,
                    default=str,
                )
            )


if __name__ == "__main__":
    app()
