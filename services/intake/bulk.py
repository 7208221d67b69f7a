"""Bulk import: the registration forms field offices collect offline, thousands at a time.

One *row* of the import is one case (one person, or a family that travels together). Each row
carries a ``row_key`` chosen by the office; the import registers it under the registration key
``bulk:<namespace>:<row_key>``, where the namespace names the office or batch (so two offices'
row keys never collide). Importing the same file again creates nothing twice: a row whose key was
imported before is reported as ``exists``.

Every row gets one outcome in the report:

``created``   registered; ``case_id`` is the new case.
``flagged``   registered, and it may repeat a case already registered (or an earlier row of the
              same file): ``flags`` name the other case, for a caseworker to resolve.
``exists``    imported before under the same key (a re-run); ``case_id`` is that case.
``rejected``  not registered; ``reasons`` say why, each naming its field (``members.1.nationality``)
              and, for CSV, the file line and column.
``failed``    not registered because the service had a problem (database unavailable): import
              the same file again to retry, nothing is registered twice.

A row's problem never stops the import of the others.

JSON format
-----------
A list of registration objects as ``POST /cases`` takes them, each with a ``row_key`` (string,
at most 128 characters) and without ``registration_key``::

    [{"row_key": "KRG-0001", "route_id": "kaz-uzb-tjk", "planned_travel_date": "2030-06-15",
      "consent": {"given": true, "kind": "explicit", "scope": ["UZB", "TJK"]},
      "members": [{"role": "principal", "given_names": "Murod", "surname": "Rahimov", ...}]}]

CSV format
----------
UTF-8 (a byte-order mark is allowed), a header row, then **one row per person**. The rows of a
case share its ``row_key`` (they need not be adjacent, but keep them together for the reader).
The separator is a comma; a header written with ``;`` or tabs (Excel in some locales) is read
with that separator. Header names are case-insensitive; an unknown or repeated column, or a
missing required one (*), rejects the whole file. Empty cells are absent values.

Case columns (give them on the first row of the case; later rows may repeat them or leave them
empty, but may not contradict them):

==========================  ===================================================================
row_key *                   the office's key of the case
route_id *                  e.g. ``kaz-uzb-tjk``
planned_travel_date *       ``YYYY-MM-DD``
consent_given *             ``true`` / ``false`` (also yes/no, 1/0)
consent_kind                ``explicit`` (default) or ``proxy``
consent_scope               missions personal data may go to, ``;``-separated: ``UZB;TJK``
proxy_name, proxy_reason    for proxy consent: who gave it and why
==========================  ===================================================================

Person columns:

==========================  ===================================================================
role *                      ``principal`` (exactly one per case), spouse, child, parent, sibling,
                            relative
given_names *, surname *    as in the travel document, Latin script
given_names_cyrillic,       as in Cyrillic papers (used to recognise the same person registered
surname_cyrillic            twice in either script)
birth_date *                ``YYYY-MM-DD``
sex *                       M, F or X
nationality *               ISO 3166 alpha-3, e.g. ``TJK``
phone, current_city         optional
vulnerabilities             ``;``-separated: unaccompanied_minor, pregnant, elderly, disability,
                            serious_illness, single_parent, survivor_of_trafficking_or_violence
needs_escort                ``true`` / ``false`` (default false)
document_type *             ``passport`` or ``certificate_of_return``
document_number *           upper-case letters and digits
document_issuing_country *  alpha-3
document_issued_on          ``YYYY-MM-DD``; required for a certificate of return
document_expires_on *       ``YYYY-MM-DD``
document_mrz                a passport's machine-readable zone, both lines (88 characters)
proof_type, proof_number,   optional proof of citizenship (``internal_passport`` or
proof_issuing_country       ``birth_certificate``), e.g. for a child on a certificate of return
==========================  ===================================================================

``docs/bulk-import-sample.csv`` is a sample: a family of three and two single travellers.

Over HTTP: ``POST /imports?namespace=NS`` with ``Content-Type: text/csv`` or
``application/json`` and ``X-Actor``. From a file: ``python -m services.intake.bulk FILE
--namespace NS --url http://intake:8001`` sends the file in chunks and writes the whole report.
"""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import itertools
import json
import logging
import re
import socket
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import asyncpg
import httpx
import typer
from pydantic import BaseModel, ValidationError
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

from contracts.routes import RouteBook
from services.intake import registration
from services.intake.domain import RegisterCase
from services.intake.duplicates import keys_of

if TYPE_CHECKING:
    from starlette.requests import Request

