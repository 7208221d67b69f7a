"""What a border post does: each use case is a function of (command or event, unit of work, context).

The unit of work holds the transaction, this post's ``BorderStore`` on it and the outbox; the
``Context`` says which post this is. The rules themselves are in ``domain``; HTTP and Kafka are
elsewhere (``api``, and the consumer ``HANDLERS`` are registered with in ``app``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from contracts.base import Event
from contracts.border import (
    BorderCrossingCleared,
    BorderCrossingRefused,
    CrossingRequirementLifted,
    CrossingRequirementPublished,
    PersonDecision,
)
from contracts.envelope import CloudEvent
from contracts.intake import EvidenceKind
from contracts.routes import Checkpoint, RouteBook
from contracts.transport import ManifestIssued, MovementDeparted, PassengerDataErased
from corridor.uow import Publisher
from services.border_clearance import domain
from services.border_clearance.domain import ExpectedVehicle, Refusal, Requirement, Scan
from services.border_clearance.store import BorderStore


class Unit(Publisher, Protocol):
    """What a use case needs of its unit of work (``corridor.uow.UnitOfWork`` or a fake)."""

    @property
    def store(self) -> BorderStore: ...


@dataclass(frozen=True)
class Context:
    """This post: one process per checkpoint, on a route of the route book."""

    checkpoint: Checkpoint
    routes: RouteBook

    @classmethod
    def of(cls, checkpoint: Checkpoint, routes: RouteBook) -> Context:
        return cls(checkpoint, routes)

    @property
    def checkpoint_id(self) -> str:
        return self.checkpoint.checkpoint_id


# --- events from the other services ---------------------------------------------------------


async def on_manifest(event: ManifestIssued, uow: Unit, ctx: Context) -> None:
    """Expect the vehicle: keep the latest revision of its manifest for this post."""
    if event.checkpoint_id == ctx.checkpoint_id:
        await uow.store.save_manifest(event)


async def on_departed(event: MovementDeparted, uow: Unit, ctx: Context) -> None:
    """The vehicle left the gathering point: its cases reach the route's first post."""
    await uow.store.record_departures(event.case_ids, event.movement_id, event.vehicle_id)


async def on_cleared_elsewhere(events: Sequence[CloudEvent], uow: Unit, ctx: Context) -> None:
    """Other posts cleared cases (a run of clearances, one a case from the post before): each case
    reaches this post. In one statement whatever the run's length."""
    cleared: list[tuple[uuid.UUID, str]] = []
    for e in events:
        assert isinstance(e.data, BorderCrossingCleared), e.type  # IN_SETS
        if e.data.checkpoint_id != ctx.checkpoint_id:
            cleared.append((e.data.case_id, e.data.checkpoint_id))
    await uow.store.record_upstream_clearances(cleared)


async def on_passenger_data_erased(event: PassengerDataErased, uow: Unit, ctx: Context) -> None:
    """The people of a case had their personal data erased: erase this post's copy of them (the
    crossing decisions stay, without the officers' notes)."""
    if event.checkpoint_id == ctx.checkpoint_id:
        await uow.store.erase_case(event.case_id, event.erased_at)


HANDLERS: Mapping[type[Event], Callable[..., Awaitable[None]]] = {
    ManifestIssued: on_manifest,
    PassengerDataErased: on_passenger_data_erased,
    MovementDeparted: on_departed,
}
"""The events this post reads (its manifests topic, movements, border crossings) and their use cases."""


def handlers(ctx: Context) -> dict[type[Event], Callable[[Any, Unit], Awaitable[None]]]:
    """``HANDLERS`` with this post's context given to each, as the consumer calls (event, unit)."""
    return {event: functools.partial(use_case, ctx=ctx) for event, use_case in HANDLERS.items()}


IN_SETS: Mapping[type[Event], Callable[..., Awaitable[None]]] = {
    BorderCrossingCleared: on_cleared_elsewhere,
}
"""The events this post applies many at once: the post before's clearances (one a case)."""


def in_sets(ctx: Context) -> dict[type[Event], Callable[[Sequence[CloudEvent], Unit], Awaitable[None]]]:
    """``IN_SETS`` with this post's context given to each, as the consumer calls (events, unit)."""
    return {event: functools.partial(use_case, ctx=ctx) for event, use_case in IN_SETS.items()}


