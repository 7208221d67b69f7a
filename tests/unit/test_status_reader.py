"""The status stream reader keeps each event once in a case's timeline, and counts every repeat it
read (at-least-once delivery) instead of dropping it unseen: a figure of repeats is what was read."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from contracts.envelope import CloudEvent
from contracts.status import CaseStatus, CaseStatusChanged
from corridor.kafkaclient import KafkaAccess
from opstools.statusreader import StatusStream

SOURCE = "/missions/KAZ/intake"


def _record(event: CloudEvent, offset: int) -> SimpleNamespace:
    return SimpleNamespace(
        value=event.value(),
        headers=list(event.headers()),
        partition=0,
        offset=offset,
    )


class _Records:
    """What the reader's consumer yields: the records, then the end of the iteration."""

    def __init__(self, records: list[Any]) -> None:
        self._records = records

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        for record in self._records:
            yield record


async def test_repeats_of_an_event_are_counted_per_case_and_kept_once_in_the_timeline() -> None:
    case, other = uuid.uuid4(), uuid.uuid4()

    def change(case_id: uuid.UUID, status: CaseStatus) -> CloudEvent:
        data = CaseStatusChanged(case_id=case_id, status=status, occurred_at=datetime.now(UTC), members=1)
        return CloudEvent.new(data, source=SOURCE)

    registered, eligible, elsewhere = (
        change(case, CaseStatus.REGISTERED),
        change(case, CaseStatus.ELIGIBLE),
        change(other, CaseStatus.REGISTERED),
    )
    # The same event read three times, another twice, a third once.
    read = [registered, registered, eligible, registered, elsewhere, eligible]
    reader = StatusStream(KafkaAccess(bootstrap="127.0.0.1:9", security_protocol="PLAINTEXT"))
    await reader._consumer.stop()  # never started: the records come from the list instead
    reader._consumer = _Records([_record(e, i) for i, e in enumerate(read)])  # type: ignore[assignment]
    await reader._follow()

    assert reader.raw_count == len(read)
    assert reader.statuses(case) == [CaseStatus.REGISTERED, CaseStatus.ELIGIBLE]
    assert reader.statuses(other) == [CaseStatus.REGISTERED]
    assert reader.repeats == {case: 3}
    assert sum(len(t) for t in reader.timelines.values()) + sum(reader.repeats.values()) == len(read)
