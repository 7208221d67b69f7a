"""``python -m bench``: start Kafka and PostgreSQL in a temporary directory, measure, print figures.

Every figure is the median of ``--repeat`` repetitions, with their spread, and its ratio to a
baseline measured in the same run (repetitions interleaved with the baseline's). bench/README.md
explains what each benchmark measures and how to read the ratios.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bench.stats import CpuClock, Run, Series, machine, ratios

app = typer.Typer(add_completion=False, help=__doc__)
console = Console(width=max(150, Console().width))


@dataclass
class Config:
    events: int
    repeat: int
    latency_rate: float
    latency_events: int
    durable: bool
    http: bool
    http_requests: int
    http_concurrency: int


@dataclass
class Results:
    series: list[Series] = field(default_factory=list)

    def add(self, series: Series) -> Series:
        self.series.append(series)
        return series


def _progress(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}")


def _rate(run: Run, unit: str) -> str:
    return f"{run.rate:,.0f} {unit}"


# ------------------------------------------------------------------------------ the benchmarks


async def _publishing(cfg: Config, infra: Any, results: Results) -> None:
    from bench import publishing

    raw = await publishing.new_producer(infra.writer, "bench-raw")
    relay_producer = await publishing.new_producer(infra.writer, "bench-relay")
    try:
        events = publishing.status_events(cfg.events)
        warm = publishing.status_events(min(2000, cfg.events))
        _progress("publishing: warm-up (not counted)")
        await publishing.raw_publish(raw, warm)
        await publishing.outbox_publish(infra.dsn, relay_producer, warm, 100)
        await publishing.outbox_publish(infra.dsn, relay_producer, warm[:500], 1)
        await publishing.relay_drain(infra.dsn, relay_producer, warm)

        base = results.add(
            Series(
                "Publishing",
                "raw producer, batches of 500 (baseline)",
                "events/s",
                baseline=True,
                latency_label="send→ack",
            )
        )
        per_row = results.add(
            Series(
                "Publishing",
                "outbox, 1 row/transaction + relay",
                "events/s",
                latency_label="commit→ack",
                note="one writer connection; relay runs alongside in the same process",
            )
        )
        per_100 = results.add(
            Series(
                "Publishing",
                "outbox, 100 rows/transaction + relay",
                "events/s",
                latency_label="commit→ack",
                note="one writer connection; relay runs alongside in the same process",
            )
        )
        alone = results.add(
            Series(
                "Publishing",
                "relay alone: drain() over a pre-filled outbox",
                "events/s",
                note="relay capacity without a writer (rows loaded by COPY beforehand, not timed)",
            )
        )
        for rep in range(1, cfg.repeat + 1):
            run = await publishing.raw_publish(raw, events)
            base.runs.append(run)
            _progress(f"publishing {rep}/{cfg.repeat}: raw {_rate(run, 'events/s')}")
            run = await publishing.relay_drain(infra.dsn, relay_producer, events)
            alone.runs.append(run)
            _progress(f"publishing {rep}/{cfg.repeat}: relay alone {_rate(run, 'events/s')}")
            for series, rows in ((per_row, 1), (per_100, 100)):
                run = await publishing.outbox_publish(infra.dsn, relay_producer, events, rows)
                series.runs.append(run)
                _progress(
                    f"publishing {rep}/{cfg.repeat}: outbox {rows} row(s)/tx {_rate(run, 'events/s')} "
                    f"(writer alone {run.extra['write_rate']:,.0f}/s)"
                )

        if cfg.latency_events > 0:
            paced = publishing.status_events(cfg.latency_events)
            label = f"at a steady {cfg.latency_rate:,.0f} events/s"
            lbase = results.add(
                Series(
                    "Latency",
                    f"raw producer, one send at a time {label} (baseline)",
                    "events/s",
                    baseline=True,
                    latency_label="send→ack",
                )
            )
            lout = results.add(
                Series(
                    "Latency",
                    f"outbox, 1 row/transaction + relay {label}",
                    "events/s",
                    latency_label="commit→ack",
                )
            )
            for rep in range(1, cfg.repeat + 1):
                run = await publishing.raw_latency(raw, paced, cfg.latency_rate)
                lbase.runs.append(run)
                run2 = await publishing.outbox_latency(infra.dsn, relay_producer, paced, cfg.latency_rate)
                lout.runs.append(run2)
                _progress(
                    f"latency {rep}/{cfg.repeat}: raw p50 {run.p50:.1f} ms p95 {run.p95:.1f} ms; "
                    f"outbox p50 {run2.p50:.1f} ms p95 {run2.p95:.1f} ms"
                )
    finally:
        await raw.stop()
        await relay_producer.stop()


async def _consuming(cfg: Config, infra: Any, results: Results) -> None:
    from bench import consuming, publishing
    from corridor import db

    producer = await publishing.new_producer(infra.writer, "bench-fill")
    pool = await db.create_pool(infra.dsn)
    try:
        _progress("consuming: warm-up (not counted)")
        warm = await consuming.fill(infra.reader, producer, min(2000, cfg.events))
        await consuming.plain_consume(infra.reader, warm)
        await consuming.handled_consume(infra.reader, infra.dsn, pool, warm)
        span = await consuming.fill(infra.reader, producer, cfg.events)

        base = results.add(
            Series("Consuming", "plain consumer, does nothing (baseline)", "records/s", baseline=True)
        )
        handled = results.add(
            Series(
                "Consuming",
                "same records through EventConsumer.handle",
                "records/s",
                note="decode + inbox + handler insert, 1 transaction/record",
            )
        )
        for rep in range(1, cfg.repeat + 1):
            run = await consuming.plain_consume(infra.reader, span)
            base.runs.append(run)
            run2 = await consuming.handled_consume(infra.reader, infra.dsn, pool, span)
            handled.runs.append(run2)
            _progress(
                f"consuming {rep}/{cfg.repeat}: plain {_rate(run, 'records/s')}, "
                f"handled {_rate(run2, 'records/s')} (handle() alone {run2.extra['handle_rate']:,.0f}/s)"
            )
    finally:
        await pool.close()
        await producer.stop()


async def _measure(cfg: Config, infra: Any, results: Results) -> None:
    await _publishing(cfg, infra, results)
    await _consuming(cfg, infra, results)


# ------------------------------------------------------------------------------ report


def _ratio(value: float) -> str:
    """Two decimals, or two significant digits for ratios below 0.1 (0.0078, not 0.01)."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def _fmt(value: float, digits: int = 0) -> str:
    return "—" if math.isnan(value) else f"{value:,.{digits}f}"