# --- clearing a vehicle -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClearVehicle:
    """Clear everyone on a vehicle who has reached this post, except the people refused: by the
    officer, by a document that does not match the manifest, or by the post's hold list."""

    movement_id: str
    vehicle_id: str
    officer: str
    refusals: tuple[Refusal, ...] = ()
    scans: tuple[Scan, ...] = ()


@dataclass(frozen=True)
class Clearance:
    checkpoint_id: str
    cleared: list[uuid.UUID] = field(default_factory=list)
    refused: list[uuid.UUID] = field(default_factory=list)
    waiting: dict[uuid.UUID, str] = field(default_factory=dict)


async def clear_vehicle(cmd: ClearVehicle, uow: Unit, ctx: Context) -> Clearance:
    """Decide every case on the vehicle that reached this post and was not decided yet, under the
    manifest's lock: two officers clearing one vehicle at once decide each case once. Raises
    ``NothingToDecide`` if no case could be decided (nothing is written then)."""
    manifest = await uow.store.lock_manifest(cmd.movement_id, cmd.vehicle_id)
    if manifest is None:
        raise domain.NoManifest(cmd.movement_id, cmd.vehicle_id)
    route = ctx.routes.get(manifest.route_id)
    if route is None:
        raise domain.RouteNotConfigured(manifest.route_id)
    people = await uow.store.passengers(cmd.movement_id, cmd.vehicle_id)
    domain.check_named(people, cmd.refusals, cmd.scans)
    checks = domain.check_documents(cmd.scans, people, uow.now().date())
    holds = await uow.store.holds_for([p.document_number for p in people])
    refused = domain.refusals(people, cmd.refusals, checks, holds)
    previous = domain.previous_checkpoint(route, ctx.checkpoint_id)
    # Every case on the vehicle at once, under the manifest's lock: where each stands here in one
    # statement, the decisions in one, the crossings they publish in one outbox write.
    progress = await uow.store.progress_of(list(domain.families(people)))
    decided = domain.decide_vehicle(people, progress, previous, refused, checks)
    if not decided.decisions:
        raise domain.NothingToDecide(decided.waiting)
    await uow.store.save_decisions(
        decided.decisions,
        movement_id=cmd.movement_id,
        vehicle_id=cmd.vehicle_id,
        officer=cmd.officer,
        at=uow.now(),
    )
    # The post writes no status: transport announces the decisions on the public stream (its one
    # home is the host mission, docs/consistency.md), from these events.
    await uow.publish_many([_crossing_decision(d, cmd, uow.now(), ctx.checkpoint) for d in decided.decisions])
    return Clearance(
        ctx.checkpoint_id,
        cleared=[d.case_id for d in decided.decisions if d.cleared],
        refused=[d.case_id for d in decided.decisions if not d.cleared],
        waiting=decided.waiting,
    )


def _crossing_decision(
    decision: domain.CaseDecision, cmd: ClearVehicle, at: datetime, checkpoint: Checkpoint
) -> BorderCrossingCleared | BorderCrossingRefused:
    event = BorderCrossingCleared if decision.cleared else BorderCrossingRefused
    return event(
        case_id=decision.case_id,
        checkpoint_id=checkpoint.checkpoint_id,
        country=checkpoint.country,
        crossing=checkpoint.crossing,
        direction=checkpoint.direction,
        movement_id=cmd.movement_id,
        vehicle_id=cmd.vehicle_id,
        decisions=[
            PersonDecision(
                person_id=p.person_id,
                cleared=p.cleared,
                reason_code=p.refusal.reason_code if p.refusal else None,
            )
            for p in decision.people
        ],
        decided_at=at,
        # The officer's code and words, and a hold's, stay in this post's records and in the
        # person decisions above: they may name a person or a court order. The stream is told only
        # where the refusal came from.
        public_reason_code=decision.public_reason_code,
    )


