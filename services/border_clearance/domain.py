"""Border clearance rules, without I/O.

A post decides each case on a vehicle once, and only after the case reached it: its vehicle
departed (the route's first post) or the post before cleared it. A person is refused by the
officer, by a scanned document that differs from the manifest sent ahead, or by the post's hold
list; a family crosses together, so one member refused holds the whole case.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from contracts.intake import EvidenceKind
from contracts.routes import Route
from corridor.errors import Conflict, Invalid, NotFound
from corridor.mrz import MachineReadableZone, MRZError
from corridor.mrz import parse as parse_mrz

# --- where a case stands at this post ---------------------------------------------------------


class AtPost(StrEnum):
    """A case on a manifest, as this post sees it."""

    EXPECTED = "expected"
    """On a manifest, not here yet: its vehicle has not departed, or the post before has not cleared it."""
    ARRIVED = "arrived"
    """Reached this post: the officer may decide it."""
    CLEARED = "cleared"
    REFUSED = "refused"


TRANSITIONS: Mapping[AtPost, frozenset[AtPost]] = {
    AtPost.EXPECTED: frozenset({AtPost.ARRIVED}),
    AtPost.ARRIVED: frozenset({AtPost.CLEARED, AtPost.REFUSED}),
    AtPost.CLEARED: frozenset(),
    AtPost.REFUSED: frozenset(),
}
"""A case is decided once, and only after it arrived."""


def may_follow(previous: AtPost, new: AtPost) -> bool:
    return new in TRANSITIONS[previous]


@dataclass(frozen=True)
class CaseProgress:
    """What this post has recorded about one case, read under the manifest's lock."""

    decision: bool | None
    """True cleared here, False refused here, None not decided here."""
    departed: bool
    """Its vehicle left the gathering point (``MovementDeparted``)."""
    cleared_at: frozenset[str]
    """The other posts that cleared it (``BorderCrossingCleared``)."""


def previous_checkpoint(route: Route, checkpoint_id: str) -> str | None:
    """The checkpoint a traveller must have cleared before this one; None for the first."""
    index = route.index_of(checkpoint_id)
    return route.checkpoints[index - 1].checkpoint_id if index > 0 else None


def stage(progress: CaseProgress, previous: str | None) -> AtPost:
    """Where the case stands here: decided, or arrived once its vehicle departed (first post) or the
    post before cleared it, else still expected."""
    if progress.decision is not None:
        return AtPost.CLEARED if progress.decision else AtPost.REFUSED
    reached = progress.departed if previous is None else previous in progress.cleared_at
    return AtPost.ARRIVED if reached else AtPost.EXPECTED


@dataclass(frozen=True)
class QueuedCase:
    """A case on a manifest to this post, with when it reached the post (when it did)."""

    route_id: str
    progress: CaseProgress
    departed_at: datetime | None
    cleared_noted: Mapping[str, datetime]
    """When each other post's clearance of it was noted here."""

    def reached_at(self, previous: str | None) -> datetime | None:
        return self.departed_at if previous is None else self.cleared_noted.get(previous)


def why_waiting(progress: CaseProgress, previous: str | None) -> str | None:
    """None if this post may decide the case now; otherwise why not, as the officer reads it."""
    match stage(progress, previous):
        case AtPost.ARRIVED:
            return None
        case AtPost.EXPECTED:
            return "vehicle has not departed" if previous is None else f"not yet cleared at {previous}"
        case _:
            return "already decided"


# --- who is on the vehicle, and who is refused ----------------------------------------------------


@dataclass(frozen=True)
class Passenger:
    """A person on the manifest sent ahead to this post."""

    case_id: uuid.UUID
    person_id: uuid.UUID
    surname: str
    given_names: str
    birth_date: date
    sex: str
    nationality: str
    document_type: str
    document_number: str


@dataclass(frozen=True)
class Refusal:
    person_id: uuid.UUID
    reason_code: str
    """The officer's code, the hold list entry's, or ``document_mismatch``: this post's records and
    the restricted crossing topic only (a hold's code may say "court_order")."""
    reason: str
    """The officer's words: they stay in this post's records."""
    public_code: str = "refused_by_officer"
    """What the public status stream says (``contracts.reasons``): only where the refusal came
    from, an officer, a document check or the hold list."""


@dataclass(frozen=True)
class Hold:
    """A travel document this post must not clear (an alert, a court order)."""

    document_number: str
    reason_code: str
    reason: str


@dataclass(frozen=True)
class Scan:
    """A document's machine-readable zone as the officer's reader saw it."""

    person_id: uuid.UUID
    mrz: str


