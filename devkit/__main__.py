"""``python -m devkit demo`` runs the platform with a demo load; ``up`` keeps it running."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import httpx
import typer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from contracts.routes import RouteBook
from contracts.status import CaseStatus
from corridor.auth import Role
from corridor.kafkaclient import KafkaAccess
from corridor.settings import REPO_ROOT
from devkit import kafkatool, scenario, stackinfo
from devkit.devidp import DevIssuer
from devkit.devinfra.kafka import ADMIN_USER
from devkit.devstack import Stack
from opstools.kafkaadmin import principal_access
from opstools.statusreader import StatusStream

app = typer.Typer(
    rich_markup_mode=None, add_completion=False, help="Run Corridor locally on real Kafka and PostgreSQL."
)
console = Console(width=max(130, Console().width))
RUN_DIR = stackinfo.RUN_DIR


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
    if len(stack.clusters) == 1:
        console.print(f"Kafka: [bold]{stack.bootstrap}[/]   PostgreSQL: [bold]{stack.postgres.dsn()}[/]")
    else:  # a cluster and a PostgreSQL server per mission, linked by each receiving mission's MirrorMaker
        for code, mission in stack.description.missions.items():
            console.print(
                f"{code}: Kafka [bold]{stack.clusters[mission.cluster].bootstrap_servers}[/]   PostgreSQL: "
                f"[bold]{stack.databases[mission.database].dsn()}[/]"
                + (f"   MirrorMaker: {stack.mirrors[code].workdir}" if code in stack.mirrors else "")
            )
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


@app.command(
    "kafka-tool",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def kafka_tool(
    ctx: typer.Context,
    tool: Annotated[str, typer.Argument(help="consumer-groups, console-consumer, topics or acls")],
    stack: Annotated[str, typer.Option(help="The stack under .run/ (make up: up)")] = "up",
    # Not --principal: the ACL tool has an option of that name.
    principal: Annotated[
        str,
        typer.Option(
            "--as-principal",
            help="Whose Kafka credentials, from the stack's secrets (admin: the super user, for "
            "what operations may not do, e.g. topics --describe or acls --list)",
        ),
    ] = "operations",
) -> None:
    """Run one of Kafka's own tools against a running local stack, e.g.
    ``python -m devkit kafka-tool consumer-groups --describe --all-groups``; the arguments after the
    tool's name are the tool's (see docs/monitoring.md)."""
    workdir = RUN_DIR / stack
    cluster = workdir / "kafka" / "cluster.json"
    if not cluster.is_file():
        raise typer.BadParameter(
            f"no Kafka in {workdir}: start the stack first (make up)", param_hint="--stack"
        )
    ports = json.loads(cluster.read_text())["broker_ports"]
    bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports)
    if principal == ADMIN_USER:
        password = (workdir / "kafka" / "admin.password").read_text().strip()
        access = KafkaAccess(bootstrap=bootstrap, username=ADMIN_USER, password=SecretStr(password))
    else:
        access = principal_access(bootstrap, workdir / "secrets" / "kafka", principal)
    config = kafkatool.write_client_properties(
        access, workdir / "secrets" / "kafka" / f"{principal}.client.properties"
    )
    raise typer.Exit(subprocess.call(kafkatool.command(tool, access, config, ctx.args)))


def deployment_path(name: str) -> Path:
    """A description named by its shape (``deploy/deployments/<name>.yaml``) or by its path."""
    named = REPO_ROOT / "deploy" / "deployments" / f"{name}.yaml"
    path = named if named.exists() else Path(name)
    if not path.is_file():
        raise typer.BadParameter(f"no deployment description {name!r} (try shared or per-mission)")
    return path.resolve()


def _stack_info(stack: Stack) -> stackinfo.StackInfo:
    return stackinfo.StackInfo(
        name=stack.workdir.name,
        pid=os.getpid(),
        workdir=stack.workdir,
        logs=stack.workdir / "logs",
        services={name: spec.url for name, spec in stack.specs.items()},
        kafka_bootstrap=stack.bootstrap,
        kafka_secrets=stack.secrets_dir,
        issuer=stack.issuer.directory,
        operations_page=stack.operations_page_url or None,
        prometheus=stack.prometheus.url if stack.prometheus is not None else None,
        traces=stack.jaeger.url if stack.jaeger is not None else None,
        deployment=stack.deployment_file,
        clusters={name: c.bootstrap_servers for name, c in stack.clusters.items()}
        if len(stack.clusters) > 1
        else {},
    )


@app.command()
def up(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the stack's addresses as one JSON object on stdout (progress goes to stderr).",
        ),
    ] = False,
    deployment: Annotated[
        str,
        typer.Option(
            "--deployment",
            help="A deployment description: `shared` (one Kafka cluster), `per-mission` (a cluster and "
            "a database per mission, linked by MirrorMaker 2), or the path of a description file.",
        ),
    ] = "shared",
) -> None:
    """Start everything and keep it running until Ctrl-C.

    The addresses are also written to .run/up/stack.json, where every other `corridor` command finds
    them; logs are in .run/up/logs/ (one JSON line per entry).
    """
    global console
    if as_json:
        console = Console(stderr=True, width=max(130, Console().width))
    with Stack(
        _fresh("up"), deployment_file=deployment_path(deployment), prometheus=True, tracing=True
    ) as stack:
        stack.start_infra()
        stack.start_services()
        stack.start_operations_page()
        info = _stack_info(stack)
        stackinfo.write(info)
        if as_json:
            print(info.model_dump_json(indent=2), flush=True)
        _print_services(stack)
        console.print(
            f"Logs: [bold]{info.logs}[/]   Addresses (JSON): [bold]{stackinfo.path_of(info.name)}[/]"
        )
        console.print(
            f"Operations page: [bold]{stack.operations_page_url}[/] (sign in with "
            f"[bold]python -m devkit token --role operations_viewer --stack {stack.workdir.name}[/])"
        )
        if stack.prometheus is not None:
            console.print(
                f"Prometheus: [bold]{stack.prometheus.url}[/] (alerts: {stack.prometheus.url}/alerts; "
                f"rules in deploy/prometheus)"
            )
        if stack.jaeger is not None:
            console.print(
                f"Traces (Jaeger): [bold]{stack.jaeger.url}[/]; one case's journey: search the tag "
                "corridor.case_id=<case id> (docs/tracing.md)"
            )
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
                if stack.operations_page is not None and stack.operations_page.poll() is not None:
                    console.print("[red]the operations page exited; restarting[/]")
                    stack.start_operations_page()
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            stackinfo.remove(info.name)
        console.print("Stopping...")


@app.command()
def journey(
    case_id: Annotated[str, typer.Argument(help="The case's id (intake returned it)")],
    stack: Annotated[
        str, typer.Option(help="The stack under .run/ whose Jaeger to ask (make up: up)")
    ] = "up",
    queries: Annotated[bool, typer.Option(help="Also list each database query")] = False,
) -> None:
    """One case's spans from every service, oldest first, read from the stack's Jaeger."""
    from datetime import UTC, datetime

    from devkit import journey as trail

    workdir = RUN_DIR / stack
    if not (workdir / "jaeger" / "jaeger.json").is_file():
        raise typer.BadParameter(
            f"no Jaeger in {workdir}: start the stack first (make up)", param_hint="--stack"
        )
    traces = trail.case_traces(trail.query_url(workdir), case_id)
    table = Table(title=f"Case {case_id}: {len(traces)} traces")
    for column in ("time (UTC)", "service", "span", "trace", "links to"):
        table.add_column(column)
    for step in trail.steps(traces, case_id, queries=queries):
        at = datetime.fromtimestamp(step.start_us / 1e6, UTC).strftime("%H:%M:%S.%f")[:-3]
        table.add_row(
            at, step.service, step.operation, step.trace_id[:12], " ".join(t[:12] for t in step.links)
        )
    console.print(table)


if __name__ == "__main__":
    app()
