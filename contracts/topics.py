"""Kafka topics and the events each carries: part of the contract, like the events.

``table()`` is the one description of every topic (name, events, record key, who may read it):
the outbox checks writes against it, ``UnitOfWork.publish`` takes an event's topic and key from it,
and the AsyncAPI documents are generated from it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contracts.base import Event

STATUS = "corridor.case-status"
"""Public: every status change of every case, keyed by case id, no personal data."""

CASES = "intake.cases"
"""Restricted to the host mission: registrations with personal data."""

HEALTH_EVIDENCE = "intake.health-evidence"
"""Restricted to eligibility: health evidence (medical facts), keyed by case id. Apart from the
registrations because a Kafka ACL grants a topic, not an event type: transport reads registrations
and must not receive medical records."""

DECISIONS = "eligibility.decisions"
BORDER_DECISIONS = "border.crossings"
REQUIREMENTS = "border.requirements"
"""Crossing requirements as each checkpoint publishes them; keyed by checkpoint id."""
MOVEMENTS = "transport.movements"

INBOUND_STATUS = "missions.case-status-reported"
"""Country missions' systems publish the status changes they own here (CaseStatusReported)."""

_MANIFESTS_PREFIX = "transport.manifests."


def manifests(checkpoint_id: str) -> str:
    """One topic per checkpoint so a border post's mission gets only its own manifests."""
    return f"{_MANIFESTS_PREFIX}{checkpoint_id}"


def dead_letters(consumer: str) -> str:
    return f"dlt.{consumer}"


def _by_case(event: Any) -> str:
    return str(event.case_id)


def _by_vehicle(event: Any) -> str:
    return f"{event.movement_id}/{event.vehicle_id}"


def _by_checkpoint(event: Any) -> str:
    return str(event.checkpoint_id)


@dataclass(frozen=True)
class Topic:
    """A topic of the contract. ``name`` ends with ``.`` for a family of topics, one per checkpoint."""

    name: str
    events: tuple[type[Event], ...]
    key: str
    """What the record key is, for readers: ordering holds per key."""
    key_of: Callable[[Any], str]
    description: str

    @property
    def family(self) -> bool:
        return self.name.endswith(".")

    def address(self, event: Event) -> str:
        """The topic an event of this topic is written to (its checkpoint's, for a family)."""
        return manifests(event.checkpoint_id) if self.family else self.name  # type: ignore[attr-defined]


@functools.cache
def table() -> tuple[Topic, ...]:
    from contracts.border import (
        BorderCrossingCleared,
        BorderCrossingRefused,
        CrossingRequirementLifted,
        CrossingRequirementPublished,
    )
    from contracts.eligibility import EligibilityDecided
    from contracts.intake import (
        CaseRegistered,
        CaseUpdated,
        CaseWithdrawn,
        HealthEvidenceRecorded,
        PersonalDataErased,
    )
    from contracts.missions import CaseStatusReported
    from contracts.status import CaseStatusChanged
    from contracts.transport import (
        ManifestIssued,
        MovementDeparted,
        PassengerDataErased,
        VehicleProgressRecorded,
    )

    return (
        Topic(
            STATUS,
            (CaseStatusChanged,),
            "case id",
            _by_case,
            "Public: every status change of every case, keyed by case id, no personal data.",
        ),
        Topic(
            CASES,
            (CaseRegistered, CaseUpdated, CaseWithdrawn, PersonalDataErased),
            "case id",
            _by_case,
            "Restricted to the host mission: registrations and withdrawals, with personal data, "
            "and the erasures of it, keyed by case id.",
        ),
        Topic(
            HEALTH_EVIDENCE,
            (HealthEvidenceRecorded,),
            "case id",
            _by_case,
            "Restricted to eligibility: health evidence (medical facts), keyed by case id. Its "
            "order with a case's registration is not kept (another topic): eligibility applies "
            "evidence that arrives first when the registration comes.",
        ),
        Topic(
            DECISIONS,
            (EligibilityDecided,),
            "case id",
            _by_case,
            "Eligibility decisions with the rules evaluated, keyed by case id.",
        ),
        Topic(
            BORDER_DECISIONS,
            (BorderCrossingCleared, BorderCrossingRefused),
            "case id",
            _by_case,
            "Clearance decisions of every border post, per case, keyed by case id.",
        ),
        Topic(
            REQUIREMENTS,
            (CrossingRequirementPublished, CrossingRequirementLifted),
            "checkpoint id",
            _by_checkpoint,
            "Crossing requirements as each checkpoint publishes them, keyed by checkpoint id.",
        ),
        Topic(
            MOVEMENTS,
            (MovementDeparted, VehicleProgressRecorded),
            "movement/vehicle",
            _by_vehicle,
            "Vehicle departures and progress at checkpoints, keyed by movement/vehicle.",
        ),
        Topic(
            INBOUND_STATUS,
            (CaseStatusReported,),
            "case id",
            _by_case,
            "Status changes that country missions' systems report, keyed by case id.",
        ),
        Topic(
            _MANIFESTS_PREFIX,
            (ManifestIssued, PassengerDataErased),
            "movement/vehicle",
            _by_vehicle,
            "Manifests for one checkpoint's post only (personal data a border post needs), and the "
            "erasures of their passengers' data, keyed by movement/vehicle.",
        ),
    )


def topic(name: str) -> Topic | None:
    """The contract's topic of that name (a manifest topic belongs to the manifests family)."""
    for t in table():
        if t.name == name or (t.family and name.startswith(t.name)):
            return t
    return None


def topic_for(event_type: type[Event]) -> Topic:
    """The one topic an event type belongs to."""
    for t in table():
        if event_type in t.events:
            return t
    raise LookupError(f"{event_type.__name__} belongs to no topic of the contract")


def topic_events() -> dict[str, tuple[type[Event], ...]]:
    """Every named topic and its events (the per-checkpoint manifest topics are a family)."""
    return {t.name: t.events for t in table() if not t.family}


def events_on(topic_name: str) -> tuple[type[Event], ...]:
    """The events a topic may carry: part of the contract, checked when an event is written."""
    found = topic(topic_name)
    return found.events if found else ()
