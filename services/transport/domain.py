"""Transport's rules, without I/O: seats and their states, movement planning, and what each event
or command does to a case's seat.

A case holds at most one seat. Its states and the moves between them are data
(``SEAT_TRANSITIONS``); the store's conditional updates take the states a move may start from here
(``SeatState.reached_from``), so a move decided on one state never lands on another. A seat taken
off a vehicle before departure has no state: its row is deleted (``TAKEN_OFF``).

Planning places cases in priority order (vulnerable first, then first registered), a family always
in one vehicle, no vehicle over capacity. A vehicle that carries anyone who needs an escort keeps
one seat for the escort. Every case gets an explanation, placed or not. The same function fills
seats freed on the day of departure, starting from what is already on board.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from contracts.eligibility import Outcome
from contracts.routes import Checkpoint, Route
from contracts.status import CaseStatus
from contracts.transport import ManifestPassenger
from corridor.errors import Conflict, Invalid, NotFound

# --- seats ---------------------------------------------------------------------------------------


class SeatState(StrEnum):
    """Where a case's seat on a vehicle stands."""

    MANIFESTED = "manifested"
    """Placed on a vehicle that has not left; the border posts expect the case."""
    NO_SHOW = "no_show"
    """Not present at boarding: off the manifest, the seat freed, the case stays here."""
    DEPARTED = "departed"
    """On the road."""
    REFUSED = "refused"
    """Refused at a border post: the family stays there; the posts ahead no longer expect it."""
    ARRIVED = "arrived"
    """Cleared at the route's last checkpoint."""

    @property
    def reached_from(self) -> tuple[SeatState, ...]:
        """The states a seat may move to this one from (``SEAT_TRANSITIONS``)."""
        return reached_from(self)

    @property
    def before_departure(self) -> bool:
        """The case has not left: a withdrawal still takes effect."""
        return self in BEFORE_DEPARTURE


TAKEN_OFF: None = None
"""No seat: before a case is placed, and after it is taken off a vehicle that has not left."""

SEAT_TRANSITIONS: Mapping[SeatState | None, frozenset[SeatState | None]] = {
    # Placed by a planning run, or offered a seat freed at boarding.
    TAKEN_OFF: frozenset({SeatState.MANIFESTED}),
    # Boarding (no-show or departed), or taken off before departure: withdrawn, held, ineligible,
    # moved to another day or route, another number of travellers.
    SeatState.MANIFESTED: frozenset({SeatState.NO_SHOW, SeatState.DEPARTED, TAKEN_OFF}),
    # A no-show's seat stays on record (the vehicle left without the case).
    SeatState.NO_SHOW: frozenset(),
    # A case on the road is never taken off: it is refused at a post or it arrives.
    SeatState.DEPARTED: frozenset({SeatState.REFUSED, SeatState.ARRIVED}),
    SeatState.REFUSED: frozenset(),
    SeatState.ARRIVED: frozenset(),
}


def may_move(before: SeatState | None, after: SeatState | None) -> bool:
    """Whether a seat may go from ``before`` to ``after`` (``None``: no seat)."""
    return after in SEAT_TRANSITIONS[before]


def reached_from(after: SeatState | None) -> tuple[SeatState, ...]:
    """The seat states ``after`` may follow, in declaration order (``None``: taken off)."""
    return tuple(s for s in SeatState if after in SEAT_TRANSITIONS[s])


BEFORE_DEPARTURE = frozenset({SeatState.MANIFESTED, SeatState.NO_SHOW})
"""The case has not left the gathering point."""
HOLDS_SEAT = frozenset({SeatState.MANIFESTED, SeatState.DEPARTED})
"""Seats counted against a vehicle's capacity when freed seats are offered."""
ON_MANIFEST = frozenset({SeatState.MANIFESTED, SeatState.DEPARTED, SeatState.ARRIVED})
"""Who a vehicle's manifest lists: not a no-show, not a family refused at a post."""
SETTLED = frozenset({SeatState.ARRIVED, SeatState.NO_SHOW, SeatState.REFUSED})
"""A movement is closed once every seat on it is settled."""


class MovementStatus(StrEnum):
    PLANNED = "planned"
    DEPARTED = "departed"
    """Every vehicle has left."""
    CLOSED = "closed"
    """Every seat is settled (arrived, no-show, refused)."""


# --- what the store gives back -------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A case as transport holds it, read under its lock."""

    case_id: uuid.UUID
    route_id: str
    planned_travel_date: date
    withdrawn_at: datetime | None
    members: int


NOT_YET_TRAVELLING = frozenset(
    {
        CaseStatus.REGISTERED,
        CaseStatus.ELIGIBLE,
        CaseStatus.INELIGIBLE,
        CaseStatus.ON_HOLD,
        CaseStatus.MANIFESTED,
    }
)
"""Statuses of a case that has not left: a withdrawal (or an erasure) still stops it travelling."""


