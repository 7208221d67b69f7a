"""``python -m services.intake.bulk FILE --namespace NS --url URL``: send a file's rows to a running
intake in chunks and write the report of every row."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import pydantic_core
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from contracts.httpclient import RetryableAnswer, RetryPolicy, described, retryable
from services.intake.bulk.format import NAMESPACE_PATTERN, FileRejected, counts, entry, reason, repeats
from services.intake.bulk.parse import command_for, parse

# --- CLI -----------------------------------------------------------------------------------------


def _send(
    client: httpx.Client, url: str, body: bytes, params: dict[str, str], retry_seconds: float
) -> httpx.Response:
    """POST a chunk (its rows as a JSON array), retrying (backoff with jitter,
    ``contracts.httpclient``) while the service restarts or the link drops: rows are keyed
    (row_key), so a repeat creates nothing."""
    policy = RetryPolicy(attempts=1_000, timeout=retry_seconds, wait_initial=0.5, wait_max=5.0)
    headers = {"Content-Type": "application/json"}
    try:
        for attempt in policy.attempts_of():
            with attempt:
                response = client.post(url, content=body, params=params, headers=headers)
                if retryable(response):
                    raise RetryableAnswer(response)
    except RetryableAnswer as exc:
        raise ConnectionError(described(exc.response)) from None
    except httpx.TransportError as exc:
        raise ConnectionError(repr(exc)) from exc
    return response


def import_file(
    path: Path,
    *,
    namespace: str,
    url: str,
    chunk: int,
    token: str,
    fmt: Literal["csv", "json"],
    retry_seconds: float = 60.0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Send the file's rows to a running intake in chunks; the report of every row, in file order.

    Rows that cannot be sent as JSON (no row_key, cells beyond the header, case columns that
    disagree) are rejected here, by the same code the service runs. Rows that fail on the service's
    passing problem are sent once more at the end. Raises ``Incomplete`` (with the report so far)
    if intake stays unreachable or answers an error; rows not imported are reported ``failed``.
    """
    started = time.perf_counter()
    rows = parse(path.read_bytes(), fmt)
    entries: list[dict[str, Any]] = [{}] * len(rows)
    to_send: list[int] = []
    for i, row in enumerate(rows):
        if row.problems or row.body is None or row.row_key is None:
            entries[i] = entry(row, "rejected", reasons=command_for(row, namespace)[1])
        else:
            to_send.append(i)
    task = progress.add_task("importing", total=len(rows)) if progress else None
    if progress and task is not None:
        progress.update(task, advance=len(rows) - len(to_send))
    endpoint = url.rstrip("/") + "/imports"
    error: str | None = None

    actor: list[str] = []  # as intake recorded it: the token's subject

    def body_of(part: list[int]) -> bytes:
        return pydantic_core.to_json([rows[i].as_item() for i in part])

    def take(part: list[int], response: httpx.Response, advance: bool) -> None:
        """The part's rows as intake answered them."""
        answer = response.json()
        actor[:] = [answer["actor"]]
        for e in answer["entries"]:
            i = part[e.pop("item")]
            e["reasons"] = rows[i].annotate(e["reasons"])
            entries[i] = {**e, **rows[i].where()}
        if progress and task is not None and advance:
            progress.update(task, advance=len(part))

    def send_all(client: httpx.Client, batch: list[int], *, advance: bool) -> str | None:
        parts = [batch[start : start + chunk] for start in range(0, len(batch), chunk)]
        # One request at a time, in file order, each sent once the one before is answered (so a
        # row is flagged against the rows before it, whatever request they came in). The next
        # request's body is built, and the last answer read, in a thread while a request is in
        # flight: this process's work is then off the path that waits for intake.
        with ThreadPoolExecutor(max_workers=1) as worker:
            taken: list[Future[None]] = []
            body = worker.submit(body_of, parts[0]) if parts else None
            for n, part in enumerate(parts):
                assert body is not None
                content = body.result()
                if n + 1 < len(parts):
                    body = worker.submit(body_of, parts[n + 1])
                try:
                    response = _send(client, endpoint, content, {"namespace": namespace}, retry_seconds)
                except ConnectionError as exc:
                    return f"intake unreachable at {url}: {exc}"
                if response.status_code != 200:
                    return f"intake answered {described(response)}"
                taken.append(worker.submit(take, part, response, advance))
            for done in taken:
                done.result()  # (raises what reading an answer raised)
        return None

    # Who imports is who the token says (intake records its subject); the CLI cannot name anyone.
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=httpx.Timeout(600.0, connect=10.0), headers=bearer) as client:
        error = send_all(client, to_send, advance=True)
        failed = [i for i in to_send if entries[i].get("outcome") == "failed"]
        if not error and failed:
            time.sleep(1.0)
            error = send_all(client, failed, advance=False)
    for i in to_send:
        if not entries[i]:
            entries[i] = entry(rows[i], "failed", reasons=[reason((), "not sent: the import stopped")])
    seconds = time.perf_counter() - started
    report = {
        "file": str(path),
        "namespace": namespace,
        "actor": actor[0] if actor else None,
        "url": url,
        "rows": len(rows),
        "persons": sum(
            len(r.body["members"]) for r in rows if r.body and isinstance(r.body.get("members"), list)
        ),
        "counts": counts(entries),
        "repeated": repeats(entries),
        "seconds": round(seconds, 3),
        "rows_per_second": round(len(rows) / seconds, 1) if seconds else None,
        "error": error,
        "entries": entries,
    }
    if error:
        raise Incomplete(report)
    return report