log = logging.getLogger(__name__)

NAMESPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ROW_KEY_MAX = 128
MAX_BYTES = 20 * 1024 * 1024
CONCURRENCY = 4
"""Rows registered at once (each on its own pool connection), over all imports of the service."""
ROWS_PER_CONNECTION = 100

Outcome = Literal["created", "flagged", "exists", "rejected", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("created", "flagged", "exists", "rejected", "failed")

CASE_COLUMNS = (
    "route_id",
    "planned_travel_date",
    "consent_given",
    "consent_kind",
    "consent_scope",
    "proxy_name",
    "proxy_reason",
)
PERSON_COLUMNS = (
    "role",
    "given_names",
    "surname",
    "given_names_cyrillic",
    "surname_cyrillic",
    "birth_date",
    "sex",
    "nationality",
    "phone",
    "current_city",
    "vulnerabilities",
    "needs_escort",
    "document_type",
    "document_number",
    "document_issuing_country",
    "document_issued_on",
    "document_expires_on",
    "document_mrz",
    "proof_type",
    "proof_number",
    "proof_issuing_country",
)
COLUMNS = ("row_key", *CASE_COLUMNS, *PERSON_COLUMNS)
REQUIRED_COLUMNS = frozenset(
    {
        "row_key",
        "route_id",
        "planned_travel_date",
        "consent_given",
        "role",
        "given_names",
        "surname",
        "birth_date",
        "sex",
        "nationality",
        "document_type",
        "document_number",
        "document_issuing_country",
        "document_expires_on",
    }
)
_CONSENT = {
    "consent_given": "given",
    "consent_kind": "kind",
    "consent_scope": "scope",
    "proxy_name": "proxy_name",
    "proxy_reason": "proxy_reason",
}
_PERSON_PLAIN = (
    "role",
    "given_names",
    "surname",
    "given_names_cyrillic",
    "surname_cyrillic",
    "birth_date",
    "sex",
    "nationality",
    "phone",
    "current_city",
    "needs_escort",
)
_LIST_SEPARATORS = re.compile(r"[;,|\s]+")


class FileRejected(ValueError):
    """The file as a whole cannot be read (400), or is too large (413): nothing of it is imported."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


# --- rows ----------------------------------------------------------------------------------------


@dataclass
class Row:
    """One case as read from the file, before validation."""

    row_key: str | None
    body: dict[str, Any] | None
    item: int | None = None
    """JSON: the position in the list, from 0."""
    lines: list[int] = field(default_factory=list)
    """CSV: the file line of each member, in member order."""
    value_lines: dict[str, int] = field(default_factory=dict)
    """CSV: the line each case value was read from."""
    problems: list[dict[str, Any]] = field(default_factory=list)

    def where(self) -> dict[str, Any]:
        return {"lines": self.lines} if self.lines else {"item": self.item}

    def annotate(self, reasons: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add the CSV line and column a reason is about, where there is one."""
        out = []
        for reason in reasons:
            reason = dict(reason)
            if self.lines and "line" not in reason:
                member, column = csv_column(reason.get("field") or "")
                if member is not None and member < len(self.lines):
                    reason["line"] = self.lines[member]
                elif column in self.value_lines:
                    reason["line"] = self.value_lines[column]
                else:
                    reason["line"] = self.lines[0]
                if column is not None:
                    reason["column"] = column
            out.append(reason)
        return out

    def as_item(self) -> dict[str, Any]:
        """The row as a JSON import item."""
        assert self.body is not None
        return {"row_key": self.row_key, **self.body}


def csv_column(field_path: str) -> tuple[int | None, str | None]:
    """The member index and the CSV column a field path (``members.1.document.issued_on``) names."""
    parts = field_path.split(".") if field_path else []
    if len(parts) >= 3 and parts[0] == "members" and parts[1].isdigit():
        member, rest = int(parts[1]), parts[2:]
        if rest[0] == "document" and len(rest) > 1:
            column: str | None = f"document_{rest[1]}"
        elif rest[0] == "proof_of_citizenship" and len(rest) > 1:
            column = f"proof_{rest[1]}"
        else:
            column = rest[0]
        return member, column if column in PERSON_COLUMNS else None
    if parts[:1] == ["consent"] and len(parts) > 1:
        return None, {v: k for k, v in _CONSENT.items()}.get(parts[1])
    if parts and parts[0] in ("route_id", "planned_travel_date", "row_key"):
        return None, parts[0]
    return None, None


def _reason(loc: Sequence[Any], msg: str) -> dict[str, Any]:
    return {"field": ".".join(str(p) for p in loc), "msg": msg}


def _row_key(raw: Any) -> tuple[str | None, dict[str, Any] | None]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, _reason(("row_key",), "is required: the office's key of the case")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None, _reason(("row_key",), "must be a string")
    key = str(raw).strip()
    if len(key) > ROW_KEY_MAX:
        return None, _reason(("row_key",), f"is longer than {ROW_KEY_MAX} characters")
    if not key.isprintable():
        return None, _reason(("row_key",), "has a control character or an unpaired surrogate")
    return key, None


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileRejected(
            400, "not_utf8", f"line {line}: not UTF-8 (save the file as CSV UTF-8 or JSON)"
        ) from exc


def parse_json(data: bytes) -> list[Row]:
    text = _decode(data)
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise FileRejected(400, "malformed_json", str(exc)[:300]) from exc
    except RecursionError as exc:
        raise FileRejected(400, "malformed_json", "JSON nested too deeply") from exc
    if not isinstance(items, list):
        raise FileRejected(400, "not_a_list", "a JSON import is a list of registration objects")
    rows: list[Row] = []
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            rows.append(Row(None, None, item=i, problems=[_reason((), "not a registration object")]))
            continue
        body = dict(item)
        key, problem = _row_key(body.pop("row_key", None))
        row = Row(key, body, item=i)
        if problem:
            row.problems.append(problem)
        if "registration_key" in body:
            body.pop("registration_key")
            row.problems.append(
                _reason(("registration_key",), "is set by the import from the namespace and row_key")
            )
        if key is not None:
            if key in first:
                row.problems.append(_reason(("row_key",), f"repeats the row_key of item {first[key]}"))
            else:
                first[key] = i
        rows.append(row)
    return rows


def parse_csv(data: bytes) -> list[Row]:
    text = _decode(data)
    header_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=header_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise FileRejected(
            400, "no_header", "the file is empty: a CSV import starts with a header row"
        ) from None
    except csv.Error as exc:
        raise FileRejected(400, "malformed_csv", f"line 1: {exc}") from exc
    names = [h.strip().lower() for h in header]
    if not any(names):
        raise FileRejected(400, "no_header", "the first line is empty: a CSV import starts with a header row")
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    unknown = [n for n in names if n and n not in COLUMNS]
    missing = sorted(REQUIRED_COLUMNS - set(names))
    if repeated or unknown or missing:
        problems = []
        if unknown:
            problems.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
        if repeated:
            problems.append(f"repeated column(s) {', '.join(repeated)}")
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        raise FileRejected(400, "bad_header", "; ".join(problems) + f". Columns are: {', '.join(COLUMNS)}")

    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    overflow: dict[str, list[dict[str, Any]]] = {}
    rows: list[Row] = []  # in file order; a case's Row is placed at its first line
    last_line = reader.line_num
    while True:
        start = last_line + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise FileRejected(400, "malformed_csv", f"line {start}: {exc}") from exc
        last_line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        record: dict[str, str] = {}
        stray = 0  # values beyond the header, or under a blank column name
        for name, cell in itertools.zip_longest(names, cells, fillvalue=""):
            if cell.strip():
                if name:
                    record[name] = cell.strip()
                else:
                    stray += 1
        key, problem = _row_key(record.get("row_key"))
        if key is None:
            rows.append(
                Row(
                    None,
                    None,
                    lines=[start],
                    problems=[{**problem, "line": start, "column": "row_key"}] if problem else [],
                )
            )
            continue
        if key not in groups:
            groups[key] = []
            rows.append(Row(key, None))
        groups[key].append((start, record))
        if stray:  # the whole case is rejected, not imported with a value left out
            overflow.setdefault(key, []).append(
                {"field": "", "msg": f"{stray} value(s) in no column of the header", "line": start}
            )
    for row in rows:
        if row.row_key is not None:
            _build_case(row, groups[row.row_key])
            row.problems += overflow.get(row.row_key, [])
    return rows


def _split(value: str) -> list[str]:
    return [v for v in _LIST_SEPARATORS.split(value) if v]


def _build_case(row: Row, records: list[tuple[int, dict[str, str]]]) -> None:
    row.lines = [line for line, _ in records]
    values: dict[str, str] = {}
    for column in CASE_COLUMNS:
        for line, record in records:
            value = record.get(column)
            if value is None:
                continue
            if column not in values:
                values[column] = value
                row.value_lines[column] = line
            elif value != values[column]:
                row.problems.append(
                    {
                        "field": f"consent.{_CONSENT[column]}" if column in _CONSENT else column,
                        "msg": f"the rows of this case disagree: {values[column]!r} on line "
                        f"{row.value_lines[column]}, {value!r} here",
                        "line": line,
                        "column": column,
                    }
                )
    body: dict[str, Any] = {}
    for column in ("route_id", "planned_travel_date"):
        if column in values:
            body[column] = values[column]
    consent: dict[str, Any] = {}
    for column, name in _CONSENT.items():
        if column in values:
            consent[name] = _split(values[column]) if name == "scope" else values[column]
    body["consent"] = consent
    body["members"] = [_person(record) for _, record in records]
    row.body = body


def _person(record: dict[str, str]) -> dict[str, Any]:
    person: dict[str, Any] = {k: record[k] for k in _PERSON_PLAIN if k in record}
    if "vulnerabilities" in record:
        person["vulnerabilities"] = _split(record["vulnerabilities"])
    document = {
        k: record[f"document_{k}"]
        for k in ("type", "number", "issuing_country", "issued_on", "expires_on", "mrz")
        if f"document_{k}" in record
    }
    if document:
        person["document"] = document
    proof = {k: record[f"proof_{k}"] for k in ("type", "number", "issuing_country") if f"proof_{k}" in record}
    if proof:
        person["proof_of_citizenship"] = proof
    return person


def media_format(content_type: str) -> Literal["csv", "json"] | None:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        return "csv"
    if kind == "application/json" or kind.endswith("+json"):
        return "json"
    return None


def parse(data: bytes, fmt: Literal["csv", "json"]) -> list[Row]:
    return parse_csv(data) if fmt == "csv" else parse_json(data)


async def read_body(request: Request, limit: int = MAX_BYTES) -> bytes:
    """The request body, refused (413) beyond ``limit`` bytes before it is all read."""
    declared = request.headers.get("content-length", "")
    too_large = FileRejected(413, "too_large", f"an import is at most {limit // 2**20} MB: split the file")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


# --- validation and import -----------------------------------------------------------------------


def registration_key(namespace: str, row_key: str) -> str:
    return f"bulk:{namespace}:{row_key}"


def command_for(row: Row, namespace: str) -> tuple[RegisterCase | None, list[dict[str, Any]]]:
    """The registration a row asks for, or every reason it cannot be one (file lines included)."""
    reasons = list(row.problems)
    if row.body is not None:
        body = dict(row.body)
        if row.row_key is not None:
            body["registration_key"] = registration_key(namespace, row.row_key)
        try:
            command = RegisterCase.model_validate(body)
        except ValidationError as exc:
            reasons += [
                _reason(e["loc"], e["msg"])
                for e in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
        else:
            if not reasons:
                return command, []
    return None, row.annotate(reasons)


def entry(row: Row, outcome: Outcome, **details: Any) -> dict[str, Any]:
    return {
        "row_key": row.row_key,
        "outcome": outcome,
        "case_id": details.get("case_id"),
        "reasons": details.get("reasons", []),
        "flags": details.get("flags", []),
        **row.where(),
    }


def counts(entries: Iterable[dict[str, Any]]) -> dict[str, int]:
    totals: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for e in entries:
        totals[e["outcome"]] += 1
    return totals


def _units(commands: list[tuple[int, RegisterCase]]) -> list[list[int]]:
    """Rows that may be the same person (a shared document or name key) form one unit, registered
    one after the other in file order: registered at once, neither would see the other's keys and
    neither would be flagged. Every other row may go in parallel."""
    parent = {i: i for i, _ in commands}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, command in commands:
        for m in command.members:
            keys = keys_of(m)
            for key in (f"document:{keys.document}", *(f"name:{k}" for k in keys.names)):
                if key in owner:
                    parent[root(i)] = root(owner[key])
                else:
                    owner[key] = i
    units: dict[int, list[int]] = {}
    for i, _ in commands:
        units.setdefault(root(i), []).append(i)
    return sorted(units.values(), key=lambda unit: unit[0])


async def _imported(pool: asyncpg.Pool, keys: list[str]) -> dict[str, str]:
    """Registration keys already taken, with their cases: one query for the whole import."""
    if not keys:
        return {}
    async with pool.acquire() as conn:
        found = await conn.fetch(
            "SELECT registration_key, case_id FROM cases WHERE registration_key = ANY($1::text[])", keys
        )
    return {r["registration_key"]: str(r["case_id"]) for r in found}


async def run_import(
    pool: asyncpg.Pool,
    rows: Sequence[Row],
    *,
    namespace: str,
    routes: RouteBook,
    source: str,
    actor: str,
    now: datetime | None = None,
    concurrency: int = CONCURRENCY,
    slots: asyncio.Semaphore | None = None,
) -> dict[str, Any]:
    """Register every valid row (one transaction each) and report on every row, in file order."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    entries: list[dict[str, Any] | None] = [None] * len(rows)
    commands: list[tuple[int, RegisterCase]] = []
    for i, row in enumerate(rows):
        command, reasons = command_for(row, namespace)
        if command is None:
            entries[i] = entry(row, "rejected", reasons=reasons)
        else:
            commands.append((i, command))

    # A re-run answers from one query instead of a registration attempt per row.
    known = await _imported(pool, [c.registration_key for _, c in commands if c.registration_key])
    pending: list[tuple[int, RegisterCase]] = []
    for i, command in commands:
        assert command.registration_key is not None
        if command.registration_key in known:
            entries[i] = entry(rows[i], "exists", case_id=known[command.registration_key])
        else:
            pending.append((i, command))
    by_index = dict(pending)
    units = deque(_units(pending))
    slots = slots or asyncio.Semaphore(concurrency)

    async def register_one(conn: asyncpg.Connection, i: int) -> tuple[dict[str, Any], bool]:
        """The row's entry, and whether the connection is still fit for the next row."""
        row = rows[i]
        try:
            done = await registration.register(conn, by_index[i], routes=routes, source=source, now=now)
        except registration.RegistrationRejected as exc:
            reasons = [_reason(tuple(e["loc"])[1:], e["msg"]) for e in exc.errors]  # loc starts "body"
            return entry(row, "rejected", reasons=row.annotate(reasons)), True
        except (asyncpg.DataError, asyncpg.ProgramLimitExceededError) as exc:
            reason = _reason((), f"value cannot be stored: {str(exc)[:300]}")
            return entry(row, "rejected", reasons=row.annotate([reason])), True
        except Exception as exc:
            return _failed(row, exc), False
        if not done.created:  # the same key, imported by a concurrent import of the same file
            return entry(row, "exists", case_id=str(done.case_id)), True
        flags = done.duplicate_flags
        return entry(row, "flagged" if flags else "created", case_id=str(done.case_id), flags=flags), True

    def _failed(row: Row, exc: Exception) -> dict[str, Any]:
        log.warning("bulk import %s: row %r failed: %r", namespace, row.row_key, exc)
        return entry(row, "failed", reasons=[_reason((), f"not imported ({type(exc).__name__}): retry")])

    async def worker() -> None:
        # A connection serves a run of rows: taken from the pool for each row, it would be reset
        # (one more round trip) on each release.
        while units:
            connected = False
            try:
                async with slots, pool.acquire() as conn:
                    connected = True
                    served = 0
                    while units and served < ROWS_PER_CONNECTION:
                        unit = units.popleft()
                        for n, i in enumerate(unit):
                            entries[i], fit = await register_one(conn, i)
                            if not fit:  # back to the pool, which replaces a broken connection
                                if unit[n + 1 :]:
                                    units.appendleft(unit[n + 1 :])
                                served = ROWS_PER_CONNECTION
                                break
                        served += len(unit)
            except Exception as exc:
                if connected:  # the connection failed on its way back to the pool: rows are done
                    log.warning("bulk import %s: releasing a connection: %r", namespace, exc)
                elif units:  # no connection to be had: the database is unavailable
                    for i in units.popleft():
                        entries[i] = _failed(rows[i], exc)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(units)))))
    seconds = time.perf_counter() - started
    final = [e for e in entries if e is not None]
    assert len(final) == len(rows)
    totals = counts(final)
    log.info(
        "bulk import into %s by %s: %d rows in %.1fs (%.0f rows/s): %s",
        namespace,
        actor,
        len(rows),
        seconds,
        len(rows) / seconds if seconds else 0.0,
        ", ".join(f"{n} {k}" for k, n in totals.items() if n),
    )
    return {
        "namespace": namespace,
        "actor": actor,
        "rows": len(rows),
        "counts": totals,
        "seconds": round(seconds, 3),
        "rows_per_second": round(len(rows) / seconds, 1) if seconds else None,
        "entries": final,
    }