def _table(results: Results) -> tuple[Table, list[str]]:
    """The figures, and the footnotes the table's rows refer to."""
    table = Table(title="Corridor benchmarks: median of the repetitions; ratio = path ÷ its group's baseline")
    table.add_column("path")
    table.add_column("rate (median)", justify="right")
    table.add_column("min-max (spread)", justify="right")
    table.add_column("ratio (per-rep range)", justify="right")
    table.add_column("latency p50 / p95", justify="right")
    table.add_column("latency ratio", justify="right")
    footnotes: list[str] = []
    baselines = {s.group: s for s in results.series if s.baseline}
    groups = list(dict.fromkeys(s.group for s in results.series))
    for n, group in enumerate(groups):
        table.add_row(f"[bold]{group}[/]", end_section=False)
        for s in (x for x in results.series if x.group == group):
            base = baselines[group]
            rates = s.rates()
            name = s.name
            notes = [s.note] if s.note else []
            if not math.isnan(w := s.median_extra("write_rate")):
                notes.append(f"the writer alone committed {w:,.0f} events/s")
            if not math.isnan(p := s.median_extra("passes")) and p > 1:
                notes.append(f"read the records {p:.0f} times per repetition (≥ 1 s timed)")
            if s.group == "Latency":
                notes.append(f"{len(s.runs[0].latencies_ms)} events per repetition")
            if notes:
                footnotes.append("; ".join(notes))
                name += f" [{len(footnotes)}]"
            if s.baseline:
                ratio = "1.00"
            else:
                mid, lo, hi = ratios(s, base)
                ratio = f"{_ratio(mid)} ({_ratio(lo)}-{_ratio(hi)})"
            latency = lat_ratio = ""
            if s.latency_label and s.runs[0].latencies_ms:
                p50, p95 = s.median_p(50), s.median_p(95)
                latency = f"{s.latency_label} {_fmt(p50, 1)} / {_fmt(p95, 1)} ms"
                if not s.baseline and base.latency_label:
                    lat_ratio = f"{p50 / base.median_p(50):.1f}x / {p95 / base.median_p(95):.1f}x"
            table.add_row(
                f"  {name}",
                f"{s.median_rate:,.0f} {s.unit}",
                f"{min(rates):,.0f}-{max(rates):,.0f} (±{s.spread_pct() / 2:.0f}%)",
                ratio,
                latency,
                lat_ratio,
            )
            if not math.isnan(h := s.median_extra("handle_rate")):
                vals = [r.extra["handle_rate"] for r in s.runs]
                pairs = [v / b for v, b in zip(vals, base.rates(), strict=False)]
                footnotes.append(f"time spent inside handle() only: {1000 / h:.2f} ms per record")
                table.add_row(
                    f"    of which handle() alone [{len(footnotes)}]",
                    f"{h:,.0f} {s.unit}",
                    f"{min(vals):,.0f}-{max(vals):,.0f}",
                    f"{_ratio(h / base.median_rate)} ({_ratio(min(pairs))}-{_ratio(max(pairs))})",
                    "",
                    "",
                )
        table.add_row(end_section=n < len(groups) - 1)
    return table, footnotes


