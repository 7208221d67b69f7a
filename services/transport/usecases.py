"""Everything transport does, as module functions of (command or event, unit of work, context).

Events from intake, eligibility and the border posts are applied by the use cases in ``HANDLERS``
(one consumer reads the three topics); the HTTP API calls the command use cases below them. Each
runs in one unit of work: the change, the status announcements and the events it causes commit
together (``corridor.uow``).

Locks (docs/consistency.md): a use case that changes a case locks its ``cases`` row first; one that
changes several (planning, a departure) locks every case of that route and day in one statement,
in case-id order, and only then a vehicle, and reads again under the locks what it decides on. No
use case takes a case lock while it holds a vehicle lock.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Protocol

from contracts import reasons
from contracts.base import Event
from contracts.border import BorderCrossingCleared, BorderCrossingRefused
from contracts.eligibility import EligibilityDecided
from contracts.envelope import CloudEvent
from contracts.intake import CaseRegistered, CaseUpdated, CaseWithdrawn, PersonalDataErased
from contracts.routes import Checkpoint, Route, RouteBook
from contracts.status import CaseStatus, CaseStatusChanged, Place
from contracts.transport import (
    ManifestIssued,
    ManifestPassenger,
    MovementDeparted,
    PassengerDataErased,
    VehicleProgressRecorded,
)
from corridor.consumer import Rejected
from corridor.errors import NotFound
from corridor.uow import Publisher
from services.transport import commands, domain
from services.transport.domain import (
    AlreadyDeparted,
    Case,
    CaseSeat,
    Decision,
    ManifestExport,
    Movement,
    MovementVehicle,
    MovementView,
    NoSuchMovement,
    NoSuchVehicle,
    NotDeparted,
    NotOnRoute,
    Placement,
    ReadyCase,
    RecordedCrossing,
    SeatState,
    UnknownRoute,
)
from services.transport.pdf import ManifestFonts, manifest_pdf
from services.transport.store import RecordedDeparture, TransportStore

log = logging.getLogger(__name__)


class Unit(Publisher, Protocol):
    """What a use case gets: the unit of work's events and status stream, and transport's store."""

    @property
    def store(self) -> TransportStore: ...


@dataclass(frozen=True)
class Context:
    """What the use cases depend on besides the unit of work: the configured routes, and the host
    mission (whose own posts need no consent to receive a manifest)."""

    routes: RouteBook
    mission: str
    fonts: ManifestFonts = field(default_factory=ManifestFonts.dejavu)

    def route(self, route_id: str) -> Route:
        route = self.routes.get(route_id)
        if route is None:
            raise UnknownRoute(route_id)
        return route

    def abroad(self, route: Route) -> list[str]:
        """Countries whose posts receive manifests, other than the host mission's own."""
        return sorted({cp.country for cp in route.checkpoints} - {self.mission})


def _gathering(route: Route) -> Place:
    return Place(country=route.gathering_point.country, name=route.gathering_point.name)


def _reception(route: Route) -> Place:
    return Place(country=route.reception_point.country, name=route.reception_point.name)


def _post(cp: Checkpoint) -> Place:
    return Place(country=cp.country, name=cp.post, checkpoint_id=cp.checkpoint_id)


def _change(
    uow: Unit,
    case_id: uuid.UUID,
    status: CaseStatus,
    members: int,
    *,
    place: Place | None = None,
    movement_id: str | None = None,
    at: datetime | None = None,
    reason_code: str | None = None,
) -> CaseStatusChanged:
    """A status change for the public stream: its reason is a public code, the text the code's own
    (``contracts.reasons``); what led to it stays in transport's records and restricted topics."""
    return CaseStatusChanged(
        case_id=case_id,
        status=status,
        occurred_at=at or uow.now(),
        members=members,
        place=place,
        movement_id=movement_id,
        reason_code=reason_code,
    )


# --- manifests: issued when a movement is planned, amended whenever who is aboard changes -------


async def manifests_for(
    uow: Unit,
    route: Route,
    movement_id: str,
    vehicle: MovementVehicle,
    departure_date: date,
    checkpoints: list[Checkpoint] | None = None,
) -> list[ManifestIssued]:
    """A vehicle's current manifest for each checkpoint (by default every one on the route)."""
    passengers = await uow.store.passengers_on(movement_id, vehicle.vehicle_id)
    # One topic per checkpoint: each border post's mission receives only its own manifests.
    return [
        ManifestIssued(
            manifest_id=vehicle.manifest_id,
            revision=vehicle.manifest_revision,
            movement_id=movement_id,
            vehicle_id=vehicle.vehicle_id,
            route_id=route.route_id,
            checkpoint_id=cp.checkpoint_id,
            departure_date=departure_date,
            passengers=passengers,
            issued_at=uow.now(),
        )
        for cp in (route.checkpoints if checkpoints is None else checkpoints)
    ]