@dataclass(frozen=True)
class Decision:
    """Eligibility's newest decision on a case, as transport keeps and applies it. It may reach
    transport before the registration it follows (another topic): it is kept, and applied when the
    registration arrives."""

    version: int
    outcome: Outcome
    priority: int
    reason_code: str | None
    reason: str | None
    withdrawn: bool
    """The decision reflects the applicant's withdrawal (its effect is the withdrawal's)."""
    decided_at: datetime | None
    """None only for a decision kept before transport recorded when decisions were taken."""


@dataclass(frozen=True)
class Movement:
    movement_id: str
    route_id: str
    departure_date: date
    status: MovementStatus


@dataclass(frozen=True)
class MovementVehicle:
    """A vehicle of a movement, and its manifest."""

    movement_id: str
    vehicle_id: str
    capacity: int
    manifest_id: uuid.UUID
    manifest_revision: int
    escort_seat: bool
    departed_at: datetime | None


@dataclass(frozen=True)
class Seat:
    """A case's seat on a vehicle (``assignments``)."""

    case_id: uuid.UUID
    movement_id: str
    vehicle_id: str
    seats: int
    state: SeatState
    explanation: str


@dataclass(frozen=True, kw_only=True)
class CaseSeat(Seat):
    """A case's seat with its movement's route and the case's current number of travellers."""

    route_id: str
    members: int


@dataclass(frozen=True)
class ManifestExport:
    """One export of a manifest (personal data): who, why, when, which vehicle, which format."""

    accessed_at: datetime
    actor: str
    purpose: str
    vehicle_id: str
    format: str


@dataclass(frozen=True)
class MovementView:
    """A movement as coordinators see it: its vehicles and every seat on them."""

    movement: Movement
    vehicles: list[MovementVehicle]
    seats: list[Seat]

    def seats_on(self, vehicle_id: str) -> list[Seat]:
        return [s for s in self.seats if s.vehicle_id == vehicle_id]

    def seats_taken(self, vehicle_id: str) -> int:
        """Seats of the cases on the vehicle's record, a no-show's aside (it boarded no one)."""
        return sum(s.seats for s in self.seats_on(vehicle_id) if s.state is not SeatState.NO_SHOW)


# --- errors --------------------------------------------------------------------------------------


class UnknownRoute(Invalid):
    def __init__(self, route_id: str) -> None:
        super().__init__("route_id", f"unknown route {route_id!r}")


class DuplicateVehicles(Invalid, ValueError):
    def __init__(self) -> None:
        super().__init__("vehicles", "vehicle ids must be unique")


class MovementExists(Conflict):
    def __init__(self, movement_id: str) -> None:
        super().__init__(f"movement {movement_id} exists")


class NoSuchMovement(NotFound):
    def __init__(self, movement_id: str) -> None:
        super().__init__(f"no movement {movement_id}")


class NoSuchVehicle(NotFound):
    def __init__(self, movement_id: str, vehicle_id: str) -> None:
        super().__init__(f"no vehicle {vehicle_id} on {movement_id}")


class AlreadyDeparted(Conflict):
    """A vehicle departs once: a second departure that asks something else (other no-shows) is
    refused, with what the first one decided when it is known (``departure``, JSON-ready)."""

    def __init__(self, vehicle_id: str, departed_at: datetime, departure: Any = None) -> None:
        message = f"{vehicle_id} departed at {departed_at.isoformat()}"
        if departure is None:
            super().__init__(message)
        else:
            super().__init__({"code": "departed", "message": message, "departure": departure})


class NotDeparted(Conflict):
    def __init__(self, vehicle_id: str) -> None:
        super().__init__(f"{vehicle_id} has not left the gathering point")


class NotOnManifest(Invalid):
    def __init__(self, vehicle_id: str, case_ids: Iterable[uuid.UUID]) -> None:
        listed = ", ".join(sorted(map(str, case_ids)))
        super().__init__("no_shows", f"not on {vehicle_id}'s manifest: {listed}")


class NotOnRoute(Invalid):
    def __init__(self, checkpoint_id: str, route_id: str) -> None:
        super().__init__("checkpoint_id", f"{checkpoint_id} is not on route {route_id}")


# --- what an event or a command does to a case ---------------------------------------------------

# Transport announces eligibility decisions on the public stream as it applies them to the case's
# seat: one writer for every status before departure keeps the stream in the order things happened.
STATUS_FOR_OUTCOME = {
    Outcome.ELIGIBLE: CaseStatus.ELIGIBLE,
    Outcome.INELIGIBLE: CaseStatus.INELIGIBLE,
    Outcome.PENDING: CaseStatus.ON_HOLD,
}


