"""The inbox forgets only what cannot come again: a consumer's ids are pruned once no record of its
topics can still be delivered, as the broker's own settings for those topics say, read by the
service's principal under the platform's ACLs; where that cannot be known, nothing is pruned."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from prometheus_client import CollectorRegistry

from contracts import topics
from contracts.base import Event
from contracts.envelope import CloudEvent
from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged
from corridor.inbox import (
    InboxPruner,
    first_delivery,
    inbox_horizon,
    prune_older,
    record_lifetime,
    topic_configs,
)
from devkit.devstack import Stack
from opstools.deadletters import REPLAYS_TOPIC
from services.intake.usecases import INBOUND
from tests.integration.conftest import fresh_database
from tests.integration.test_metrics import samples


@dataclass(frozen=True)
class Consumer:
    name: str
    topics: tuple[str, ...]


TIMELINE = Consumer("intake-timeline", (topics.STATUS,))


def inbound(stack: Stack) -> Consumer:
    countries = RouteBook.load(stack.routes_file).countries()
    return Consumer(INBOUND, tuple(topics.inbound_status(c) for c in countries))


@pytest.fixture
async def inbox_pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    """The shared messaging tables on a fresh database."""
    async with fresh_database(stack) as pool:
        yield pool


def event() -> CloudEvent:
    data: Event = CaseStatusChanged(
        case_id=uuid.uuid4(), status=CaseStatus.REGISTERED, occurred_at=datetime.now(UTC), members=1
    )
    return CloudEvent.new(data, source="/missions/KAZ/intake")


async def applied(pool: asyncpg.Pool, consumer: str, age: timedelta) -> CloudEvent:
    """An event ``consumer`` applied ``age`` ago."""
    e = event()
    async with pool.acquire() as conn:
        assert await first_delivery(conn, consumer, e)
        await conn.execute(
            "UPDATE inbox SET received_at = now() - $2::interval WHERE event_id = $1", e.id, age
        )
    return e


async def seen(pool: asyncpg.Pool, consumer: str, e: CloudEvent) -> bool:
    """Whether a redelivery of ``e`` would be recognised (and leave the inbox as it was)."""
    async with pool.acquire() as conn, conn.transaction():
        fresh = await first_delivery(conn, consumer, e)
        if fresh:
            await conn.execute("DELETE FROM inbox WHERE consumer = $1 AND event_id = $2", consumer, e.id)
        return not fresh


async def test_the_service_principal_reads_how_long_its_topics_keep_records(stack: Stack) -> None:
    """Granted by the admin step (opstools.kafkaadmin.plan): DescribeConfigs on what it reads."""
    mine = inbound(stack)
    configs = await topic_configs(stack.kafka_access("intake"), (*TIMELINE.topics, *mine.topics))
    assert set(configs) == {*TIMELINE.topics, *mine.topics}
    for name, config in configs.items():
        lifetime = record_lifetime(config)
        assert lifetime is not None, (name, config)
        retention = timedelta(milliseconds=int(config["retention.ms"]))
        assert (
            retention
            < lifetime
            <= retention + timedelta(milliseconds=int(config["segment.ms"])) + timedelta(days=1)
        ), (name, config)


async def test_a_compacted_topic_keeps_its_readers_ids_for_ever(stack: Stack) -> None:
    configs = await topic_configs(stack.kafka_access("admin"), [REPLAYS_TOPIC])
    assert "compact" in configs[REPLAYS_TOPIC]["cleanup.policy"]
    assert inbox_horizon([REPLAYS_TOPIC], configs, keep_at_least=timedelta(0)) is None


async def test_only_ids_no_record_can_bring_back_are_pruned(stack: Stack, inbox_pool: asyncpg.Pool) -> None:
    registry = CollectorRegistry()
    mine = inbound(stack)
    pruner = InboxPruner(
        lambda: inbox_pool,
        stack.kafka_access("intake"),
        lambda: [TIMELINE, mine],
        keep_at_least=timedelta(days=1),
        registry=registry,
    )
    configs = await topic_configs(stack.kafka_access("intake"), (*TIMELINE.topics, *mine.topics))
    horizon = inbox_horizon(TIMELINE.topics, configs, keep_at_least=timedelta(days=1))
    inbound_horizon = inbox_horizon(mine.topics, configs, keep_at_least=timedelta(days=1))
    assert horizon is not None and inbound_horizon is not None
    hour = timedelta(hours=1)
    gone = [await applied(inbox_pool, TIMELINE.name, horizon + hour) for _ in range(3)]
    kept = [await applied(inbox_pool, TIMELINE.name, age) for age in (horizon - hour, timedelta(0))]
    other_gone = await applied(inbox_pool, mine.name, inbound_horizon + hour)
    other_kept = await applied(inbox_pool, mine.name, inbound_horizon - hour)
    # Not a consumer of this process: its ids are not this pruner's to judge.
    stranger = await applied(inbox_pool, "someone-else", 10 * horizon)

    assert await pruner.run() == {TIMELINE.name: 3, mine.name: 1}

    for e in gone:
        assert not await seen(inbox_pool, TIMELINE.name, e)
    for e in kept:
        assert await seen(inbox_pool, TIMELINE.name, e)
    assert not await seen(inbox_pool, mine.name, other_gone)
    assert await seen(inbox_pool, mine.name, other_kept)
    assert await seen(inbox_pool, "someone-else", stranger)
    assert registry.get_sample_value(
        "corridor_inbox_kept_seconds", {"consumer": TIMELINE.name}
    ) == pytest.approx(horizon.total_seconds())
    assert registry.get_sample_value("corridor_inbox_pruned_ids_total", {"consumer": TIMELINE.name}) == 3
    assert await pruner.run() == {TIMELINE.name: 0, mine.name: 0}


async def test_nothing_is_pruned_when_the_topics_settings_cannot_be_read(
    stack: Stack, inbox_pool: asyncpg.Pool
) -> None:
    """A mission's client may read the status stream but not its settings: its horizon is unknown."""
    registry = CollectorRegistry()
    pruner = InboxPruner(
        lambda: inbox_pool,
        stack.kafka_access("mission-uzb"),
        lambda: [TIMELINE],
        keep_at_least=timedelta(0),
        registry=registry,
    )
    ancient = await applied(inbox_pool, TIMELINE.name, timedelta(days=3650))
    assert await pruner.run() == {}
    assert await seen(inbox_pool, TIMELINE.name, ancient)
    assert registry.get_sample_value("corridor_inbox_kept_seconds", {"consumer": TIMELINE.name}) == -1