async def amended_manifests(
    uow: Unit, ctx: Context, movement_id: str, vehicle_id: str, *, after_checkpoint: str | None = None
) -> list[ManifestIssued]:
    """A new revision of a vehicle's manifest for each post it has not passed yet (to publish)."""
    found = await uow.store.movement(movement_id)
    route = ctx.routes.get(found.route_id) if found else None
    if found is None or route is None:
        return []
    await uow.store.bump_manifest(movement_id, vehicle_id)
    vehicle = await uow.store.vehicle(movement_id, vehicle_id)
    if vehicle is None:
        return []
    start = 0 if after_checkpoint is None else route.index_of(after_checkpoint) + 1
    return await manifests_for(
        uow, route, movement_id, vehicle, found.departure_date, route.checkpoints[start:]
    )


async def amend_manifests(
    uow: Unit, ctx: Context, movement_id: str, vehicle_id: str, *, after_checkpoint: str | None = None
) -> None:
    """Send a new revision of a vehicle's manifest to the posts it has not passed yet."""
    await uow.publish_many(
        await amended_manifests(uow, ctx, movement_id, vehicle_id, after_checkpoint=after_checkpoint)
    )


# --- events: intake's cases, eligibility's decisions, the posts' crossings ----------------------


async def on_case_registered(event: CaseRegistered, uow: Unit, ctx: Context) -> None:
    await uow.store.lock_case_id(event.case_id)
    await uow.store.save_case(event)  # locks the case's row, or creates it
    if await uow.known_status(event.case_id) is None:
        # Intake announced it before publishing the registration: transport's statuses follow.
        await uow.note_status(event.case_id, CaseStatus.REGISTERED)
    decided = await uow.store.decision(event.case_id)
    if decided is not None:
        # The decision overtook the registration (another topic): apply it now.
        found = await uow.store.lock_case(event.case_id)
        assert found is not None
        await _apply_decision(uow, ctx, found, decided)


async def on_case_updated(event: CaseUpdated, uow: Unit, ctx: Context) -> None:
    found = await uow.store.lock_case(event.case_id)
    before = await uow.store.save_case(event)
    if found is None or found.withdrawn_at is not None:
        return
    seat = await uow.store.assignment(event.case_id)
    if seat is None or seat.state is not SeatState.MANIFESTED:
        return
    why = domain.reason_to_take_off(
        before, (event.route_id, event.planned_travel_date), seat.seats, len(event.members)
    )
    if why is None:
        # Corrected details (a name, a document number): the posts need the new manifest.
        await amend_manifests(uow, ctx, seat.movement_id, seat.vehicle_id)
        return
    # Another day or route, or another number of seats: off this vehicle, back to the pool.
    removed = await uow.store.remove_assignment(event.case_id)
    if removed is None:
        return
    await amend_manifests(uow, ctx, removed.movement_id, removed.vehicle_id)
    await uow.announce(
        _change(
            uow,
            event.case_id,
            CaseStatus.ELIGIBLE,
            len(event.members),
            # Which vehicle and why (another date, route or seat count) stay in transport's log.
            reason_code="taken_off_vehicle",
        )
    )
    log.info(
        "case %s taken off vehicle %s of %s: %s", event.case_id, removed.vehicle_id, removed.movement_id, why
    )


async def _withdraw(
    uow: Unit,
    ctx: Context,
    case: Case,
    at: datetime,
    *,
    reason_code: str = "withdrawn_by_applicant",
) -> None:
    """Apply the applicant's withdrawal under the case's lock: before departure the seat is freed
    and the withdrawal announced; after departure it comes too late, and the stream, which shows
    the departure, tells intake so."""
    if case.withdrawn_at is not None:
        return
    seat = await uow.store.assignment(case.case_id)
    too_late = domain.withdrawal_too_late(seat)
    if too_late is not None:
        log.warning("case %s: %s; not applied", case.case_id, too_late)
        await uow.store.mark_withdrawn(case.case_id, at, applied=False, detail=too_late)
        return
    movement_id = None
    if seat is not None and seat.state is SeatState.MANIFESTED:
        removed = await uow.store.remove_assignment(case.case_id)
        if removed is not None:
            movement_id = removed.movement_id
            await amend_manifests(uow, ctx, removed.movement_id, removed.vehicle_id)
    await uow.store.mark_withdrawn(case.case_id, at, applied=True, detail="applied before departure")
    await uow.announce(
        _change(
            uow,
            case.case_id,
            CaseStatus.WITHDRAWN,
            case.members,
            movement_id=movement_id,
            # The caseworker's note may name people: it stays on the restricted topic.
            reason_code=reason_code,
        )
    )


async def on_case_withdrawn(event: CaseWithdrawn, uow: Unit, ctx: Context) -> None:
    case = await uow.store.lock_case(event.case_id)
    if case is None:
        # Intake publishes the registration before the withdrawal, on the same partition.
        raise Rejected("unknown_case", f"withdrawal of case {event.case_id}, never registered here")
    await _withdraw(uow, ctx, case, event.withdrawn_at)


