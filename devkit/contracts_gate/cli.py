"""``python -m devkit.contracts_gate``: export the event schemas, check they are current, gate
compatibility.

``export`` writes ``contracts/schemas/<event type>.json`` from the models (never deletes a file),
``check`` fails when a committed file differs from its model, ``compat`` fails when the current
schemas break any earlier committed version (the rule is in ``devkit/contracts_gate/compat.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

import contracts  # imports every contracts module, so every event type is registered
from devkit.contracts_gate import compat

app = typer.Typer(
    rich_markup_mode=None,
    add_completion=False,
    no_args_is_help=True,
    help="Corridor event schemas: export, check they are up to date, gate compatibility.",
)
console = Console(soft_wrap=True, highlight=False)

SchemaDir = Annotated[
    Path, typer.Option("--schema-dir", help="Where the schema files live.", show_default=False)
]


def current_schemas() -> dict[str, compat.Schema]:
    return compat.generate(contracts.all_event_types())


@app.command()
def export(schema_dir: SchemaDir = compat.SCHEMA_DIR) -> None:
    """(Re)write one schema file per registered event type. Never deletes a file."""
    schemas = current_schemas()
    written = compat.write_schemas(schema_dir, schemas)
    for path in written:
        console.print(f"wrote {escape(str(path))}")
    console.print(f"{len(schemas)} event types, {len(written)} schema files written")
    for path in compat.unregistered_files(schema_dir, schemas):
        console.print(
            f"[yellow]note:[/] {escape(path.name)} has no registered model; `compat` reports it as removed"
        )


@app.command()
def check(schema_dir: SchemaDir = compat.SCHEMA_DIR) -> None:
    """Fail if a schema file is missing or differs from what the models generate."""
    problems = compat.drift(schema_dir, current_schemas())
    if not problems:
        console.print("[green]schemas up to date[/]")
        return
    for problem in problems:
        console.print(f"[red]{problem.problem}:[/] {escape(problem.path.name)}")
        if problem.diff:
            console.print(escape(problem.diff.rstrip("\n")), style="dim")
    console.print("[red bold]schemas out of date: run `make contracts`[/] and commit the result")
    raise typer.Exit(1)


@app.command(name="compat")
def compat_command(
    schema_dir: SchemaDir = compat.SCHEMA_DIR,
    repo: Annotated[
        Path | None, typer.Option(help="Repository root (default: the one holding the schemas).")
    ] = None,
    allow_shallow: Annotated[
        bool, typer.Option(help="Run in a shallow clone, comparing only the versions it has.")
    ] = False,
) -> None:
    """Fail if a current schema breaks any earlier committed version of its event type."""
    root = repo or compat.find_repo_root(schema_dir if schema_dir.is_dir() else schema_dir.parent)
    if root is None:
        console.print("[red]compat needs the git history: run it in a git clone of the repository[/]")
        raise typer.Exit(2)
    try:
        reports = compat.check_history(root, schema_dir, current_schemas(), allow_shallow=allow_shallow)
    except compat.HistoryError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from exc

    console.print(f"Rule: {compat.RULE}")
    for report in reports:
        name = escape(report.event_type)
        if report.status == "breaking":
            console.print(f"[red]✗ {name}: BREAKING[/]")
        elif report.status == "new":
            console.print(f"[green]✓ {name}[/]: new event type, no earlier version")
        else:
            count = len(report.versions)
            console.print(f"[green]✓ {name}[/]: compatible with {count} earlier version(s)")
        for text, labels in _grouped(report.breaking).items():
            console.print(f"    [red]{escape(text)}[/]  [dim](against {escape(', '.join(labels))})[/]")
        for text, labels in _grouped(report.notes).items():
            console.print(f"    [dim]note: {escape(text)} (against {escape(', '.join(labels))})[/]")

    broken = [r for r in reports if r.status == "breaking"]
    if broken:
        console.print(
            f"[red bold]{len(broken)} event type(s) break compatibility.[/] Make the change compatible, "
            "or publish it as a new event type (a new model with the next .vN) and keep the old one."
        )
        raise typer.Exit(1)
    console.print(f"[green]{len(reports)} event types compatible[/]")


def _grouped(changes: list[tuple[str, compat.Change]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for label, change in changes:
        grouped.setdefault(str(change), []).append(label)
    return grouped