def report_json(report: dict[str, Any]) -> bytes:
    """ASCII JSON: a reason may quote input that is not encodable as UTF-8 (an unpaired surrogate)."""
    return json.dumps(report, ensure_ascii=True, separators=(",", ":")).encode()


# --- documentation of the HTTP endpoint ----------------------------------------------------------


class ReasonOut(BaseModel):
    field: str
    msg: str
    line: int | None = None
    column: str | None = None


class EntryOut(BaseModel):
    row_key: str | None
    outcome: Outcome
    case_id: str | None
    reasons: list[ReasonOut]
    flags: list[dict[str, Any]]
    item: int | None = None
    lines: list[int] | None = None


class ImportRefused(BaseModel):
    """The file as a whole cannot be imported (400, 413, 415): nothing of it was."""

    code: str
    detail: str


class ImportReport(BaseModel):
    namespace: str
    actor: str
    rows: int
    counts: dict[str, int]
    seconds: float
    rows_per_second: float | None
    entries: list[EntryOut]


OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {"type": "object", "required": ["row_key"]},
                    "description": "Registrations as POST /cases takes them, each with a row_key",
                }
            },
            "text/csv": {
                "schema": {"type": "string"},
                "description": "One row per person, grouped into cases by row_key",
            },
        },
    }
}


