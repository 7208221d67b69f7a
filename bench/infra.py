"""The servers a benchmark run uses: one Kafka node and one PostgreSQL, in a temporary directory.

They are the project's own dev servers (devkit.devinfra) through ``devkit.devstack.Stack``,
which the optional HTTP benchmark also uses to start the intake service. Kafka runs without the
quick-start JVM flags (C1 only, class archive): those halve start time at a cost in throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg

from corridor import db
from corridor.kafkaclient import KafkaAccess
from devkit.devinfra.kafka import KafkaCluster
from devkit.devinfra.postgres import PostgresServer
from devkit.devstack import Stack

DATABASE = "bench"
PARTITIONS = 3

# The trivial effect a consumer's handler writes in its transaction (bench/consuming.py).
EFFECT_TABLE = """
CREATE TABLE IF NOT EXISTS bench_effect (
    event_id   text        PRIMARY KEY,
    case_id    uuid        NOT NULL,
    status     text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class Infra:
    def __init__(
        self, workdir: Path, *, durable: bool, kafka_heap_mb: int = 1024, statements: bool = False
    ) -> None:
        """``statements``: PostgreSQL counts every statement (``pg_stat_statements``, see
        ``StatementCounts``)."""
        self.workdir = workdir
        self.durable = durable
        self.stack = Stack(workdir, log_level="WARNING")
        # The stack starts the servers of its deployment description (the shared shape: one of each):
        # these replace them there, not only under the names the benchmarks read.
        host = self.stack.description.missions[self.stack.description.host_mission]
        self.stack.kafka = self.stack.clusters[host.cluster] = KafkaCluster(
            workdir / "kafka", nodes=1, heap_mb=kafka_heap_mb, quick_start=False
        )
        self.stack.postgres = self.stack.databases[host.database] = PostgresServer(
            workdir / "postgres",
            durable=durable,
            settings={"shared_preload_libraries": "pg_stat_statements"} if statements else None,
        )
        self.postgres_version = ""

    @property
    def bootstrap(self) -> str:
        return self.stack.bootstrap

    @property
    def writer(self) -> KafkaAccess:
        """A principal that may write the status stream (intake's), as the measured relay is."""
        return self.stack.kafka_access("intake")

    @property
    def reader(self) -> KafkaAccess:
        """A principal that may read the status stream without a consumer group (operations)."""
        return self.stack.kafka_access("operations")

    @property
    def dsn(self) -> str:
        return self.stack.postgres.dsn(DATABASE)

    def start(self) -> None:
        self.stack.start_infra()
        self.stack.postgres.create_database(DATABASE)
        asyncio.run(self._prepare())

    async def _prepare(self) -> None:
        pool = await db.create_pool(self.dsn, min_size=1, max_size=2)
        try:
            await db.migrate(pool, "corridor", db.SHARED_MIGRATIONS)
            async with pool.acquire() as conn:
                await conn.execute(EFFECT_TABLE)
                self.postgres_version = str(await conn.fetchval("SHOW server_version"))
        finally:
            await pool.close()
        # The status topic (3 partitions, one replica) comes from the stack's admin step, with the
        # ACLs the benchmark's principals use: SASL/SCRAM costs are part of what is measured.

    def stop(self) -> None:
        self.stack.stop()


async def truncate(dsn: str, *tables: str) -> None:
    """Empty the tables between repetitions, so each starts from the same state (not timed)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"TRUNCATE {', '.join(tables)}")
        await conn.execute("VACUUM ANALYZE " + ", ".join(tables))
    finally:
        await conn.close()


@contextlib.contextmanager
def temporary(
    prefix: str, *, keep: bool, say: Callable[[str], None], durable: bool = True, statements: bool = False
) -> Iterator[Infra]:
    """Servers in a new temporary directory (not started), stopped on leaving and the directory
    removed, or kept with ``keep`` (its server logs) and ``say``-ed."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    infra = Infra(workdir, durable=durable, statements=statements)
    try:
        yield infra
    finally:
        with contextlib.suppress(Exception):
            infra.stop()
        if keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


STATEMENTS = """
SELECT d.datname AS database,
       sum(s.calls)::bigint AS statements,
       (sum(s.calls) FILTER (WHERE s.query = 'BEGIN'))::bigint AS transactions,
       sum(s.total_exec_time) AS exec_ms
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname <> 'postgres'
GROUP BY d.datname
"""

TOP_STATEMENTS = """
SELECT d.datname AS database, s.calls, s.total_exec_time AS exec_ms,
       left(regexp_replace(s.query, '\\s+', ' ', 'g'), 100) AS query
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname <> 'postgres'
ORDER BY s.total_exec_time DESC LIMIT $1
"""


class StatementCounts:
    """What the platform's clients asked PostgreSQL between ``reset`` and ``read``, per database
    (``pg_stat_statements``, top-level statements only: a client's round trips; a transaction's
    ``BEGIN`` and ``COMMIT`` each count)."""

    def __init__(self, admin_dsn: str) -> None:
        self._dsn = admin_dsn

    async def reset(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await conn.execute("SELECT pg_stat_statements_reset()")
        finally:
            await conn.close()

    async def read(self, top: int = 12) -> dict[str, list[dict[str, object]]]:
        conn = await asyncpg.connect(self._dsn)
        try:
            by_database = [dict(r) for r in await conn.fetch(STATEMENTS)]
            heaviest = [dict(r) for r in await conn.fetch(TOP_STATEMENTS, top)]
        finally:
            await conn.close()
        return {"by_database": by_database, "heaviest": heaviest}