@dataclass(frozen=True)
class DecisionEffect:
    """What an eligibility decision does to a case that is not withdrawn."""

    announce: CaseStatus | None = None
    """The status to announce; None: the stream has nothing new to say."""
    take_off: bool = False
    """Free the case's seat (and amend its vehicle's manifest) first."""


def decision_effect(outcome: Outcome, seat: SeatState | None, known: CaseStatus | None) -> DecisionEffect:
    """A decision moves a case only before it boards. Held (a new crossing requirement, a missing
    check) or ineligible while manifested: off the vehicle, and the stream says why. Without a seat,
    the decision is announced unless the stream says so already (new reasons, same status)."""
    if seat is not None and seat is not SeatState.MANIFESTED:
        return DecisionEffect()  # a no-show, or on the road: the decision no longer moves the case
    status = STATUS_FOR_OUTCOME[outcome]
    if seat is SeatState.MANIFESTED:
        if outcome is Outcome.ELIGIBLE:
            return DecisionEffect()
        return DecisionEffect(announce=status, take_off=True)
    if known == status:
        return DecisionEffect()
    return DecisionEffect(announce=status)


def withdrawal_too_late(seat: Seat | None) -> str | None:
    """Why a withdrawal can no longer take effect (the case left), or None when it can."""
    if seat is None or seat.state.before_departure:
        return None
    return f"withdrawal received after the case {seat.state} on {seat.movement_id}"


def reason_to_take_off(
    before: tuple[str, date] | None, after: tuple[str, date], seats: int, members: int
) -> str | None:
    """Why a changed case leaves its vehicle before departure (another route or day, another number
    of seats), or None: corrected details only, the posts need an amended manifest."""
    if before is not None and before != after:
        return "the route or travel date changed"
    if seats != members:
        return "the number of travellers changed"
    return None


def seat_after_refusal(seat: SeatState | None, cleared: bool) -> SeatState | None:
    """A refusal at any post moves a seat on the road to refused, at once: the posts ahead must stop
    expecting the family. Anything else leaves the seat as it is (None); the arrival waits until the
    stream has shown every crossing (``crossing_news``)."""
    return SeatState.REFUSED if seat is SeatState.DEPARTED and not cleared else None


@dataclass(frozen=True)
class RecordedCrossing:
    """A post's decision on a case, as transport keeps it (``crossings``)."""

    checkpoint_id: str
    cleared: bool
    decided_at: datetime
    reason_code: str | None
    """The public reason code the post gave a refusal (None: cleared, or a post that sent none)."""
    announced: bool
    """Transport has put it on the public stream."""


ON_THE_ROAD_OR_AFTER = frozenset({SeatState.DEPARTED, SeatState.REFUSED, SeatState.ARRIVED})
"""Seats whose case left: only their crossings can follow the departure on the stream."""


@dataclass(frozen=True)
class CrossingNews:
    """What the public stream can say now of a case's crossings."""

    crossings: list[tuple[Checkpoint, RecordedCrossing]]
    """The crossings to announce, in route order."""
    arrives: bool = False
    """The last of them is the route's last post clearing the case: its arrival follows."""


def crossing_news(
    route: Route | None, seat: SeatState | None, recorded: Mapping[str, RecordedCrossing]
) -> CrossingNews:
    """The crossings transport announces now: in route order, every recorded one not announced yet,
    up to the first post whose decision is not recorded, and none after a refusal.

    Transport reads each post's topic on its own, so a post's decision may be read before the one of
    the post before it: it waits, recorded, and is announced right after that one. So the stream
    shows a case's crossings in route order and each once, as the legal transitions require. A case
    transport never seated (no route), or whose seat has not left, has no crossing the stream may
    show after its last status: nothing."""
    if route is None or seat not in ON_THE_ROAD_OR_AFTER:
        return CrossingNews([])
    news: list[tuple[Checkpoint, RecordedCrossing]] = []
    for cp in route.checkpoints:
        crossing = recorded.get(cp.checkpoint_id)
        if crossing is None:
            break
        if not crossing.announced:
            news.append((cp, crossing))
        if not crossing.cleared:
            break
    last = route.checkpoints[-1].checkpoint_id
    arrives = bool(news) and news[-1][0].checkpoint_id == last and news[-1][1].cleared
    return CrossingNews(news, arrives)


def crossing_status(direction: str, cleared: bool) -> CaseStatus:
    """What the stream says of a post's decision."""
    if not cleared:
        return CaseStatus.REFUSED_AT_BORDER
    return CaseStatus.EXIT_CLEARED if direction == "exit" else CaseStatus.ENTRY_CLEARED


