"""How long a consumer keeps the ids of what it applied (corridor.inbox): as long as its topics can
deliver a record again, never less than the floor, for ever when that cannot be known."""

from __future__ import annotations

from datetime import timedelta

import pytest

from corridor.inbox import PRUNE_MARGIN, inbox_horizon, record_lifetime

DAY_MS = 86_400_000
KAFKA_DEFAULTS = {
    "cleanup.policy": "delete",
    "retention.ms": str(7 * DAY_MS),
    "segment.ms": str(7 * DAY_MS),
    "message.timestamp.type": "CreateTime",
    "message.timestamp.after.max.ms": "3600000",
}


def config(**changes: str) -> dict[str, str]:
    return {**KAFKA_DEFAULTS, **{k.replace("_", "."): v for k, v in changes.items()}}


def test_a_record_lives_its_segment_its_retention_and_how_far_ahead_a_producer_may_stamp_it() -> None:
    assert record_lifetime(config()) == timedelta(days=14, hours=1)
    assert record_lifetime(config(retention_ms=str(14 * DAY_MS), segment_ms=str(DAY_MS))) == timedelta(
        days=15, hours=1
    )


def test_a_broker_stamped_record_cannot_be_ahead_of_the_broker() -> None:
    assert record_lifetime(config(message_timestamp_type="LogAppendTime")) == timedelta(days=14)


@pytest.mark.parametrize(
    "changes",
    [
        {"cleanup_policy": "compact"},
        {"cleanup_policy": "compact,delete"},
        {"retention_ms": "-1"},
        # Kafka's default before 4.0: a producer may stamp a record any time ahead.
        {"message_timestamp_after_max_ms": str(2**63 - 1)},
    ],
)
def test_a_topic_that_may_keep_a_record_for_ever(changes: dict[str, str]) -> None:
    assert record_lifetime(config(**changes)) is None


@pytest.mark.parametrize("missing", ["retention.ms", "segment.ms", "message.timestamp.type"])
def test_a_setting_the_broker_did_not_give_is_unknown_not_short(missing: str) -> None:
    described = config()
    del described[missing]
    assert record_lifetime(described) is None
    assert record_lifetime(config(retention_ms="a week")) is None


def test_a_consumer_keeps_ids_as_long_as_its_longest_lived_topic_and_a_margin() -> None:
    configs = {"short": config(retention_ms=str(DAY_MS)), "long": config(retention_ms=str(30 * DAY_MS))}
    kept = inbox_horizon(["short", "long"], configs, keep_at_least=timedelta(0))
    assert kept == timedelta(days=37, hours=1) + PRUNE_MARGIN
    assert (
        inbox_horizon(["short"], configs, keep_at_least=timedelta(0))
        == timedelta(days=8, hours=1) + PRUNE_MARGIN
    )


def test_never_less_than_the_floor() -> None:
    configs = {"short": config(retention_ms="3600000", segment_ms="3600000")}
    assert inbox_horizon(["short"], configs, keep_at_least=timedelta(days=7)) == timedelta(days=7)


def test_for_ever_when_one_topic_is_kept_for_ever_or_was_not_described() -> None:
    configs = {"deleted": config(), "compacted": config(cleanup_policy="compact")}
    assert inbox_horizon(["deleted", "compacted"], configs, keep_at_least=timedelta(0)) is None
    assert inbox_horizon(["deleted", "refused"], configs, keep_at_least=timedelta(0)) is None
    assert inbox_horizon([], configs, keep_at_least=timedelta(0)) is None
