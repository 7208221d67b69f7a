"""What a fault test needs to prove its premise: a fault triggered on observed progress (not after a
fixed sleep), and, once the process is dead, the work it left behind measured where it is durable
(a consumer group's committed offsets, an outbox's unpublished rows)."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
from collections.abc import Awaitable, Callable, Iterable

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from corridor.kafkaclient import KafkaAccess
from corridor.kafkatools import partitions_of
from devkit.devstack import Stack


async def when(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 120.0, every: float = 0.05
) -> None:
    """Return as soon as ``condition()`` holds (checked ``every`` seconds; it may be a coroutine, to
    read a database): the moment to inject a fault. Never holding is a failed premise, said with
    ``what``."""

    async def holds() -> bool:
        held = condition()
        return await held if inspect.isawaitable(held) else held

    try:
        async with asyncio.timeout(timeout):
            while not await holds():
                await asyncio.sleep(every)
    except TimeoutError:
        raise AssertionError(f"never observed {what} within {timeout:.0f}s") from None


async def end_offsets(access: KafkaAccess, topic_names: Iterable[str]) -> dict[TopicPartition, int]:
    """Where ``topic_names`` end now: taken before a kill, what was there to do at the kill is at
    least what the group had not committed of it (records written later do not count)."""
    partitions: list[TopicPartition] = []
    for name in topic_names:
        partitions += await partitions_of(access, name)
    probe = AIOKafkaConsumer(**access.aiokafka())
    await probe.start()
    try:
        return await probe.end_offsets(partitions)
    finally:
        await probe.stop()


async def group_lag(access: KafkaAccess, group: str, ends: dict[TopicPartition, int]) -> int:
    """Records before ``ends`` that ``group`` has not committed: what it still had to process. Read
    once its process is dead, the committed offsets can no longer move. A partition the group never
    committed on counts from its beginning."""
    admin = AIOKafkaAdminClient(**access.aiokafka())
    probe = AIOKafkaConsumer(**access.aiokafka())
    await admin.start()
    await probe.start()
    try:
        starts = await probe.beginning_offsets(list(ends))
        committed = await admin.list_consumer_group_offsets(group, partitions=list(ends))
    finally:
        await probe.stop()
        await admin.close()
    lag = 0
    for tp, end in ends.items():
        done = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else starts[tp]
        lag += max(0, end - done)
    return lag


async def outbox_unpublished(stack: Stack, service: str) -> int:
    """Rows of ``service``'s outbox not yet marked published (read straight from its database)."""
    conn = await asyncpg.connect(stack.postgres.dsn(stack.specs[service].database))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    finally:
        await conn.close()


def freeze(stack: Stack, service: str) -> None:
    """SIGSTOP: the process stays as it is at this instant (its offsets, its outbox), so what it
    had pending can be measured before the SIGKILL that follows, as if both came at once."""
    os.kill(stack.processes[service].pid, signal.SIGSTOP)


def thaw(stack: Stack, service: str) -> None:
    """SIGCONT: a frozen process goes on as if nothing happened (a premise not met, a moment missed)."""
    os.kill(stack.processes[service].pid, signal.SIGCONT)
