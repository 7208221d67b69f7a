"""Bulk import on the real platform: a field office's file of 10,000 cases through the CLI and
``POST /imports``, a report on every row, and a re-run that creates nothing."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from contracts import topics
from contracts.routes import RouteBook
from corridor.auth import Purpose, Role
from devkit.devstack import Stack
from services.intake import bulk, usecases
from services.intake.store import IntakeStore
from tests.conftest import report_figure
from tests.integration.conftest import near_day, repo_root, wait_group_caught_up

ROWS = 10_000
FAR = 5_000  # rows between the two registrations of a person, for some of the pairs
SECTION = "bulk import"
SOURCE = "/missions/KAZ/intake"

# Consonant-vowel syllables with one Cyrillic letter per Latin one: names made of them are distinct
# after duplicate detection's normalisation (no folded spellings, no doubled letters) in both scripts.
_CONSONANTS = "bdfklmnprstv"
_VOWELS = "aeiou"
_CYRILLIC = dict(zip("bdfklmnprstvaeiou", "бдфклмнпрстваеиоу", strict=True))


def token(n: int) -> str:
    """A distinct letters-only name part for every ``n``."""
    syllables = []
    while True:
        n, digit = divmod(n, len(_CONSONANTS) * len(_VOWELS))
        syllables.append(_CONSONANTS[digit // len(_VOWELS)] + _VOWELS[digit % len(_VOWELS)])
        if n == 0:
            return "".join(syllables)


def cyrillic(latin: str) -> str:
    return "".join(_CYRILLIC.get(ch.lower(), ch) for ch in latin).capitalize()


@dataclass
class Expected:
    """What the generator meant a row to become."""

    outcome: str  # created, flagged or rejected
    lines: list[int] = field(default_factory=list)
    field: str | None = None  # rejected: the field a reason must name
    column: str | None = None
    line: int | None = None
    says: str | None = None  # rejected: words the reason must contain
    duplicate_of: str | None = None  # flagged: the row_key of the case it repeats


def generate(path: Path, travel: date, rows: int = ROWS) -> dict[str, Expected]:
    """A CSV of ``rows`` cases (15% families of three), with invalid rows of each kind and pairs
    that are the same person spelled in Latin and in Cyrillic; the same file for the same travel
    date. People are distinct from those of a file for another date (names, document numbers)."""
    salt = travel.toordinal() % 1000 * 100_000
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=bulk.COLUMNS, lineterminator="\n")
    writer.writeheader()
    line = 1
    expected: dict[str, Expected] = {}
    document = itertools.count(10_000_000 + salt * 4)

    def person(role: str, given: str, surname: str, born: date, sex: str, **extra: Any) -> dict[str, Any]:
        return {
            "role": role,
            "given_names": given,
            "surname": surname,
            "birth_date": born.isoformat(),
            "sex": sex,
            "nationality": "TJK",
            "document_type": "passport",
            "document_number": f"BK{next(document)}",
            "document_issuing_country": "TJK",
            "document_issued_on": (travel - timedelta(days=700)).isoformat(),
            "document_expires_on": (travel + timedelta(days=900)).isoformat(),
            **extra,
        }

    for i in range(rows):
        key = f"R{i:05d}"
        kind = i % 100
        family = i % 20 in (3, 7, 13)
        surname = token(salt + i).capitalize() + "zoda"
        born = date(1960, 1, 1) + timedelta(days=(i * 37) % 14_000)
        case = {
            "row_key": key,
            "route_id": "kaz-uzb-tjk",
            "planned_travel_date": travel.isoformat(),
            "consent_given": "true",
            "consent_kind": "explicit",
            "consent_scope": "UZB;TJK",
        }
        if i % 10 == 9:
            case |= {
                "consent_kind": "proxy",
                "proxy_name": "Aziz Karimov (son)",
                "proxy_reason": "The applicant is in hospital",
            }
        members = [person("principal", "Farrukh", surname, born, "M", phone="+7 701 555 0101")]
        if family:
            members.append(
                person(
                    "spouse", "Malika", surname, born + timedelta(days=400), "F", vulnerabilities="disability"
                )
            )
            members.append(
                person(
                    "child",
                    "Sitora",
                    surname,
                    date(2015, 1, 1) + timedelta(days=i % 1500),
                    "F",
                    document_type="certificate_of_return",
                    document_number=f"CR{next(document)}",
                    document_issued_on=(travel - timedelta(days=5)).isoformat(),
                    document_expires_on=(travel + timedelta(days=25)).isoformat(),
                    proof_type="birth_certificate",
                    proof_number=f"BC-{i}",
                    proof_issuing_country="TJK",
                )
            )
        lines = list(range(line + 1, line + 1 + len(members)))
        expect = Expected("created", lines)
        # Invalid rows, one kind each.
        if kind == 11:
            members[0]["nationality"] = "TJ"
            expect = Expected("rejected", lines, "members.0.nationality", "nationality", lines[0], "pattern")
        elif kind == 13:  # a family: the child's nationality
            members[2]["nationality"] = "tajik"
            expect = Expected("rejected", lines, "members.2.nationality", "nationality", lines[2], "pattern")
        elif kind == 7:  # a family: the child's certificate of return without its issue date
            members[2]["document_issued_on"] = ""
            expect = Expected("rejected", lines, "members.2.document", None, lines[2], "issue date")
        elif kind == 31:
            case["route_id"] = "kaz-xxx-tjk"
            expect = Expected("rejected", lines, "route_id", "route_id", lines[0], "unknown route")
        elif kind == 51:
            members[0]["birth_date"] = f"{born.year}-02-30"
            expect = Expected("rejected", lines, "members.0.birth_date", "birth_date", lines[0], "date")
        elif kind == 71:
            case["planned_travel_date"] = f"{travel.year}-13-01"
            expect = Expected(
                "rejected", lines, "planned_travel_date", "planned_travel_date", lines[0], "date"
            )
        elif kind == 3:  # a family whose second row says another travel date
            members[1] |= {"planned_travel_date": (travel + timedelta(days=1)).isoformat()}
            expect = Expected(
                "rejected", lines, "planned_travel_date", "planned_travel_date", lines[1], "disagree"
            )
        # The same man registered twice: first in Latin script; then (in the next row, or 5,000 rows
        # on) in another Latin spelling that matches nothing, and in Cyrillic, which does.
        elif i % 500 in (41, 42, 61):
            second = i % 500 == 42 or (i % 500 == 61 and i >= FAR)
            first = (i - 1 if i % 500 == 42 else i - FAR) if second else i
            pair = token(10**9 + salt + first)
            members[0] |= {
                "surname": f"Dzhuraev{pair}",
                "given_names": "Bakhodur",
                "birth_date": (date(1970, 1, 1) + timedelta(days=first)).isoformat(),
            }
            if second:
                members[0] |= {
                    "surname": f"Djuraev{pair}",
                    "surname_cyrillic": f"Джураев{cyrillic(pair).lower()}",
                    "given_names_cyrillic": "Баходур",
                }
                expect = Expected("flagged", lines, duplicate_of=f"R{first:05d}")
        expected[key] = expect
        for n, member in enumerate(members):
            writer.writerow({**(case if n == 0 else {"row_key": key}), **member})
        line += len(members)
    path.write_text(out.getvalue())
    return expected


def _cli(path: Path, namespace: str, url: str, report: Path, token: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "services.intake.bulk",
        str(path),
        "--namespace",
        namespace,
        "--url",
        url,
        "--report",
        str(report),
        "--token",
        token,
        *extra,
    ]


async def run_cli(path: Path, namespace: str, stack: Stack, report: Path) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        *_cli(
            path,
            namespace,
            stack.url("intake"),
            report,
            stack.token(Role.CASEWORKER, subject="field-office@test"),
        ),
        cwd=repo_root(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate()
    assert proc.returncode == 0, output.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(report.read_bytes())  # noqa: ASYNC240 (after the run)
    return result


async def stored(conn: asyncpg.Connection, namespace: str) -> dict[str, int]:
    """What the import wrote to intake's database: cases, people, keys, flags and events."""
    like = f"bulk:{namespace}:%"
    return dict(
        await conn.fetchrow(
            """SELECT (SELECT count(*) FROM cases WHERE registration_key LIKE $1) AS cases,
                      (SELECT count(*) FROM persons p JOIN cases c USING (case_id)
                        WHERE c.registration_key LIKE $1) AS persons,
                      (SELECT count(*) FROM person_keys k JOIN cases c USING (case_id)
                        WHERE c.registration_key LIKE $1) AS person_keys,
                      (SELECT count(*) FROM duplicate_flags f JOIN cases c USING (case_id)
                        WHERE c.registration_key LIKE $1) AS flags,
                      (SELECT count(*) FROM cases) AS all_cases,
                      (SELECT count(*) FROM outbox) AS events""",
            like,
        )
    )


