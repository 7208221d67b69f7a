"""Importing rows: every valid row registered in chunks of ``CHUNK_ROWS`` (``usecases.register_cases``,
one unit of work each, a handful of set-based statements), or row by row (``usecases.register_case``,
one unit of work each, several at once: ``chunk_rows=0``, the earlier way, kept for comparison);
a report on every row, in file order, the same either way."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from corridor.redaction import described
from corridor.uow import UnitOfWork
from services.intake import usecases
from services.intake.bulk.format import Outcome, Row, counts, entry, reason, repeats
from services.intake.bulk.parse import command_for
from services.intake.domain import RegisterCase, RegistrationRejected
from services.intake.duplicates import keys_of
from services.intake.store import IntakeStore, RaisedFlag
from services.intake.usecases import Context

log = logging.getLogger(__name__)

CONCURRENCY = 4
"""Rows registered at once (each on its own pool connection), over all imports of the service."""
ROWS_PER_CONNECTION = 100
CHUNK_ATTEMPTS = 3


def _groups(commands: list[tuple[int, RegisterCase]]) -> list[list[int]]:
    """Rows that may be the same person (a shared document or name key) form one group, registered
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
    groups: dict[int, list[int]] = {}
    for i, _ in commands:
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda group: group[0])


async def _imported(pool: asyncpg.Pool, keys: list[str], source: str) -> dict[str, usecases.Registration]:
    """Registration keys already taken, with what their first import answered: one query for the
    whole import."""
    if not keys:
        return {}
    async with pool.acquire() as conn:
        return await usecases.answers_before(
            keys, UnitOfWork(conn, IntakeStore(conn), source=source), for_import=True
        )


