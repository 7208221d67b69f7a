"""Transport's use cases in memory: what each command and event does to seats, what it publishes,
what it announces on the status stream and which error it raises, against ``FakeUnitOfWork`` and an
in-memory store. The integration tests (test_concurrent_commands.py, test_december_movement.py,
test_case_flow.py) prove the same on Kafka and PostgreSQL, with real locks."""

from __future__ import annotations

import copy
import inspect
import itertools
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from contracts import reasons, topics
from contracts.border import BorderCrossingCleared, BorderCrossingRefused, PersonDecision
from contracts.eligibility import EligibilityDecided, Outcome, RuleOutcome, RuleResult
from contracts.envelope import CloudEvent
from contracts.intake import (
    CaseRegistered,
    CaseUpdated,
    CaseWithdrawn,
    Consent,
    Person,
    PersonalDataErased,
    TravelDocument,
)
from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged
from contracts.transport import ManifestIssued, MovementDeparted, PassengerDataErased, VehicleProgressRecorded
from corridor.consumer import Rejected
from corridor.errors import Conflict, Invalid, NotFound
from corridor.runtime import with_context
from corridor.settings import ServiceSettings
from services.transport import commands, usecases
from services.transport.domain import MovementStatus, SeatState
from services.transport.store import TransportStore
from tests.fakes import FakeUnitOfWork
from tests.unit.transport_fakes import FakeTransportStore

S = CaseStatus
ROUTES = RouteBook.load(ServiceSettings.model_fields["routes_file"].default)
ROUTE = ROUTES.routes[0]
CHECKPOINTS = [cp.checkpoint_id for cp in ROUTE.checkpoints]
CTX = usecases.Context(routes=ROUTES, mission="KAZ")
DAY = date(2026, 12, 1)
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


class World:
    """One transport service in memory: its store, one unit of work per test (so the status stream
    it keeps spans every step), and helpers that run the use cases as the consumer and the API do."""

    def __init__(self) -> None:
        self.store = FakeTransportStore()
        self.uow: FakeUnitOfWork[FakeTransportStore] = FakeUnitOfWork(self.store)
        self.clock = T0
        self.versions: dict[uuid.UUID, int] = {}
        # What eligibility says for the public stream when a decision blocks the case.
        self.public_code = "evidence_pending"
        self.public_text: str | None = reasons.text_of("evidence_pending")

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    # --- events ----------------------------------------------------------------------------------

    async def register(self, members: int = 1, **kw: Any) -> CaseRegistered:
        """A registration read alone (the consumer hands it over as a run of one)."""
        case = self.registration(members, **kw)
        await usecases.on_registrations([envelope(case)], self.uow, CTX)
        return case

    def registration(
        self,
        members: int = 1,
        *,
        day: date = DAY,
        escort: bool = False,
        scope: tuple[str, ...] = ("UZB", "TJK"),
        case_id: uuid.UUID | None = None,
    ) -> CaseRegistered:
        """A registration as intake publishes it (not applied yet)."""
        return CaseRegistered(
            case_id=case_id or uuid.uuid4(),
            registered_at=self.tick(),
            route_id=ROUTE.route_id,
            planned_travel_date=day,
            consent=Consent(given=True, kind="explicit", scope=list(scope)),
            members=[person(i, escort=escort and i == 0) for i in range(members)],
        )

    async def decide(self, case_id: uuid.UUID, outcome: Outcome = Outcome.ELIGIBLE, **kw: Any) -> None:
        """Eligibility's decision read alone (the consumer hands it over as a run of one)."""
        await usecases.on_decisions([envelope(self.decision(case_id, outcome, **kw))], self.uow, CTX)

    def decision(
        self,
        case_id: uuid.UUID,
        outcome: Outcome = Outcome.ELIGIBLE,
        *,
        priority: int = 0,
        withdrawn: bool = False,
    ) -> EligibilityDecided:
        """Eligibility's next decision on a case (not applied yet)."""
        self.versions[case_id] = self.versions.get(case_id, 0) + 1
        failing = outcome is not Outcome.ELIGIBLE
        return EligibilityDecided(
            case_id=case_id,
            version=self.versions[case_id],
            outcome=outcome,
            priority=priority,
            rules=[
                RuleResult(
                    rule="not_withdrawn",
                    outcome=RuleOutcome.FAIL if withdrawn else RuleOutcome.PASS,
                    reason="Withdrawn" if withdrawn else "Not withdrawn",
                )
            ],
            decided_at=self.tick(),
            public_reason_code=self.public_code if failing else None,
            public_reason=self.public_text if failing else None,
        )

    async def ready(self, members: int = 1, *, priority: int = 0, **kw: Any) -> uuid.UUID:
        case = await self.register(members, **kw)
        await self.decide(case.case_id, priority=priority)
        return case.case_id

    async def withdraw(self, case_id: uuid.UUID) -> None:
        await usecases.on_case_withdrawn(
            CaseWithdrawn(case_id=case_id, reason="Decided to stay", withdrawn_at=self.tick()), self.uow, CTX
        )

    def crossing(
        self,
        case_id: uuid.UUID,
        checkpoint_id: str,
        *,
        cleared: bool = True,
        public_code: str | None = "refused_by_officer",
    ) -> BorderCrossingCleared | BorderCrossingRefused:
        """A post's decision on a case, as the post sends it (not applied yet)."""
        route_cp = ROUTE.checkpoint(checkpoint_id)
        assert route_cp is not None
        seat = self.store.seats.get(case_id)
        kind = BorderCrossingCleared if cleared else BorderCrossingRefused
        return kind(
            case_id=case_id,
            checkpoint_id=checkpoint_id,
            country=route_cp.country,
            crossing=route_cp.crossing,
            direction=route_cp.direction,
            movement_id=seat.movement_id if seat else "MOV-X",
            vehicle_id=seat.vehicle_id if seat else "BUS-X",
            decisions=[PersonDecision(person_id=uuid.uuid4(), cleared=cleared, reason_code="no_visa")],
            decided_at=self.tick(),
            public_reason_code=None if cleared else public_code,
        )

    async def cross(
        self, case_id: uuid.UUID, checkpoint_id: str, **kw: Any
    ) -> BorderCrossingCleared | BorderCrossingRefused:
        """A post's decision read alone (the consumer hands it over as a run of one)."""
        event = self.crossing(case_id, checkpoint_id, **kw)
        await self.apply_crossings(event)
        return event

    async def apply_crossings(self, *events: BorderCrossingCleared | BorderCrossingRefused) -> None:
        """A run of the posts' decisions, as the consumer hands it to transport: in one call."""
        await usecases.on_crossings(
            [CloudEvent.new(e, source="/missions/UZB/border") for e in events], self.uow, CTX
        )

    # --- commands --------------------------------------------------------------------------------

    async def plan(self, *vehicles: tuple[str, int], movement_id: str = "MOV-1") -> usecases.PlannedMovement:
        return await usecases.plan_movement(
            commands.PlanMovement(
                route_id=ROUTE.route_id,
                departure_date=DAY,
                vehicles=tuple(commands.VehicleSpec(v, c) for v, c in vehicles),
                movement_id=movement_id,
            ),
            self.uow,
            CTX,
        )

    async def depart(
        self, vehicle_id: str = "BUS-1", *no_shows: uuid.UUID, fill: bool = True, movement_id: str = "MOV-1"
    ) -> usecases.Departure:
        return await usecases.record_departure(
            commands.RecordDeparture(movement_id, vehicle_id, tuple(no_shows), fill), self.uow, CTX
        )

    # --- what a test reads -------------------------------------------------------------------------

    def statuses(self, case_id: uuid.UUID) -> list[CaseStatus]:
        return self.uow.statuses_of(case_id)

    def last_change(self, case_id: uuid.UUID) -> CaseStatusChanged:
        return [e for e in self.uow.events(CaseStatusChanged) if e.case_id == case_id][-1]

    def manifests(self) -> list[ManifestIssued]:
        return self.uow.events(ManifestIssued)

    def aboard(self, manifest: ManifestIssued) -> set[uuid.UUID]:
        return {p.case_id for p in manifest.passengers}