async def on_personal_data_erased(event: PersonalDataErased, uow: Unit, ctx: Context) -> None:
    """The case's people had their personal data erased at intake: anonymise the passengers kept
    here, tell each post on the route of the vehicle they were on to erase its copy, and make sure
    the case never travels (an ineligible case may be erased, and a later decision could otherwise
    seat it): withdrawn, if it has not left."""
    case = await uow.store.lock_case(event.case_id)
    if case is None:
        return  # never registered here: it follows the registration on the same partition
    seat = await uow.store.assignment(event.case_id)
    if not await uow.store.erase_passengers(event.case_id, event.erased_at):
        return  # erased before
    if await uow.known_status(event.case_id) in domain.NOT_YET_TRAVELLING:
        await _withdraw(
            uow,
            ctx,
            case,
            event.erased_at,
            reason_code="personal_data_erased",
        )
    route = ctx.routes.get(seat.route_id) if seat is not None else None
    if seat is None or route is None:
        return
    # The manifests sent with them aboard (other passengers' too: they were sent, and are kept only
    # for diagnosis).
    await uow.forget_published(f"{seat.movement_id}/{seat.vehicle_id}")
    for cp in route.checkpoints:
        await uow.publish(
            PassengerDataErased(
                case_id=event.case_id,
                movement_id=seat.movement_id,
                vehicle_id=seat.vehicle_id,
                checkpoint_id=cp.checkpoint_id,
                erased_at=event.erased_at,
            )
        )


def _decided(event: EligibilityDecided) -> Decision:
    return Decision(
        version=event.version,
        outcome=event.outcome,
        priority=event.priority,
        reason_code=event.public_reason_code,
        reason=event.public_reason,
        withdrawn=event.withdrawn(),
        decided_at=event.decided_at,
    )


async def on_eligibility_decided(event: EligibilityDecided, uow: Unit, ctx: Context) -> None:
    decided = _decided(event)
    case = await uow.store.lock_case(event.case_id)
    if case is None:
        # The registration travels on another topic and may not be here yet: keep the decision
        # (under a lock on the case id, which the registration takes too); it applies it.
        await uow.store.lock_case_id(event.case_id)
        case = await uow.store.lock_case(event.case_id)
    if not await uow.store.save_decision(event.case_id, decided):
        return  # a newer decision was applied already
    if case is not None:
        await _apply_decision(uow, ctx, case, decided)


async def on_decisions(events: Sequence[CloudEvent], uow: Unit, ctx: Context) -> None:
    """Apply a run of eligibility's decisions (one a case, at least) as applying them one after the
    other would, in a few statements whatever the run's length: each kept unless a newer one is
    (``save_decisions``), and what it announces on the stream announced, in the run's order.

    A run that withdraws a case, holds a case twice, or takes a case off its vehicle (rare: a
    hold after planning, which amends the manifests) is applied one decision after the other."""
    decisions: list[EligibilityDecided] = []
    for e in events:
        assert isinstance(e.data, EligibilityDecided), e.type  # IN_SETS
        decisions.append(e.data)
    ids = [d.case_id for d in decisions]
    if len(set(ids)) < len(ids) or any(d.withdrawn() for d in decisions):
        for d in decisions:
            await on_eligibility_decided(d, uow, ctx)
        return
    store = uow.store
    cases = await store.locked_cases(ids)
    missing = [c for c in ids if c not in cases]
    if missing:
        # Not registered here yet (another topic): the registration applies the decision kept; the
        # id's lock orders the two (``on_eligibility_decided``).
        await store.lock_case_ids(missing)
        cases |= await store.locked_cases(missing)
    decided = {d.case_id: _decided(d) for d in decisions}
    kept = await store.save_decisions([(c, decided[c]) for c in ids])
    await _apply_decisions(uow, ctx, [(cases[c], decided[c]) for c in ids if c in kept and c in cases])


async def _apply_decisions(uow: Unit, ctx: Context, pairs: Sequence[tuple[Case, Decision]]) -> None:
    """``_apply_decision`` for each pair, in their order (each case once, locked), in a few
    statements: one after the other only if one withdraws its case or takes it off its vehicle
    (rare: a hold after planning, which amends the manifests)."""
    if any(d.withdrawn for _, d in pairs):
        for case, d in pairs:
            await _apply_decision(uow, ctx, case, d)
        return
    cases = {case.case_id: case for case, _ in pairs if case.withdrawn_at is None}
    decided = {case.case_id: d for case, d in pairs}
    applied = list(cases)
    seats = await uow.store.assignments_of(applied)
    known = await uow.known_statuses(applied)
    effects = [
        (c, domain.decision_effect(decided[c].outcome, seats[c].state if c in seats else None, known.get(c)))
        for c in applied
    ]
    if any(effect.take_off and c in seats for c, effect in effects):
        for c in applied:
            await _apply_decision(uow, ctx, cases[c], decided[c])
        return
    await uow.publish_many(
        [
            _change(
                uow,
                c,
                effect.announce,
                cases[c].members,
                at=decided[c].decided_at or uow.now(),
                reason_code=reasons.public_or(decided[c].reason_code, "eligibility_decided"),
            )
            for c, effect in effects
            if effect.announce is not None
        ]
    )


