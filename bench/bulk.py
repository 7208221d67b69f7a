"""``python -m bench bulk``: a field office's backlog through ``POST /imports``, in chunks, against
the row-by-row import it replaced, on the same servers in the same command.

Starts its own servers (``bench.infra``: one Kafka node with SASL/SCRAM and ACLs, PostgreSQL with
fsync and synchronous commit on, as production runs) and the intake service as its own process,
and imports generated files like ``docs/bulk-import-sample.csv`` (15% families of three, a
Latin/Cyrillic duplicate pair every few hundred rows, some close and some 40,000 rows apart, 1% of
rows invalid) through the import CLI's own code (``services.intake.bulk.cli.import_file``: the file
parsed, sent in requests, every row's report read back). Timed from reading the file to the last
report.

* **Baseline**: intake with ``CORRIDOR_IMPORT_CHUNK_ROWS=0``, the row-by-row import (one unit of
  work a row, four at once), ``--baseline-rows`` rows.
* **Chunked**: intake as configured by default (``import_chunk_rows`` rows a unit of work), each
  of ``--rows`` (10,000 and 100,000), then the first file again (every row answered what the
  first import answered, ``repeated``).

For each: rows/s, the ratio to the baseline's rows/s, CPU seconds of intake, of PostgreSQL and of
this process (the CLI's side), and how long after the last answer the outbox was empty (the relay
publishes the events of the import while it runs and after).

``--apart`` runs intake as two processes, as a deployment expecting large imports
would: one answering HTTP only (``CORRIDOR_BACKGROUND=false``), which takes the import, and one
running the outbox relay and the consumers (the events of the import, and the status stream read
back); ``--together`` (the default) runs one process doing everything. Both baseline and chunked imports run in
the same shape.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import os
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from bench.stats import cpu_seconds, machine, machine_line, postgres_cpu
from corridor.auth import Role
from devkit.devinfra import procs
from devkit.devstack import service_specs
from services.intake import bulk
from services.intake.bulk.cli import import_file

app = typer.Typer(add_completion=False, help=__doc__)
console = Console(width=max(150, Console().width))
SERVICE = "intake"
WORKER = "intake-relay"
"""With ``--apart``: the intake process running the relay and the consumers."""

_GIVEN = [
    "Farrukh",
    "Murod",
    "Dilnoza",
    "Bakhodur",
    "Sitora",
    "Malika",
    "Rustam",
    "Zarina",
    "Firuz",
    "Nigora",
]
_SYLLABLES = [c + v for c in "bdfklmnprstv" for v in "aeiou"]
_TO_CYRILLIC = dict(zip("bdfklmnprstvaeiou", "бдфклмнпрстваеиоу", strict=True))


def _surname(n: int) -> str:
    """A letters-only name part distinct for every ``n``, even after duplicate detection's
    normalisation (no folded spellings, no doubled letters)."""
    parts = []
    while True:
        n, digit = divmod(n, len(_SYLLABLES))
        parts.append(_SYLLABLES[digit])
        if n == 0:
            return "".join(parts).capitalize()


def generate(path: Path, rows: int, *, travel: date, salt: int) -> int:
    """A CSV of ``rows`` cases; how many persons. People differ between files of different salts."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=bulk.COLUMNS, lineterminator="\n")
    w.writeheader()
    persons = 0
    document = 10_000_000 + salt * 1_000_000

    def person(
        n: int, role: str, given: str, surname: str, born: date, sex: str, **extra: Any
    ) -> dict[str, Any]:
        return {
            "role": role,
            "given_names": given,
            "surname": surname,
            "birth_date": born.isoformat(),
            "sex": sex,
            "nationality": "TJK",
            "current_city": ("Karaganda", "Shymkent", "Almaty")[n % 3],
            "document_type": "passport",
            "document_number": f"BK{document + n * 3 + len(extra)}",
            "document_issuing_country": "TJK",
            "document_issued_on": (travel - timedelta(days=700)).isoformat(),
            "document_expires_on": (travel + timedelta(days=900)).isoformat(),
            **extra,
        }

    far = min(40_000, rows // 2)
    for i in range(rows):
        surname = _surname(salt * 10_000_000 + i) + "zoda"
        born = date(1960, 1, 1) + timedelta(days=(i * 37) % 14_000)
        case = {
            "row_key": f"R{i:07d}",
            "route_id": "kaz-uzb-tjk",
            "planned_travel_date": travel.isoformat(),
            "consent_given": "true",
            "consent_kind": "explicit",
            "consent_scope": "UZB;TJK",
        }
        members = [
            person(
                i,
                "principal",
                _GIVEN[i % len(_GIVEN)],
                surname,
                born,
                "M",
                phone=f"+7 701 555 {i % 10_000:04d}",
            )
        ]
        if i % 20 in (3, 7, 13):
            members.append(
                person(
                    i,
                    "spouse",
                    "Malika",
                    surname,
                    born + timedelta(days=400),
                    "F",
                    vulnerabilities="disability",
                )
            )
            members.append(
                person(
                    i,
                    "child",
                    "Sitora",
                    surname,
                    date(2016, 1, 1) + timedelta(days=i % 1500),
                    "F",
                    document_type="certificate_of_return",
                    document_number=f"CR{document + i * 3 + 2}",
                    document_issued_on=(travel - timedelta(days=5)).isoformat(),
                    document_expires_on=(travel + timedelta(days=25)).isoformat(),
                    proof_type="birth_certificate",
                    proof_number=f"BC-{salt}-{i}",
                    proof_issuing_country="TJK",
                )
            )
        if i % 100 == 11:  # invalid: rejected with its reason
            members[0]["nationality"] = "TJ"
        # The same man twice: in Latin script, then (the next row, or ``far`` rows on) in Cyrillic.
        if i % 500 in (41, 42, 61):
            # 42 repeats 41; 61 repeats the 61 ``far`` rows before (only within the first two
            # stretches of ``far``: a repeat of a repeat would carry another name).
            first = i - 1 if i % 500 == 42 else (i - far if i % 500 == 61 and far <= i < 2 * far else i)
            pair = _surname(10**9 + salt * 10_000_000 + first)
            members[0] |= {
                "surname": f"Dzhuraev{pair.lower()}",
                "given_names": "Bakhodur",
                "birth_date": (date(1970, 1, 1) + timedelta(days=first % 10_000)).isoformat(),
            }
            if first != i:
                members[0] |= {
                    "surname": f"Djuraev{pair.lower()}x",
                    "surname_cyrillic": "Джураев" + "".join(_TO_CYRILLIC.get(c, c) for c in pair.lower()),
                    "given_names_cyrillic": "Баходур",
                }
        for n, member in enumerate(members):
            w.writerow({**(case if n == 0 else {"row_key": case["row_key"]}), **member})
        persons += len(members)
    path.write_text(out.getvalue())
    return persons


@dataclasses.dataclass
class Measured:
    name: str
    rows: int
    persons: int
    seconds: float
    counts: dict[str, int]
    cpu: dict[str, float]
    drained_after: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


async def _outbox_drained(url: str, headers: dict[str, str], timeout: float = 900.0) -> float:
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30.0, headers=headers) as client:
        while time.monotonic() - started < timeout:
            if not (await client.get(url + "/stats")).json()["outbox_pending"]:
                break
            await asyncio.sleep(0.5)
    return time.monotonic() - started