@dataclass(frozen=True)
class DocumentCheck:
    """What a scan showed against the manifest: the fields that differ (none: it matches)."""

    person_id: uuid.UUID
    mismatches: tuple[str, ...]

    @property
    def note(self) -> str:
        """Kept with the decision."""
        return "mismatch: " + ", ".join(self.mismatches) if self.mismatches else "matches manifest"

    @property
    def refusal(self) -> Refusal | None:
        if not self.mismatches:
            return None
        return Refusal(
            self.person_id,
            DOCUMENT_MISMATCH,
            f"document differs from the manifest: {', '.join(self.mismatches)}",
            public_code=DOCUMENT_MISMATCH,
        )


DOCUMENT_MISMATCH = "document_mismatch"
FAMILY_MEMBER_REFUSED = "family_member_refused"
HELD = "held_at_border"
"""The public code of a hold list refusal: the entry's own code (a court order, an alert) stays here."""


class NotOnManifest(Invalid):
    """The officer names someone the manifest does not list: a 422 on ``refusals``."""

    def __init__(self, unknown: Iterable[uuid.UUID]) -> None:
        super().__init__("refusals", f"not on the manifest: {', '.join(sorted(map(str, unknown)))}")


class UnreadableScan(Invalid):
    """A misread is the scanner's problem, not the traveller's: scan again. A 422 naming the person
    and the field whose check failed."""

    def __init__(self, person_id: uuid.UUID, error: MRZError) -> None:
        super().__init__(("scans", str(person_id), error.field), error.reason)


def check_named(passengers: Sequence[Passenger], refusals: Iterable[Refusal], scans: Iterable[Scan]) -> None:
    """Everyone the officer refuses or scans must be on the manifest (raises ``NotOnManifest``)."""
    named = {r.person_id for r in refusals} | {s.person_id for s in scans}
    unknown = named - {p.person_id for p in passengers}
    if unknown:
        raise NotOnManifest(unknown)


def document_mismatches(zone: MachineReadableZone, expected: Passenger) -> list[str]:
    """Fields of the scanned document that differ from the manifest sent ahead."""
    found = []
    if zone.document_number != expected.document_number.replace("<", ""):
        found.append("document_number")
    if zone.birth_date != expected.birth_date:
        found.append("birth_date")
    if zone.nationality != expected.nationality:
        found.append("nationality")
    if zone.sex != expected.sex:
        found.append("sex")
    if _normal(zone.surname) != _normal(expected.surname):
        found.append("surname")
    return found


def _normal(name: str) -> str:
    return "".join(ch for ch in name.upper() if ch.isalpha())


def check_documents(
    scans: Iterable[Scan], passengers: Sequence[Passenger], today: date
) -> list[DocumentCheck]:
    """Each scan read and compared with its person on the manifest, in the order scanned. The first
    unreadable zone raises ``UnreadableScan``. Everyone scanned must be on the manifest."""
    by_person = {p.person_id: p for p in passengers}
    checks = []
    for scan in scans:
        try:
            zone = parse_mrz(scan.mrz, today=today)
        except MRZError as exc:
            raise UnreadableScan(scan.person_id, exc) from exc
        checks.append(
            DocumentCheck(scan.person_id, tuple(document_mismatches(zone, by_person[scan.person_id])))
        )
    return checks


def refusals(
    passengers: Sequence[Passenger],
    officer: Iterable[Refusal],
    checks: Iterable[DocumentCheck],
    holds: Mapping[str, Hold],
) -> dict[uuid.UUID, Refusal]:
    """Who is refused, and why: the officer's word first, then a document that does not match the
    manifest (the first such scan of a person), then the hold list. One reason per person."""
    refused = {r.person_id: r for r in officer}
    for check in checks:
        refusal = check.refusal
        if refusal is not None and refusal.person_id not in refused:
            refused[refusal.person_id] = refusal
    for p in passengers:
        held = holds.get(p.document_number)
        if held is not None and p.person_id not in refused:
            refused[p.person_id] = Refusal(p.person_id, held.reason_code, held.reason, public_code=HELD)
    return refused


def families(passengers: Iterable[Passenger]) -> dict[uuid.UUID, list[Passenger]]:
    """The manifest's people by case, in manifest order: a case travels together."""
    by_case: dict[uuid.UUID, list[Passenger]] = {}
    for p in passengers:
        by_case.setdefault(p.case_id, []).append(p)
    return by_case


# --- the decision -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonOutcome:
    person_id: uuid.UUID
    cleared: bool
    refusal: Refusal | None
    """This person's own refusal, if any (a relative's refusal holds them without one)."""
    document_check: str | None

    @property
    def reason_code(self) -> str | None:
        """The reason recorded at this post: the person's own, or that the family is held."""
        if self.refusal is not None:
            return self.refusal.reason_code
        return None if self.cleared else FAMILY_MEMBER_REFUSED


