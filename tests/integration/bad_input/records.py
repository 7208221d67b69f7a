"""The records the harness writes: fresh valid events of every consumed topic (the base of every
bad record), and what a bad record is and which answers it may get."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from contracts import topics
from contracts.base import Event
from contracts.border import BorderCrossingCleared, CrossingRequirementLifted
from contracts.eligibility import EligibilityDecided
from contracts.envelope import CloudEvent, EnvelopeError, decode_headers
from contracts.intake import (
    CaseProfiled,
    CaseRegistered,
    EvidenceKind,
    EvidenceResult,
    HealthEvidenceRecorded,
)
from contracts.missions import CaseStatusReported
from contracts.status import CaseStatus, CaseStatusChanged
from contracts.transport import ManifestIssued, MovementDeparted
from tests.integration.bad_input import FAR_FUTURE, RECEPTION, ROUTES

SOURCE = "/fuzz/bad-input"
MARKER = "fuzz_id"  # a header on every record the harness writes: its Bad.fuzz_id
REQUIRED = ("ce_id", "ce_source", "ce_type", "ce_specversion")

ROUTE = ROUTES.routes[0]

Headers = list[tuple[str, bytes]]
Maker = Callable[[], tuple[Event, str]]


@dataclass
class Bad:
    what: str
    topic: str
    value: bytes | None
    headers: Headers
    # Acceptable outcomes per consumer group ("dlt:<reason>", "applied"), written where the record
    # is made. None: the oracle's (tests/integration/bad_input/oracle.py) by its kind.
    expect: set[str] | None = None
    partition: int | None = None
    key: bytes | None = b"fuzz"
    sentinel: bool = False
    # A valid event of this type on a topic that does not carry it (oracle.another_topics_event).
    foreign_type: str | None = None
    fuzz_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def now() -> datetime:
    return datetime.now(UTC)


def registration() -> CaseRegistered:
    return CaseRegistered.model_validate(
        {
            "case_id": str(uuid.uuid4()),
            "registered_at": now().isoformat(),
            "route_id": ROUTE.route_id,
            "planned_travel_date": FAR_FUTURE.isoformat(),
            "consent": {"given": True, "kind": "explicit", "scope": ["UZB", "TJK"]},
            "members": [
                {
                    "person_id": str(uuid.uuid4()),
                    "role": "principal",
                    "given_names": "Fuzz",
                    "surname": "Testcase",
                    "birth_date": "1980-01-01",
                    "sex": "X",
                    "nationality": "TJK",
                    "document": {
                        "type": "passport",
                        "number": "400000001",
                        "issuing_country": "TJK",
                        "expires_on": (FAR_FUTURE + timedelta(days=3650)).isoformat(),
                    },
                }
            ],
        }
    )


def valid_makers(readers: dict[str, list[str]], terminal: uuid.UUID) -> dict[str, Maker]:
    """topic -> a maker of fresh valid events for it, each with its source. Each event concerns a
    case, movement or checkpoint of its own, so applying it touches nothing another test uses."""
    run = uuid.uuid4().hex[:6]

    def status() -> tuple[Event, str]:
        change = CaseStatusChanged(
            case_id=uuid.uuid4(), status=CaseStatus.REGISTERED, occurred_at=now(), members=1
        )
        return change, SOURCE

    def report(mission: str) -> Maker:
        # On a withdrawn case: whatever a mutation leaves valid is refused, never applied. From the
        # topic's own mission: anything else is refused before the domain sees it.
        return lambda: (
            CaseStatusReported.model_validate(
                {"case_id": str(terminal), "status": "received", "occurred_at": now().isoformat()}
            ),
            RECEPTION if mission == "TJK" else f"/missions/{mission}/reception",
        )

    def evidence() -> tuple[Event, str]:
        # For a case never registered: eligibility keeps it, and there is nothing to decide.
        return HealthEvidenceRecorded(
            case_id=uuid.uuid4(),
            person_id=uuid.uuid4(),
            kind=EvidenceKind.COVID19_TEST,
            result=EvidenceResult.NEGATIVE,
            taken_at=now(),
            recorded_at=now(),
        ), SOURCE

    def decided() -> tuple[Event, str]:
        return EligibilityDecided.model_validate(
            {
                "case_id": str(uuid.uuid4()),
                "version": 1,
                "outcome": "pending",
                "priority": 0,
                "rules": [{"rule": "fuzz", "outcome": "pending", "reason": "fuzz"}],
                "decided_at": now().isoformat(),
            }
        ), SOURCE

    def post(checkpoint_id: str) -> str:
        # A checkpoint's own topics carry only what its post writes, from its mission.
        return f"/missions/{ROUTES.country_of(checkpoint_id)}/border_clearance"

    def cleared(checkpoint_id: str) -> Maker:
        # A case no one registered: the decision concerns nothing another test uses.
        return lambda: (
            BorderCrossingCleared(
                case_id=uuid.uuid4(),
                checkpoint_id=checkpoint_id,
                country=ROUTES.country_of(checkpoint_id) or "KAZ",
                crossing="Fuzz",
                direction="exit",
                movement_id=f"FUZZ-{run}",
                vehicle_id="V1",
                decisions=[],
                decided_at=now(),
            ),
            post(checkpoint_id),
        )

    def departed() -> tuple[Event, str]:
        return MovementDeparted(
            movement_id=f"FUZZ-{run}", vehicle_id="V1", case_ids=[uuid.uuid4()], departed_at=now()
        ), SOURCE

    def lifted(checkpoint_id: str) -> Maker:
        # Lifting a requirement no checkpoint published: nothing is re-evaluated.
        return lambda: (
            CrossingRequirementLifted(
                requirement_id=uuid.uuid4(), checkpoint_id=checkpoint_id, lifted_at=now()
            ),
            post(checkpoint_id),
        )

    def manifest(checkpoint_id: str) -> Maker:
        return lambda: (
            ManifestIssued(
                manifest_id=uuid.uuid4(),
                revision=1,
                movement_id=f"FUZZ-{run}-{uuid.uuid4().hex[:6]}",
                vehicle_id="V1",
                route_id=ROUTE.route_id,
                checkpoint_id=checkpoint_id,
                departure_date=FAR_FUTURE,
                passengers=[],
                issued_at=now(),
            ),
            SOURCE,
        )

    known: dict[str, Maker] = {
        topics.CASES: lambda: (registration(), SOURCE),
        topics.PROFILES: lambda: (
            CaseProfiled.model_validate(
                {
                    "case_id": str(uuid.uuid4()),
                    "profiled_at": now().isoformat(),
                    "route_id": ROUTE.route_id,
                    "registered_on": now().date().isoformat(),
                    "planned_travel_date": now().date().isoformat(),
                    "origin_city": "Karaganda",
                    "members": [{"sex": "F", "age_band": "18-59", "vulnerabilities": []}],
                }
            ),
            SOURCE,
        ),
        topics.HEALTH_EVIDENCE: evidence,
        topics.STATUS: status,
        topics.DECISIONS: decided,
        topics.MOVEMENTS: departed,
    }
    families: dict[str, Callable[[str], Maker]] = {
        topics.inbound_status(""): report,
        topics.crossings(""): cleared,
        topics.requirements(""): lifted,
        topics.manifests(""): manifest,
    }

    def maker(topic: str) -> Maker:
        member = topics.family_member(topic)
        if member is not None and member[0].name in families:
            return families[member[0].name](member[1])
        return known.get(topic, status)

    return {topic: maker(topic) for topic in readers}


def encoded(event: Event, source: str) -> tuple[bytes, dict[str, bytes]]:
    """The event as a binary-mode record: its value and its headers."""
    envelope = CloudEvent.new(event, source=source)
    return envelope.value(), dict(envelope.headers())


def headers_with(headers: dict[str, bytes], **override: bytes | None) -> Headers:
    """The headers with a fresh ce_id, then ``override`` (``__`` for ``-``; None drops one)."""
    merged: dict[str, bytes | None] = {**headers, "ce_id": uuid.uuid4().hex.encode()}
    for name, value in override.items():
        merged[name.replace("__", "-")] = value
    return [(k, v) for k, v in merged.items() if v is not None]


def decode(bad: Bad) -> tuple[str | None, CloudEvent | None]:
    """What the consumers' decoder makes of the record: an envelope reason, or the event."""
    try:
        return None, CloudEvent.from_record(decode_headers(bad.headers), bad.value)
    except EnvelopeError as exc:
        return exc.code, None
    except Exception:
        return "undecodable", None
