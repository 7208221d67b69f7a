"""Kafka topics and the events each carries: part of the contract, like the events.

``table()`` is the one description of every topic (name, events, record key, who may read it):
the outbox checks writes against it, ``UnitOfWork.publish`` takes an event's topic and key from it,
and the AsyncAPI documents are generated from it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

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

PROFILES = "intake.case-profiles"
"""Restricted to reporting: per case, the attributes statistics may aggregate (no name, birth date,
document or free text), keyed by case id."""

DECISIONS = "eligibility.decisions"
MOVEMENTS = "transport.movements"

# Families: one topic per writer (a checkpoint's post, a country mission) or per reader (a post's
# manifests). Kafka ACLs are per topic, so only a topic of its own lets the broker refuse a post
# writing another post's decisions, and lets a consumer tell from the topic who wrote a record.
_CROSSINGS_PREFIX = "border.crossings."
_REQUIREMENTS_PREFIX = "border.requirements."
_MANIFESTS_PREFIX = "transport.manifests."
_INBOUND_PREFIX = "missions.case-status-reported."


def crossings(checkpoint_id: str) -> str:
    """The clearance decisions of one checkpoint's post: only that post may write here."""
    return f"{_CROSSINGS_PREFIX}{checkpoint_id}"


def requirements(checkpoint_id: str) -> str:
    """The crossing requirements one checkpoint's post publishes: only that post may write here."""
    return f"{_REQUIREMENTS_PREFIX}{checkpoint_id}"


def manifests(checkpoint_id: str) -> str:
    """One topic per checkpoint so a border post's mission gets only its own manifests."""
    return f"{_MANIFESTS_PREFIX}{checkpoint_id}"


def inbound_status(mission: str) -> str:
    """Where one country mission's systems report the status changes it owns (CaseStatusReported);
    only that mission's integration client may write here."""
    return f"{_INBOUND_PREFIX}{mission}"


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
    """A topic of the contract. ``name`` ends with ``.`` for a family of topics, one per checkpoint
    (``per="checkpoint"``) or per country mission (``per="mission"``)."""

    name: str
    events: tuple[type[Event], ...]
    key: str
    """What the record key is, for readers: ordering holds per key."""
    key_of: Callable[[Any], str]
    description: str
    per: Literal["checkpoint", "mission"] | None = None
    written_by: str = ""
    """Who may write it: a service of the host mission, or the owner of a family member."""
    owner_writes: bool = False
    """A family whose member is written by its owner (the checkpoint's post, the mission): the
    owner's identity must match the topic a record arrives on (``origin_mismatch``)."""
    personal_data: bool = False
    """Carries personal data: the deployment gives it a retention period."""

    @property
    def family(self) -> bool:
        return self.name.endswith(".")

    def member(self, owner: str) -> str:
        if not self.family:
            raise ValueError(f"{self.name} is not a family of topics")
        return f"{self.name}{owner}"

    def address(self, event: Event) -> str:
        """The topic an event of this topic is written to (its checkpoint's, for a family)."""
        if not self.family:
            return self.name
        if self.per != "checkpoint":
            raise ValueError(f"an event on {self.name}* is addressed by its mission: use inbound_status()")
        return self.member(event.checkpoint_id)  # type: ignore[attr-defined]


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
        CaseProfiled,
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
            # One home, the host mission: a border post's decisions are announced by transport.
            written_by="intake, transport",
        ),
        Topic(
            CASES,
            (CaseRegistered, CaseUpdated, CaseWithdrawn, PersonalDataErased),
            "case id",
            _by_case,
            "Restricted to the host mission: registrations and withdrawals, with personal data, "
            "and the erasures of it, keyed by case id.",
            written_by="intake",
            personal_data=True,
        ),
        Topic(
            HEALTH_EVIDENCE,
            (HealthEvidenceRecorded,),
            "case id",
            _by_case,
            "Restricted to eligibility: health evidence (medical facts), keyed by case id. Its "
            "order with a case's registration is not kept (another topic): eligibility applies "
            "evidence that arrives first when the registration comes.",
            written_by="intake",
            personal_data=True,
        ),
        Topic(
            PROFILES,
            (CaseProfiled,),
            "case id",
            _by_case,
            "Restricted to reporting: per case, the attributes statistics may aggregate (sex and age "
            "band of each member, vulnerability categories, origin city, route, dates), never a "
            "name, birth date, document or free text, keyed by case id. Pseudonymous, still about "
            "people: kept no longer than personal data.",
            written_by="intake",
            personal_data=True,
        ),
        Topic(
            DECISIONS,
            (EligibilityDecided,),
            "case id",
            _by_case,
            "Eligibility decisions with the rules evaluated, keyed by case id. Restricted: a rule's "
            "text may say that a member needs a fit-to-travel check.",
            written_by="eligibility",
            personal_data=True,
        ),
        Topic(
            _CROSSINGS_PREFIX,
            (BorderCrossingCleared, BorderCrossingRefused),
            "case id",
            _by_case,
            "Clearance decisions of one checkpoint's post, per case, keyed by case id.",
            per="checkpoint",
            written_by="the checkpoint's border post only",
            owner_writes=True,
        ),
        Topic(
            _REQUIREMENTS_PREFIX,
            (CrossingRequirementPublished, CrossingRequirementLifted),
            "checkpoint id",
            _by_checkpoint,
            "Crossing requirements one checkpoint's post publishes, keyed by checkpoint id.",
            per="checkpoint",
            written_by="the checkpoint's border post only",
            owner_writes=True,
        ),
        Topic(
            MOVEMENTS,
            (MovementDeparted, VehicleProgressRecorded),
            "movement/vehicle",
            _by_vehicle,
            "Vehicle departures and progress at checkpoints, keyed by movement/vehicle.",
            written_by="transport",
        ),
        Topic(
            _INBOUND_PREFIX,
            (CaseStatusReported,),
            "case id",
            _by_case,
            "Status changes one country mission's systems report, keyed by case id.",
            per="mission",
            written_by="the mission's integration client only",
            owner_writes=True,
        ),
        Topic(
            _MANIFESTS_PREFIX,
            (ManifestIssued, PassengerDataErased),
            "movement/vehicle",
            _by_vehicle,
            "Manifests for one checkpoint's post only (personal data a border post needs), and the "
            "erasures of their passengers' data, keyed by movement/vehicle.",
            per="checkpoint",
            written_by="transport",
            personal_data=True,
        ),
    )