async def on_registrations(events: Sequence[CloudEvent], uow: Unit, ctx: Context) -> None:
    """Apply a run of intake's registrations as applying them one after the other would, in a few
    statements whatever the run's length: each case kept, "registered" noted as its last status
    unless a later one is known, and a decision that overtook its registration applied."""
    registered: list[CaseRegistered] = []
    for e in events:
        assert isinstance(e.data, CaseRegistered), e.type  # IN_SETS
        registered.append(e.data)
    ids = [r.case_id for r in registered]
    if len(set(ids)) < len(ids):
        for r in registered:
            await on_case_registered(r, uow, ctx)
        return
    store = uow.store
    await store.lock_case_ids(ids)
    await store.save_registrations(registered)
    known = await uow.known_statuses(ids)
    await uow.note_statuses([(c, CaseStatus.REGISTERED) for c in ids if c not in known])
    overtaken = await store.decisions_of(ids)
    if overtaken:
        # Decisions that overtook their registrations (another topic), applied in a set too: when
        # transport meets a backlog, the decisions' topic may be read first for every case.
        found = await store.locked_cases(list(overtaken))
        await _apply_decisions(uow, ctx, [(found[c], overtaken[c]) for c in ids if c in overtaken])


async def _apply_decision(uow: Unit, ctx: Context, case: Case, d: Decision) -> None:
    """Apply eligibility's decision to the case's seat and announce it, under the case's lock."""
    at = d.decided_at or uow.now()
    if d.withdrawn:
        await _withdraw(uow, ctx, case, at)  # whichever of the two arrives first
        return
    if case.withdrawn_at is not None:
        return
    seat = await uow.store.assignment(case.case_id)
    effect = domain.decision_effect(
        d.outcome, seat.state if seat else None, await uow.known_status(case.case_id)
    )
    if effect.announce is None:
        return
    if effect.take_off and seat is not None:
        # Held or ineligible before departure: the seat is freed, the posts get a manifest without
        # the family, the stream says why.
        removed = await uow.store.remove_assignment(case.case_id)
        if removed is not None:
            await amend_manifests(uow, ctx, removed.movement_id, removed.vehicle_id)
    await uow.announce(
        _change(
            uow,
            case.case_id,
            effect.announce,
            case.members,
            movement_id=seat.movement_id if effect.take_off and seat is not None else None,
            at=at,
            # A code from an eligibility service older or newer than this table: the generic one.
            reason_code=reasons.public_or(d.reason_code, "eligibility_decided"),
        )
    )


def _crossing_change(
    uow: Unit, seat: CaseSeat, cp: Checkpoint, crossing: RecordedCrossing
) -> CaseStatusChanged:
    """What the stream says of a post's decision on a seated case."""
    return _change(
        uow,
        seat.case_id,
        domain.crossing_status(cp.direction, crossing.cleared),
        seat.members,
        place=_post(cp),
        movement_id=seat.movement_id,
        at=crossing.decided_at,
        # Where a refusal came from (an officer, a document check, the hold list), never the
        # officer's code or words; a code this release does not know: the generic one.
        reason_code=reasons.public_or(crossing.reason_code, "held_at_border"),
    )


def _arrival(uow: Unit, seat: CaseSeat, route: Route, news: domain.CrossingNews) -> CaseStatusChanged:
    """The arrival the route's last crossing allows, at the time that post decided."""
    return _change(
        uow,
        seat.case_id,
        CaseStatus.ARRIVED,
        seat.members,
        place=_reception(route),
        movement_id=seat.movement_id,
        at=news.crossings[-1][1].decided_at,
    )


async def _on_crossing(event: BorderCrossingCleared | BorderCrossingRefused, uow: Unit, ctx: Context) -> None:
    """Apply one post's decision: record it, announce on the public stream what can be announced
    now (``domain.crossing_news``), free the seat ahead of a refusal, and announce the arrival after
    the route's last crossing, all in one unit of work: the crossing's status precedes the arrival.
    Only ``on_crossings`` calls it, for a run that holds a refusal."""
    cleared = isinstance(event, BorderCrossingCleared)
    await uow.store.lock_case(event.case_id)  # a case never registered here: the crossing is recorded
    crossed = await uow.store.record_crossing(
        event.case_id, event.checkpoint_id, cleared, event.decided_at, event.public_reason_code
    )
    seat = await uow.store.assignment(event.case_id)
    if seat is None:
        # Never seated here (a post cannot decide a case transport did not send it): kept for
        # diagnosis; without a route the stream could not place it, nor follow its last status.
        return
    route = ctx.routes.get(seat.route_id)
    news = domain.crossing_news(route, seat.state, crossed)
    for cp, crossing in news.crossings:
        await uow.announce(_crossing_change(uow, seat, cp, crossing))
    await uow.store.mark_announced(event.case_id, [cp.checkpoint_id for cp, _ in news.crossings])
    refused = domain.seat_after_refusal(seat.state, cleared)
    if refused is not None:
        await uow.store.set_assignment_state(event.case_id, refused, was=refused.reached_from)
        # The family stays at this post; the posts ahead must not expect it.
        await amend_manifests(
            uow, ctx, seat.movement_id, seat.vehicle_id, after_checkpoint=event.checkpoint_id
        )
    if news.arrives and route is not None:
        arrived = SeatState.ARRIVED
        await uow.store.set_assignment_state(event.case_id, arrived, was=arrived.reached_from)
        await uow.announce(_arrival(uow, seat, route, news))
        await uow.store.close_movement_if_done(seat.movement_id)