def _run(infra: Any, name: str, path: Path, persons: int, namespace: str, request_rows: int) -> Measured:
    stack = infra.stack
    proc = stack.processes[SERVICE]
    worker = stack.processes.get(WORKER)
    clock = {"intake": proc.pid, "postgres": infra.stack.postgres.pid}
    before = {
        "intake": cpu_seconds(proc.pid, children=True),
        "worker": cpu_seconds(worker.pid, children=True) if worker else 0.0,
        "postgres": postgres_cpu(clock["postgres"]),
    }
    own = time.process_time()
    report = import_file(
        path,
        namespace=namespace,
        url=stack.url(SERVICE),
        chunk=request_rows,
        token=stack.token(Role.CASEWORKER, subject="field-office@bench"),
        fmt="csv",
        retry_seconds=60.0,
    )
    cpu = {
        "intake": cpu_seconds(proc.pid, children=True) - before["intake"],
        **({"worker": cpu_seconds(worker.pid, children=True) - before["worker"]} if worker else {}),
        "postgres": postgres_cpu(clock["postgres"]) - before["postgres"],
        "cli": time.process_time() - own,
    }
    viewer = stack.headers(Role.OPERATIONS_VIEWER)
    drained = asyncio.run(_outbox_drained(stack.url(SERVICE), viewer))
    failed = report["counts"]["failed"]
    if failed:
        raise RuntimeError(f"{name}: {failed} rows failed")
    outcomes = {**report["counts"], "repeated": report.get("repeated", 0)}
    return Measured(name, report["rows"], persons, report["seconds"], outcomes, cpu, drained)


def _start_intake(infra: Any, env: dict[str, str], *, apart: bool) -> None:
    """Intake taking the import; ``apart``: answering HTTP only, beside a process relaying and
    consuming (``WORKER``)."""
    stack = infra.stack
    if not stack.specs:
        count = len(stack.description.instances())
        specs = service_specs(stack.routes_file, procs.free_ports(count), description=stack.description)
        stack.specs = {s.name: s for s in specs if s.name == SERVICE}
        stack.create_database_roles()
    http_only = {"CORRIDOR_BACKGROUND": "false"} if apart else {}
    stack.specs[SERVICE] = dataclasses.replace(stack.specs[SERVICE], extra_env={**env, **http_only})
    stack.start_service(SERVICE, timeout=180.0)
    if apart:
        stack.start_replica(SERVICE, WORKER, extra_env={"CORRIDOR_BACKGROUND": "true"}, timeout=180.0)