def envelope(event: CaseRegistered | EligibilityDecided) -> CloudEvent:
    """An event as the consumer hands it to a set use case."""
    return CloudEvent.new(event, source="/missions/KAZ/test")


def person(i: int, *, escort: bool = False) -> Person:
    return Person(
        person_id=uuid.uuid4(),
        role="principal" if i == 0 else "child",
        given_names="Murod",
        surname="Rahimov",
        birth_date=date(1979, 1, 30) + timedelta(days=3000 * i),
        sex="M",
        nationality="TJK",
        document=TravelDocument(
            type="passport", number=f"40076543{i}", issuing_country="TJK", expires_on=date(2028, 1, 1)
        ),
        needs_escort=escort,
    )


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    # Whatever a test did, transport never tried to announce a status the stream may not carry.
    assert w.uow.illegal == [], w.uow.illegal


# --- wiring --------------------------------------------------------------------------------------


def test_every_event_transport_reads_has_its_use_case() -> None:
    assert set(usecases.HANDLERS) == {
        CaseRegistered,
        CaseUpdated,
        CaseWithdrawn,
        PersonalDataErased,
        EligibilityDecided,
    }
    assert set(usecases.IN_SETS) == {
        CaseRegistered,
        EligibilityDecided,
        BorderCrossingCleared,
        BorderCrossingRefused,
    }
    for event in [*usecases.HANDLERS, *usecases.IN_SETS]:
        assert topics.topic_for(event).name in (topics.CASES, topics.DECISIONS, topics.crossings(""))


def test_clearances_and_refusals_share_one_bound_use_case_so_a_mixed_run_is_one_call() -> None:
    bound = with_context(usecases.IN_SETS, ctx=CTX)
    assert bound[BorderCrossingCleared] is bound[BorderCrossingRefused]


def test_the_fake_store_answers_the_real_stores_methods() -> None:
    def methods(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(fn).parameters)
            for name, fn in inspect.getmembers(cls, inspect.iscoroutinefunction)
            if not name.startswith("_")
        }

    assert methods(FakeTransportStore) == methods(TransportStore)


# --- decisions -----------------------------------------------------------------------------------


async def test_a_registration_is_noted_and_a_decision_announced_once_per_status(world: World) -> None:
    case = await world.register()
    assert world.uow.statuses[case.case_id] is S.REGISTERED
    assert world.uow.published == []  # intake announces the registration
    await world.decide(case.case_id)
    await world.decide(case.case_id)  # new reasons, same outcome: nothing new to say
    assert world.statuses(case.case_id) == [S.ELIGIBLE]
    await world.decide(case.case_id, Outcome.PENDING)
    assert world.statuses(case.case_id) == [S.ELIGIBLE, S.ON_HOLD]
    assert world.last_change(case.case_id).reason_code == "evidence_pending"


async def test_a_decision_announced_with_its_code_s_own_text_never_the_one_eligibility_sent(
    world: World,
) -> None:
    case = await world.register()
    world.public_code, world.public_text = "evidence_pending", "Found not fit to travel: member 1"
    await world.decide(case.case_id, Outcome.PENDING)
    change = world.last_change(case.case_id)
    assert (change.reason_code, change.reason) == ("evidence_pending", reasons.text_of("evidence_pending"))
    # A code this transport does not know (an eligibility service newer than its contracts, or
    # one of old, which sent rule names): the stream gets the generic code, never the unknown one.
    world.public_code, world.public_text = "fit_to_travel", "Found not fit to travel: member 1"
    await world.decide(case.case_id, Outcome.INELIGIBLE)
    change = world.last_change(case.case_id)
    assert (change.status, change.reason_code) == (S.INELIGIBLE, "eligibility_decided")
    assert change.reason == reasons.text_of("eligibility_decided")


async def test_an_older_decision_arriving_late_is_ignored(world: World) -> None:
    case = await world.register()
    world.versions[case.case_id] = 4
    await world.decide(case.case_id)  # version 5
    world.versions[case.case_id] = 1
    await world.decide(case.case_id, Outcome.INELIGIBLE)  # version 2: older
    assert world.statuses(case.case_id) == [S.ELIGIBLE]
    kept = world.store.decisions[case.case_id]
    assert (kept.version, kept.outcome) == (5, Outcome.ELIGIBLE)


async def test_a_decision_that_overtakes_the_registration_is_kept_and_applied_with_it(world: World) -> None:
    case_id = uuid.uuid4()
    await world.decide(case_id, Outcome.PENDING)  # eligibility read the registration first
    assert world.uow.published == [] and world.store.decisions[case_id].outcome is Outcome.PENDING
    assert world.store.locks == [("case", case_id), ("case id", case_id), ("case", case_id)]
    world.store.locks.clear()
    case = await world.register(case_id=case_id)
    assert world.store.locks[:2] == [("case id", case_id), ("case", case_id)]
    change = world.last_change(case.case_id)
    assert (change.status, change.reason_code) == (S.ON_HOLD, "evidence_pending")
    assert change.occurred_at == world.store.decisions[case_id].decided_at


async def test_a_withdrawal_that_overtakes_the_registration_in_a_decision_applies_with_it(
    world: World,
) -> None:
    case_id = uuid.uuid4()
    await world.decide(case_id, Outcome.INELIGIBLE, withdrawn=True)
    await world.register(case_id=case_id)
    assert world.statuses(case_id) == [S.WITHDRAWN]
    assert world.store.withdrawals[case_id] == (True, "applied before departure")


