"""``python -m bench stage``: one service's stage drained by one process, then by two.

The end-to-end benchmark runs on a saturated machine: a second process of a service adds no core
there, only another process to share two. This benchmark isolates a stage so that cores are
spare: with the service stopped, the caseworker bulk-imports ``--cases`` cases and eligibility
decides them all (the backlog waits on the service's topics); then the service starts with one
process, and the time its stage takes to announce every case is measured; then the same again on
another travel date with two processes of the service (same database, same consumer groups,
which split the partitions).

For ``transport`` (the default, the costliest service end to end) the stage is "eligible": it
applies each registration and eligibility's decision and announces the case eligible on the
status stream. The rate is the backlog's cases per second from the first record the service
applies to its last announcement, timed by their transactions in its inbox and its outbox (on the
stream, the relay's timing would add to it: it can publish a round's announcements in one late
burst); the CPU is the service's processes' and PostgreSQL's over the same window (sampled every
0.1 s from the processes' start).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import date, timedelta
from typing import Annotated, Any

import asyncpg
import httpx
import typer
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table

from bench.e2e import Drive, TimedStream, _bulk_import
from bench.stats import cpu_seconds, machine, machine_line, postgres_cpu
from contracts import topics
from contracts.envelope import CloudEvent, decode_headers
from contracts.status import CaseStatus
from corridor.kafkatools import partitions_of

app = typer.Typer(add_completion=False, help=__doc__)
console = Console(width=max(150, Console().width))

STAGES = {"transport": CaseStatus.ELIGIBLE}
"""The status a service announces as it drains its backlog."""


def _progress(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}")


async def _decided(infra: Any, case_ids: set[uuid.UUID], timeout: float = 600.0) -> None:
    """Wait until eligibility has published a decision for every case of ``case_ids``."""
    access = infra.stack.kafka.admin_access()
    consumer = AIOKafkaConsumer(**access.aiokafka(), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await partitions_of(access, topics.DECISIONS)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        waiting = set(case_ids)
        deadline = time.monotonic() + timeout
        while waiting:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(waiting)} cases without a decision after {timeout:.0f} s")
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    event = CloudEvent.from_record(decode_headers(record.headers), record.value)
                    waiting.discard(getattr(event.data, "case_id", None))  # type: ignore[arg-type]
    finally:
        await consumer.stop()


async def _drain(infra: Any, service: str, processes: int, cases: int, day: int) -> dict[str, Any]:
    stack = infra.stack
    names = [service] + [f"{service}-{i}" for i in range(2, processes + 1)]
    stack.stop_service(service)
    stream = TimedStream(infra.reader)
    await stream.start()
    drive = Drive(travel=date.today() + timedelta(days=day))
    try:
        async with httpx.AsyncClient(timeout=120.0) as client:
            await _bulk_import(client, stack, drive, cases)
        _progress(f"{processes} process(es): {len(drive.case_ids)} cases imported; waiting for eligibility")
        await _decided(infra, set(drive.case_ids))
        started, since = time.monotonic(), time.time()
        # All at once, so that the group is formed by all of them before the backlog is shared.
        stack.start_service(service, wait=False)
        for name in names[1:]:
            stack.start_replica(service, name, wait=False)
        pids = {name: stack.processes[name].pid for name in names}
        # CPU sampled from the start: the drain begins before the processes answer as ready, and
        # only the window from the stage's first announcement to its last is counted (not the
        # processes' own start-up).
        samples: list[tuple[float, dict[str, float]]] = []

        async def sample() -> None:
            while True:
                cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
                samples.append((time.time(), {**cpu, "postgresql": postgres_cpu(stack.postgres.pid)}))
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample())
        try:
            await asyncio.to_thread(stack.wait_ready, names, 300)
            status = STAGES[service]
            await stream.wait_for(drive.case_ids, {status}, timeout=900)
            took = time.monotonic() - started
            await asyncio.sleep(0.2)  # a sample after the last announcement
        finally:
            sampler.cancel()
    finally:
        await stream.stop()
    ours = set(drive.case_ids)
    reads = [read for case, s, _, _, read in stream.seen if s is status and case in ours]
    begun, ended = await _drained(stack, service, ours, status, since)
    span = ended - begun
    first = max((x for x in samples if x[0] <= begun), key=lambda x: x[0], default=samples[0])[1]
    last = min((x for x in samples if x[0] >= ended), key=lambda x: x[0], default=samples[-1])[1]
    cpu = {name: last[name] - first[name] for name in names}
    pg = last["postgresql"] - first["postgresql"]
    for name in names[1:]:
        stack.stop_replica(name)
    return {
        "processes": processes,
        "cases": len(reads),
        "per_second": len(reads) / span if span > 0 else float("nan"),
        "span": span,
        "from_start": took,
        "cpu": cpu,
        "postgresql": pg,
    }


async def _drained(
    stack: Any, service: str, cases: set[uuid.UUID], status: CaseStatus, since: float
) -> tuple[float, float]:
    """When the service applied its first record after ``since`` (its processes' start, epoch
    seconds) and when it wrote its last announcement of ``status`` for ``cases`` (times of their
    transactions, from its inbox and its outbox): the drain of the backlog, the stage's own work.
    Their times on the stream would add the relay's, which can publish a round's announcements in
    one late burst; and the first announcement comes only after many registrations were applied."""
    spec = stack.specs[service]
    conn = await asyncpg.connect(stack.postgres_of(service).dsn(spec.database))
    try:
        row = await conn.fetchrow(
            """SELECT (SELECT extract(epoch FROM min(received_at))::float8
                       FROM inbox WHERE received_at >= to_timestamp($4)) AS begun,
                      extract(epoch FROM max(created_at))::float8 AS ended, count(*) AS n
               FROM outbox
               WHERE topic = $1 AND key = ANY($2::text[])
                 AND convert_from(payload, 'UTF8')::jsonb ->> 'status' = $3""",
            topics.STATUS,
            [str(c) for c in cases],
            status.value,
            since,
        )
    finally:
        await conn.close()
    assert row is not None  # (an aggregate has a row)
    if row["n"] < len(cases):
        raise RuntimeError(f"{service}'s outbox holds {row['n']} of {len(cases)} announcements")
    if row["begun"] is None:
        raise RuntimeError(f"{service}'s inbox has no record applied since its processes started")
    return row["begun"], row["ended"]


async def _measure(infra: Any, service: str, cases: int) -> list[dict[str, Any]]:
    # A round not counted first: the first drain after start-up met a colder broker (its JIT) and
    # database, which favoured whichever round came second.
    await _drain(infra, service, 1, cases, day=40)
    return [await _drain(infra, service, k, cases, day=40 + k) for k in (1, 2)]


@app.command()
def stage(
    service: Annotated[str, typer.Option(help="The service whose stage is drained.")] = "transport",
    # 15,000: a 3,000-case backlog drains in about 1.5 s, before a second process has its share of
    # the partitions (bench/RESULTS.md, session 11).
    cases: Annotated[int, typer.Option("--cases", "-n", min=100, help="Backlog per round.")] = 15_000,
    keep: Annotated[bool, typer.Option(help="Keep the temporary directory (server logs).")] = False,
) -> None:
    """Drain one service's backlog with one process, then with two; print each round's rate."""
    from bench.infra import temporary

    if service not in STAGES:
        raise typer.BadParameter(f"one of {', '.join(STAGES)}")
    info = machine()
    with temporary("corridor-bench-stage-", keep=keep, say=_progress) as infra:
        _progress(
            f"starting Kafka, PostgreSQL (fsync, synchronous_commit on) and every service in {infra.workdir}"
        )
        infra.start()
        infra.stack.start_services(timeout=300)
        load_before = os.getloadavg()
        rounds = asyncio.run(_measure(infra, service, cases))
        table = Table(
            "processes",
            "cases",
            f"cases/s to {STAGES[service].value} (first record applied to last announcement)",
            "ratio to one process",
            "seconds from start",
            f"CPU s of {service}'s processes, same window",
            "CPU s PostgreSQL, same window",
            box=None,
        )
        base = rounds[0]["per_second"]
        for r in rounds:
            table.add_row(
                str(r["processes"]),
                str(r["cases"]),
                f"{r['per_second']:.1f}",
                f"{r['per_second'] / base:.2f}x",
                f"{r['from_start']:.1f}",
                " + ".join(f"{v:.1f}" for v in r["cpu"].values()),
                f"{r['postgresql']:.1f}",
            )
        console.rule(
            f"[bold]Stage of {service}: a backlog of {cases} cases, drained by one process, then two"
        )
        console.print(table)
        console.print(machine_line(info, load_before) + ".", highlight=False)


if __name__ == "__main__":
    app()
