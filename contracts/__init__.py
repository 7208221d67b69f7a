"""Corridor's event contracts: the only code every service and every mission's integration shares.

Each event is a versioned pydantic model. Its CloudEvents ``type`` names the version
(``org.corridor.case.status-changed.v1``); a breaking change makes a new model, never an edit.
"""

from contracts.base import Event, all_event_types, model_for_type
from contracts.border import BorderCrossingCleared, BorderCrossingRefused, PersonDecision
from contracts.eligibility import EligibilityDecided, RuleOutcome, RuleResult
from contracts.envelope import CloudEvent, EnvelopeError
from contracts.intake import CaseRegistered, Consent, Person, TravelDocument
from contracts.missions import CaseStatusReported, ReportableStatus
from contracts.routes import Checkpoint, Route, RouteBook
from contracts.status import CaseStatus, CaseStatusChanged, Place
from contracts.transport import ManifestIssued, ManifestPassenger, MovementDeparted

__all__ = [
    "BorderCrossingCleared",
    "BorderCrossingRefused",
    "CaseRegistered",
    "CaseStatus",
    "CaseStatusChanged",
    "CaseStatusReported",
    "Checkpoint",
    "CloudEvent",
    "Consent",
    "EligibilityDecided",
    "EnvelopeError",
    "Event",
    "ManifestIssued",
    "ManifestPassenger",
    "MovementDeparted",
    "Person",
    "PersonDecision",
    "Place",
    "ReportableStatus",
    "Route",
    "RouteBook",
    "RuleOutcome",
    "RuleResult",
    "TravelDocument",
    "all_event_types",
    "model_for_type",
]