@pytest.mark.parametrize(
    ("outcome", "status"), [(Outcome.PENDING, S.ON_HOLD), (Outcome.INELIGIBLE, S.INELIGIBLE)]
)
async def test_a_hold_before_departure_takes_the_case_off_and_amends_the_manifests(
    world: World, outcome: Outcome, status: CaseStatus
) -> None:
    held, other = await world.ready(), await world.ready()
    await world.plan(("BUS-1", 10))
    await world.decide(held, outcome)
    assert held not in world.store.seats
    change = world.last_change(held)
    assert (change.status, change.movement_id, change.reason_code) == (status, "MOV-1", "evidence_pending")
    amended = [m for m in world.manifests() if m.revision == 2]
    assert [m.checkpoint_id for m in amended] == CHECKPOINTS
    assert all(world.aboard(m) == {other} for m in amended)


async def test_an_eligible_decision_leaves_a_manifested_case_where_it_is(world: World) -> None:
    case_id = await world.ready()
    await world.plan(("BUS-1", 10))
    await world.decide(case_id)
    assert world.statuses(case_id) == [S.ELIGIBLE, S.MANIFESTED]
    assert world.store.seats[case_id].state is SeatState.MANIFESTED


async def test_a_decision_after_departure_changes_nothing(world: World) -> None:
    case_id = await world.ready()
    await world.plan(("BUS-1", 10))
    await world.depart()
    await world.decide(case_id, Outcome.PENDING)
    assert world.statuses(case_id)[-1] is S.DEPARTED
    assert world.store.seats[case_id].state is SeatState.DEPARTED


# --- planning ------------------------------------------------------------------------------------


async def test_planning_places_the_vulnerable_first_and_sends_each_post_its_manifest(world: World) -> None:
    early = await world.ready(2)
    vulnerable = await world.ready(2, priority=40)
    planned = await world.plan(("BUS-1", 3))
    assert [p.case_id for p in planned.not_placed] == [early]
    assert planned.not_placed[0].explanation.startswith("Not placed: 2 seats needed together")
    assert [(s.case_id, s.state) for s in planned.view.seats] == [(vulnerable, SeatState.MANIFESTED)]
    change = world.last_change(vulnerable)
    assert change.status is S.MANIFESTED and change.movement_id == "MOV-1"
    assert change.place is not None and change.place.name == ROUTE.gathering_point.name
    assert world.statuses(early) == [S.ELIGIBLE]
    issued = world.uow.published[-len(CHECKPOINTS) :]
    assert [p.topic for p in issued] == [topics.manifests(cp) for cp in CHECKPOINTS]
    assert {p.key for p in issued} == {"MOV-1/BUS-1"}
    assert all(isinstance(p.event, ManifestIssued) and p.event.revision == 1 for p in issued)
    assert all(world.aboard(m) == {vulnerable} for m in world.manifests())


async def test_a_consumer_batch_locks_its_cases_in_one_statement_in_case_id_order_first(world: World) -> None:
    ids = [await world.ready() for _ in range(3)]
    events = [
        CaseWithdrawn(case_id=i, reason="Decided to stay", withdrawn_at=T0)
        for i in reversed(sorted(ids, key=str))
    ]
    world.store.locks.clear()
    await usecases.lock_batch(world.store, [*events, events[0]])  # in record order, one case twice
    assert world.store.locks == [("cases", tuple(sorted(ids, key=str)))]


async def test_planning_locks_every_case_of_the_day_in_one_statement_first(world: World) -> None:
    ids = [await world.ready() for _ in range(3)]
    await world.ready(day=DAY + timedelta(days=1))  # another day: not locked
    world.store.locks.clear()
    await world.plan(("BUS-1", 10))
    assert world.store.locks == [("cases", tuple(sorted(ids, key=str)))]


async def test_an_escort_seat_is_kept_on_the_vehicle(world: World) -> None:
    await world.ready(escort=True)
    planned = await world.plan(("BUS-1", 4))
    assert planned.view.vehicles[0].escort_seat


async def test_a_case_whose_consent_does_not_cover_a_country_abroad_is_not_planned(world: World) -> None:
    await world.ready(scope=("UZB",))
    planned = await world.plan(("BUS-1", 4))
    assert planned.view.seats == [] and planned.not_placed == []
    assert CTX.abroad(ROUTE) == ["TJK", "UZB"]


async def test_planning_refuses_an_unknown_route_an_existing_movement_and_duplicate_vehicles(
    world: World,
) -> None:
    first = await world.plan(("BUS-1", 4))
    again = await world.plan(("BUS-1", 4))  # a retry: answered the movement, nothing planned again
    assert (again.created, again.view) == (False, first.view)
    with pytest.raises(Conflict, match="movement MOV-1 exists"):
        await world.plan(("BUS-1", 5))
    with pytest.raises(Invalid) as bad:
        await world.plan(("BUS-1", 4), ("BUS-1", 5), movement_id="MOV-2")
    assert bad.value.loc == ("body", "vehicles") and bad.value.msg == "vehicle ids must be unique"
    with pytest.raises(Invalid) as unknown:
        await usecases.plan_movement(
            commands.PlanMovement("nowhere", DAY, (commands.VehicleSpec("B", 1),)), world.uow, CTX
        )
    assert unknown.value.loc == ("body", "route_id") and unknown.value.msg == "unknown route 'nowhere'"
    assert "MOV-2" not in world.store.movements


async def test_ready_cases_are_the_days_eligible_unplaced_cases(world: World) -> None:
    placed = await world.ready()
    await world.plan(("BUS-1", 1))
    waiting = await world.ready(3, priority=7)
    ready = await usecases.ready_cases(ROUTE.route_id, DAY, world.uow, CTX)
    assert [(c.case_id, c.members, c.priority) for c in ready.cases] == [(waiting, 3, 7)]
    assert placed in world.store.seats


# --- departure -----------------------------------------------------------------------------------


async def test_a_departure_marks_no_shows_offers_their_seats_and_amends_the_manifests(world: World) -> None:
    absent, present = await world.ready(2), await world.ready()
    await world.plan(("BUS-1", 3))
    waiting = await world.ready(2)  # registered after planning: waits for a freed seat
    world.store.locks.clear()
    departure = await world.depart("BUS-1", absent)

    assert departure.no_shows == [absent]
    assert set(departure.departed) == {present, waiting}
    assert [p.case_id for p in departure.seats_offered] == [waiting]
    assert world.statuses(absent)[-1] is S.NO_SHOW and world.last_change(absent).reason_code == "no_show"
    assert world.statuses(waiting) == [S.ELIGIBLE, S.MANIFESTED, S.DEPARTED]
    offered = [e for e in world.uow.events(CaseStatusChanged) if e.reason_code == "seat_offered"]
    assert [e.case_id for e in offered] == [waiting]
    assert world.store.seats[absent].state is SeatState.NO_SHOW
    assert {world.store.seats[c].state for c in (present, waiting)} == {SeatState.DEPARTED}
    # The posts expect exactly who is on board, and the border posts learn the vehicle left.
    amended = [m for m in world.manifests() if m.revision == 2]
    assert len(amended) == len(CHECKPOINTS) and all(world.aboard(m) == {present, waiting} for m in amended)
    (departed,) = world.uow.events(MovementDeparted)
    assert set(departed.case_ids) == {present, waiting}
    assert world.uow.published[-1].event is departed and world.uow.published[-1].topic == topics.MOVEMENTS
    assert world.store.movements["MOV-1"].status is MovementStatus.DEPARTED
    # The day's cases and those aboard, in one statement, then the vehicle.
    assert world.store.locks == [
        ("cases", tuple(sorted([absent, present, waiting], key=str))),
        ("vehicle", ("MOV-1", "BUS-1")),
    ]


