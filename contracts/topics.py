"""Kafka topic names: part of the contract, like the events on them."""

STATUS = "corridor.case-status"
"""Public: every status change of every case, keyed by case id, no personal data."""

CASES = "intake.cases"
"""Restricted to the host mission: registrations with personal data."""

DECISIONS = "eligibility.decisions"
BORDER_DECISIONS = "border.crossings"
MOVEMENTS = "transport.movements"

INBOUND_STATUS = "missions.case-status-reported"
"""Country missions' systems publish the status changes they own here (CaseStatusReported)."""


def manifests(checkpoint_id: str) -> str:
    """One topic per checkpoint so a border post's mission gets only its own manifests."""
    return f"transport.manifests.{checkpoint_id}"


def dead_letters(consumer: str) -> str:
    return f"dlt.{consumer}"
