"""Kafka topic names and the events each carries: part of the contract, like the events."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contracts.base import Event

STATUS = "corridor.case-status"
"""Public: every status change of every case, keyed by case id, no personal data."""

CASES = "intake.cases"
"""Restricted to the host mission: registrations with personal data."""

DECISIONS = "eligibility.decisions"
BORDER_DECISIONS = "border.crossings"
REQUIREMENTS = "border.requirements"
"""Crossing requirements as each checkpoint publishes them; keyed by checkpoint id."""
MOVEMENTS = "transport.movements"

INBOUND_STATUS = "missions.case-status-reported"
"""Country missions' systems publish the status changes they own here (CaseStatusReported)."""


def manifests(checkpoint_id: str) -> str:
    """One topic per checkpoint so a border post's mission gets only its own manifests."""
    return f"transport.manifests.{checkpoint_id}"


def dead_letters(consumer: str) -> str:
    return f"dlt.{consumer}"


def topic_events() -> dict[str, tuple[type[Event], ...]]:
    from contracts.border import (
        BorderCrossingCleared,
        BorderCrossingRefused,
        CrossingRequirementLifted,
        CrossingRequirementPublished,
    )
    from contracts.eligibility import EligibilityDecided
    from contracts.intake import CaseRegistered, CaseUpdated, CaseWithdrawn, HealthEvidenceRecorded
    from contracts.missions import CaseStatusReported
    from contracts.status import CaseStatusChanged
    from contracts.transport import MovementDeparted, VehicleProgressRecorded

    return {
        STATUS: (CaseStatusChanged,),
        CASES: (CaseRegistered, CaseUpdated, HealthEvidenceRecorded, CaseWithdrawn),
        DECISIONS: (EligibilityDecided,),
        BORDER_DECISIONS: (BorderCrossingCleared, BorderCrossingRefused),
        REQUIREMENTS: (CrossingRequirementPublished, CrossingRequirementLifted),
        MOVEMENTS: (MovementDeparted, VehicleProgressRecorded),
        INBOUND_STATUS: (CaseStatusReported,),
    }


def events_on(topic: str) -> tuple[type[Event], ...]:
    """The events a topic may carry: part of the contract, checked when an event is written."""
    from contracts.transport import ManifestIssued

    if topic.startswith(manifests("")):
        return (ManifestIssued,)
    return topic_events().get(topic, ())