async def test_a_departure_without_offering_freed_seats(world: World) -> None:
    absent, _ = await world.ready(), await world.ready()
    await world.plan(("BUS-1", 2))
    waiting = await world.ready()
    departure = await world.depart("BUS-1", absent, fill=False)
    assert departure.seats_offered == [] and waiting not in world.store.seats


async def test_a_departure_without_changes_sends_no_amended_manifest(world: World) -> None:
    await world.ready()
    await world.plan(("BUS-1", 2))
    await world.depart()
    assert {m.revision for m in world.manifests()} == {1}


async def test_a_vehicle_departs_once(world: World) -> None:
    await world.ready()
    await world.plan(("BUS-1", 2))
    first = await world.depart()
    again = await world.depart()  # a retry: answered what the departure decided
    assert again.replayed and (again.departed, again.no_shows) == (first.departed, first.no_shows)
    assert len(world.uow.events(MovementDeparted)) == 1


async def test_a_no_show_must_be_on_the_manifest_as_it_stands(world: World) -> None:
    on_it = await world.ready()
    await world.plan(("BUS-1", 2))
    stranger = uuid.uuid4()
    before = list(world.uow.published)
    with pytest.raises(Invalid) as bad:
        await world.depart("BUS-1", on_it, stranger)
    assert bad.value.loc == ("body", "no_shows")
    assert bad.value.msg == f"not on BUS-1's manifest: {stranger}"
    assert world.uow.published == before and world.store.seats[on_it].state is SeatState.MANIFESTED


async def test_a_departure_of_an_unknown_movement_or_vehicle_is_not_found(world: World) -> None:
    await world.plan(("BUS-1", 2))
    with pytest.raises(NotFound, match="no movement MOV-9"):
        await world.depart(movement_id="MOV-9")
    with pytest.raises(NotFound, match="no vehicle BUS-9 on MOV-1"):
        await world.depart("BUS-9")


# --- withdrawals ---------------------------------------------------------------------------------


async def test_a_withdrawal_before_departure_frees_the_seat_and_is_announced(world: World) -> None:
    leaving, staying = await world.ready(), await world.ready()
    await world.plan(("BUS-1", 4))
    world.store.locks.clear()
    await world.withdraw(leaving)
    assert world.store.locks == [("case", leaving)]
    change = world.last_change(leaving)
    assert (change.status, change.movement_id, change.reason_code) == (
        S.WITHDRAWN,
        "MOV-1",
        "withdrawn_by_applicant",
    )
    assert leaving not in world.store.seats
    assert world.store.withdrawals[leaving] == (True, "applied before departure")
    amended = [m for m in world.manifests() if m.revision == 2]
    assert len(amended) == len(CHECKPOINTS) and all(world.aboard(m) == {staying} for m in amended)


async def test_a_withdrawal_without_a_seat_is_announced_without_a_movement(world: World) -> None:
    case_id = await world.ready()
    await world.withdraw(case_id)
    assert world.statuses(case_id) == [S.ELIGIBLE, S.WITHDRAWN]
    assert world.last_change(case_id).movement_id is None
    await world.ready()  # a later planning run does not place it
    planned = await world.plan(("BUS-1", 4))
    assert case_id not in {s.case_id for s in planned.view.seats}


async def test_a_withdrawal_after_departure_comes_too_late(world: World) -> None:
    case_id = await world.ready()
    await world.plan(("BUS-1", 4))
    await world.depart()
    published = len(world.uow.published)
    await world.withdraw(case_id)
    assert len(world.uow.published) == published  # the stream shows the departure: intake answers 409
    assert world.store.withdrawals[case_id] == (False, "withdrawal received after the case departed on MOV-1")
    assert world.store.cases[case_id].withdrawn_at is None


async def test_a_no_show_may_still_withdraw(world: World) -> None:
    case_id = await world.ready()
    await world.plan(("BUS-1", 4))
    await world.depart("BUS-1", case_id)
    await world.withdraw(case_id)
    assert world.statuses(case_id)[-2:] == [S.NO_SHOW, S.WITHDRAWN]
    assert world.last_change(case_id).movement_id is None  # the seat stays on record as a no-show


async def test_a_decision_reflecting_the_withdrawal_applies_it_once(world: World) -> None:
    case_id = await world.ready()
    await world.plan(("BUS-1", 4))
    await world.decide(case_id, Outcome.INELIGIBLE, withdrawn=True)
    await world.withdraw(case_id)  # the intake event arriving second changes nothing
    await world.decide(case_id, Outcome.ELIGIBLE)  # nor does a decision after it
    assert world.statuses(case_id) == [S.ELIGIBLE, S.MANIFESTED, S.WITHDRAWN]


async def test_a_withdrawal_of_a_case_never_registered_here_is_refused(world: World) -> None:
    # Intake publishes the registration before the withdrawal, on the same partition.
    with pytest.raises(Rejected) as refused:
        await world.withdraw(uuid.uuid4())
    assert refused.value.code == "unknown_case"


# --- case updates --------------------------------------------------------------------------------


def updated(case: CaseRegistered, **changes: Any) -> CaseUpdated:
    fields = case.model_dump() | changes
    return CaseUpdated.model_validate({**fields, "updated_at": T0 + timedelta(days=1)})


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"planned_travel_date": DAY + timedelta(days=7)}, "the route or travel date changed"),
        ({"members": [person(0), person(1)]}, "the number of travellers changed"),
    ],
)
async def test_a_case_moved_to_another_day_or_resized_leaves_its_vehicle(
    world: World, change: dict[str, Any], why: str
) -> None:
    case = await world.register()
    await world.decide(case.case_id)
    await world.plan(("BUS-1", 4))
    await usecases.on_case_updated(updated(case, **change), world.uow, CTX)
    last = world.last_change(case.case_id)
    assert (last.status, last.reason_code) == (S.ELIGIBLE, "taken_off_vehicle")
    # Which vehicle and why stay in transport: the stream has the code's fixed text.
    assert last.reason == reasons.text_of("taken_off_vehicle") and "BUS-1" not in last.reason
    assert case.case_id not in world.store.seats
    assert [m.revision for m in world.manifests()][-len(CHECKPOINTS) :] == [2] * len(CHECKPOINTS)


async def test_corrected_details_only_amend_the_manifest(world: World) -> None:
    case = await world.register()
    await world.decide(case.case_id)
    await world.plan(("BUS-1", 4))
    member = case.members[0].model_copy(update={"surname": "Rakhimov"})
    await usecases.on_case_updated(updated(case, members=[member]), world.uow, CTX)
    assert world.statuses(case.case_id)[-1] is S.MANIFESTED
    latest = world.manifests()[-1]
    assert latest.revision == 2 and [p.surname for p in latest.passengers] == ["Rakhimov"]


