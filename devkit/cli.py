"""``corridor``: one command for everything a person runs against Corridor.

Commands that talk to a running local stack find it by themselves (``corridor up`` writes its
addresses to ``.run/up/stack.json``); nothing assumes fixed ports. A stack, broker or service that
cannot be reached is one line saying what to do, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.markup import escape

import devkit.__main__ as local
from contracts import topics
from contracts.envelope import CloudEvent, EnvelopeError, decode_headers
from contracts.status import CaseStatusChanged
from corridor.auth import Role
from corridor.kafkaclient import KafkaAccess
from devkit import stackinfo
from devkit.contracts_gate.cli import app as contracts_app
from devkit.devidp import DevIssuer
from opstools import deadletters
from services.intake.bulk import cli as bulk

app = typer.Typer(
    rich_markup_mode=None,
    name="corridor",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Run Corridor locally, import registrations, follow the status stream, handle dead letters.",
)
err = Console(stderr=True, highlight=False, soft_wrap=True)

StackName = Annotated[
    str, typer.Option("--stack", help="The local stack to use (`corridor up` runs the one called up).")
]

app.command("up")(local.up)
app.command("demo")(local.demo)
app.command("token")(local.token)
app.command(
    "kafka-tool",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)(local.kafka_tool)
app.add_typer(
    contracts_app, name="contracts", help="Event contracts: export, check and compare the JSON Schemas."
)


def _stack_operations_access(stack: str = "up") -> KafkaAccess:
    """The running stack's broker as its operations principal (the operator's, break-glass)."""
    info = stackinfo.find(stack)
    return KafkaAccess.from_env(
        {
            "CORRIDOR_KAFKA_BOOTSTRAP": info.kafka_bootstrap,
            "CORRIDOR_KAFKA_USERNAME": "operations",
            "CORRIDOR_KAFKA_PASSWORD_FILE": str(info.password_file("operations")),
        }
    )


# Options or CORRIDOR_KAFKA_* name another deployment; otherwise the dead-letter commands use the
# running local stack.
deadletters.local_stack = _stack_operations_access

app.add_typer(
    deadletters.app,
    name="deadletters",
    help="Dead letters: `list`, `show ADDRESS`, `replay ADDRESS...`; an address is dlt.<consumer>:<partition>:<offset>.",
)


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or JSON")],
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", help="The office or batch: row keys are unique within it [the file's name]."
        ),
    ] = None,
    stack: StackName = "up",
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", help="Where to write the per-row report [.run/<stack>/imports/FILE.report.json]."
        ),
    ] = None,
    chunk: Annotated[int, typer.Option("--chunk", min=1, max=5000, help="Rows (cases) per request.")] = 500,
    retry_for: Annotated[
        float,
        typer.Option("--retry-for", min=0, help="Seconds to keep retrying while intake is unavailable."),
    ] = 60.0,
) -> None:
    """Register every row of FILE with the running stack's intake, as a caseworker of the host
    mission; importing the same file again creates nothing twice (docs/bulk-import-sample.csv)."""
    info = stackinfo.find(stack)
    token = DevIssuer(info.issuer).token(Role.CASEWORKER, "KAZ", subject="corridor-import")
    target = report or info.workdir / "imports" / f"{file.name}.report.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    chosen = namespace or "".join(c if c.isalnum() or c in "._-" else "-" for c in file.stem)[:64]
    bulk.main(
        file,
        namespace=chosen,
        url=info.url("intake"),
        chunk=chunk,
        report=target,
        token=token,
        fmt=None,
        retry_for=retry_for,
    )


@app.command()
def tail(
    case: Annotated[uuid.UUID | None, typer.Option("--case", help="Only this case.")] = None,
    movement: Annotated[str | None, typer.Option("--movement", help="Only cases on this movement.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line (the CloudEvent).")
    ] = False,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Everything on the stream first, then follow.")
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Stop after this many changes.")] = None,
    stack: StackName = "up",
) -> None:
    """Follow the public status stream (corridor.case-status) in the terminal; Ctrl-C stops."""
    if "CORRIDOR_KAFKA_BOOTSTRAP" in os.environ:
        access = KafkaAccess.from_env(dict(os.environ))
    else:
        access = _stack_operations_access(stack)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_tail(access, case, movement, as_json, from_beginning, limit))


async def _tail(
    access: KafkaAccess,
    case: uuid.UUID | None,
    movement: str | None,
    as_json: bool,
    from_beginning: bool,
    limit: int | None,
) -> None:
    consumer = AIOKafkaConsumer(
        topics.STATUS,
        **access.aiokafka(),
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        request_timeout_ms=15000,
    )
    await consumer.start()
    shown = 0
    try:
        if not as_json:
            err.print(f"following {topics.STATUS} (Ctrl-C stops)")
        async for record in consumer:
            try:
                event = CloudEvent.from_record(decode_headers(record.headers), record.value)
            except EnvelopeError as exc:
                err.print(
                    f"[yellow]{record.partition}:{record.offset} is not a status change ({exc.code})[/]"
                )
                continue
            data = event.data
            if not isinstance(data, CaseStatusChanged):
                continue
            if (case and data.case_id != case) or (movement and data.movement_id != movement):
                continue
            print(json.dumps(_as_json(event)) if as_json else _line(event, data), flush=True)
            shown += 1
            if limit is not None and shown >= limit:
                return
    finally:
        await consumer.stop()


def _as_json(event: CloudEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "time": event.time.isoformat() if event.time else None,
        "data": event.data.model_dump(mode="json"),
    }


def _line(event: CloudEvent, data: CaseStatusChanged) -> str:
    place = f" at {data.place.name} ({data.place.country})" if data.place else ""
    moving = f" on {data.movement_id}" if data.movement_id else ""
    why = f": {data.reason_code}" if data.reason_code else ""
    return (
        f"{data.occurred_at:%Y-%m-%d %H:%M:%S} {data.case_id} {data.status.value}{place}{moving}{why}"
        f" ({data.members} {'person' if data.members == 1 else 'people'}; {event.source})"
    )


def main() -> None:
    """Run the command; what cannot be reached is one line on stderr and exit status 1."""
    # The Kafka client logs each failed connection attempt; the one line below says it once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        app()
    except stackinfo.StackNotRunning as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        sys.exit(1)
    except KafkaError as exc:
        err.print(
            f"[red]cannot reach Kafka ({escape(str(exc))}): is the stack "
            "running (`corridor up`)? For another deployment set CORRIDOR_KAFKA_BOOTSTRAP and its credentials.[/]"
        )
        sys.exit(1)
    except httpx.TransportError as exc:
        err.print(
            f"[red]cannot reach the service ({escape(str(exc) or type(exc).__name__)}): is the stack running?[/]"
        )
        sys.exit(1)
    except OSError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        sys.exit(1)


if __name__ == "__main__":
    main()