def _stop_intake(infra: Any) -> None:
    infra.stack.stop_service(SERVICE)
    if WORKER in infra.stack.specs:
        infra.stack.stop_replica(WORKER)


def _print(results: list[Measured], base: Measured | None) -> None:
    table = Table(
        "import", "rows", "persons", "seconds", "rows/s", "ratio to baseline", "outcomes",
        "CPU s intake HTTP / intake relay+consumers / PostgreSQL / CLI", "outbox empty after",
        title="Bulk import through POST /imports (the CLI's code); ratio = rows/s ÷ the baseline's rows/s",
    )  # fmt: skip
    for m in results:
        ratio = "1.00 (baseline)" if m is base else (f"{m.rate / base.rate:.1f}x" if base else "—")
        table.add_row(
            m.name,
            f"{m.rows:,}",
            f"{m.persons:,}",
            f"{m.seconds:.1f}",
            f"{m.rate:,.0f}",
            ratio,
            ", ".join(f"{n} {k}" for k, n in m.counts.items() if n),
            " / ".join(
                f"{m.cpu[k]:.1f}" if k in m.cpu else "—" for k in ("intake", "worker", "postgres", "cli")
            ),
            f"{m.drained_after:.1f} s",
        )
    console.print(table)


@app.command()
def main(
    rows: Annotated[
        list[int] | None, typer.Option("--rows", "-n", help="Rows of each chunked import [10000, 100000].")
    ] = None,
    baseline_rows: Annotated[
        int, typer.Option(min=0, help="Rows through the row-by-row import (0 skips the baseline).")
    ] = 5_000,
    request_rows: Annotated[
        int, typer.Option(min=1, max=5000, help="Rows per request (the CLI's --chunk).")
    ] = 4_000,
    chunk_rows: Annotated[
        int | None, typer.Option(min=1, help="intake's import_chunk_rows [intake's default].")
    ] = None,
    apart: Annotated[
        bool,
        typer.Option(
            "--apart/--together",
            help="Intake's HTTP in a process of its own, its relay and consumers in another; or one process.",
        ),
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures here.")] = None,
    keep: Annotated[bool, typer.Option(help="Keep the temporary directory (server logs).")] = False,
) -> None:
    """Import generated files through intake, chunked and (baseline) row by row; print rows/s."""
    from bench.infra import temporary

    sizes = rows or [10_000, 100_000]
    info = machine()
    travel = date.today() + timedelta(days=60)
    results: list[Measured] = []
    base: Measured | None = None
    with temporary("corridor-bench-bulk-", keep=keep, say=console.print) as infra:
        console.print(f"starting Kafka and PostgreSQL (fsync, synchronous_commit on) in {infra.workdir}")
        infra.start()
        load_before = os.getloadavg()
        files = []
        for n, size in enumerate([baseline_rows, *sizes]):
            if size:
                path = infra.workdir / f"import-{n}-{size}.csv"
                files.append((path, generate(path, size, travel=travel, salt=n + 1)))
            else:
                files.append((Path(), 0))
        if baseline_rows:
            _start_intake(infra, {"CORRIDOR_IMPORT_CHUNK_ROWS": "0"}, apart=apart)
            console.print(f"baseline: {baseline_rows:,} rows, one transaction a row")
            base = _run(
                infra, "row by row (baseline)", *files[0], f"base-{uuid.uuid4().hex[:6]}", request_rows
            )
            results.append(base)
            console.print(f"  {base.rate:,.0f} rows/s")
            _stop_intake(infra)
        _start_intake(
            infra, {"CORRIDOR_IMPORT_CHUNK_ROWS": str(chunk_rows)} if chunk_rows else {}, apart=apart
        )
        first: tuple[Path, int, str] | None = None
        for (path, persons), size in zip(files[1:], sizes, strict=True):
            namespace = f"bulk-{uuid.uuid4().hex[:6]}"
            first = first or (path, persons, namespace)
            console.print(f"chunked: {size:,} rows")
            m = _run(infra, f"chunked, {size:,} rows", path, persons, namespace, request_rows)
            results.append(m)
            console.print(
                f"  {m.rate:,.0f} rows/s" + (f", {m.rate / base.rate:.1f}x the baseline" if base else "")
            )
        if first:
            m = _run(infra, "the first file again (re-run)", first[0], first[1], first[2], request_rows)
            results.append(m)
        console.print()
        _print(results, base)
        console.print(
            machine_line(info, load_before)
            + " (other processes depress absolute figures; the ratios are measured in the same run).",
            highlight=False,
        )
        if json_out is not None:
            json_out.write_text(
                json.dumps(
                    {
                        "machine": info,
                        "results": [dataclasses.asdict(m) | {"rows_per_second": m.rate} for m in results],
                    },
                    indent=2,
                )
            )