def mismatches(report: dict[str, Any], expected: dict[str, Expected]) -> list[str]:
    """Every row whose outcome is not what the generator meant, with what it got."""
    wrong: list[str] = []
    entries = report["entries"]
    if [e["row_key"] for e in entries] != list(expected):
        return ["the report's rows are not the file's rows in file order"]
    case_of = {e["row_key"]: e["case_id"] for e in entries}
    for e in entries:
        want = expected[e["row_key"]]
        got = f"{e['row_key']}: {e['outcome']} {e['reasons'] or ''} {e['flags'] or ''}"
        if e["lines"] != want.lines:
            wrong.append(f"{got}: lines {e['lines']}, expected {want.lines}")
        elif want.outcome == "rejected":
            named = [
                r
                for r in e["reasons"]
                if r["field"] == want.field
                and r.get("line") == want.line
                and (want.column is None or r.get("column") == want.column)
                and want.says in r["msg"]
            ]
            if e["outcome"] != "rejected" or e["case_id"] is not None or not named:
                wrong.append(f"{got}: expected rejected for {want.field} on line {want.line}")
        elif want.outcome == "created":
            if e["outcome"] != "created" or e["flags"]:
                wrong.append(f"{got}: expected created without flags")
        else:
            flags = e["flags"]
            other = case_of[want.duplicate_of or ""]
            if (
                e["outcome"] != "flagged"
                or len(flags) != 1
                or flags[0]["other_case_id"] != other
                or flags[0]["basis"] != "name"
            ):
                wrong.append(f"{got}: expected flagged as {want.duplicate_of} ({other})")
    return wrong