# --- requirements -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishRequirement:
    """A new requirement at this post, for crossings from ``effective_from`` on (to
    ``effective_until``, when given)."""

    code: str
    description: str
    evidence_kind: EvidenceKind
    valid_hours: int
    effective_from: date
    officer: str
    reference: str | None = None
    effective_until: date | None = None

    def same_as(self, r: Requirement) -> bool:
        """Whether ``r`` is what this command publishes (who published it aside)."""
        mine = (self.code, self.description, self.evidence_kind, self.valid_hours)
        return (*mine, self.effective_from, self.effective_until) == (
            r.code,
            r.description,
            r.evidence_kind,
            r.valid_hours,
            r.effective_from,
            r.effective_until,
        )


@dataclass(frozen=True)
class RequirementPublished:
    requirement_id: uuid.UUID
    checkpoint_id: str
    reference: str | None = None
    created: bool = True


async def publish_requirement(cmd: PublishRequirement, uow: Unit, ctx: Context) -> RequirementPublished:
    """Publish a requirement at short notice: eligibility re-evaluates every affected case."""
    requirement = CrossingRequirementPublished(
        requirement_id=uuid.uuid4(),
        checkpoint_id=ctx.checkpoint_id,
        country=ctx.checkpoint.country,
        post=ctx.checkpoint.post,
        code=cmd.code,
        description=cmd.description,
        evidence_kind=cmd.evidence_kind,
        valid_hours=cmd.valid_hours,
        effective_from=cmd.effective_from,
        effective_until=cmd.effective_until,
        published_at=uow.now(),
    )
    if not await uow.store.add_requirement(requirement, cmd.officer, cmd.reference):
        # Published before under this reference (perhaps a moment ago, by a retry of this very
        # request): answer that one, or refuse a different requirement under the same reference.
        [earlier] = await uow.store.requirements(cmd.reference)
        if not cmd.same_as(earlier):
            raise domain.ReferenceReused(cmd.reference)
        return RequirementPublished(earlier.requirement_id, ctx.checkpoint_id, cmd.reference, created=False)
    await uow.publish(requirement)
    return RequirementPublished(requirement.requirement_id, ctx.checkpoint_id, cmd.reference)


@dataclass(frozen=True)
class RequirementLifted:
    requirement_id: uuid.UUID
    lifted_at: datetime


async def lift_requirement(requirement_id: uuid.UUID, uow: Unit, ctx: Context) -> RequirementLifted:
    """Lift an active requirement (``NoActiveRequirement`` if there is none of that id)."""
    now = uow.now()
    if not await uow.store.lift_requirement(requirement_id, now):
        raise domain.NoActiveRequirement(requirement_id)
    await uow.publish(
        CrossingRequirementLifted(
            requirement_id=requirement_id, checkpoint_id=ctx.checkpoint_id, lifted_at=now
        )
    )
    return RequirementLifted(requirement_id, now)


@dataclass(frozen=True)
class Requirements:
    checkpoint_id: str
    requirements: list[Requirement]


async def requirements(uow: Unit, ctx: Context, reference: str | None = None) -> Requirements:
    """Every requirement this post published (with ``reference``: the one of that reference),
    lifted ones included, oldest first."""
    return Requirements(ctx.checkpoint_id, await uow.store.requirements(reference))


# --- the hold list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldDocument:
    """A person this post must not clear, matched on the travel document number."""

    document_number: str
    reason_code: str
    reason: str
    officer: str


@dataclass(frozen=True)
class HoldListEntry:
    document_number: str
    held: bool


async def hold_document(cmd: HoldDocument, uow: Unit) -> HoldListEntry:
    """Put a document on the hold list, or replace its entry."""
    await uow.store.hold(cmd.document_number, cmd.reason_code, cmd.reason, cmd.officer)
    return HoldListEntry(cmd.document_number, held=True)


async def release_document(document_number: str, uow: Unit) -> HoldListEntry:
    """Take a document off the hold list (``NotOnHoldList`` if it is not on it)."""
    if not await uow.store.release(document_number):
        raise domain.NotOnHoldList()
    return HoldListEntry(document_number, held=False)


# --- expected arrivals --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedArrivals:
    checkpoint_id: str
    vehicles: list[ExpectedVehicle]


async def expected_arrivals(uow: Unit, ctx: Context) -> ExpectedArrivals:
    """The vehicles whose manifests reached this post, with how many of their people are decided."""
    return ExpectedArrivals(ctx.checkpoint_id, await uow.store.expected_arrivals())
