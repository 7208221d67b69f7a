"""Corridor's event contracts: the only code every service and every mission's integration shares.

Each event is a versioned pydantic model. Its CloudEvents ``type`` names the version
(``org.corridor.case.status-changed.v1``); a breaking change makes a new model, never an edit.
"""

from contracts.base import Event, all_event_types, model_for_type
from contracts.border import (
    BorderCrossingCleared,
    BorderCrossingRefused,
    CrossingRequirementLifted,
    CrossingRequirementPublished,
    PersonDecision,
)
from contracts.eligibility import EligibilityDecided, RuleOutcome, RuleResult
from contracts.envelope import CloudEvent, EnvelopeError
from contracts.intake import (
    CaseRegistered,
    CaseUpdated,
    CaseWithdrawn,
    Consent,
    HealthEvidenceRecorded,
    Person,
    TravelDocument,
)
from contracts.missions import CaseStatusReported, ReportableStatus
from contracts.routes import Checkpoint, Route, RouteBook
from contracts.status import CaseStatus, CaseStatusChanged, Place
from contracts.transport import ManifestIssued, ManifestPassenger, MovementDeparted, VehicleProgressRecorded

__all__ = [
    "BorderCrossingCleared",
    "BorderCrossingRefused",
    "CaseRegistered",
    "CaseStatus",
    "CaseStatusChanged",
    "CaseStatusReported",
    "CaseUpdated",
    "CaseWithdrawn",
    "Checkpoint",
    "CloudEvent",
    "Consent",
    "CrossingRequirementLifted",
    "CrossingRequirementPublished",
    "EligibilityDecided",
    "EnvelopeError",
    "Event",
    "HealthEvidenceRecorded",
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
    "VehicleProgressRecorded",
    "all_event_types",
    "model_for_type",
]