@functools.lru_cache(maxsize=1024)
def topic(name: str) -> Topic | None:
    """The contract's topic of that name (a manifest topic belongs to the manifests family).
    Remembered: every record written or read asks."""
    for t in table():
        if t.name == name or (t.family and name.startswith(t.name)):
            return t
    return None


@functools.cache
def topic_for(event_type: type[Event]) -> Topic:
    """The one topic an event type belongs to. Remembered: every event written asks."""
    for t in table():
        if event_type in t.events:
            return t
    raise LookupError(f"{event_type.__name__} belongs to no topic of the contract")


def family_member(name: str) -> tuple[Topic, str] | None:
    """The family a topic belongs to and its owner (checkpoint id or mission), or None."""
    found = topic(name)
    if found is None or not found.family:
        return None
    return found, name.removeprefix(found.name)


def origin_mismatch(
    topic_name: str, source: str, event: Event, checkpoint_country: Callable[[str], str | None]
) -> str | None:
    """Why an event may not stand on the topic it arrived on, or None when it may.

    A member of a family is about one owner: a checkpoint (its ``checkpoint_id`` must be the
    topic's; for a family the post writes, the writer's mission in ``source`` and the event's
    ``country`` must be that checkpoint's country) or a mission (the ``source`` mission and any
    ``country`` must be the topic's). Since only the owner's principal may write its topic, a
    record whose claims differ from the topic's owner is forged or misrouted.
    """
    found = family_member(topic_name)
    if found is None or type(event) not in found[0].events:
        return None  # (an event the topic does not carry is no reader's: it is ignored)
    family, owner = found
    parts = source.split("/")
    source_mission = parts[2] if len(parts) > 3 and parts[1] == "missions" else None
    claimed_country = getattr(event, "country", None)
    if family.per == "checkpoint":
        claimed = getattr(event, "checkpoint_id", None)
        if claimed != owner:
            return f"checkpoint {claimed!r} on the topic of checkpoint {owner!r}"
        if not family.owner_writes:
            return None
        country = checkpoint_country(owner)
        if country is None:
            return f"checkpoint {owner!r} is on no configured route"
        if source_mission != country:
            return f"source {source!r} is not checkpoint {owner}'s mission {country}"
        if claimed_country is not None and claimed_country != country:
            return f"country {claimed_country!r} is not checkpoint {owner}'s country {country}"
        return None
    if source_mission != owner:
        return f"source {source!r} is not mission {owner}, whose topic this is"
    if claimed_country is not None and claimed_country != owner:
        return f"country {claimed_country!r} on mission {owner}'s topic"
    return None


def topic_events() -> dict[str, tuple[type[Event], ...]]:
    """Every named topic and its events (the per-checkpoint manifest topics are a family)."""
    return {t.name: t.events for t in table() if not t.family}


def events_on(topic_name: str) -> tuple[type[Event], ...]:
    """The events a topic may carry: part of the contract, checked when an event is written."""
    found = topic(topic_name)
    return found.events if found else ()