def _print_machine(info: dict[str, Any], cfg: Config, extra: dict[str, Any]) -> None:
    load = " ".join(f"{x:.2f}" for x in info["load_average"])
    console.print(
        f"[bold]Machine[/]: {info['cpu']}; {info['usable_cores']} usable of {info['cores']} cores; "
        f"{info['memory_gib']} GiB; load average (1/5/15 min) {load}"
    )
    pkgs = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    console.print(
        f"[bold]Versions[/]: Python {info['python']}, {pkgs}; Kafka {info['kafka']} ({info['java']}); "
        f"PostgreSQL {extra.get('postgres', '?')}; {info['os']}; git {info['git']}"
    )
    console.print(
        f"[bold]Run[/]: {cfg.events:,} events per repetition, {cfg.repeat} repetitions; "
        f"PostgreSQL fsync {'on' if cfg.durable else 'off'}; 1 Kafka node (replication 1, acks=all); "
        "servers and the benchmark share this machine's cores"
    )
    cores = info["usable_cores"] or 1
    if info["load_average"][0] > 0.5 * cores:
        console.print(
            f"[yellow]The machine was busy before the run (load {info['load_average'][0]:.2f} on "
            f"{cores} cores): expect noisier figures.[/]"
        )


@app.command()
def main(
    events: Annotated[
        int, typer.Option("--events", "-n", min=100, help="Events (records) per repetition of each path.")
    ] = 5_000,
    repeat: Annotated[
        int, typer.Option("--repeat", "-r", min=1, help="Repetitions; figures are their median.")
    ] = 3,
    latency_rate: Annotated[
        float, typer.Option(min=1.0, help="Pace of the latency benchmark in events/s (far below capacity).")
    ] = 200.0,
    latency_events: Annotated[
        int, typer.Option(min=0, help="Events per repetition of the latency benchmark (0 skips it).")
    ] = 400,
    durable: Annotated[
        bool, typer.Option("--durable/--no-durable", help="PostgreSQL with fsync=on (commits flush the WAL).")
    ] = False,
    http: Annotated[
        bool,
        typer.Option("--http/--no-http", help="Also measure registration over HTTP on the intake service."),
    ] = True,
    http_requests: Annotated[
        int, typer.Option(min=10, help="Requests per repetition of the HTTP benchmark.")
    ] = 400,
    http_concurrency: Annotated[int, typer.Option(min=1, help="Concurrent HTTP clients.")] = 8,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write every figure to this JSON file.")
    ] = None,
    keep: Annotated[
        bool, typer.Option(help="Keep the temporary directory (server logs) after the run.")
    ] = False,
) -> None:
    """Start Kafka (1 node) and PostgreSQL in a temporary directory and print benchmark figures."""
    from bench.infra import Infra
    from corridor.telemetry import setup_tracing

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The services install an SDK tracer provider (no exporter unless asked), so the relay's spans
    # cost here what they cost in a service.
    setup_tracing("bench", console=False)
    cfg = Config(events, repeat, latency_rate, latency_events, durable, http, http_requests, http_concurrency)
    info = machine()
    began = time.monotonic()
    cpu_start = CpuClock.now()
    workdir = Path(tempfile.mkdtemp(prefix="corridor-bench-"))
    results = Results()
    infra = Infra(workdir, durable=durable)
    try:
        _progress(f"starting PostgreSQL and Kafka in {workdir}")
        infra.start()
        _progress(f"servers ready after {time.monotonic() - began:.1f} s")
        if http:
            from bench import registration

            registration.run(cfg, infra, results, _progress)
        asyncio.run(_measure(cfg, infra, results))
    finally:
        infra.stop()
        if keep:
            console.print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    info_after = os.getloadavg()
    elapsed = time.monotonic() - began
    cpu = CpuClock.now().since(cpu_start)  # after infra.stop(): the servers' CPU time is counted
    console.print()
    _print_machine(info, cfg, {"postgres": infra.postgres_version})
    table, footnotes = _table(results)
    console.print(table)
    for i, note in enumerate(footnotes, start=1):
        console.print(f"  [{i}] {note}", highlight=False)
    console.print(
        f"Whole run {elapsed:.0f} s. CPU over the run: {cpu['busy_core_seconds']:.0f} of "
        f"{cpu['available_core_seconds']:.0f} core-seconds busy; this benchmark and its servers "
        f"{cpu['ours_core_seconds']:.0f}, other processes {cpu['others_core_seconds']:.0f}. "
        f"Load average after the run {' '.join(f'{x:.2f}' for x in info_after)}.",
        highlight=False,
    )
    if cpu["others_core_seconds"] > 0.1 * cpu["available_core_seconds"]:
        console.print(
            "[yellow]Other processes took a sizeable share of the CPU during the run: absolute rates are "
            "depressed and noisy; the ratios (paths and baselines interleaved) are the figures to use.[/]"
        )
    console.print("Ratios compare paths measured in this same run; absolute rates depend on the machine.")
    if json_out is not None:
        json_out.write_text(
            json.dumps(
                {
                    "machine": {**info, "postgres": infra.postgres_version},
                    "config": cfg.__dict__,
                    "load_average_after": list(info_after),
                    "cpu": cpu,
                    "seconds": elapsed,
                    "series": [s.as_dict() for s in results.series],
                },
                indent=2,
            )
        )
        console.print(f"wrote {json_out}")


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["e2e"]:  # the end-to-end benchmark (bench/e2e.py), with options of its own
        from bench.e2e import app as e2e

        e2e(args=sys.argv[2:], prog_name="python -m bench e2e")
    elif sys.argv[1:2] == ["requests"]:  # statements and time of the vehicle-wide request paths
        from bench.requests import app as requests

        requests(args=sys.argv[2:], prog_name="python -m bench requests")
    elif sys.argv[1:2] == ["stage"]:  # one service's backlog drained by one process, then two
        from bench.stage import app as stage

        stage(args=sys.argv[2:], prog_name="python -m bench stage")
    elif sys.argv[1:2] == ["bulk"]:  # the bulk import benchmark (bench/bulk.py)
        from bench.bulk import app as bulk

        bulk(args=sys.argv[2:], prog_name="python -m bench bulk")
    else:
        app()
