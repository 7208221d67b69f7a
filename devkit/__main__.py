"""``python -m devkit demo`` runs the platform with a demo load; ``up`` keeps it running."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from contracts.routes import RouteBook
from contracts.status import CaseStatus
from corridor.auth import Role
from corridor.settings import REPO_ROOT
from devkit import scenario
from devkit.devidp import DevIssuer
from devkit.devstack import Stack
from opstools.statusreader import StatusStream

app = typer.Typer(add_completion=False, help="Run Corridor locally on real Kafka and PostgreSQL.")
console = Console(width=max(130, Console().width))
RUN_DIR = REPO_ROOT / ".run"


def _fresh(name: str) -> Path:
    workdir = RUN_DIR / name
    if workdir.exists():
        import shutil

        shutil.rmtree(workdir)
    return workdir


def _print_services(stack: Stack) -> None:
    table = Table(title="Corridor services", show_lines=False)
    table.add_column("service")
    table.add_column("url")
    table.add_column("API docs")
    for name, spec in stack.specs.items():
        table.add_row(name, spec.url, spec.url + "/docs")
    console.print(table)
    console.print(f"Kafka: [bold]{stack.bootstrap}[/]   PostgreSQL: [bold]{stack.postgres.dsn()}[/]")
    if "reporting" in stack.specs:
        reports = stack.url("reporting") + "/reports"
        console.print(
            f"Reports (role operations_viewer, docs/reporting.md): [bold]{reports}/situation/<YYYY-MM-DD>.pdf[/], "
            f"[bold]{reports}/hxl/daily.csv?date=<YYYY-MM-DD>[/]"
        )
    console.print(
        "Every API but /health needs a token of the stack's issuer, e.g. "
        f"[bold]python -m devkit token --role caseworker --stack {stack.workdir.name}[/] (README: Security)\n"
        f"Kafka principals' passwords (SASL/SCRAM-SHA-512): [bold]{stack.secrets_dir}/<principal>.password[/]; "
        f"Kafka format {stack.kafka.format_seconds:.1f}s, admin step {stack.admin_seconds:.1f}s"
    )


def _print_timeline(stream: StatusStream, case_id: object, title: str) -> None:
    table = Table(title=f"{title}: case {case_id}")
    for col in ("#", "status", "place", "time (UTC)", "reason", "source"):
        table.add_column(col)
    for i, event in enumerate(stream.timelines.get(case_id, []), start=1):  # type: ignore[call-overload]
        d = event.data
        place = f"{d.place.name} ({d.place.country})" if d.place else ""
        table.add_row(
            str(i),
            d.status.value,
            place,
            d.occurred_at.strftime("%H:%M:%S.%f")[:-3],
            d.reason or "",
            event.source.removeprefix("/missions/").replace("/", " "),
        )
    console.print(table)


async def _demo(stack: Stack) -> None:
    route = RouteBook.load(stack.routes_file).routes[0]
    travel = date.today() + timedelta(days=1)
    stream = StatusStream(stack.kafka_access("operations"))
    await stream.start()
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            family = await scenario.register(client, stack, scenario.family_of_three(travel))
            single = await scenario.register(client, stack, scenario.single_traveller(travel))
            console.print(
                f"a caseworker registered family case {family} and single traveller {single} "
                "(each action below in its own role: coordinator plans and boards, each post's officer clears)"
            )
            await stream.wait_for([family, single], CaseStatus.ELIGIBLE, 60)
            console.print("both eligible; planning a movement on one 45-seat bus")
            await scenario.run_movement(
                client, stack, stream, route, travel, vehicles=[("BUS-01", 45)], expect=[family, single]
            )
            await stream.wait_for([family, single], CaseStatus.ARRIVED, 60)
        _print_timeline(stream, family, "Family of three")
        _print_timeline(stream, single, "Single traveller")
        await _save_reports(stack, RUN_DIR / "demo-reports")
    finally:
        await stream.stop()


def _write_files(directory: Path, files: dict[str, bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_bytes(content)


async def _save_reports(stack: Stack, directory: Path) -> None:
    """Today's situation report (PDF) and HXL figures, as a coordinator downloads them."""
    reports, today = stack.url("reporting") + "/reports", date.today().isoformat()
    headers = stack.headers(Role.OPERATIONS_VIEWER, subject="coordinator@demo")
    async with httpx.AsyncClient(timeout=30.0, headers=headers) as client:
        for _ in range(100):  # reporting reads the stream a moment after the arrivals
            daily = await client.get(f"{reports}/hxl/daily.csv", params={"date": today})
            if daily.status_code == 200 and f"\n{today},arrived," in daily.text:
                break
            await asyncio.sleep(0.3)
        pdf = await client.get(f"{reports}/situation/{today}.pdf")
    files = {f"daily-{today}.csv": daily.content, f"situation-{today}.pdf": pdf.content}
    await asyncio.to_thread(_write_files, directory, files)
    console.print(
        f"Reports (operations viewer): [bold]{reports}/situation/{today}.pdf[/] and "
        f"[bold]{reports}/hxl/daily.csv?date={today}[/], saved in {directory}"
    )


@app.command()
def demo() -> None:
    """Start everything, move a family and a single traveller to arrival, print their timelines, stop."""
    started = time.monotonic()
    with Stack(_fresh("demo")) as stack:
        console.print("[bold]Starting PostgreSQL and Kafka[/] (first run fetches Kafka with Maven)...")
        stack.start_infra()
        console.print("Starting the services...")
        stack.start_services()
        _print_services(stack)
        asyncio.run(_demo(stack))
        console.print("[bold green]Both cases arrived.[/] Stopping everything.")
    console.print(f"demo finished in {time.monotonic() - started:.1f}s")


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="The role the token grants")],
    mission: Annotated[str, typer.Option(help="The mission the role holds in")] = "KAZ",
    checkpoint: Annotated[str | None, typer.Option(help="A border officer's checkpoint")] = None,
    subject: Annotated[str | None, typer.Option(help="Who (the actor in audit records)")] = None,
    stack: Annotated[str, typer.Option(help="The stack under .run/ whose issuer signs (make up: up)")] = "up",
    lifetime: Annotated[float, typer.Option(help="Seconds until it expires")] = 3600.0,
) -> None:
    """Print a development access token for a running local stack, e.g.
    ``curl -H "Authorization: Bearer $(python -m devkit token --role caseworker)" ...``."""
    directory = RUN_DIR / stack / "idp"
    if not (directory / "issuer-key.pem").exists():
        raise typer.BadParameter(
            f"no issuer in {directory}: start the stack first (make up)", param_hint="--stack"
        )
    if role == Role.BORDER_OFFICER and checkpoint is None:
        raise typer.BadParameter("a border officer's token names their checkpoint", param_hint="--checkpoint")
    print(DevIssuer(directory).token(role, mission, checkpoint, subject, lifetime=lifetime))


@app.command()
def up() -> None:
    """Start everything and keep it running until Ctrl-C."""
    with Stack(_fresh("up")) as stack:
        stack.start_infra()
        stack.start_services()
        _print_services(stack)
        console.print("Running. Press Ctrl-C to stop.")
        stop = False

        def _stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        try:
            while not stop:
                for name, proc in stack.processes.items():
                    if proc.poll() is not None:
                        console.print(f"[red]{name} exited with {proc.returncode}; restarting[/]")
                        stack.start_service(name)
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        console.print("Stopping...")


if __name__ == "__main__":
    app()
