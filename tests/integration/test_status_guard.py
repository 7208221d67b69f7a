"""The outbox never takes an illegal status change, even from two transactions at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from contracts import topics
from contracts.status import CaseStatus, CaseStatusChanged
from corridor.db import SHARED_MIGRATIONS, create_pool, ensure_database, migrate
from corridor.outbox import Outgoing, announce, enqueue, enqueue_many
from corridor.statusguard import IllegalStatusChange
from devkit.devstack import Stack

SOURCE = "/missions/KAZ/guard-test"


@pytest.fixture
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    dsn = stack.postgres.dsn("status_guard_test")
    await ensure_database(dsn)
    pool = await create_pool(dsn, max_size=4)
    await migrate(pool, "corridor", SHARED_MIGRATIONS)
    yield pool
    await pool.close()


def change(case_id: uuid.UUID, status: CaseStatus) -> CaseStatusChanged:
    return CaseStatusChanged(case_id=case_id, status=status, occurred_at=datetime.now(UTC), members=1)


async def outboxed(pool: asyncpg.Pool, case_id: uuid.UUID) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox WHERE key = $1", str(case_id)))


async def test_an_illegal_change_is_refused_recorded_and_never_outboxed(pool: asyncpg.Pool) -> None:
    case_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(IllegalStatusChange):
            await enqueue(conn, change(case_id, CaseStatus.ELIGIBLE), topic=topics.STATUS, source=SOURCE)
        await enqueue(conn, change(case_id, CaseStatus.REGISTERED), topic=topics.STATUS, source=SOURCE)
        assert await announce(conn, change(case_id, CaseStatus.WITHDRAWN), source=SOURCE) is not None
        assert await announce(conn, change(case_id, CaseStatus.MANIFESTED), source=SOURCE) is None
    assert await outboxed(pool, case_id) == 2
    recorded = await pool.fetch(
        "SELECT from_status, to_status FROM illegal_status_changes WHERE case_id = $1", case_id
    )
    assert [(r["from_status"], r["to_status"]) for r in recorded] == [("withdrawn", "manifested")]


async def test_many_changes_at_once_are_judged_in_order_as_announce_judges_each(pool: asyncpg.Pool) -> None:
    """``enqueue_many`` (a bulk import's chunk): each change against the case's last status, the
    changes before it in the same call included; a refused one is recorded and left out."""
    known, fresh = uuid.uuid4(), uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await enqueue(conn, change(known, CaseStatus.REGISTERED), topic=topics.STATUS, source=SOURCE)
    items = [
        Outgoing(change(known, CaseStatus.ELIGIBLE), topics.STATUS),
        Outgoing(change(fresh, CaseStatus.ELIGIBLE), topics.STATUS),  # before "registered": refused
        Outgoing(change(fresh, CaseStatus.REGISTERED), topics.STATUS),
        Outgoing(change(known, CaseStatus.REGISTERED), topics.STATUS),  # back from eligible: refused
        Outgoing(change(fresh, CaseStatus.WITHDRAWN), topics.STATUS),
    ]
    async with pool.acquire() as conn, conn.transaction():
        written = await enqueue_many(conn, items, source=SOURCE)
    assert [e is not None for e in written] == [True, False, True, False, True]
    assert await outboxed(pool, known) == 2 and await outboxed(pool, fresh) == 2
    ids = [
        r["event_id"]
        for r in await pool.fetch("SELECT event_id FROM outbox WHERE key = $1 ORDER BY id", str(fresh))
    ]
    assert ids == [written[2].id, written[4].id]  # type: ignore[union-attr]
    recorded = await pool.fetch(
        "SELECT case_id, from_status, to_status FROM illegal_status_changes WHERE case_id = ANY($1) ORDER BY id",
        [known, fresh],
    )
    assert [(r["case_id"], r["from_status"], r["to_status"]) for r in recorded] == [
        (fresh, None, "eligible"),
        (known, "eligible", "registered"),
    ]
    statuses = dict(
        await pool.fetch(
            "SELECT case_id, status FROM case_status_known WHERE case_id = ANY($1)", [known, fresh]
        )
    )
    assert statuses == {known: "eligible", fresh: "withdrawn"}


async def test_two_transactions_changing_one_case_are_judged_one_after_the_other(pool: asyncpg.Pool) -> None:
    """A withdrawal and a decision on the same case at once: the second waits for the first and is
    judged against what it committed."""
    case_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await announce(conn, change(case_id, CaseStatus.REGISTERED), source=SOURCE)
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def withdraw() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await announce(conn, change(case_id, CaseStatus.WITHDRAWN), source=SOURCE)
            first_in.set()
            await release.wait()

    async def decide() -> object:
        await first_in.wait()
        async with pool.acquire() as conn, conn.transaction():
            return await announce(conn, change(case_id, CaseStatus.ELIGIBLE), source=SOURCE)

    withdrawing = asyncio.create_task(withdraw())
    deciding = asyncio.create_task(decide())
    await first_in.wait()
    await asyncio.sleep(0.3)
    assert not deciding.done(), "the second change did not wait for the first"
    release.set()
    await withdrawing
    assert await deciding is None  # eligible may not follow withdrawn
    assert await outboxed(pool, case_id) == 2