# --- CLI -----------------------------------------------------------------------------------------


def _actor() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:
        return "unknown"


def _send(
    client: httpx.Client, url: str, items: list[dict[str, Any]], params: dict[str, str], retry_seconds: float
) -> httpx.Response:
    """POST a chunk, retrying while the service restarts: rows are keyed, a repeat creates nothing."""
    deadline = time.monotonic() + retry_seconds
    while True:
        try:
            response = client.post(url, json=items, params=params)
            if response.status_code not in (502, 503, 504):
                return response
            problem = f"{response.status_code} {response.text[:300]}"
        except httpx.TransportError as exc:
            problem = repr(exc)
        if time.monotonic() > deadline:
            raise ConnectionError(problem)
        time.sleep(1.0)


def import_file(
    path: Path,
    *,
    namespace: str,
    url: str,
    chunk: int,
    actor: str,
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

    def send_all(client: httpx.Client, batch: list[int], *, advance: bool) -> str | None:
        for start in range(0, len(batch), chunk):
            part = batch[start : start + chunk]
            items = [rows[i].as_item() for i in part]
            try:
                response = _send(client, endpoint, items, {"namespace": namespace}, retry_seconds)
            except ConnectionError as exc:
                return f"intake unreachable at {url}: {exc}"
            if response.status_code != 200:
                return f"intake answered {response.status_code}: {response.text[:500]}"
            for e in response.json()["entries"]:
                i = part[e.pop("item")]
                e["reasons"] = rows[i].annotate(e["reasons"])
                entries[i] = {**e, **rows[i].where()}
            if progress and task is not None and advance:
                progress.update(task, advance=len(part))
        return None

    with httpx.Client(timeout=httpx.Timeout(600.0, connect=10.0), headers={"X-Actor": actor}) as client:
        error = send_all(client, to_send, advance=True)
        failed = [i for i in to_send if entries[i].get("outcome") == "failed"]
        if not error and failed:
            time.sleep(1.0)
            error = send_all(client, failed, advance=False)
    for i in to_send:
        if not entries[i]:
            entries[i] = entry(rows[i], "failed", reasons=[_reason((), "not sent: the import stopped")])
    seconds = time.perf_counter() - started
    report = {
        "file": str(path),
        "namespace": namespace,
        "actor": actor,
        "url": url,
        "rows": len(rows),
        "persons": sum(
            len(r.body["members"]) for r in rows if r.body and isinstance(r.body.get("members"), list)
        ),
        "counts": counts(entries),
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


app = typer.Typer(add_completion=False, help="Import registrations from a CSV or JSON file into intake.")


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
    actor: Annotated[str | None, typer.Option("--actor", help="Who imports [user@host].")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv or json [from the file name].")] = None,
    retry_for: Annotated[
        float,
        typer.Option("--retry-for", min=0, help="Seconds to keep retrying while intake is unavailable."),
    ] = 60.0,
) -> None:
    """Register every row of FILE with intake; importing the same file again creates nothing twice.

    Exits 0 when every row has an outcome (rejected rows included), 1 when intake is unreachable
    or answers an error (run the same import again to finish it), 2 when the file cannot be read.
    """
    err = Console(stderr=True, highlight=False)
    out = Console(width=None if Console().is_terminal else 160, highlight=False)
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
                actor=actor or _actor(),
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


if __name__ == "__main__":
    app()