class Incomplete(ConnectionError):
    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(report["error"])
        self.report = report


app = typer.Typer(
    rich_markup_mode=None,
    add_completion=False,
    help="Import registrations from a CSV or JSON file into intake.",
)


@app.command()
def main(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or JSON")],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="The office or batch: row keys are unique within it.")
    ],
    url: Annotated[
        str, typer.Option("--url", envvar="CORRIDOR_INTAKE_URL", help="Intake's base URL.")
    ] = "http://127.0.0.1:8001",
    chunk: Annotated[int, typer.Option("--chunk", min=1, max=5000, help="Rows (cases) per request.")] = 500,
    report: Annotated[
        Path | None, typer.Option("--report", help="Where to write the per-row report [FILE.report.json].")
    ] = None,
    token: Annotated[
        str,
        typer.Option(
            "--token",
            envvar="CORRIDOR_TOKEN",
            help="An access token of a caseworker or supervisor (e.g. python -m devkit token --role caseworker).",
        ),
    ] = "",
    fmt: Annotated[str | None, typer.Option("--format", help="csv or json [from the file name].")] = None,
    retry_for: Annotated[
        float,
        typer.Option("--retry-for", min=0, help="Seconds to keep retrying while intake is unavailable."),
    ] = 60.0,
) -> None:
    """Register every row of FILE with intake; importing the same file again creates nothing twice
    and reports each row as the first import did (marked repeated).

    Exits 0 when every row has an outcome (rejected rows included), 1 when intake is unreachable
    or answers an error (run the same import again to finish it), 2 when the file cannot be read.
    """
    err = Console(stderr=True, highlight=False)
    out = Console(width=None if Console().is_terminal else 160, highlight=False)
    if not token:
        raise typer.BadParameter("intake needs a caseworker's access token", param_hint="--token")
    if not re.match(NAMESPACE_PATTERN, namespace):
        raise typer.BadParameter("letters, digits, '.', '_' and '-', at most 64", param_hint="--namespace")
    kind = (fmt or file.suffix.lstrip(".")).lower()
    if kind not in ("csv", "json"):
        raise typer.BadParameter("give --format csv or json", param_hint="--format")
    target = report or file.with_name(file.name + ".report.json")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    failure: str | None = None
    try:
        with Progress(*columns, console=err) as progress:
            result = import_file(
                file,
                namespace=namespace,
                url=url,
                chunk=chunk,
                token=token,
                fmt="csv" if kind == "csv" else "json",
                retry_seconds=retry_for,
                progress=progress,
            )
    except FileRejected as exc:
        err.print(f"[red]{escape(str(file))}: {exc.code}: {escape(exc.detail)}[/]")
        raise typer.Exit(2) from None
    except Incomplete as exc:
        result, failure = exc.report, str(exc)
    # UTF-8, with anything unencodable (an unpaired surrogate from a JSON file) escaped.
    target.write_bytes(
        (json.dumps(result, indent=1, ensure_ascii=False) + "\n").encode(errors="backslashreplace")
    )

    out.print(f"{escape(file.name)} into {namespace}: {result['rows']} rows, {result['persons']} persons")
    table = Table()
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for outcome, n in result["counts"].items():
        table.add_row(outcome, str(n))
    out.print(table)
    if result.get("repeated"):
        out.print(f"{result['repeated']} rows imported before: answered as then, nothing registered again")
    rejected = [e for e in result["entries"] if e["outcome"] == "rejected"]
    if rejected:
        out.print(f"rejected: the first {min(20, len(rejected))} of {len(rejected)}")
        shown = Table()
        for name in ("row_key", "where", "why"):
            shown.add_column(name)
        for e in rejected[:20]:
            where = f"line {','.join(map(str, e['lines']))}" if e.get("lines") else f"item {e.get('item')}"
            why = "; ".join(
                f"{'line ' + str(r['line']) + ' ' if r.get('line') and len(e.get('lines') or []) > 1 else ''}"
                f"{r.get('column') or r['field'] or '-'}: {r['msg']}"
                for r in e["reasons"]
            )
            shown.add_row(escape(str(e["row_key"])), where, escape(why))
        out.print(shown)
    out.print(
        f"{result['rows']} rows in {result['seconds']:.1f}s ({result['rows_per_second']} rows/s); "
        f"the report of every row: {target}"
    )
    if failure or result["counts"]["failed"]:
        err.print(f"[red]{escape(failure or 'some rows failed')}: import the same file again to finish[/]")
        raise typer.Exit(1)
