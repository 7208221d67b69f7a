"""The figures added for operations: relay publish latency, each post's queue, the cases a crossing
requirement holds, consumer lag from committed offsets and high watermarks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from contracts.intake import EvidenceKind
from contracts.routes import RouteBook
from corridor.consumerlag import ConsumerLag
from corridor.kafkaclient import KafkaAccess
from corridor.metrics import ServiceMetrics
from devkit.devstack import DEFAULT_ROUTES
from services.border_clearance.domain import AtPost, CaseProgress, QueuedCase
from services.border_clearance.figures import tally
from services.eligibility.domain import Requirement
from services.eligibility.figures import held_by_checkpoint

ROUTES = RouteBook.load(DEFAULT_ROUTES)
ROUTE = ROUTES.routes[0]
FIRST, SECOND = ROUTE.checkpoints[0].checkpoint_id, ROUTE.checkpoints[1].checkpoint_id
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def test_relay_latency_is_observed_per_row_and_per_batch() -> None:
    metrics = ServiceMetrics(lambda: [])
    metrics.relay_published([0.02, 0.3, 7.0], 0.015)
    found = samples(metrics.registry)
    assert found["corridor_outbox_publish_delay_seconds_count"] == [({}, 3.0)]
    assert found["corridor_outbox_publish_delay_seconds_sum"][0][1] == 7.32
    buckets = {s["le"]: v for s, v in found["corridor_outbox_publish_delay_seconds_bucket"]}
    assert (buckets["0.025"], buckets["0.5"], buckets["5.0"], buckets["10.0"]) == (1.0, 2.0, 2.0, 3.0)
    assert found["corridor_outbox_publish_batch_duration_seconds_count"] == [({}, 1.0)]


def queued(
    *, decision: bool | None = None, departed_min: int | None = None, cleared: dict[str, int] | None = None
) -> QueuedCase:
    noted = {cp: NOW - timedelta(minutes=m) for cp, m in (cleared or {}).items()}
    return QueuedCase(
        ROUTE.route_id,
        CaseProgress(decision, departed_min is not None, frozenset(noted)),
        NOW - timedelta(minutes=departed_min) if departed_min is not None else None,
        noted,
    )


def test_the_first_post_counts_a_case_arrived_when_its_vehicle_departs_and_times_its_wait() -> None:
    queue = [
        queued(),  # vehicle not gone yet
        queued(departed_min=5),
        queued(departed_min=42),
        queued(departed_min=90, decision=True),  # decided: no longer waiting, however long ago
        queued(departed_min=60, decision=False),
    ]
    counts, longest = tally(queue, ROUTES, FIRST, NOW)
    assert dict(counts) == {AtPost.EXPECTED: 1, AtPost.ARRIVED: 2, AtPost.CLEARED: 1, AtPost.REFUSED: 1}
    assert longest == 42 * 60


def test_a_later_post_counts_a_case_arrived_once_the_post_before_cleared_it() -> None:
    queue = [
        queued(departed_min=30),  # departed, not yet cleared at the first post: still expected here
        queued(departed_min=30, cleared={FIRST: 12}),
    ]
    counts, longest = tally(queue, ROUTES, SECOND, NOW)
    assert dict(counts) == {AtPost.EXPECTED: 1, AtPost.ARRIVED: 1}
    assert longest == 12 * 60
    assert tally([], ROUTES, SECOND, NOW)[1] == 0.0


def requirement(checkpoint: str, effective_from: date) -> Requirement:
    return Requirement(
        uuid.uuid4(),
        checkpoint,
        "UZB",
        "Post",
        "covid19_test",
        "A test",
        EvidenceKind.COVID19_TEST,
        72,
        effective_from,
    )


def test_held_cases_are_counted_at_each_checkpoint_whose_requirement_applies_on_their_date() -> None:
    day = date(2026, 5, 10)
    reqs = [requirement(SECOND, day), requirement(SECOND, day), requirement("elsewhere-post", day)]
    held = [
        (ROUTE.route_id, day),
        (ROUTE.route_id, day + timedelta(days=3)),
        (ROUTE.route_id, day - timedelta(days=1)),
    ]
    counts = held_by_checkpoint(held, reqs, ROUTES)
    # Two requirements at one post count a case once; one travelling before it applies is not its.
    assert counts == {SECOND: 2, "elsewhere-post": 0}


@dataclass
class Offset:
    offset: int


class FakeAdmin:
    def __init__(self, committed: dict[str, dict[TopicPartition, int]]) -> None:
        self.committed = committed

    async def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        return [
            {"topic": t, "error_code": 0, "partitions": [{"partition": 0}, {"partition": 1}]} for t in topics
        ]

    async def list_consumer_group_offsets(
        self, group: str, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, Offset]:
        return {tp: Offset(o) for tp, o in self.committed.get(group, {}).items() if tp in partitions}


class FakeProbe:
    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 10 + tp.partition for tp in tps}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 2 for tp in tps}


async def test_lag_is_the_high_watermark_less_the_committed_offset_per_partition() -> None:
    registry = CollectorRegistry()
    consumers = [SimpleNamespace(name="transport", topics=("cases",))]
    lag = ConsumerLag(KafkaAccess(bootstrap="127.0.0.1:1"), lambda: consumers, registry)
    admin = FakeAdmin({"transport": {TopicPartition("cases", 0): 7}})  # partition 1: never committed
    lag._admin, lag._probe = admin, FakeProbe()  # type: ignore[assignment]
    await lag.refresh()
    found = samples(registry)
    by_partition = {s["partition"]: v for s, v in found["corridor_consumer_lag_records"]}
    assert by_partition == {"0": 3.0, "1": 9.0}  # 10-7; 11-2 (all that is kept, unread)
    assert found["corridor_consumer_committed_offset"] == [
        ({"consumer": "transport", "topic": "cases", "partition": "0"}, 7.0)
    ]
    assert found["corridor_consumer_lag_refreshed_timestamp_seconds"][0][1] > 0
    admin.committed["transport"][TopicPartition("cases", 1)] = 11
    await lag.refresh()
    assert {s["partition"]: v for s, v in samples(registry)["corridor_consumer_lag_records"]} == {
        "0": 3.0,
        "1": 0.0,
    }
