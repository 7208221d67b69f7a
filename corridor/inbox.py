"""Idempotent consumer: remember which events a consumer has applied, as long as they can come again."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Protocol

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge

from contracts.envelope import CloudEvent
from corridor.kafkaclient import KafkaAccess

log = logging.getLogger(__name__)


async def first_delivery(conn: asyncpg.Connection, consumer: str, event: CloudEvent) -> bool:
    """Record ``event`` for ``consumer``; False when it was applied before.

    Must run inside the transaction that applies the event's effect: if that transaction rolls
    back, the record goes with it and the redelivery is applied.
    """
    status = await conn.execute(
        """INSERT INTO inbox (consumer, event_source, event_id, event_type)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING""",
        consumer,
        event.source,
        event.id,
        event.type,
    )
    return status.endswith(" 1")


async def keep_outcome(conn: asyncpg.Connection, consumer: str, event: CloudEvent, outcome_id: str) -> None:
    """What applying ``event`` produced (an event's id), kept with its inbox row so that a repeat
    of ``event`` can be answered it (``outcome_of``). In the transaction that recorded the row."""
    await conn.execute(
        "UPDATE inbox SET outcome_id = $4 WHERE consumer = $1 AND event_source = $2 AND event_id = $3",
        consumer,
        event.source,
        event.id,
        outcome_id,
    )


async def outcome_of(conn: asyncpg.Connection, consumer: str, event: CloudEvent) -> str | None:
    """What applying ``event`` produced (``keep_outcome``); None if nothing was kept."""
    found: str | None = await conn.fetchval(
        "SELECT outcome_id FROM inbox WHERE consumer = $1 AND event_source = $2 AND event_id = $3",
        consumer,
        event.source,
        event.id,
    )
    return found


async def first_deliveries(
    conn: asyncpg.Connection, consumer: str, events: list[CloudEvent]
) -> set[tuple[str, str]]:
    """``first_delivery`` for many events in one statement: the (source, id) of those not applied
    before. The same rule: inside the transaction that applies their effects."""
    if not events:
        return set()
    rows = await conn.fetch(
        """INSERT INTO inbox (consumer, event_source, event_id, event_type)
           SELECT $1, s, i, t FROM unnest($2::text[], $3::text[], $4::text[]) AS u(s, i, t)
           ON CONFLICT DO NOTHING
           RETURNING event_source, event_id""",
        consumer,
        [e.source for e in events],
        [e.id for e in events],
        [e.type for e in events],
    )
    return {(r["event_source"], r["event_id"]) for r in rows}


# --- pruning: ids no redelivery can match any more -----------------------------------------------

LIFETIME_CONFIGS = (
    "cleanup.policy",
    "retention.ms",
    "segment.ms",
    "message.timestamp.type",
    "message.timestamp.after.max.ms",
)
"""A topic's settings that bound how long one of its records stays readable."""

PRUNE_MARGIN = timedelta(days=1)
"""Kept beyond the longest a record can stay readable: the broker deletes expired segments at
intervals (log.retention.check.interval.ms, 5 minutes by default), and the inbox's clock
(PostgreSQL's) is not the producers'."""

_FOREVER_MS = 100 * 365 * 86_400_000
"""Longer than any deployment runs (Kafka's Long.MAX_VALUE settings among them): for ever."""


def record_lifetime(config: Mapping[str, str]) -> timedelta | None:
    """The longest a record can stay readable on a topic with this effective configuration (a
    consumer whose group lost its offsets reads it again), or None when it may stay for ever.

    Kafka deletes a segment once the newest record in it is older than ``retention.ms``, and a
    segment takes records for up to ``segment.ms`` before it rolls: a record written as a segment
    opens stays about ``segment.ms + retention.ms``. A record's age counts from its own timestamp,
    which a producer sets (``CreateTime``) up to ``message.timestamp.after.max.ms`` ahead of the
    broker's clock. A compacted topic keeps a key's last record for ever; a setting missing from
    the answer is taken as unknown, never as short."""
    if "compact" in config.get("cleanup.policy", "").split(","):
        return None
    try:
        retention = int(config["retention.ms"])
        segment = int(config["segment.ms"])
        stamped_by_producer = config["message.timestamp.type"] == "CreateTime"
        ahead = int(config["message.timestamp.after.max.ms"]) if stamped_by_producer else 0
    except (KeyError, ValueError):
        return None
    total_ms = retention + segment + ahead
    if retention < 0 or total_ms >= _FOREVER_MS:
        return None
    return timedelta(milliseconds=total_ms)


def inbox_horizon(
    topics: Iterable[str], configs: Mapping[str, Mapping[str, str]], *, keep_at_least: timedelta
) -> timedelta | None:
    """How long a consumer of ``topics`` must keep the ids it applied: as long as a record of any of
    them can stay readable, with ``PRUNE_MARGIN``, and never less than ``keep_at_least``; None
    (for ever) when one of them keeps records for ever or its configuration is unknown."""
    lifetimes = [record_lifetime(configs.get(t, {})) for t in topics]
    if not lifetimes or any(lifetime is None for lifetime in lifetimes):
        return None
    longest = max(lifetime for lifetime in lifetimes if lifetime is not None)
    return max(longest + PRUNE_MARGIN, keep_at_least)


async def topic_configs(access: KafkaAccess, topics: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each topic's effective ``LIFETIME_CONFIGS`` (its own, or the broker's defaults), as the
    broker answers ``DescribeConfigs``; a topic the broker refused (not described, or not
    ``DescribeConfigs`` for this principal) is left out."""
    names = sorted(set(topics))
    if not names:
        return {}
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, dict.fromkeys(LIFETIME_CONFIGS)) for t in names]
        )
    finally:
        await admin.close()
    described: dict[str, dict[str, str]] = {}
    for response in responses:
        for error_code, error_message, _kind, name, entries in response.resources:
            if error_code != 0:
                log.warning("inbox pruning: topic %s not described (%s %s)", name, error_code, error_message)
                continue
            described[name] = {entry[0]: entry[1] for entry in entries if entry[1] is not None}
    return described


async def prune_older(
    pool: asyncpg.Pool, consumer: str, older_than: timedelta, *, batch: int = 10_000
) -> int:
    """Delete ``consumer``'s ids received longer than ``older_than`` ago, ``batch`` rows a
    transaction (short ones: the consumer keeps inserting meanwhile); how many."""
    pruned = 0
    while True:
        async with pool.acquire() as conn:
            status = await conn.execute(
                """DELETE FROM inbox WHERE (consumer, event_source, event_id) IN (
                       SELECT consumer, event_source, event_id FROM inbox
                       WHERE consumer = $1 AND received_at < now() - $2::interval
                       LIMIT $3)""",
                consumer,
                older_than,
                batch,
            )
        deleted = int(status.split()[-1])
        pruned += deleted
        if deleted < batch:
            return pruned


class Consumer(Protocol):
    """A consumer as pruning needs it: the name its inbox rows carry and its topics."""

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> tuple[str, ...]: ...


class InboxPruner:
    """Deletes the inbox ids of this process's consumers that no redelivery can match any more.

    How long that is depends on the topics, so it is asked of the broker at every run (an
    operator may change a topic's retention at any time): ``inbox_horizon``. A consumer whose
    horizon is unknown (a topic compacted or kept for ever, or the broker not answering) keeps
    everything: an id pruned too early lets a redelivered record be applied twice, an id kept too
    long costs only space. Ids of reports sent over HTTP (intake's inbound consumer) go with the
    consumer's: a report sent again after that is judged again as a new one, and one the case has
    already passed is refused for the status it cannot follow."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        access: KafkaAccess,
        consumers: Callable[[], Iterable[Consumer]],
        *,
        keep_at_least: timedelta,
        registry: CollectorRegistry,
        batch: int = 10_000,
    ) -> None:
        self._pool = pool
        self._access = access
        self._consumers = consumers
        self._keep_at_least = keep_at_least
        self._batch = batch
        self.kept = Gauge(
            "corridor_inbox_kept_seconds",
            "How long a consumer keeps the ids of the records it applied, from its topics' retention "
            "(-1: for ever, as a topic keeps records for ever or its settings could not be read)",
            ["consumer"],
            registry=registry,
        )
        self.pruned = Counter(
            "corridor_inbox_pruned_ids",
            "Ids of applied records deleted from a consumer's inbox, no redelivery being possible",
            ["consumer"],
            registry=registry,
        )

    async def run(self) -> dict[str, int]:
        """One pass over every consumer: how many ids each lost (none for one kept for ever)."""
        consumers = list(self._consumers())
        try:
            configs = await topic_configs(self._access, {t for c in consumers for t in c.topics})
        except KafkaError as exc:
            log.warning("inbox pruning skipped: the topics' settings could not be read (%r)", exc)
            configs = {}
        pruned: dict[str, int] = {}
        for consumer in consumers:
            horizon = inbox_horizon(consumer.topics, configs, keep_at_least=self._keep_at_least)
            self.kept.labels(consumer=consumer.name).set(-1 if horizon is None else horizon.total_seconds())
            if horizon is None:
                continue
            pruned[consumer.name] = await prune_older(self._pool(), consumer.name, horizon, batch=self._batch)
            self.pruned.labels(consumer=consumer.name).inc(pruned[consumer.name])
            if pruned[consumer.name]:
                log.info(
                    "inbox of %s: %d ids older than %s pruned", consumer.name, pruned[consumer.name], horizon
                )
        return pruned