async def run_import(
    pool: asyncpg.Pool,
    rows: Sequence[Row],
    *,
    namespace: str,
    ctx: Context,
    source: str,
    actor: str,
    now: datetime | None = None,
    concurrency: int = CONCURRENCY,
    slots: asyncio.Semaphore | None = None,
    chunk_rows: int | None = None,
) -> dict[str, Any]:
    """Register every valid row and report on every row, in file order: ``chunk_rows`` rows a
    unit of work (``usecases.register_cases``), or each row alone when ``chunk_rows`` is 0
    (``usecases.register_case``, ``concurrency`` at once); ``ctx.import_chunk_rows`` unless
    given. ``now`` is the registration time of every row."""
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
    known = await _imported(pool, [c.registration_key for _, c in commands if c.registration_key], source)
    pending: list[tuple[int, RegisterCase]] = []
    for i, command in commands:
        assert command.registration_key is not None
        if command.registration_key in known:
            entries[i] = _entry(rows[i], known[command.registration_key])
        else:
            pending.append((i, command))
    by_index = dict(pending)
    chunk_rows = ctx.import_chunk_rows if chunk_rows is None else chunk_rows
    slots = slots or asyncio.Semaphore(concurrency)
    groups: deque[list[int]] = deque()
    if chunk_rows <= 0:
        groups.extend(_groups(pending))

    async def register_one(conn: asyncpg.Connection, i: int) -> tuple[dict[str, Any], bool]:
        """The row's entry, and whether the connection is still fit for the next row."""
        row = rows[i]
        try:
            async with conn.transaction():
                uow = UnitOfWork(conn, IntakeStore(conn), source=source)
                done = await usecases.import_case(by_index[i], uow, ctx, now=now)
        except RegistrationRejected as exc:
            reasons = [reason(p.loc, p.msg) for p in exc.problems]
            return entry(row, "rejected", reasons=row.annotate(reasons)), True
        except (asyncpg.DataError, asyncpg.ProgramLimitExceededError) as exc:
            problem = reason((), f"value cannot be stored: {str(exc)[:300]}")
            return entry(row, "rejected", reasons=row.annotate([problem])), True
        except Exception as exc:
            return _failed(row, exc), False
        return _entry(row, done), True

    def _failed(row: Row, exc: Exception) -> dict[str, Any]:
        # The exception's message may quote the row's values: its type only.
        log.warning("bulk import %s: row %r failed: %s", namespace, row.row_key, described(exc))
        return entry(row, "failed", reasons=[reason((), f"not imported ({type(exc).__name__}): retry")])

    async def worker() -> None:
        # A connection serves a run of rows: taken from the pool for each row, it would be reset
        # (one more round trip) on each release.
        while groups:
            connected = False
            try:
                async with slots, pool.acquire() as conn:
                    connected = True
                    served = 0
                    while groups and served < ROWS_PER_CONNECTION:
                        group = groups.popleft()
                        for n, i in enumerate(group):
                            entries[i], fit = await register_one(conn, i)
                            if not fit:  # back to the pool, which replaces a broken connection
                                if group[n + 1 :]:
                                    groups.appendleft(group[n + 1 :])
                                served = ROWS_PER_CONNECTION
                                break
                        served += len(group)
            except Exception as exc:
                if connected:  # the connection failed on its way back to the pool: rows are done
                    log.warning("bulk import %s: releasing a connection: %r", namespace, exc)
                elif groups:  # no connection to be had: the database is unavailable
                    for i in groups.popleft():
                        entries[i] = _failed(rows[i], exc)

    def prepared(chunk: list[int]) -> list[tuple[int, usecases.NewCase]]:
        """The chunk's rows checked and built; the rows the checks reject are reported here."""
        ready = []
        for i in chunk:
            try:
                ready.append((i, usecases.prepare_registration(by_index[i], ctx, now)))
            except RegistrationRejected as exc:
                reasons = [reason(p.loc, p.msg) for p in exc.problems]
                entries[i] = entry(rows[i], "rejected", reasons=rows[i].annotate(reasons))
            except Exception as exc:
                entries[i] = _failed(rows[i], exc)
        return ready

    async def one_by_one(conn: asyncpg.Connection, ready: list[tuple[int, usecases.NewCase]]) -> bool:
        for n, (i, _) in enumerate(ready):
            entries[i], fit = await register_one(conn, i)
            if not fit:  # the rest wait for the next import (the CLI sends failed rows again)
                for j, _ in ready[n + 1 :]:
                    entries[j] = _failed(rows[j], ConnectionError("the connection failed"))
                return False
        return True

    async def register_chunk(conn: asyncpg.Connection, ready: list[tuple[int, usecases.NewCase]]) -> bool:
        """Register the chunk in one unit of work; whether the connection is still fit. A value the
        database cannot take fails the whole chunk's statement: the chunk is then registered row by
        row, so that row alone is answered (rejected or failed) as it always was."""
        for attempt in range(1, CHUNK_ATTEMPTS + 1):
            try:
                async with conn.transaction():
                    uow = UnitOfWork(conn, IntakeStore(conn), source=source)
                    done = await usecases.import_cases([n for _, n in ready], uow, now=now)
            except asyncpg.TransactionRollbackError as exc:  # a deadlock victim: nothing was written
                if attempt < CHUNK_ATTEMPTS:
                    continue
                for i, _ in ready:
                    entries[i] = _failed(rows[i], exc)
                return True
            except Exception as exc:
                if conn.is_closed():
                    for i, _ in ready:
                        entries[i] = _failed(rows[i], exc)
                    return False
                log.info("bulk import %s: a chunk failed (%s): row by row", namespace, type(exc).__name__)
                return await one_by_one(conn, ready)
            for (i, _), registration in zip(ready, done, strict=True):
                entries[i] = _entry(rows[i], registration)
            return True
        return True

    async def write(ready: list[tuple[int, usecases.NewCase]]) -> None:
        # A connection a chunk: its reset on release is one round trip for thousands of rows.
        connected = False
        try:
            async with slots, pool.acquire() as conn:
                connected = True
                await register_chunk(conn, ready)  # a broken connection: the pool replaces it
        except Exception as exc:
            if connected:  # the connection failed on its way back to the pool: rows are done
                log.warning("bulk import %s: releasing a connection: %r", namespace, exc)
            else:  # no connection to be had: the database is unavailable
                for i, _ in ready:
                    entries[i] = _failed(rows[i], exc)

    async def chunks() -> None:
        todo = [i for i, _ in pending]
        parts = [todo[k : k + chunk_rows] for k in range(0, len(todo), chunk_rows)]
        # The next chunk is checked and built in a thread while this one is written, so that the
        # database's work and this process's overlap (the thread runs while this one waits).
        upcoming = asyncio.ensure_future(asyncio.to_thread(prepared, parts[0])) if parts else None
        for n in range(len(parts)):
            assert upcoming is not None
            ready = await upcoming
            upcoming = (
                asyncio.ensure_future(asyncio.to_thread(prepared, parts[n + 1]))
                if n + 1 < len(parts)
                else None
            )
            if ready:
                await write(ready)

    if chunk_rows > 0:
        await chunks()
    else:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(groups)))))
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
        "repeated": repeats(final),
        "seconds": round(seconds, 3),
        "rows_per_second": round(len(rows) / seconds, 1) if seconds else None,
        "entries": final,
    }


def _entry(row: Row, done: usecases.Registration) -> dict[str, Any]:
    """The row's entry: a repeat (``repeated``) is the first import's, apart from that marker."""
    if not done.created:  # the key taken, its first answer unknown (registered by POST /cases)
        return entry(row, "exists", case_id=str(done.case_id), repeated=True)
    flags = [_flag(f) for f in done.duplicate_flags]
    outcome: Outcome = "flagged" if flags else "created"
    return entry(row, outcome, case_id=str(done.case_id), flags=flags, repeated=done.repeated)


def _flag(flag: RaisedFlag) -> dict[str, Any]:
    return {
        "flag_id": flag.flag_id,
        "person_id": str(flag.person_id),
        "other_case_id": str(flag.other_case_id),
        "basis": flag.basis,
    }


def report_json(report: dict[str, Any]) -> bytes:
    """ASCII JSON: a reason may quote input that is not encodable as UTF-8 (an unpaired surrogate)."""
    return json.dumps(report, ensure_ascii=True, separators=(",", ":")).encode()
