"""Reading an import: a CSV or JSON file into rows (one per case), and a row into the registration
it asks for. Nothing here touches the database: the CLI rejects here, before sending, what the
service would reject."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from typing import Any, Literal

from pydantic import ValidationError

from services.intake.bulk.format import (
    CASE_COLUMNS,
    COLUMNS,
    CONSENT_COLUMNS,
    PERSON_PLAIN_COLUMNS,
    REQUIRED_COLUMNS,
    ROW_KEY_MAX,
    FileRejected,
    Row,
    reason,
    registration_key,
)
from services.intake.domain import RegisterCase

_LIST_SEPARATORS = re.compile(r"[;,|\s]+")


def _row_key(raw: Any) -> tuple[str | None, dict[str, Any] | None]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, reason(("row_key",), "is required: the office's key of the case")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None, reason(("row_key",), "must be a string")
    key = str(raw).strip()
    if len(key) > ROW_KEY_MAX:
        return None, reason(("row_key",), f"is longer than {ROW_KEY_MAX} characters")
    if not key.isprintable():
        return None, reason(("row_key",), "has a control character or an unpaired surrogate")
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
            rows.append(Row(None, None, item=i, problems=[reason((), "not a registration object")]))
            continue
        body = dict(item)
        key, problem = _row_key(body.pop("row_key", None))
        row = Row(key, body, item=i)
        if problem:
            row.problems.append(problem)
        if "registration_key" in body:
            body.pop("registration_key")
            row.problems.append(
                reason(("registration_key",), "is set by the import from the namespace and row_key")
            )
        if key is not None:
            if key in first:
                row.problems.append(reason(("row_key",), f"repeats the row_key of item {first[key]}"))
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
                        "field": f"consent.{CONSENT_COLUMNS[column]}"
                        if column in CONSENT_COLUMNS
                        else column,
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
    for column, name in CONSENT_COLUMNS.items():
        if column in values:
            consent[name] = _split(values[column]) if name == "scope" else values[column]
    body["consent"] = consent
    body["members"] = [_person(record) for _, record in records]
    row.body = body


def _person(record: dict[str, str]) -> dict[str, Any]:
    person: dict[str, Any] = {k: record[k] for k in PERSON_PLAIN_COLUMNS if k in record}
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
                reason(e["loc"], e["msg"])
                for e in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
        else:
            if not reasons:
                return command, []
    return None, row.annotate(reasons)
