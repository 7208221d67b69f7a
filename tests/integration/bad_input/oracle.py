"""The expected answer to every bad record, written here and not asked of the product: which
dead-letter reason each kind of record of the fixed corpus gets, which event types each consumer
group acts on (a valid event of any other type is ignored, for that reason and no other), and what
Hypothesis' records may get. A record whose answer is not in its expectation fails the test; in
particular a record neither dead-lettered nor applied passes only where it is expected to be
ignored, with the reason why."""

from __future__ import annotations

# The fixed corpus, by kind (records.Bad.what): the dead-letter reason the consumers must give.
FIXED: dict[str, str] = {
    "malformed JSON": "dlt:malformed_json",
    "value not UTF-8": "dlt:malformed_json",
    "empty value": "dlt:malformed_json",
    "deeply nested JSON": "dlt:malformed_json",
    "structured: malformed": "dlt:malformed_json",
    "structured: deeply nested": "dlt:malformed_json",
    "wrong schema": "dlt:schema_violation",
    "JSON array": "dlt:schema_violation",
    "JSON number": "dlt:schema_violation",
    "JSON string": "dlt:schema_violation",
    "oversized value (900 kB), invalid": "dlt:schema_violation",
    "value at the broker's size limit": "dlt:schema_violation",
    "unknown ce_type": "dlt:unknown_type",
    # A type that is not text cannot name a known event.
    "structured: surrogate in type": "dlt:unknown_type",
    "ce_id missing": "dlt:missing_header",
    "ce_source missing": "dlt:missing_header",
    "ce_type missing": "dlt:missing_header",
    "ce_specversion missing": "dlt:missing_header",
    "ce_id empty": "dlt:missing_header",
    "no headers": "dlt:missing_header",
    "ce_source not UTF-8": "dlt:bad_header",
    "ce_type not UTF-8": "dlt:bad_header",
    "ce_time not RFC 3339": "dlt:bad_header",
    "specversion 0.3": "dlt:unsupported_specversion",
    "tombstone": "dlt:missing_data",
}

# The dead-letter reasons of an envelope that cannot be read (as opposed to a domain's refusal).
ENVELOPE = {
    "dlt:malformed_json",
    "dlt:schema_violation",
    "dlt:missing_header",
    "dlt:bad_header",
    "dlt:missing_data",
    "dlt:unknown_type",
    "dlt:unsupported_specversion",
    "dlt:undecodable",
}

# Which event types each consumer group acts on (README, "Topics": who reads what, and why). A post
# takes its manifests and the departures; every post but the route's first also the crossings of
# the posts before it.
_POST = {"ManifestIssued", "MovementDeparted", "PassengerDataErased"}
USES: dict[str, set[str]] = {
    "eligibility": {
        "CaseRegistered",
        "CaseUpdated",
        "CaseWithdrawn",
        "HealthEvidenceRecorded",
        "CrossingRequirementPublished",
        "CrossingRequirementLifted",
        "MovementDeparted",
        "PersonalDataErased",
    },
    "transport": {
        "CaseRegistered",
        "CaseUpdated",
        "CaseWithdrawn",
        "EligibilityDecided",
        "BorderCrossingCleared",
        "BorderCrossingRefused",
        "PersonalDataErased",
    },
    "intake-timeline": {"CaseStatusChanged"},
    "reporting": {
        "CaseStatusChanged",
        "CaseProfiled",
        "CrossingRequirementPublished",
        "CrossingRequirementLifted",
    },
    "intake-inbound": {"CaseStatusReported"},
    "border-clearance.kaz-zhibek-zholy-exit": _POST,
    "border-clearance.uzb-zhibek-zholy-entry": _POST | {"BorderCrossingCleared"},
    "border-clearance.uzb-oybek-exit": _POST | {"BorderCrossingCleared"},
    "border-clearance.tjk-oybek-entry": _POST | {"BorderCrossingCleared"},
}


def uses(group: str) -> set[str]:
    if group not in USES:
        raise AssertionError(f"consumer group {group!r} is not in the oracle's table: add what it acts on")
    return USES[group]


def another_topics_event(event_type: str, group: str) -> set[str]:
    """A valid event written onto a topic that does not carry it: a group with no use for its type
    ignores it (and says so here); one that has a use applies it, or refuses it if the topic's
    owner could not have written it."""
    if event_type in uses(group):
        return {"applied", "dlt:source_mismatch"}
    return {f"ignored: {group} has no use for {event_type}"}


def hypothesis(kind: str) -> set[str] | None:
    """What Hypothesis' records may get: random bytes (with the event's headers or random ones)
    can only be dead-lettered as unreadable; a valid event with fields dropped or altered is
    dead-lettered for whatever reason, or applied if the change left it valid. None of them is
    ignored: every reading group acts on the topic's own events. ``None``: any dead letter."""
    if kind.startswith("hypothesis: random bytes"):
        return ENVELOPE
    return None