async def on_crossings(events: Sequence[CloudEvent], uow: Unit, ctx: Context) -> None:
    """Apply a run of the posts' decisions (cleared or refused, in the order read) exactly as
    applying them one after the other would: each recorded, what the stream may show now announced
    (``domain.crossing_news``) with the arrival after the route's last crossing, the same rows,
    statuses and events in the same order; in a few statements whatever the run's length (four
    crossings a case: most of what transport reads).

    The run is decided in memory on what its cases had before it, each decision seeing what the
    earlier ones of the run changed (a run may hold a case's exit and entry, in either order, or a
    post's decision twice), then written at once: the crossings, the announcements in order
    (``publish_many`` judges each as ``announce`` would), the arrivals' seats, the movements closed."""
    decisions: list[BorderCrossingCleared | BorderCrossingRefused] = []
    for e in events:
        assert isinstance(e.data, BorderCrossingCleared | BorderCrossingRefused), e.type  # IN_SETS
        decisions.append(e.data)
    if any(isinstance(d, BorderCrossingRefused) for d in decisions):
        # A refusal is rare, and it frees the seat and amends the manifests ahead (reads and writes
        # of their own, which a later decision of the run sees): a run that holds one is applied one
        # decision after the other, the single-event logic, which is what the set path must equal.
        for d in decisions:
            await _on_crossing(d, uow, ctx)
        return
    store = uow.store
    case_ids = list(dict.fromkeys(d.case_id for d in decisions))
    # In a consumer's batch these are locked already (``lock_batch``, case-id order), so this takes
    # nothing new; a record handled alone locks its case here, as every use case does.
    await store.lock_cases(case_ids)
    recorded = await store.crossings_of(case_ids)
    seats = await store.assignments_of(case_ids)
    state = {case_id: seat.state for case_id, seat in seats.items()}
    written: dict[tuple[uuid.UUID, str], RecordedCrossing] = {}
    changes: list[Event] = []
    arrived: list[CaseSeat] = []
    for d in decisions:
        crossings = recorded.setdefault(d.case_id, {})
        known = crossings.get(d.checkpoint_id)
        if known is None or not known.announced:  # once announced, the stream said it: unchanged
            crossings[d.checkpoint_id] = written[(d.case_id, d.checkpoint_id)] = RecordedCrossing(
                d.checkpoint_id,
                isinstance(d, BorderCrossingCleared),
                d.decided_at,
                d.public_reason_code,
                announced=False,
            )
        seat = seats.get(d.case_id)
        if seat is None:
            continue  # never seated here: recorded for diagnosis only (as in ``_on_crossing``)
        route = ctx.routes.get(seat.route_id)
        news = domain.crossing_news(route, state[d.case_id], crossings)
        for cp, crossing in news.crossings:
            changes.append(_crossing_change(uow, seat, cp, crossing))
            crossings[cp.checkpoint_id] = written[(d.case_id, cp.checkpoint_id)] = replace(
                crossing, announced=True
            )
        if news.arrives and route is not None:
            if state[d.case_id] in SeatState.ARRIVED.reached_from:
                state[d.case_id] = SeatState.ARRIVED
            arrived.append(seat)
            changes.append(_arrival(uow, seat, route, news))
    await store.save_crossings([(case_id, c) for (case_id, _), c in written.items()])
    await uow.publish_many(changes)
    # Each seat moves only from where it stood before the run (the same condition as in memory).
    await store.set_assignment_states(
        [s.case_id for s in arrived], SeatState.ARRIVED, was=SeatState.ARRIVED.reached_from
    )
    # Seats only settle within the run: a movement settled after any of its arrivals is settled
    # after the last, so closing once at the end closes what closing after each would.
    await store.close_movements_if_done({s.movement_id for s in arrived})


async def lock_batch(store: TransportStore, events: Sequence[Event]) -> None:
    """A consumer's batch locks the cases of its events in one statement, in case-id order, before
    applying any of them: as planning and departures lock theirs, so neither waits for the other in
    a circle (docs/consistency.md). Each use case then locks its case again, which costs nothing."""
    await store.lock_cases(
        e.case_id
        for e in events
        if isinstance(
            e,
            CaseRegistered
            | CaseUpdated
            | CaseWithdrawn
            | PersonalDataErased
            | EligibilityDecided
            | BorderCrossingCleared
            | BorderCrossingRefused,
        )
    )


class EventUseCase(Protocol):
    """A use case for an event: (its data, a unit of work, the context)."""

    def __call__(self, event: Any, uow: Unit, ctx: Context) -> Awaitable[None]: ...


HANDLERS: Mapping[type[Event], EventUseCase] = {
    CaseRegistered: on_case_registered,
    CaseUpdated: on_case_updated,
    CaseWithdrawn: on_case_withdrawn,
    PersonalDataErased: on_personal_data_erased,
    EligibilityDecided: on_eligibility_decided,
}
"""Each event transport reads from ``intake.cases`` and ``eligibility.decisions``, and its use case
for one event. Registrations and decisions are applied in sets (``IN_SETS``), and by these one at
a time when a run must be (a case twice in it, a withdrawal, a seat taken away)."""


