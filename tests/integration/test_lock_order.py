"""Advisory locks taken many at a time come in one order for every caller, so transactions locking
overlapping sets of cases (eligibility's and transport's batches against their request paths) or of
duplicate keys (two registrations, an import's chunk) never wait for each other in a circle. Each
test has transactions lock overlapping sets, each set handed over in its own shuffled order, at the
same moment: taken in the order handed over, some would deadlock (PostgreSQL breaks a circle after
``deadlock_timeout`` by failing one of them)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from corridor.db import create_pool, ensure_database, lock_keys
from devkit.devstack import Stack
from services.intake.store import IntakeStore

WORKERS = 8
ROUNDS = 25


@pytest.fixture
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    dsn = stack.postgres.dsn("lock_order_test")
    await ensure_database(dsn)
    pool = await create_pool(dsn, max_size=WORKERS)
    try:
        yield pool
    finally:
        await pool.close()


async def _contend(
    pool: asyncpg.Pool, lock: Callable[[asyncpg.Connection, list[int]], Awaitable[None]]
) -> int:
    """Every worker locks, round after round, 5 of the same 8 keys in a shuffled order and holds
    them a moment. How many transactions got all their locks."""
    done = 0

    async def worker(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        for _ in range(ROUNDS):
            keys = rng.sample(range(1, 9), 5)
            async with pool.acquire() as conn, conn.transaction():
                # A circle is broken after deadlock_timeout (1 s by default): much sooner here.
                await conn.execute("SET LOCAL deadlock_timeout = '100ms'")
                await lock(conn, keys)
                await asyncio.sleep(0.002)
            done += 1

    await asyncio.gather(*(worker(seed) for seed in range(WORKERS)))
    return done


async def test_locks_on_overlapping_cases_never_circle(pool: asyncpg.Pool) -> None:
    async def lock(conn: asyncpg.Connection, keys: list[int]) -> None:
        await lock_keys(conn, 7_241_999, [f"case-{k}" for k in keys])

    # A deadlock would raise DeadlockDetectedError out of the gather.
    assert await _contend(pool, lock) == WORKERS * ROUNDS


async def test_locks_on_overlapping_duplicate_keys_never_circle(pool: asyncpg.Pool) -> None:
    async def lock(conn: asyncpg.Connection, keys: list[int]) -> None:
        await IntakeStore(conn).lock_duplicate_keys(keys)

    assert await _contend(pool, lock) == WORKERS * ROUNDS


async def test_lock_keys_takes_every_lock_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await lock_keys(conn, 7_241_998, ["b", "a", "b", "c"])
        held = await conn.fetchval(
            """SELECT count(*) FROM pg_locks
               WHERE locktype = 'advisory' AND classid = 7241998 AND pid = pg_backend_pid()
                 AND granted""",
        )
    assert held == 3
