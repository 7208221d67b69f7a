"""The committed JSON Schemas in contracts/schemas/ are current, valid, and describe real events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import contracts  # registers every event type
from contracts.base import Event
from contracts.border import BorderCrossingCleared, BorderCrossingRefused, PersonDecision
from contracts.eligibility import EligibilityDecided, Outcome, RuleOutcome, RuleResult
from contracts.intake import CaseRegistered, Consent, DocumentType, Person, TravelDocument, VulnerabilityFlag
from contracts.missions import CaseStatusReported, ReportableStatus
from contracts.status import CaseStatus, CaseStatusChanged, Place
from contracts.transport import ManifestIssued, ManifestPassenger, MovementDeparted
from devkit.contracts_gate import compat

CASE = uuid.UUID("6f1c2b9e-3c1d-4a57-9a3e-0d6b1f5e2a10")
PERSON = uuid.UUID("0b7e4f8a-2d6c-4e1b-8f3a-5c9d1e2f3a4b")
WHEN = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
ZHIBEK = Place(country="KAZ", name="Zhibek-Zholy", checkpoint_id="kaz-zhibek-zholy-exit")


def _registered() -> Event:
    document = TravelDocument(
        type=DocumentType.PASSPORT,
        number="FA1234567",
        issuing_country="UZB",
        issued_on=date(2020, 3, 1),
        expires_on=date(2030, 2, 28),
    )
    person = Person(
        person_id=PERSON,
        role="principal",
        given_names="Aziza",
        surname="Karimova",
        birth_date=date(1990, 5, 17),
        sex="F",
        nationality="UZB",
        document=document,
        vulnerabilities=[VulnerabilityFlag.SINGLE_PARENT],
    )
    return CaseRegistered(
        case_id=CASE,
        registered_at=WHEN,
        route_id="kaz-uzb-road",
        planned_travel_date=date(2026, 12, 10),
        consent=Consent(given=True, kind="explicit", scope=["UZB", "KAZ"]),
        members=[person],
    )


def _crossing(model: type[BorderCrossingCleared] | type[BorderCrossingRefused]) -> Callable[[], Event]:
    def build() -> Event:
        return model(
            case_id=CASE,
            checkpoint_id="kaz-zhibek-zholy-exit",
            country="KAZ",
            crossing="Zhibek-Zholy",
            direction="exit",
            movement_id="mv-2026-12-10-1",
            vehicle_id="bus-1",
            decisions=[PersonDecision(person_id=PERSON, cleared=True)],
            decided_at=WHEN,
        )

    return build


# One valid instance per event type known when this was written, built by hand from the models.
# An event type added later still gets its file checked (up to date, valid JSON Schema); add a
# sample here to check that real instances validate against it too.
SAMPLES: dict[str, Callable[[], Event]] = {
    CaseStatusChanged.event_type: lambda: CaseStatusChanged(
        case_id=CASE,
        status=CaseStatus.EXIT_CLEARED,
        occurred_at=WHEN,
        members=3,
        place=ZHIBEK,
        movement_id="mv-2026-12-10-1",
        reason_code=None,
        reason=None,
    ),
    CaseRegistered.event_type: _registered,
    EligibilityDecided.event_type: lambda: EligibilityDecided(
        case_id=CASE,
        version=1,
        outcome=Outcome.ELIGIBLE,
        priority=2,
        rules=[RuleResult(rule="document_valid_on_travel_date", outcome=RuleOutcome.PASS, reason="Valid")],
        decided_at=WHEN,
    ),
    ManifestIssued.event_type: lambda: ManifestIssued(
        manifest_id=uuid.UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"),
        revision=1,
        movement_id="mv-2026-12-10-1",
        vehicle_id="bus-1",
        route_id="kaz-uzb-road",
        checkpoint_id="kaz-zhibek-zholy-exit",
        departure_date=date(2026, 12, 10),
        passengers=[
            ManifestPassenger(
                case_id=CASE,
                person_id=PERSON,
                surname="Karimova",
                given_names="Aziza",
                birth_date=date(1990, 5, 17),
                sex="F",
                nationality="UZB",
                document_type=DocumentType.PASSPORT,
                document_number="FA1234567",
            )
        ],
        issued_at=WHEN,
    ),
    MovementDeparted.event_type: lambda: MovementDeparted(
        movement_id="mv-2026-12-10-1", vehicle_id="bus-1", case_ids=[CASE], departed_at=WHEN
    ),
    BorderCrossingCleared.event_type: _crossing(BorderCrossingCleared),
    BorderCrossingRefused.event_type: _crossing(BorderCrossingRefused),
    CaseStatusReported.event_type: lambda: CaseStatusReported(
        case_id=CASE,
        status=ReportableStatus.RECEIVED,
        occurred_at=WHEN,
        place=Place(country="UZB", name="Tashkent reception centre"),
        reason_code="received_at_centre",
        reason="Received at the reception centre",
    ),
}


def _current() -> dict[str, compat.Schema]:
    return compat.generate(contracts.all_event_types())


def _committed(event_type: str) -> dict[str, Any]:
    path = compat.schema_file(compat.SCHEMA_DIR, event_type)
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def test_every_registered_event_type_has_a_schema_file() -> None:
    missing = [
        t for t in contracts.all_event_types() if not compat.schema_file(compat.SCHEMA_DIR, t).exists()
    ]
    assert not missing, f"no schema file for {missing}: run `make contracts` and commit the result"


def test_committed_schemas_are_up_to_date() -> None:
    problems = compat.drift(compat.SCHEMA_DIR, _current())
    summary = "\n".join(f"{p.problem}: {p.path.name}\n{p.diff}" for p in problems)
    assert not problems, f"schemas out of date: run `make contracts` and commit the result\n{summary}"


@pytest.mark.parametrize("event_type", sorted(contracts.all_event_types()))
def test_schema_file_is_valid_json_schema_2020_12(event_type: str) -> None:
    schema = _committed(event_type)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == compat.SCHEMA_DIALECT
    assert schema["$id"] == f"urn:corridor:schema:{event_type}"
    assert schema["x-cloudevents-type"] == event_type


@pytest.mark.parametrize("event_type", sorted(contracts.all_event_types()))
def test_schema_is_compatible_with_itself(event_type: str) -> None:
    """The checker understands every construct the models produce (no false alarms on no change)."""
    schema = _committed(event_type)
    assert compat.breaking_changes(schema, schema) == []


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_a_real_event_validates_against_its_schema(event_type: str) -> None:
    assert event_type in contracts.all_event_types(), f"{event_type} is no longer registered"
    event = SAMPLES[event_type]()
    assert event.event_type == event_type
    wire = json.loads(event.model_dump_json())  # exactly what a producer puts in the record value
    validator = Draft202012Validator(
        _committed(event_type), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(wire)]
    assert not errors, errors
    assert type(event).model_validate(wire) == event  # and consumers read it back unchanged

    required = _committed(event_type)["required"]
    incomplete = {k: v for k, v in wire.items() if k != required[0]}
    assert not validator.is_valid(incomplete), f"schema accepts an event without {required[0]}"