class SetUseCase(Protocol):
    """A use case for a run of events: (their envelopes, in order, a unit of work, the context)."""

    def __call__(self, events: Sequence[CloudEvent], uow: Unit, ctx: Context) -> Awaitable[None]: ...


IN_SETS: Mapping[type[Event], SetUseCase] = {
    CaseRegistered: on_registrations,
    EligibilityDecided: on_decisions,
    BorderCrossingCleared: on_crossings,
    BorderCrossingRefused: on_crossings,
}
"""The events transport applies many at once: registrations, decisions, and the posts' crossings
(four a case; one use case for both kinds, so a run mixing them is one call,
``corridor.runtime.with_context``)."""


# --- commands: coordinators plan and board, drivers report progress, staff export manifests -----


@dataclass(frozen=True)
class PlannedMovement:
    view: MovementView
    not_placed: list[Placement]
    created: bool = True
    """False: planned before under this movement id; the movement as it stands is answered."""


@dataclass(frozen=True)
class Departure:
    movement_id: str
    vehicle_id: str
    departed: list[uuid.UUID]
    no_shows: list[uuid.UUID]
    seats_offered: list[Placement]
    replayed: bool = False
    """The vehicle had departed: this is what its departure decided then."""

    @classmethod
    def recorded(cls, d: RecordedDeparture) -> Departure:
        return cls(
            d.movement_id,
            d.vehicle_id,
            d.departed,
            d.no_shows,
            [Placement(c, d.vehicle_id, why) for c, why in d.seats_offered],
            replayed=True,
        )


@dataclass(frozen=True)
class ReadyCases:
    route_id: str
    departure_date: date
    cases: list[ReadyCase]


@dataclass(frozen=True)
class ManifestDocument:
    filename: str
    media_type: str
    content: str | bytes


async def _view(uow: Unit, movement: Movement) -> MovementView:
    return MovementView(
        movement,
        await uow.store.vehicles(movement.movement_id),
        await uow.store.assignments(movement.movement_id),
    )


async def _vehicle_of(uow: Unit, movement_id: str, vehicle_id: str) -> tuple[Movement, MovementVehicle]:
    found = await uow.store.movement(movement_id)
    if found is None:
        raise NoSuchMovement(movement_id)
    vehicle = await uow.store.vehicle(movement_id, vehicle_id)
    if vehicle is None:
        raise NoSuchVehicle(movement_id, vehicle_id)
    return found, vehicle


async def _lock_ready(
    uow: Unit, ctx: Context, route: Route, day: date, *, also: Sequence[uuid.UUID] = ()
) -> list[uuid.UUID]:
    """Lock the cases a plan or a departure may seat (those ready that day, read without a lock)
    and ``also``, in one statement, in case-id order; the caller reads them again under the locks
    (``ready_cases(among=...)``). A withdrawal, a decision or another plan on one of them is
    applied wholly before or after; a case that becomes ready meanwhile waits for the next plan,
    as if it had become ready just after this one. Only these: a day's other cases (placed,
    travelling, arrived: thousands on a movement day) are not held while the plan is made."""
    ready = await uow.store.ready_cases(route.route_id, day, ctx.abroad(route))
    return await uow.store.lock_cases([*also, *(c.case_id for c in ready)])


async def plan_movement(cmd: commands.PlanMovement, uow: Unit, ctx: Context) -> PlannedMovement:
    """Place the eligible cases travelling that day on the vehicles, announce each placement, and
    send every vehicle's manifest to the checkpoints on the route."""
    route = ctx.route(cmd.route_id)
    movement_id = cmd.movement_id or domain.new_movement_id(cmd.departure_date)
    store = uow.store
    if (earlier := await store.movement(movement_id)) is not None:
        return await _planned_before(uow, cmd, earlier, ctx)
    locked = await _lock_ready(uow, ctx, route, cmd.departure_date)
    cases = await store.ready_cases(route.route_id, cmd.departure_date, ctx.abroad(route), among=locked)
    placements = domain.plan(cases, [domain.Vehicle(v.vehicle_id, v.capacity) for v in cmd.vehicles])
    if not await store.create_movement(
        movement_id,
        route.route_id,
        cmd.departure_date,
        [(v.vehicle_id, v.capacity, uuid.uuid4()) for v in cmd.vehicles],
    ):
        # Planned by a concurrent request (this one waited for it): a retry, or another plan.
        earlier = await store.movement(movement_id)
        assert earlier is not None
        return await _planned_before(uow, cmd, earlier, ctx)
    # The whole plan in a few statements whatever its size: the seats, the escorts' seats, then
    # every placement's status and every vehicle's manifests in one outbox write, in this order.
    size = {c.case_id: c.members for c in cases}
    placed = placements.placed()
    await store.set_escort_seats(
        movement_id, [p.vehicle_id for p in placed if p.vehicle_id is not None and p.escort_seat_reserved]
    )
    await store.assign_many(movement_id, _seats(placed, size))
    gathering = _gathering(route)
    events: list[Event] = [
        _change(
            uow, p.case_id, CaseStatus.MANIFESTED, size[p.case_id], place=gathering, movement_id=movement_id
        )
        for p in placed
    ]
    for vehicle in await store.vehicles(movement_id):
        events += await manifests_for(uow, route, movement_id, vehicle, cmd.departure_date)
    await uow.publish_many(events)
    movement = await store.movement(movement_id)
    assert movement is not None
    return PlannedMovement(await _view(uow, movement), placements.not_placed())