async def test_an_update_after_departure_or_withdrawal_moves_nothing(world: World) -> None:
    gone = await world.register()
    await world.decide(gone.case_id)
    withdrawn = await world.register()
    await world.decide(withdrawn.case_id)
    await world.plan(("BUS-1", 4))
    await world.withdraw(withdrawn.case_id)
    await world.depart()
    published = len(world.uow.published)
    later = {"planned_travel_date": DAY + timedelta(days=7)}
    await usecases.on_case_updated(updated(gone, **later), world.uow, CTX)
    await usecases.on_case_updated(updated(withdrawn, **later), world.uow, CTX)
    assert len(world.uow.published) == published
    assert world.store.seats[gone.case_id].state is SeatState.DEPARTED


# --- the road ------------------------------------------------------------------------------------


ROAD = [S.EXIT_CLEARED, S.ENTRY_CLEARED] * (len(CHECKPOINTS) // 2)
"""What the stream shows of a whole route's crossings."""


async def on_the_road(world: World, members: int = 1) -> uuid.UUID:
    case_id = await world.ready(members)
    await world.plan(("BUS-1", 4))
    await world.depart()
    return case_id


def crossings_announced(world: World, case_id: uuid.UUID) -> list[CaseStatusChanged]:
    return [
        e
        for e in world.uow.events(CaseStatusChanged)
        if e.case_id == case_id and e.place is not None and e.place.checkpoint_id is not None
    ]


async def test_a_case_cleared_at_the_last_post_arrives_and_the_movement_closes(world: World) -> None:
    case_id = await on_the_road(world, 2)
    for cp in CHECKPOINTS[:-1]:
        await world.cross(case_id, cp)
        assert world.store.seats[case_id].state is SeatState.DEPARTED
    last = await world.cross(case_id, CHECKPOINTS[-1])
    arrived = world.last_change(case_id)
    assert (arrived.status, arrived.members, arrived.movement_id) == (S.ARRIVED, 2, "MOV-1")
    assert arrived.place is not None and arrived.place.name == ROUTE.reception_point.name
    assert arrived.occurred_at == last.decided_at
    assert world.store.seats[case_id].state is SeatState.ARRIVED
    assert world.store.movements["MOV-1"].status is MovementStatus.CLOSED
    # The posts write no status: transport announces each post's decision, then the arrival.
    assert world.statuses(case_id) == [S.ELIGIBLE, S.MANIFESTED, S.DEPARTED, *ROAD, S.ARRIVED]


async def test_each_posts_decision_is_announced_with_the_posts_place_and_time(world: World) -> None:
    case_id = await on_the_road(world, 3)
    decided = [await world.cross(case_id, cp) for cp in CHECKPOINTS]
    shown = crossings_announced(world, case_id)
    assert [e.status for e in shown] == ROAD
    for event, d, cp in zip(shown, decided, ROUTE.checkpoints, strict=True):
        assert event.place is not None
        assert (event.place.country, event.place.name, event.place.checkpoint_id) == (
            cp.country,
            cp.post,
            cp.checkpoint_id,
        )
        assert (event.occurred_at, event.members, event.movement_id) == (d.decided_at, 3, "MOV-1")
        assert event.reason_code is None and event.reason is None
    # The crossing's status precedes the arrival it allows, in one unit of work.
    kinds = [(p.event.status, p.topic) for p in world.uow.published if isinstance(p.event, CaseStatusChanged)]
    assert kinds[-2:] == [(S.ENTRY_CLEARED, topics.STATUS), (S.ARRIVED, topics.STATUS)]


async def test_decisions_read_out_of_route_order_are_announced_in_route_order(world: World) -> None:
    case_id = await on_the_road(world)
    # Each post has its own topic: transport may read the second post's decision first.
    await world.cross(case_id, CHECKPOINTS[1])
    assert world.statuses(case_id)[-1] is S.DEPARTED  # waits for the first post's
    await world.cross(case_id, CHECKPOINTS[3])
    assert world.statuses(case_id)[-1] is S.DEPARTED
    assert world.store.seats[case_id].state is SeatState.DEPARTED  # not arrived before the stream says so
    await world.cross(case_id, CHECKPOINTS[0])
    assert world.statuses(case_id)[-2:] == [S.EXIT_CLEARED, S.ENTRY_CLEARED]
    await world.cross(case_id, CHECKPOINTS[2])
    assert world.statuses(case_id) == [S.ELIGIBLE, S.MANIFESTED, S.DEPARTED, *ROAD, S.ARRIVED]
    shown = crossings_announced(world, case_id)
    assert [e.place.checkpoint_id for e in shown if e.place] == CHECKPOINTS
    # Each at the time its post decided, whenever transport read it.
    assert [e.occurred_at for e in shown] == [
        world.store.crossings[(case_id, cp)].decided_at for cp in CHECKPOINTS
    ]
    assert world.store.seats[case_id].state is SeatState.ARRIVED


async def test_a_decision_read_again_is_not_announced_again(world: World) -> None:
    case_id = await on_the_road(world)
    decided = [await world.cross(case_id, cp) for cp in CHECKPOINTS]
    published = len(world.uow.published)
    for event in (decided[0], decided[-1], decided[1]):
        await world.apply_crossings(event)
    await world.apply_crossings(decided[2], decided[3], decided[0])
    assert len(world.uow.published) == published
    assert world.statuses(case_id).count(S.ARRIVED) == 1
    assert all(world.store.crossings[(case_id, cp)].announced for cp in CHECKPOINTS)


async def test_a_family_refused_at_a_post_is_off_the_manifests_ahead(world: World) -> None:
    refused, other = await world.ready(3), await world.ready()
    await world.plan(("BUS-1", 6))
    await world.depart()
    await world.cross(refused, CHECKPOINTS[0])
    await world.cross(refused, CHECKPOINTS[1], cleared=False, public_code="held_at_border")
    assert world.store.seats[refused].state is SeatState.REFUSED
    assert world.statuses(refused)[-2:] == [S.EXIT_CLEARED, S.REFUSED_AT_BORDER]
    refusal = world.last_change(refused)
    # Where the refusal came from, never the officer's or the hold's own code.
    assert (refusal.reason_code, refusal.reason) == ("held_at_border", reasons.text_of("held_at_border"))
    assert refusal.place is not None and refusal.place.checkpoint_id == CHECKPOINTS[1]
    assert "no_visa" not in refusal.model_dump_json()
    amended = [m for m in world.manifests() if m.revision == 2]
    assert [m.checkpoint_id for m in amended] == CHECKPOINTS[2:]
    assert all(world.aboard(m) == {other} for m in amended)
    assert world.store.movements["MOV-1"].status is MovementStatus.DEPARTED


async def test_a_refusal_read_before_the_clearance_before_it_frees_the_seat_and_waits(world: World) -> None:
    case_id = await on_the_road(world)
    await world.cross(case_id, CHECKPOINTS[1], cleared=False)
    # The posts ahead stop expecting the family at once; the stream waits for the first post.
    assert world.store.seats[case_id].state is SeatState.REFUSED
    assert [m.checkpoint_id for m in world.manifests() if m.revision == 2] == CHECKPOINTS[2:]
    assert world.statuses(case_id)[-1] is S.DEPARTED
    await world.cross(case_id, CHECKPOINTS[0])
    assert world.statuses(case_id)[-3:] == [S.DEPARTED, S.EXIT_CLEARED, S.REFUSED_AT_BORDER]
    assert world.last_change(case_id).reason_code == "refused_by_officer"


@pytest.mark.parametrize(
    ("public_code", "shown"),
    [
        (None, None),
        ("refused_by_officer", "refused_by_officer"),
        ("a_code_of_a_newer_post", "held_at_border"),
    ],
)
async def test_a_refusals_public_reason_is_the_posts_or_none_or_the_generic_one(
    world: World, public_code: str | None, shown: str | None
) -> None:
    case_id = await on_the_road(world)
    await world.cross(case_id, CHECKPOINTS[0], cleared=False, public_code=public_code)
    assert (world.last_change(case_id).status, world.last_change(case_id).reason_code) == (
        S.REFUSED_AT_BORDER,
        shown,
    )


async def test_a_crossing_for_a_case_not_on_the_road_only_records_it(world: World) -> None:
    case_id = await world.ready()
    await world.plan(("BUS-1", 4))
    published = len(world.uow.published)
    await world.cross(case_id, CHECKPOINTS[0])
    await world.cross(case_id, CHECKPOINTS[-1])
    assert world.store.seats[case_id].state is SeatState.MANIFESTED
    assert len(world.uow.published) == published
    assert (case_id, CHECKPOINTS[-1]) in world.store.crossings


async def test_a_crossing_of_a_case_never_registered_here_is_recorded_not_retried(world: World) -> None:
    stranger, cp = uuid.uuid4(), ROUTE.checkpoints[0]
    event = BorderCrossingCleared(
        case_id=stranger,
        checkpoint_id=cp.checkpoint_id,
        country=cp.country,
        crossing=cp.crossing,
        direction=cp.direction,
        movement_id="MOV-X",
        vehicle_id="BUS-X",
        decisions=[],
        decided_at=T0,
    )
    await world.apply_crossings(event)
    recorded = world.store.crossings[(stranger, cp.checkpoint_id)]
    assert (recorded.cleared, recorded.decided_at, recorded.announced) == (True, T0, False)
    # Transport never seated it: it cannot place the crossing on a route, nor after a status.
    assert world.uow.published == []


async def test_a_plan_and_a_departure_lock_only_the_cases_they_may_seat(world: World) -> None:
    placed = await world.ready()
    await world.plan(("BUS-1", 6))
    waiting, undecided = await world.ready(), (await world.register()).case_id
    world.store.locks.clear()
    await world.plan(("BUS-2", 6), movement_id="MOV-2")
    assert world.store.locks[0] == ("cases", (waiting,))  # not the seated case, nor the undecided one
    late = await world.ready()
    world.store.locks.clear()
    await world.depart("BUS-1")
    assert world.store.locks[:2] == [
        ("cases", tuple(sorted({placed, late}, key=str))),
        ("vehicle", ("MOV-1", "BUS-1")),
    ]
    assert undecided not in world.store.seats


# --- runs of registrations and decisions applied at once ------------------------------------------


def transport_outcome(world: World) -> tuple[Any, ...]:
    """Everything a registration or a decision may change: what was published (in order), the
    stream guard's view, the cases, decisions and seats kept."""
    return (
        world.uow.published,
        world.uow.statuses,
        world.uow.illegal,
        world.store.cases,
        world.store.decisions,
        world.store.seats,
    )


async def test_a_run_of_registrations_leaves_what_registering_one_by_one_leaves(world: World) -> None:
    overtaken = uuid.uuid4()
    await world.decide(overtaken)  # the decision read before its registration: kept, not applied
    run = [world.registration(), world.registration(members=3), world.registration(case_id=overtaken)]
    alone = copy.deepcopy(world)
    await usecases.on_registrations([envelope(r) for r in run], world.uow, CTX)
    for r in run:
        await usecases.on_case_registered(r, alone.uow, CTX)
    assert transport_outcome(world) == transport_outcome(alone)
    # "registered" noted as each case's last status (intake announced it); the overtaken decision
    # applied and announced.
    assert [world.uow.statuses[r.case_id] for r in run] == [S.REGISTERED, S.REGISTERED, S.ELIGIBLE]
    assert [world.statuses(r.case_id) for r in run] == [[], [], [S.ELIGIBLE]]
    # Every case's id was locked before its row was written (a decision waits for it).
    assert {("case id", r.case_id) for r in run} <= set(world.store.locks)


async def test_a_run_of_registrations_whose_decisions_overtook_them_applies_the_decisions_in_a_set(
    world: World,
) -> None:
    # A backlog read decisions first (another topic): every registration then finds its decision.
    outcomes = [Outcome.ELIGIBLE, Outcome.PENDING, Outcome.INELIGIBLE, Outcome.ELIGIBLE]
    run = [world.registration(members=n + 1) for n in range(len(outcomes))]
    for r, outcome in zip(run, outcomes, strict=True):
        await world.decide(r.case_id, outcome)
    alone = copy.deepcopy(world)
    reads: list[set[uuid.UUID]] = []  # the cases of each read of seats (a single one reads a set of one)
    read_seats = world.store.assignments_of

    async def assignments_of(case_ids: Any) -> Any:
        reads.append(set(case_ids))
        return await read_seats(case_ids)

    world.store.assignments_of = assignments_of  # type: ignore[method-assign]
    await usecases.on_registrations([envelope(r) for r in run], world.uow, CTX)
    for r in run:
        await usecases.on_case_registered(r, alone.uow, CTX)
    assert transport_outcome(world) == transport_outcome(alone)
    assert [world.statuses(r.case_id) for r in run] == [
        [S.ELIGIBLE],
        [S.ON_HOLD],
        [S.INELIGIBLE],
        [S.ELIGIBLE],
    ]
    assert reads == [{r.case_id for r in run}]  # the run's seats read once, not a case at a time


async def test_a_run_of_registrations_with_an_overtaking_withdrawal_leaves_what_one_by_one_leaves(
    world: World,
) -> None:
    run = [world.registration(), world.registration(members=2), world.registration()]
    await world.decide(run[0].case_id)
    await world.decide(run[1].case_id, Outcome.INELIGIBLE, withdrawn=True)
    alone = copy.deepcopy(world)
    await usecases.on_registrations([envelope(r) for r in run], world.uow, CTX)
    for r in run:
        await usecases.on_case_registered(r, alone.uow, CTX)
    assert transport_outcome(world) == transport_outcome(alone)
    assert [world.statuses(r.case_id) for r in run] == [[S.ELIGIBLE], [S.WITHDRAWN], []]


async def test_a_run_of_decisions_leaves_what_deciding_one_by_one_leaves(world: World) -> None:
    registered = [(await world.register()).case_id for _ in range(3)]
    already = await world.ready()  # eligible already: a new version with the same outcome says nothing
    never_registered = uuid.uuid4()
    stale = world.decision(registered[2])
    newer = world.decision(registered[2], Outcome.INELIGIBLE)
    await usecases.on_decisions([envelope(newer)], world.uow, CTX)
    run = [
        world.decision(registered[0]),
        world.decision(registered[1], Outcome.PENDING),
        stale,  # older than the one applied: ignored
        world.decision(already),
        world.decision(never_registered),
    ]
    alone = copy.deepcopy(world)
    await usecases.on_decisions([envelope(d) for d in run], world.uow, CTX)
    for d in run:
        await usecases.on_eligibility_decided(d, alone.uow, CTX)
    assert transport_outcome(world) == transport_outcome(alone)
    assert world.statuses(registered[0])[-1] is S.ELIGIBLE
    assert world.statuses(registered[1])[-1] is S.ON_HOLD
    assert world.statuses(registered[2])[-1] is S.INELIGIBLE
    assert world.statuses(already) == [S.ELIGIBLE]  # once, not again
    assert world.store.decisions[never_registered].version == 1 and world.statuses(never_registered) == []


@pytest.mark.parametrize("held", ["withdrawn", "taken off", "twice"])
async def test_a_run_of_decisions_that_moves_a_seat_or_repeats_a_case_is_applied_one_by_one(
    world: World, held: str
) -> None:
    seated, waiting = await world.ready(), (await world.register()).case_id
    await world.plan(("BUS-1", 6))
    run = [world.decision(waiting)]
    if held == "withdrawn":
        run.append(world.decision(seated, Outcome.INELIGIBLE, withdrawn=True))
    elif held == "taken off":
        run.append(world.decision(seated, Outcome.PENDING))
    else:
        run += [world.decision(waiting, Outcome.PENDING)]
    alone = copy.deepcopy(world)
    await usecases.on_decisions([envelope(d) for d in run], world.uow, CTX)
    for d in run:
        await usecases.on_eligibility_decided(d, alone.uow, CTX)
    assert transport_outcome(world) == transport_outcome(alone)
    if held == "twice":
        assert world.statuses(waiting)[-2:] == [S.ELIGIBLE, S.ON_HOLD]
    else:
        assert seated not in world.store.seats and world.statuses(seated)[-1] in (S.WITHDRAWN, S.ON_HOLD)


# --- a run of crossings applied at once ------------------------------------------------------------


async def one_by_one(world: World, events: Sequence[BorderCrossingCleared | BorderCrossingRefused]) -> None:
    """The single-event logic the set path must equal, applied to each decision in turn."""
    for event in events:
        await usecases._on_crossing(event, world.uow, CTX)


def outcome(world: World) -> tuple[Any, ...]:
    """Everything a crossing may change: what was published (in order), the stream guard's view,
    the crossings recorded, the seats and the movements."""
    return (
        world.uow.published,
        world.uow.statuses,
        world.uow.illegal,
        world.store.crossings,
        world.store.seats,
        world.store.movements,
    )


async def two_on_the_road(world: World) -> tuple[uuid.UUID, uuid.UUID]:
    """Two cases on one vehicle: the first cleared at the first post, the second at every post but
    the last."""
    first, second = await world.ready(2), await world.ready()
    await world.plan(("BUS-1", 6))
    await world.depart()
    await world.cross(first, CHECKPOINTS[0])
    for cp in CHECKPOINTS[:-1]:
        await world.cross(second, cp)
    return first, second


@pytest.mark.parametrize("order", list(itertools.permutations(range(5))))
async def test_a_run_of_crossings_leaves_what_applying_them_one_by_one_leaves(
    world: World, order: tuple[int, ...]
) -> None:
    first, second = await two_on_the_road(world)
    stranger = uuid.uuid4()
    decided = [
        world.crossing(first, CHECKPOINTS[1]),  # an entry
        world.crossing(first, CHECKPOINTS[2]),  # the exit after it
        world.crossing(second, CHECKPOINTS[-1]),  # the last: the second case arrives
        world.crossing(second, CHECKPOINTS[-1]),  # the same post's decision again, later
        world.crossing(stranger, CHECKPOINTS[0]),  # a case never seated here
    ]
    run = [decided[i] for i in order]
    alone = copy.deepcopy(world)
    await world.apply_crossings(*run)
    await one_by_one(alone, run)
    assert outcome(world) == outcome(alone)
    # What both did: the first case's crossings announced in route order whatever the run's order,
    # the second case arrived once, at the time of the first decision on the last post read.
    assert [e.place.checkpoint_id for e in crossings_announced(world, first) if e.place] == CHECKPOINTS[:3]
    assert world.statuses(second)[-2:] == [S.ENTRY_CLEARED, S.ARRIVED]
    first_read = min(order.index(2), order.index(3))
    assert world.last_change(second).occurred_at == run[first_read].decided_at
    assert world.store.seats[second].state is SeatState.ARRIVED
    assert world.store.seats[first].state is SeatState.DEPARTED
    assert world.store.movements["MOV-1"].status is MovementStatus.DEPARTED
    assert not world.store.crossings[(stranger, CHECKPOINTS[0])].announced


async def test_a_run_with_the_last_seat_arriving_closes_the_movement_once(world: World) -> None:
    first, second = await two_on_the_road(world)
    await world.apply_crossings(*(world.crossing(first, cp) for cp in CHECKPOINTS[1:]))
    alone = copy.deepcopy(world)
    run = [world.crossing(second, CHECKPOINTS[-1])]
    await world.apply_crossings(*run)
    await one_by_one(alone, run)
    assert outcome(world) == outcome(alone)
    assert world.store.movements["MOV-1"].status is MovementStatus.CLOSED
    assert world.statuses(first)[-1] is S.ARRIVED and world.statuses(second)[-1] is S.ARRIVED


async def test_a_run_holding_a_refusal_is_applied_one_decision_after_the_other(world: World) -> None:
    first, second = await two_on_the_road(world)
    run = [
        world.crossing(first, CHECKPOINTS[2]),
        world.crossing(first, CHECKPOINTS[1], cleared=False, public_code="held_at_border"),
        world.crossing(second, CHECKPOINTS[-1]),
    ]
    alone = copy.deepcopy(world)
    await world.apply_crossings(*run)
    await one_by_one(alone, run)
    assert outcome(world) == outcome(alone)
    # The refusal stops the stream at its post (the exit after it is never shown), frees the seat
    # and amends the manifests of the posts ahead; the other case arrives as in any run.
    assert world.statuses(first)[-2:] == [S.EXIT_CLEARED, S.REFUSED_AT_BORDER]
    assert world.store.seats[first].state is SeatState.REFUSED
    amended = [m for m in world.manifests() if m.revision == 2]
    assert [m.checkpoint_id for m in amended] == CHECKPOINTS[2:]
    assert all(world.aboard(m) == {second} for m in amended)
    assert world.statuses(second)[-1] is S.ARRIVED
    assert world.store.movements["MOV-1"].status is MovementStatus.CLOSED


async def test_a_run_of_crossings_for_cases_never_seated_only_records_them(world: World) -> None:
    waiting = await world.ready()  # registered, not planned
    stranger = uuid.uuid4()  # never registered here
    run = [world.crossing(stranger, CHECKPOINTS[0]), world.crossing(waiting, CHECKPOINTS[0])]
    published = len(world.uow.published)
    alone = copy.deepcopy(world)
    await world.apply_crossings(*run)
    await one_by_one(alone, run)
    assert outcome(world) == outcome(alone)
    assert len(world.uow.published) == published
    for case_id in (stranger, waiting):
        recorded = world.store.crossings[(case_id, CHECKPOINTS[0])]
        assert (recorded.cleared, recorded.announced) == (True, False)


async def test_a_crossing_read_alone_locks_its_case_first(world: World) -> None:
    case_id = await on_the_road(world)
    world.store.locks.clear()
    await world.cross(case_id, CHECKPOINTS[0])
    assert world.store.locks == [("cases", (case_id,))]


async def test_progress_is_recorded_once_and_only_on_the_road(world: World) -> None:
    case_id = await world.ready()
    await world.plan(("BUS-1", 4))

    async def progress(checkpoint_id: str) -> None:
        await usecases.record_progress(
            commands.RecordProgress("MOV-1", "BUS-1", checkpoint_id, "arrived"), world.uow, CTX
        )

    with pytest.raises(Conflict, match="BUS-1 has not left the gathering point"):
        await progress(CHECKPOINTS[0])
    await world.depart()
    with pytest.raises(Invalid) as bad:
        await progress("tjk-elsewhere")
    assert bad.value.loc == ("body", "checkpoint_id")
    await progress(CHECKPOINTS[0])
    await progress(CHECKPOINTS[0])
    (recorded,) = world.uow.events(VehicleProgressRecorded)
    assert recorded.case_ids == [case_id] and recorded.checkpoint_id == CHECKPOINTS[0]


# --- reading and exporting -------------------------------------------------------------------------


async def test_a_movement_shows_its_seats_no_shows_aside(world: World) -> None:
    absent, present = await world.ready(2), await world.ready()
    await world.plan(("BUS-1", 4))
    await world.depart("BUS-1", absent)
    view = await usecases.movement("MOV-1", world.uow)
    assert view.seats_taken("BUS-1") == 1
    assert {s.case_id: s.state for s in view.seats_on("BUS-1")} == {
        absent: SeatState.NO_SHOW,
        present: SeatState.DEPARTED,
    }
    with pytest.raises(NotFound, match="no movement MOV-2"):
        await usecases.movement("MOV-2", world.uow)


async def test_every_manifest_export_is_recorded_with_who_and_why(world: World) -> None:
    case_id = await world.ready(2)
    await world.plan(("BUS-1", 4))
    csv = await usecases.export_manifest(
        commands.ExportManifest("MOV-1", "BUS-1", "officer@kaz", "border check", "csv"), world.uow, CTX
    )
    assert (csv.filename, csv.media_type) == ("MOV-1-BUS-1.csv", "text/csv")
    assert isinstance(csv.content, str)
    lines = csv.content.splitlines()
    assert lines[0].startswith("case_id,person_id,surname") and len(lines) == 3
    assert all(line.startswith(str(case_id)) for line in lines[1:])
    pdf = await usecases.export_manifest(
        commands.ExportManifest("MOV-1", "BUS-1", "driver@kaz", "boarding", "pdf"), world.uow, CTX
    )
    assert pdf.media_type == "application/pdf" and bytes(pdf.content).startswith(b"%PDF")
    log = await usecases.access_log("MOV-1", world.uow)
    assert [(e.actor, e.purpose, e.vehicle_id, e.format) for e in log] == [
        ("officer@kaz", "border check", "BUS-1", "csv"),
        ("driver@kaz", "boarding", "BUS-1", "pdf"),
    ]
    with pytest.raises(NotFound):
        await usecases.export_manifest(
            commands.ExportManifest("MOV-1", "BUS-9", "officer@kaz", "border check", "csv"), world.uow, CTX
        )
    assert len(await usecases.access_log("MOV-1", world.uow)) == 2  # a refused export is not logged


# --- erasure of personal data ------------------------------------------------------------------


def erased(case_id: uuid.UUID) -> PersonalDataErased:
    return PersonalDataErased(
        case_id=case_id, basis="data_subject_request", erased_at=datetime(2026, 12, 20, tzinfo=UTC)
    )


async def test_an_erasure_after_arrival_anonymises_the_passengers_and_tells_every_post(world: World) -> None:
    case_id = await world.ready(2)
    await world.plan(("BUS-1", 4))
    await world.depart()
    for cp in CHECKPOINTS:
        await world.cross(case_id, cp)
    statuses = world.statuses(case_id)
    await usecases.on_personal_data_erased(erased(case_id), world.uow, CTX)
    kept = world.store.cases[case_id].passengers
    assert {(p.surname, p.given_names, p.document_number) for p in kept} == {("", "", "-")}
    assert all(p.birth_date.month == p.birth_date.day == 1 for p in kept)
    notices = world.uow.events(PassengerDataErased)
    assert [(n.checkpoint_id, n.movement_id, n.vehicle_id) for n in notices] == [
        (cp, "MOV-1", "BUS-1") for cp in CHECKPOINTS
    ]
    assert world.statuses(case_id) == statuses  # arrived stays arrived
    assert world.uow.forgotten == ["MOV-1/BUS-1"]  # the manifests sent with them aboard
    # Repeating it (a redelivery past the inbox) sends nothing again.
    await usecases.on_personal_data_erased(erased(case_id), world.uow, CTX)
    assert len(world.uow.events(PassengerDataErased)) == len(CHECKPOINTS)


async def test_an_erased_case_that_has_not_left_is_withdrawn_and_never_planned(world: World) -> None:
    case_id = await world.ready()
    await world.decide(case_id, Outcome.INELIGIBLE)
    await usecases.on_personal_data_erased(erased(case_id), world.uow, CTX)
    change = world.last_change(case_id)
    assert (change.status, change.reason_code) == (S.WITHDRAWN, "personal_data_erased")
    assert world.uow.events(PassengerDataErased) == []  # never on a manifest
    await world.decide(case_id, Outcome.ELIGIBLE)  # a later decision cannot seat it
    planned = await world.plan(("BUS-1", 4))
    assert case_id not in {s.case_id for s in planned.view.seats}