@pytest.mark.timeout(600)
async def test_ten_thousand_rows_are_imported_once_with_a_report_on_every_row(
    stack: Stack, client: httpx.AsyncClient, travel_date: date, tmp_path: Path
) -> None:
    # A day no other test plans (planning takes every ready case of a date); no requirement covers it
    # (another test's crossing requirement ends on its own day).
    travel = near_day("bulk import")
    path = tmp_path / "field-office.csv"
    expected = generate(path, travel)
    wanted = Counter(e.outcome for e in expected.values())
    persons = len(path.read_text().splitlines()) - 1
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(stack.postgres.dsn("intake"))
    try:
        first = await run_cli(path, namespace, stack, tmp_path / "first.json")
        after_first = await stored(conn, namespace)

        assert first["rows"] == ROWS and first["persons"] == persons and first["error"] is None
        wrong = mismatches(first, expected)
        assert not wrong, f"{len(wrong)} rows not as intended:\n" + "\n".join(wrong[:15])
        assert first["counts"] == {
            "created": wanted["created"],
            "flagged": wanted["flagged"],
            "exists": 0,
            "rejected": wanted["rejected"],
            "failed": 0,
        }
        registered = [e for e in first["entries"] if e["outcome"] in ("created", "flagged")]
        assert after_first["cases"] == len(registered)
        assert after_first["persons"] == sum(len(e["lines"]) for e in registered)
        assert after_first["flags"] == wanted["flagged"]

        # A family, read back as it was written.
        family = next(e for e in registered if len(e["lines"]) == 3)
        read = await client.get(
            f"{stack.url('intake')}/cases/{family['case_id']}",
            headers={"X-Purpose": Purpose.CASE_MANAGEMENT},
        )
        assert read.status_code == 200, read.text
        case = read.json()
        assert case["planned_travel_date"] == travel.isoformat()
        assert sorted(m["role"] for m in case["members"]) == ["child", "principal", "spouse"]
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        assert {m["document"]["number"] for m in case["members"]} == {
            rows[line - 2]["document_number"] for line in family["lines"]
        }

        # The same file again: nothing new, every row answered what the first import answered (a
        # registered row marked a repeat; a rejected one checked afresh).
        second = await run_cli(path, namespace, stack, tmp_path / "second.json")
        assert await stored(conn, namespace) == after_first
        again = {e["row_key"]: e for e in second["entries"]}
        wrong = [
            f"{e['row_key']}: {again[e['row_key']]}, first {e}"
            for e in first["entries"]
            if {**again[e["row_key"]], "repeated": False} != e
            or again[e["row_key"]]["repeated"] is not (e["outcome"] != "rejected")
        ]
        assert not wrong, f"{len(wrong)} rows answered otherwise on the re-run:\n" + "\n".join(wrong[:15])
        assert second["counts"] == first["counts"] and second["repeated"] == len(registered)
    finally:
        await conn.close()

    report_figure(
        SECTION,
        f"{ROWS} rows ({persons} persons; {first['counts']['created']} created, "
        f"{first['counts']['flagged']} flagged, {first['counts']['rejected']} rejected) through the CLI "
        f"in {first['seconds']:.1f}s: {first['rows_per_second']:.0f} rows/s "
        f"({persons / first['seconds']:.0f} persons/s)",
    )
    report_figure(
        SECTION,
        f"re-run of the same file: {second['seconds']:.1f}s ({second['rows_per_second']:.0f} rows/s), "
        f"{second['repeated']} rows answered as the first time, nothing created",
    )

    # Every imported case goes on to eligibility (and transport) like any other. Wait until each
    # is decided, which also leaves the platform idle again for the tests after this one.
    started = time.monotonic()
    await wait_group_caught_up(stack.kafka_access("operations"), "eligibility", topics.CASES, timeout=300)
    await wait_outbox_published(client, stack.url("eligibility"), timeout=120)
    for group, topic in (
        ("transport", topics.CASES),
        ("transport", topics.DECISIONS),
        ("intake-timeline", topics.STATUS),
    ):
        await wait_group_caught_up(stack.kafka_access("operations"), group, topic, timeout=120)
    conn = await asyncpg.connect(stack.postgres.dsn("intake"))
    try:
        statuses = dict(
            await conn.fetch(
                "SELECT status, count(*) FROM cases WHERE registration_key LIKE $1 GROUP BY status",
                f"bulk:{namespace}:%",
            )
        )
    finally:
        await conn.close()
    assert sum(statuses.values()) == len(registered) and "registered" not in statuses, statuses
    report_figure(
        SECTION,
        f"every imported case decided downstream {time.monotonic() - started:.0f}s after the import: "
        + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())),
    )


