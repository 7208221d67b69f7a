"""The public status stream stays legal: a status change is published only if it may follow the
case's last status (``contracts.status.LEGAL_TRANSITIONS``), as far as this service knows it.

Each service keeps what it knows in ``case_status_known``: the statuses it published and those it
learnt from the events it consumed (``note``). ``corridor.outbox.enqueue`` judges every status
change (``judge_many``) inside the caller's transaction and under a lock on the case's row, so two
changes of one case in two transactions are judged one after the other, and remembers the admitted
ones in the statement that writes them to the outbox (``note_statuses``). An illegal change is a
bug: it is logged loudly, recorded in ``illegal_status_changes`` and never published
(``announce``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import asyncpg

from contracts.status import ANNOTATIONS, CaseStatus, CaseStatusChanged, is_legal

log = logging.getLogger(__name__)


class IllegalStatusChange(RuntimeError):
    def __init__(self, change: CaseStatusChanged, previous: CaseStatus | None) -> None:
        before = previous.value if previous else "nothing"
        super().__init__(f"case {change.case_id}: {change.status.value} may not follow {before}")
        self.change = change
        self.previous = previous


async def known(conn: asyncpg.Connection, case_id: object) -> CaseStatus | None:
    """The case's last status as this service knows it (annotations aside)."""
    found = await conn.fetchval("SELECT status FROM case_status_known WHERE case_id = $1", case_id)
    return CaseStatus(found) if found else None


async def known_many(conn: asyncpg.Connection, case_ids: Sequence[object]) -> dict[object, CaseStatus]:
    """``known`` for many cases in one statement: those with a last status."""
    rows = await conn.fetch(
        "SELECT case_id, status FROM case_status_known WHERE case_id = ANY($1::uuid[])", list(case_ids)
    )
    return {r["case_id"]: CaseStatus(r["status"]) for r in rows}


async def note(conn: asyncpg.Connection, case_id: object, status: CaseStatus) -> None:
    """Remember a status learnt from another service's event (or published here); an annotation
    does not move the case on: the next change is judged without it."""
    await note_many(conn, [(case_id, status)])


async def note_many(conn: asyncpg.Connection, learnt: Sequence[tuple[object, CaseStatus]]) -> None:
    """``note`` for many (case, status) in their order, in one statement: each case's last status
    among them counts (annotations aside)."""
    last = {case_id: status.value for case_id, status in learnt if status not in ANNOTATIONS}
    if last:
        await conn.execute(_remember(1), list(last), list(last.values()))


def _remember(first: int) -> str:
    """The statement that remembers cases' last statuses: their ids and statuses the array
    parameters ``$first`` and ``$first+1``."""
    return f"""INSERT INTO case_status_known (case_id, status)
        SELECT * FROM unnest(${first}::uuid[], ${first + 1}::text[])
        ON CONFLICT (case_id) DO UPDATE SET status = EXCLUDED.status, updated_at = now()"""


async def judge_many(
    conn: asyncpg.Connection, changes: Sequence[CaseStatusChanged]
) -> tuple[list[IllegalStatusChange | None], dict[object, CaseStatus]]:
    """Judge many changes in one statement: for each, None if it may follow its case's last known
    status (the changes before it in ``changes`` included), else why not (nothing is raised: the
    caller decides); and each case's last status among the admitted changes (annotations aside),
    which the caller must remember in the same transaction: ``note_many``, or ``note_statuses`` in
    a statement of its own (the outbox's insert). The cases' rows are locked in case-id order, so
    two such calls cannot deadlock, and two changes of one case in two transactions are judged one
    after the other (a case seen for the first time has no row to lock; its first status can only
    be "registered", written once by intake)."""
    if not changes:
        return [], {}
    rows = await conn.fetch(
        """SELECT case_id, status FROM case_status_known WHERE case_id = ANY($1::uuid[])
           ORDER BY case_id FOR UPDATE""",
        list({c.case_id for c in changes}),
    )
    last: dict[object, CaseStatus | None] = {r["case_id"]: CaseStatus(r["status"]) for r in rows}
    verdicts: list[IllegalStatusChange | None] = []
    noted: dict[object, CaseStatus] = {}
    for change in changes:
        previous = last.get(change.case_id)
        if not is_legal(previous, change.status):
            verdicts.append(IllegalStatusChange(change, previous))
            continue
        verdicts.append(None)
        if change.status not in ANNOTATIONS:
            last[change.case_id] = noted[change.case_id] = change.status
    return verdicts, noted


def note_statuses(first: int) -> str:
    """``note_many``'s write as a common table expression (``noted``) of another statement, its
    case ids and statuses the parameters ``$first`` and ``$first+1`` (arrays, maybe empty): the
    statuses ``judge_many`` admitted, remembered without a round trip of their own."""
    return f"noted AS ({_remember(first)})"


async def record_refusal(conn: asyncpg.Connection, exc: IllegalStatusChange, source: str) -> None:
    log.error("ILLEGAL STATUS CHANGE NOT PUBLISHED (a bug): %s (from %s)", exc, source)
    await conn.execute(
        "INSERT INTO illegal_status_changes (case_id, from_status, to_status, source) VALUES ($1, $2, $3, $4)",
        exc.change.case_id,
        exc.previous.value if exc.previous else None,
        exc.change.status.value,
        source,
    )