def _seats(placed: list[Placement], size: Mapping[uuid.UUID, int]) -> list[tuple[uuid.UUID, str, int, str]]:
    """The seats to write for these placements (case, vehicle, seats, explanation)."""
    return [(p.case_id, p.vehicle_id, size[p.case_id], p.explanation) for p in placed if p.vehicle_id]


async def _planned_before(
    uow: Unit, cmd: commands.PlanMovement, earlier: Movement, ctx: Context
) -> PlannedMovement:
    """A plan repeated under its movement id (a retry after a lost answer) is answered the movement
    as it stands, and the cases of that day no movement has taken; a different plan under that id
    is refused."""
    view = await _view(uow, earlier)
    asked = (cmd.route_id, cmd.departure_date, sorted((v.vehicle_id, v.capacity) for v in cmd.vehicles))
    has = (
        earlier.route_id,
        earlier.departure_date,
        sorted((v.vehicle_id, v.capacity) for v in view.vehicles),
    )
    if asked != has:
        raise domain.MovementExists(earlier.movement_id)
    route = ctx.route(earlier.route_id)
    waiting = await uow.store.ready_cases(earlier.route_id, earlier.departure_date, ctx.abroad(route))
    not_placed = [Placement(c.case_id, None, "not on any movement of that day yet") for c in waiting]
    return PlannedMovement(view, not_placed, created=False)


async def departure(movement_id: str, vehicle_id: str, uow: Unit) -> Departure:
    """What the vehicle's departure decided (404 before it departed)."""
    await _vehicle_of(uow, movement_id, vehicle_id)
    recorded = await uow.store.departure(movement_id, vehicle_id)
    if recorded is None:
        raise NotFound(f"{vehicle_id} has not departed")
    return Departure.recorded(recorded)


async def ready_cases(route_id: str, departure_date: date, uow: Unit, ctx: Context) -> ReadyCases:
    """Eligible cases for that route and day that no movement has taken yet."""
    route = ctx.route(route_id)
    cases = await uow.store.ready_cases(route_id, departure_date, ctx.abroad(route))
    return ReadyCases(route_id, departure_date, cases)


async def movement(movement_id: str, uow: Unit) -> MovementView:
    found = await uow.store.movement(movement_id)
    if found is None:
        raise NoSuchMovement(movement_id)
    return await _view(uow, found)


async def record_departure(cmd: commands.RecordDeparture, uow: Unit, ctx: Context) -> Departure:
    """Boarding against the manifest: no-shows leave it, their seats go to the next eligible cases
    waiting for that day, the posts get the amended manifest, and the vehicle leaves."""
    store, movement_id, vehicle_id = uow.store, cmd.movement_id, cmd.vehicle_id
    found, _ = await _vehicle_of(uow, movement_id, vehicle_id)
    route = ctx.route(found.route_id)
    # Lock order as everywhere: the cases (those on board and those who may get a freed seat),
    # then the vehicle; then read again what the decision rests on.
    aboard = [s.case_id for s in await store.seats_on(movement_id, vehicle_id)]
    locked = await _lock_ready(uow, ctx, route, found.departure_date, also=aboard)
    vehicle = await store.lock_vehicle(movement_id, vehicle_id)
    if vehicle is None:
        raise NoSuchVehicle(movement_id, vehicle_id)
    if vehicle.departed_at is not None:
        # A repeat (a retry after a lost answer, a second coordinator): answered what the
        # departure decided, unless it asks something else.
        earlier = await store.departure(movement_id, vehicle_id)
        if earlier is None:  # departed before outcomes were kept
            raise AlreadyDeparted(vehicle_id, vehicle.departed_at)
        answer = Departure.recorded(earlier)
        if set(earlier.no_shows) != set(cmd.no_shows) or earlier.fill_freed_seats != cmd.fill_freed_seats:
            raise AlreadyDeparted(vehicle_id, vehicle.departed_at, departure=_json(answer))
        return answer
    manifested = [s for s in await store.seats_on(movement_id, vehicle_id) if s.state is SeatState.MANIFESTED]
    boarded = domain.boarding(vehicle_id, manifested, cmd.no_shows)
    gathering = _gathering(route)
    # Every seat that changes, in a statement per kind of change whatever the vehicle's size; the
    # statuses, the amended manifests and the departure in one outbox write, in that order.
    no_show = SeatState.NO_SHOW
    await store.set_assignment_states(
        [s.case_id for s in boarded.no_shows], no_show, was=no_show.reached_from
    )
    events: list[Event] = [
        _change(
            uow,
            s.case_id,
            CaseStatus.NO_SHOW,
            s.seats,
            place=gathering,
            movement_id=movement_id,
            reason_code="no_show",
        )
        for s in boarded.no_shows
    ]
    offered: list[Placement] = []
    if cmd.fill_freed_seats:
        load = next(v for v in await store.vehicle_loads(movement_id) if v.vehicle_id == vehicle_id)
        waiting = await store.ready_cases(
            route.route_id, found.departure_date, ctx.abroad(route), among=locked
        )
        offered = domain.plan(waiting, [load]).placed()
        size = {c.case_id: c.members for c in waiting}
        await store.assign_many(movement_id, _seats(offered, size))
        await store.set_escort_seats(
            movement_id, [vehicle_id] if any(p.escort_seat_reserved for p in offered) else []
        )
        events += [
            _change(
                uow,
                p.case_id,
                CaseStatus.MANIFESTED,
                size[p.case_id],
                place=gathering,
                movement_id=movement_id,
                reason_code="seat_offered",
            )
            for p in offered
        ]
    leaving = SeatState.DEPARTED
    left = await store.set_assignment_states(
        [s.case_id for s in boarded.aboard] + [p.case_id for p in offered], leaving, was=leaving.reached_from
    )
    events += [
        _change(uow, s.case_id, CaseStatus.DEPARTED, s.seats, place=gathering, movement_id=movement_id)
        for s in left
    ]
    departed = [s.case_id for s in left]
    if cmd.no_shows or offered:
        # The border posts must expect exactly who is on board.
        events += await amended_manifests(uow, ctx, movement_id, vehicle_id)
    await store.mark_departed(movement_id, vehicle_id, uow.now())
    await store.save_departure(
        RecordedDeparture(
            movement_id,
            vehicle_id,
            departed,
            list(cmd.no_shows),
            [(p.case_id, p.explanation) for p in offered],
            cmd.fill_freed_seats,
            uow.now(),
        )
    )
    events.append(
        MovementDeparted(
            movement_id=movement_id, vehicle_id=vehicle_id, case_ids=departed, departed_at=uow.now()
        )
    )
    await uow.publish_many(events)
    return Departure(movement_id, vehicle_id, departed, list(cmd.no_shows), offered)


