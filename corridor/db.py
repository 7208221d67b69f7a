"""PostgreSQL wiring: pools and ordered SQL migrations.

Migrations are plain ordered SQL files (``NNN_name.sql``). The shared messaging tables (outbox,
inbox) are applied first as component ``corridor``, then the service's own. An advisory lock makes
concurrent starts of the same service safe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

SHARED_MIGRATIONS = Path(__file__).parent / "sql"
_MIGRATION_LOCK = 7_241_001


async def ensure_database(dsn: str) -> None:
    """Create the database named in ``dsn`` if it does not exist (local and test runs)."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                # DDL takes no parameters: the name is quoted as an identifier (a configured name
                # with a double quote in it cannot end the statement early).
                await conn.execute(f"CREATE DATABASE {quote_identifier(name)}")
            except asyncpg.DuplicateDatabaseError:
                pass  # a sibling process won the race
    finally:
        await conn.close()


def quote_identifier(name: str) -> str:
    """``name`` as a PostgreSQL identifier, whatever it contains."""
    if "\x00" in name:
        raise ValueError("an identifier cannot contain a NUL character")
    return '"' + name.replace('"', '""') + '"'


async def lock_keys(conn: asyncpg.Connection, lock_class: int, keys: Iterable[object]) -> None:
    """Transaction-scoped advisory locks on ``keys`` (their text's hash, in ``lock_class``), in
    one statement and in one order (the locks' own) for every caller, so that two transactions
    locking overlapping sets never wait for each other in a circle. For ids whose row may not
    exist yet."""
    await conn.execute(
        # The outer query sorts: PostgreSQL documents that it evaluates an output expression not
        # itself sorted on after sorting (SELECT, "The SELECT List"); a subquery's ORDER BY is only
        # kept in practice. Sorted by the lock itself, so two keys whose hashes collide cannot
        # order the same two locks differently.
        """SELECT pg_advisory_xact_lock($1, h)
           FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest($2::text[]) AS u(k)) AS wanted
           ORDER BY h""",
        lock_class,
        [str(k) for k in keys],
    )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections go back without asyncpg's reset query (``RESET ALL``, ``CLOSE
    ALL``, ``UNLISTEN *``, ``pg_advisory_unlock_all()``): a round trip at every release, that is
    for every unit of work and every consumer batch, to undo session state this code never leaves.
    What a transaction sets is ``SET LOCAL``/``set_config(..., true)``, its advisory locks are
    ``pg_advisory_xact_lock``, the relay listens on a connection of its own, and the migration lock
    is released in a ``finally``. A transaction left open is still rolled back (asyncpg does that
    before any reset)."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, reset=_keep_session)
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset: nothing to undo (``create_pool``)."""


async def migrate(pool: asyncpg.Pool, component: str, directory: Path) -> list[str]:
    """Apply ``directory``'s SQL files not yet recorded for ``component``; return what ran."""
    applied: list[str] = []
    # Read before touching the database: a handful of small files, once at start-up.
    scripts = [(p.name, p.read_text()) for p in sorted(directory.glob("*.sql"))]  # noqa: ASYNC240
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       component text NOT NULL,
                       name text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now(),
                       PRIMARY KEY (component, name))"""
            )
            done = {
                r["name"]
                for r in await conn.fetch(
                    "SELECT name FROM schema_migrations WHERE component = $1", component
                )
            }
            for name, sql in scripts:
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (component, name) VALUES ($1, $2)",
                        component,
                        name,
                    )
                log.info("applied migration %s/%s", component, name)
                applied.append(name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied
