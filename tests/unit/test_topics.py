"""One table of topics in the contract: every event belongs to exactly one topic, with its key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts import topics
from contracts.base import Event
from contracts.status import CaseStatus, CaseStatusChanged
from contracts.transport import MovementDeparted


def all_events() -> list[type[Event]]:
    return [e for t in topics.table() for e in t.events]


def test_every_event_belongs_to_exactly_one_topic() -> None:
    events = all_events()
    assert len(events) == len(set(events))
    for event in events:
        assert event in topics.topic_for(event).events


def test_a_status_change_is_keyed_by_its_case_and_a_departure_by_its_vehicle() -> None:
    case_id = uuid.uuid4()
    change = CaseStatusChanged(
        case_id=case_id, status=CaseStatus.REGISTERED, occurred_at=datetime.now(UTC), members=1
    )
    status = topics.topic_for(CaseStatusChanged)
    assert (status.address(change), status.key_of(change)) == (topics.STATUS, str(case_id))
    departed = MovementDeparted(
        movement_id="M1", vehicle_id="BUS-1", case_ids=[case_id], departed_at=datetime.now(UTC)
    )
    movements = topics.topic_for(MovementDeparted)
    assert (movements.address(departed), movements.key_of(departed)) == (topics.MOVEMENTS, "M1/BUS-1")


def test_manifest_topics_are_one_family_per_checkpoint() -> None:
    family = topics.topic(topics.manifests("uzb-oybek-exit"))
    assert family is not None and family.family
    assert topics.events_on("transport.manifests.anything") == family.events
    assert topics.events_on("no.such.topic") == ()