async def wait_outbox_published(client: httpx.AsyncClient, url: str, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while (await client.get(url + "/stats")).json()["outbox_pending"]:
            await asyncio.sleep(0.5)


async def test_imports_over_http_in_csv_and_json(stack: Stack, client: httpx.AsyncClient) -> None:
    url = stack.url("intake") + "/imports"
    namespace = f"sample-{uuid.uuid4().hex[:8]}"
    sample = (repo_root() / "docs" / "bulk-import-sample.csv").read_bytes()
    headers = {**stack.headers(Role.CASEWORKER, subject="clerk@karaganda"), "Content-Type": "text/csv"}

    r = await client.post(url, params={"namespace": namespace}, content=sample, headers=headers)
    assert r.status_code == 200, r.text
    first = r.json()
    report = bulk.ImportReport.model_validate(first)
    assert report.actor == "clerk@karaganda" and report.repeated == 0
    assert [(e.row_key, e.outcome, e.lines) for e in report.entries] == [
        ("KRG-2031-0001", "created", [2, 3, 4]),
        ("KRG-2031-0002", "created", [5]),
        ("KRG-2031-0003", "created", [6]),
    ]
    r = await client.post(url, params={"namespace": namespace}, content=sample, headers=headers)
    # The same file again: each row answered what the first import answered, marked a repeat.
    assert [e["repeated"] for e in r.json()["entries"]] == [True] * 3 and r.json()["repeated"] == 3
    assert [{**e, "repeated": False} for e in r.json()["entries"]] == first["entries"]
    assert r.json()["counts"] == first["counts"]

    # JSON: a case as POST /cases takes it, and rows that cannot be registered.
    row = bulk.parse_csv(sample)[2].as_item()
    items = [
        {
            **row,
            "row_key": "J-1",
            "members": [
                {**row["members"][0], "document": {**row["members"][0]["document"], "number": "J00000001"}}
            ],
        },
        {**row, "row_key": "J-2", "route_id": "kaz-nowhere"},
        {"row_key": "J-3"},
        "not an object",
        {**row, "row_key": "J-1"},
    ]
    r = await client.post(url, params={"namespace": namespace}, json=items)
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert [(e["row_key"], e["outcome"], e["item"]) for e in entries] == [
        ("J-1", "flagged", 0),  # the same woman as the CSV's KRG-2031-0003, with another passport
        ("J-2", "rejected", 1),
        ("J-3", "rejected", 2),
        (None, "rejected", 3),
        ("J-1", "rejected", 4),
    ]
    assert entries[0]["flags"][0]["basis"] == "name"
    assert entries[1]["reasons"] == [{"field": "route_id", "msg": "unknown route 'kaz-nowhere'"}]
    assert {r["field"] for r in entries[2]["reasons"]} == {
        "route_id",
        "planned_travel_date",
        "consent",
        "members",
    }
    assert entries[4]["reasons"][0] == {"field": "row_key", "msg": "repeats the row_key of item 0"}

    # A key taken over POST /cases: the import did not answer it, so it cannot repeat an answer.
    taken = f"bulk:{namespace}:P-1"
    case = {k: v for k, v in row.items() if k != "row_key"}
    r = await client.post(stack.url("intake") + "/cases", json={**case, "registration_key": taken})
    assert r.status_code == 201, r.text
    registered = r.json()["case_id"]
    r = await client.post(url, params={"namespace": namespace}, json=[{**case, "row_key": "P-1"}])
    assert [(e["outcome"], e["case_id"], e["repeated"]) for e in r.json()["entries"]] == [
        ("exists", registered, True)
    ]

    # What cannot be imported at all.
    anonymous = {"Authorization": "", "Content-Type": "text/csv"}
    assert (
        await client.post(url, params={"namespace": namespace}, content=sample, headers=anonymous)
    ).status_code == 401  # nobody to record as the importer
    r = await client.post(url, params={"namespace": "a:b"}, content=sample, headers=headers)
    assert r.status_code == 422
    r = await client.post(
        url,
        params={"namespace": namespace},
        content=sample,
        headers={**headers, "Content-Type": "text/plain"},
    )
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"
    r = await client.post(
        url, params={"namespace": namespace}, content=b"row_key,surname\nx,y\n", headers=headers
    )
    assert r.status_code == 400 and r.json()["code"] == "bad_header" and "route_id" in r.json()["detail"]
    r = await client.post(url, params={"namespace": namespace}, content=b"\xff\xfe", headers=headers)
    assert r.status_code == 400 and r.json()["code"] == "not_utf8"
    r = await client.post(
        url,
        params={"namespace": namespace},
        content=b"[" + b" " * (bulk.MAX_BYTES + 1) + b"]",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["code"] == "too_large"


async def test_the_same_file_imported_twice_at_once_is_registered_once_and_answered_alike(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    """Whichever import registers a row, the other (its lookup made before that commit, or after)
    answers it what the first answered, marked a repeat."""
    url = stack.url("intake") + "/imports"
    namespace = f"twice-{uuid.uuid4().hex[:8]}"
    sample = (repo_root() / "docs" / "bulk-import-sample.csv").read_bytes()
    headers = {"Content-Type": "text/csv"}
    answers = await asyncio.gather(
        *(
            client.post(url, params={"namespace": namespace}, content=sample, headers=headers)
            for _ in range(2)
        )
    )
    assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
    one, other = (r.json()["entries"] for r in answers)
    assert [{**e, "repeated": False} for e in one] == [{**e, "repeated": False} for e in other]
    assert [a["repeated"] + b["repeated"] for a, b in zip(one, other, strict=True)] == [1, 1, 1]
    conn = await asyncpg.connect(stack.postgres.dsn("intake"))
    try:
        assert (await stored(conn, namespace))["cases"] == 3
    finally:
        await conn.close()


def test_csv_rows_are_grouped_into_cases_and_problems_name_line_and_column() -> None:
    sample = (repo_root() / "docs" / "bulk-import-sample.csv").read_text()
    rows = bulk.parse_csv(sample.encode())
    assert [(r.row_key, r.lines) for r in rows] == [
        ("KRG-2031-0001", [2, 3, 4]),
        ("KRG-2031-0002", [5]),
        ("KRG-2031-0003", [6]),
    ]
    commands = [bulk.command_for(r, "karaganda") for r in rows]
    assert [reasons for _, reasons in commands] == [[], [], []]
    family, single, proxy = (c for c, _ in commands)
    assert family is not None and single is not None and proxy is not None
    assert family.registration_key == "bulk:karaganda:KRG-2031-0001"
    assert family.consent.scope == ["UZB", "TJK"] and family.route_id == "kaz-uzb-tjk"
    assert [m.role for m in family.members] == ["principal", "spouse", "child"]
    child = family.members[2]
    assert child.proof_of_citizenship is not None and child.proof_of_citizenship.number == "BC-2016-44521"
    assert single.members[0].document.mrz is not None and single.members[0].surname_cyrillic == "Рахимов"
    assert proxy.consent.kind == "proxy" and proxy.members[0].needs_escort
    assert [str(v) for v in proxy.members[0].vulnerabilities] == ["elderly", "serious_illness"]

    # Excel in a Russian locale: semicolons, a byte-order mark, capitals in the header.
    out = io.StringIO()
    records = list(csv.reader(io.StringIO(sample)))
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(
        [[h.upper() for h in records[0]], *records[1:]]
    )
    excel = bulk.parse_csv(b"\xef\xbb\xbf" + out.getvalue().encode())
    assert [r.body for r in excel] == [r.body for r in rows]

    # A case's rows that disagree, a value in no column, a row without a key: each says where.
    lines = sample.splitlines()
    broken = [
        lines[0],
        lines[1],
        lines[2].replace(",,,,,,,,spouse", ",kaz-uzb-kgz,,,,,,,spouse"),
        lines[3],
        lines[4] + ",stray",
        "," + lines[5].split(",", 1)[1],
    ]
    rows = bulk.parse_csv("\n".join(broken).encode())
    reasons = [bulk.command_for(r, "karaganda")[1] for r in rows]
    assert [(r.row_key, r.lines) for r in rows] == [
        ("KRG-2031-0001", [2, 3, 4]),
        ("KRG-2031-0002", [5]),
        (None, [6]),
    ]
    assert reasons[0] == [
        {
            "field": "route_id",
            "msg": "the rows of this case disagree: 'kaz-uzb-tjk' on line 2, 'kaz-uzb-kgz' here",
            "line": 3,
            "column": "route_id",
        }
    ]
    assert reasons[1] == [{"field": "", "msg": "1 value(s) in no column of the header", "line": 5}]
    assert reasons[2][0] | {"msg": ""} == {"field": "row_key", "msg": "", "line": 6, "column": "row_key"}

    for bad, code in (
        (b"", "no_header"),
        (b"row_key,surname,colour\n", "bad_header"),
        (lines[0].encode() + b",surname\n", "bad_header"),
        (b"\xff", "not_utf8"),
    ):
        with pytest.raises(bulk.FileRejected) as caught:
            bulk.parse_csv(bad)
        assert caught.value.code == code


def _items(sample: bytes, travel: date, salt: str) -> list[dict[str, Any]]:
    """Seven rows for chunks of three: a man, then (in the next chunk) the same man in Cyrillic; a
    row the checks reject amid the first chunk; Sharip..., whose chunk the test makes the database
    refuse. Other people for another ``salt``."""
    base = bulk.parse_csv(sample)[1].as_item()
    base |= {"planned_travel_date": travel.isoformat()}
    name = token(int(salt, 16) % 10**6).capitalize()

    def row(key: str, surname: str, number: str, **member: Any) -> dict[str, Any]:
        principal = {
            k: v
            for k, v in base["members"][0].items()
            if k not in ("surname_cyrillic", "given_names_cyrillic")
        }
        document = {k: v for k, v in principal["document"].items() if k != "mrz"} | {
            "number": f"{salt.upper()}{number}"
        }
        return {
            **base,
            "row_key": key,
            "members": [principal | {"surname": surname, "document": document} | member],
        }

    return [
        row("C-0", f"Dzhuraev{name}", "01", given_names="Bakhodur"),
        row("C-1", f"Nazar{name}", "02"),
        {**row("C-2", f"Karim{name}", "03"), "route_id": "kaz-nowhere"},
        row(
            "C-3",
            f"Djuraev{name}x",
            "04",
            given_names="Bakhodur",
            surname_cyrillic="Джураев" + cyrillic(name).lower(),
            given_names_cyrillic="Баходур",
        ),
        row("C-4", f"Sharip{name}", "05"),
        row("C-5", f"Rahim{name}", "06"),
        row("C-6", f"Aziz{name}", "07"),
    ]


def _outcomes(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Each row's outcome, reasons, and the rows its flags point to (case ids differ by run)."""
    row_of = {e["case_id"]: e["row_key"] for e in report["entries"] if e["case_id"]}
    return [
        (
            e["row_key"],
            e["outcome"],
            e["reasons"],
            [(row_of[f["other_case_id"]], f["basis"]) for f in e["flags"]],
        )
        for e in report["entries"]
    ]


async def test_chunks_answer_every_row_as_the_row_by_row_import_did(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the platform's database: chunks of three, against the row-by-row import of the same rows
    (other people), and a re-import of the chunked file, which creates nothing. The database
    refuses one chunk's statement once (as it would a value it cannot store): that chunk is
    registered row by row, with the same outcome."""
    refused: list[int] = []
    insert_cases = IntakeStore.insert_cases

    async def refusing(self: IntakeStore, cases: Any, *, status: Any) -> Any:
        if not refused and any(c.members[0].surname.startswith("Sharip") for c, _ in cases):
            refused.append(len(cases))
            raise asyncpg.DataError("a value the database cannot take")
        return await insert_cases(self, cases, status=status)

    monkeypatch.setattr(IntakeStore, "insert_cases", refusing)
    sample = (repo_root() / "docs" / "bulk-import-sample.csv").read_bytes()
    travel = near_day("bulk import")
    ctx = usecases.Context(routes=RouteBook.load(stack.routes_file))
    pool = await asyncpg.create_pool(stack.postgres.dsn("intake"), min_size=1, max_size=2)
    assert pool is not None
    try:

        async def run(items: list[dict[str, Any]], namespace: str, chunk_rows: int) -> dict[str, Any]:
            rows = bulk.parse_json(json.dumps(items).encode())
            return await bulk.run_import(
                pool,
                rows,
                namespace=namespace,
                ctx=ctx,
                source=SOURCE,
                actor="chunks@test",
                chunk_rows=chunk_rows,
            )

        namespace = f"chunks-{uuid.uuid4().hex[:8]}"
        chunked = await run(_items(sample, travel, uuid.uuid4().hex[:6]), namespace, 3)
        rows_namespace = f"rows-{uuid.uuid4().hex[:8]}"
        one_by_one = await run(_items(sample, travel, uuid.uuid4().hex[:6]), rows_namespace, 0)
        assert _outcomes(chunked) == _outcomes(one_by_one)
        outcomes = _outcomes(chunked)
        assert [o[:2] for o in outcomes] == [
            ("C-0", "created"),
            ("C-1", "created"),
            ("C-2", "rejected"),  # amid its chunk: the rows around it are registered
            ("C-3", "flagged"),  # against C-0, a chunk before
            ("C-4", "created"),  # its chunk, refused once, went row by row
            ("C-5", "created"),
            ("C-6", "created"),
        ]
        assert outcomes[3][3] == [("C-0", "name")]
        assert refused == [3]

        async with pool.acquire() as conn:
            before = await stored(conn, namespace)
            events = await conn.fetchval(
                """SELECT count(*) FROM outbox o JOIN cases c ON o.key = c.case_id::text
                   WHERE c.registration_key LIKE $1""",
                f"bulk:{namespace}:%",
            )
        assert (before["cases"], before["persons"], before["flags"]) == (6, 6, 1)
        assert events == 18  # status, registration and profile of each case (kept an hour once published)
        # The same row keys again, with other people, in chunks and row by row, into each
        # namespace: every row answered what its first import answered (the key decides, as a
        # registration key does), marked a repeat; the rejected row checked afresh; nothing written.
        for ns, first in ((namespace, chunked), (rows_namespace, one_by_one)):
            for chunk_rows in (3, 0):
                again = await run(_items(sample, travel, "000000"), ns, chunk_rows)
                assert [{**e, "repeated": False} for e in again["entries"]] == first["entries"]
                assert [e["repeated"] for e in again["entries"]] == [
                    True,
                    True,
                    False,
                    True,
                    True,
                    True,
                    True,
                ]
                assert again["counts"] == first["counts"] and again["repeated"] == 6
        mine = ("cases", "persons", "person_keys", "flags")
        async with pool.acquire() as conn:
            after = await stored(conn, namespace)
        assert {k: after[k] for k in mine} == {k: before[k] for k in mine}
    finally:
        await pool.close()