async def test_pruning_goes_a_batch_a_transaction_until_none_is_left(inbox_pool: asyncpg.Pool) -> None:
    old = [await applied(inbox_pool, "c", timedelta(days=30)) for _ in range(5)]
    young = await applied(inbox_pool, "c", timedelta(days=1))
    assert await prune_older(inbox_pool, "c", timedelta(days=2), batch=2) == 5
    assert not any([await seen(inbox_pool, "c", e) for e in old])
    assert await seen(inbox_pool, "c", young)


async def test_every_running_service_prunes_with_its_own_principal(stack: Stack) -> None:
    """The wiring, in the services' own processes (the session's stack prunes every 30 s): every
    consumer of every service has read its topics' settings (a horizon, not -1), and intake's is
    the one its topics' settings give, over the default floor of a week."""
    configs = await topic_configs(stack.kafka_access("intake"), (*TIMELINE.topics, *inbound(stack).topics))
    expected = {
        c.name: inbox_horizon(c.topics, configs, keep_at_least=timedelta(days=7))
        for c in (TIMELINE, inbound(stack))
    }
    kept: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(timeout=15.0) as client:
        async with asyncio.timeout(90):
            for name, spec in stack.specs.items():
                while True:
                    answer = await client.get(
                        stack.url(name) + "/metrics",
                        headers=stack.headers("operations_viewer", mission=spec.mission),
                    )
                    assert answer.status_code == 200, (name, answer.text)
                    figures = samples(answer.text)
                    consumers = {
                        s["consumer"] for s, _ in figures.get("corridor_consumer_transactions_total", [])
                    }
                    kept[name] = {s["consumer"]: v for s, v in figures.get("corridor_inbox_kept_seconds", [])}
                    if set(kept[name]) >= consumers:
                        break
                    await asyncio.sleep(1)
    with_consumers = {name: k for name, k in kept.items() if k}
    assert {"intake", "eligibility", "transport", "reporting"} <= set(with_consumers)
    for name, horizons in with_consumers.items():
        for consumer, seconds in horizons.items():
            assert seconds >= timedelta(days=7).total_seconds(), (name, consumer, seconds)
    assert kept["intake"] == {c: h.total_seconds() for c, h in expected.items() if h is not None}