async def record_progress(cmd: commands.RecordProgress, uow: Unit, ctx: Context) -> None:
    """The vehicle reached or left a checkpoint on its route (reported by the escort or driver);
    the posts and eligibility learn who is aboard. A report repeated changes nothing."""
    found, vehicle = await _vehicle_of(uow, cmd.movement_id, cmd.vehicle_id)
    route = ctx.route(found.route_id)
    if route.checkpoint(cmd.checkpoint_id) is None:
        raise NotOnRoute(cmd.checkpoint_id, route.route_id)
    if vehicle.departed_at is None:
        raise NotDeparted(cmd.vehicle_id)
    if not await uow.store.record_progress(
        cmd.movement_id, cmd.vehicle_id, cmd.checkpoint_id, cmd.stage, uow.now()
    ):
        return
    on_board = [
        s.case_id
        for s in await uow.store.seats_on(cmd.movement_id, cmd.vehicle_id)
        if s.state is SeatState.DEPARTED
    ]
    await uow.publish(
        VehicleProgressRecorded(
            movement_id=cmd.movement_id,
            vehicle_id=cmd.vehicle_id,
            checkpoint_id=cmd.checkpoint_id,
            stage=cmd.stage,
            case_ids=on_board,
            at=uow.now(),
        )
    )


async def export_manifest(cmd: commands.ExportManifest, uow: Unit, ctx: Context) -> ManifestDocument:
    """The current manifest with personal data, as CSV or printable PDF; every export is recorded
    with who took it and why, in the same transaction as the read."""
    found, vehicle = await _vehicle_of(uow, cmd.movement_id, cmd.vehicle_id)
    passengers: list[ManifestPassenger] = await uow.store.passengers_on(cmd.movement_id, cmd.vehicle_id)
    await uow.store.log_export(cmd.actor, cmd.purpose, cmd.movement_id, cmd.vehicle_id, cmd.format)
    filename = f"{cmd.movement_id}-{cmd.vehicle_id}.{cmd.format}"
    if cmd.format == "csv":
        return ManifestDocument(filename, "text/csv", domain.manifest_csv(passengers))
    document = manifest_pdf(
        movement_id=cmd.movement_id,
        vehicle_id=cmd.vehicle_id,
        route=found.route_id,
        departure=found.departure_date.isoformat(),
        revision=vehicle.manifest_revision,
        passengers=passengers,
        printed_at=uow.now(),
        printed_by=cmd.actor,
        fonts=ctx.fonts,
    )
    return ManifestDocument(filename, "application/pdf", document)


async def access_log(movement_id: str, uow: Unit) -> list[ManifestExport]:
    """Every export of the movement's manifests, oldest first."""
    return await uow.store.access_log(movement_id)


def _json(d: Departure) -> dict[str, Any]:
    """A departure as ``DepartureOut`` writes it (for a refusal's detail)."""
    return {
        "movement_id": d.movement_id,
        "vehicle_id": d.vehicle_id,
        "departed": [str(c) for c in d.departed],
        "no_shows": [str(c) for c in d.no_shows],
        "seats_offered": [{"case_id": str(p.case_id), "explanation": p.explanation} for p in d.seats_offered],
    }