@dataclass(frozen=True)
class CaseDecision:
    case_id: uuid.UUID
    cleared: bool
    people: tuple[PersonOutcome, ...]

    @property
    def outcome(self) -> AtPost:
        return AtPost.CLEARED if self.cleared else AtPost.REFUSED

    @property
    def reason_code(self) -> str | None:
        """The first refused member's reason (None when cleared)."""
        return next((p.refusal.reason_code for p in self.people if p.refusal is not None), None)

    @property
    def public_reason_code(self) -> str | None:
        """Where the first refused member's refusal came from, for the public stream (None when
        cleared): ``contracts.reasons`` has the text."""
        return next((p.refusal.public_code for p in self.people if p.refusal is not None), None)


def case_outcome(person_ids: Iterable[uuid.UUID], refusals: Mapping[uuid.UUID, Refusal]) -> bool:
    """A family crosses together: the case is cleared only if nobody in it is refused."""
    return not any(p in refusals for p in person_ids)


def decide(
    members: Sequence[Passenger],
    refused: Mapping[uuid.UUID, Refusal],
    checks: Iterable[DocumentCheck] = (),
) -> CaseDecision:
    """One case's decision at this post: everyone cleared, or everyone held with the first refusal."""
    notes = {c.person_id: c.note for c in checks}  # the last scan of a person is what was read
    cleared = case_outcome((m.person_id for m in members), refused)
    return CaseDecision(
        case_id=members[0].case_id,
        cleared=cleared,
        people=tuple(
            PersonOutcome(m.person_id, cleared, refused.get(m.person_id), notes.get(m.person_id))
            for m in members
        ),
    )


@dataclass(frozen=True)
class VehicleDecisions:
    """What a clearance decides over everyone on a vehicle: each case that reached the post, and
    why each other case waits."""

    decisions: list[CaseDecision]
    """In manifest order."""
    waiting: dict[uuid.UUID, str]


def decide_vehicle(
    passengers: Sequence[Passenger],
    progress: Mapping[uuid.UUID, CaseProgress],
    previous: str | None,
    refused: Mapping[uuid.UUID, Refusal],
    checks: Iterable[DocumentCheck] = (),
) -> VehicleDecisions:
    """Every case on the manifest at once: decided (``decide``) if it reached this post and was not
    decided here before (``why_waiting``), else left waiting with the reason."""
    checked = list(checks)
    result = VehicleDecisions([], {})
    for case_id, members in families(passengers).items():
        why = why_waiting(progress[case_id], previous)
        if why is not None:
            result.waiting[case_id] = why
        else:
            result.decisions.append(decide(members, refused, checked))
    return result


class NothingToDecide(Conflict):
    """Nobody on the vehicle can be decided now: each case says why it waits."""

    def __init__(self, waiting: Mapping[uuid.UUID, str]) -> None:
        super().__init__(
            {
                "message": "nobody on this vehicle can be decided now",
                "waiting": {str(case_id): why for case_id, why in waiting.items()},
            }
        )


class NoManifest(NotFound):
    def __init__(self, movement_id: str, vehicle_id: str) -> None:
        super().__init__(f"no manifest received for {movement_id}/{vehicle_id}")


class RouteNotConfigured(Conflict):
    def __init__(self, route_id: str) -> None:
        super().__init__(f"route {route_id} is not configured here")


# --- records this post keeps --------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """The latest revision of a vehicle's manifest received here."""

    movement_id: str
    vehicle_id: str
    manifest_id: uuid.UUID
    revision: int
    route_id: str
    departure_date: date


@dataclass(frozen=True)
class ExpectedVehicle:
    movement_id: str
    vehicle_id: str
    manifest_revision: int
    departure_date: date
    people: int
    cases: int
    decided: int


@dataclass(frozen=True)
class Requirement:
    requirement_id: uuid.UUID
    code: str
    description: str
    evidence_kind: EvidenceKind
    valid_hours: int
    effective_from: date
    published_by: str
    published_at: datetime
    lifted_at: datetime | None
    reference: str | None = None
    effective_until: date | None = None


class ReferenceReused(Conflict):
    """A different requirement was published under this reference."""

    def __init__(self, reference: str | None) -> None:
        super().__init__(
            {
                "code": "reference_reused",
                "message": f"requirement reference {reference!r} was published before with other content",
            }
        )


class NoActiveRequirement(NotFound):
    def __init__(self, requirement_id: uuid.UUID) -> None:
        super().__init__(f"no active requirement {requirement_id}")


class NotOnHoldList(NotFound):
    def __init__(self) -> None:
        super().__init__("not on the hold list")