def check_no_shows(vehicle_id: str, manifested: Iterable[uuid.UUID], no_shows: Iterable[uuid.UUID]) -> None:
    """A no-show must be on the vehicle's manifest as it stands (not taken off in the meantime)."""
    unknown = set(no_shows) - set(manifested)
    if unknown:
        raise NotOnManifest(vehicle_id, unknown)


@dataclass(frozen=True)
class Boarding:
    """Who of a vehicle's manifest stays behind at boarding and who boards, each in manifest order."""

    no_shows: list[Seat]
    aboard: list[Seat]


def boarding(vehicle_id: str, manifested: Sequence[Seat], no_shows: Iterable[uuid.UUID]) -> Boarding:
    """Board the vehicle's manifested seats at once: the no-shows stay (each must be on the manifest
    as it stands, ``check_no_shows``), everyone else boards."""
    absent = set(no_shows)
    check_no_shows(vehicle_id, [s.case_id for s in manifested], absent)
    return Boarding(
        [s for s in manifested if s.case_id in absent], [s for s in manifested if s.case_id not in absent]
    )


def new_movement_id(departure_date: date) -> str:
    return f"MOV-{departure_date:%Y%m%d}-{uuid.uuid4().hex[:6]}"


# --- planning ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadyCase:
    case_id: uuid.UUID
    members: int
    priority: int
    registered_at: datetime
    needs_escort: bool = False


@dataclass
class Vehicle:
    vehicle_id: str
    capacity: int
    taken: int = 0
    escort_seat: bool = False

    @property
    def free(self) -> int:
        return self.capacity - self.taken - (1 if self.escort_seat else 0)


@dataclass(frozen=True)
class Placement:
    case_id: uuid.UUID
    vehicle_id: str | None
    explanation: str
    escort_seat_reserved: bool = False


@dataclass
class Plan:
    placements: list[Placement] = field(default_factory=list)
    vehicles: dict[str, Vehicle] = field(default_factory=dict)

    def placed(self) -> list[Placement]:
        return [p for p in self.placements if p.vehicle_id is not None]

    def not_placed(self) -> list[Placement]:
        return [p for p in self.placements if p.vehicle_id is None]


def plan(cases: Iterable[ReadyCase], vehicles: list[Vehicle]) -> Plan:
    if len({v.vehicle_id for v in vehicles}) != len(vehicles):
        raise DuplicateVehicles()
    state = {v.vehicle_id: Vehicle(v.vehicle_id, v.capacity, v.taken, v.escort_seat) for v in vehicles}
    result = Plan(vehicles=state)
    order = sorted(cases, key=lambda c: (-c.priority, c.registered_at, str(c.case_id)))
    for rank, case in enumerate(order, start=1):

        def seats_needed(v: Vehicle, case: ReadyCase = case) -> int:
            return case.members + (1 if case.needs_escort and not v.escort_seat else 0)

        fitting = [v for v in state.values() if v.free >= seats_needed(v)]
        why = "vulnerability priority" if case.priority > 0 else "registration order"
        if not fitting:
            largest = max((v.free for v in state.values()), default=0)
            escort = " plus an escort seat" if case.needs_escort else ""
            result.placements.append(
                Placement(
                    case.case_id,
                    None,
                    f"Not placed: {case.members} seats needed together{escort}, the most free in one vehicle "
                    f"is {largest} (queue position {rank} by {why}, priority {case.priority})",
                )
            )
            continue
        vehicle = fitting[0]
        reserve = case.needs_escort and not vehicle.escort_seat
        vehicle.escort_seat = vehicle.escort_seat or case.needs_escort
        vehicle.taken += case.members
        escort_note = "; an escort seat is reserved on it" if reserve else ""
        result.placements.append(
            Placement(
                case.case_id,
                vehicle.vehicle_id,
                f"Placed on {vehicle.vehicle_id} with {case.members} seat(s) together "
                f"(queue position {rank} by {why}, priority {case.priority}){escort_note}",
                escort_seat_reserved=reserve,
            )
        )
    return result


# --- manifests -----------------------------------------------------------------------------------

MANIFEST_COLUMNS = (
    "case_id",
    "person_id",
    "surname",
    "given_names",
    "birth_date",
    "sex",
    "nationality",
    "document_type",
    "document_number",
)


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP, CSV injection)."""


def inert_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting with a formula prefix gets a leading ``'``
    (intake refuses control characters in a name, but not a leading ``=``, ``+``, ``-`` or ``@``,
    and a post's officer opens the export in a spreadsheet)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def manifest_csv(passengers: list[ManifestPassenger]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(MANIFEST_COLUMNS)
    for p in passengers:
        row = p.model_dump(mode="json")
        writer.writerow([inert_cell(str(row[c])) for c in MANIFEST_COLUMNS])
    return out.getvalue()
