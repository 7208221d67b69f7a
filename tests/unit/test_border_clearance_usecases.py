"""A border post's use cases in memory: what each publishes, in which order, which status, which
error. ``FakeBorderStore`` has the methods of ``BorderStore``; its lock records that it was taken.
The integration tests (test_border_checks.py, test_concurrent_commands.py) stay the proof on real
Kafka and PostgreSQL."""

from __future__ import annotations

import dataclasses
import inspect
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import pydantic
import pytest

from contracts.border import (
    BorderCrossingCleared,
    BorderCrossingRefused,
    CrossingRequirementLifted,
    CrossingRequirementPublished,
    PersonDecision,
)
from contracts.envelope import CloudEvent
from contracts.intake import DocumentType, EvidenceKind
from contracts.routes import RouteBook
from contracts.status import CaseStatusChanged
from contracts.transport import ManifestIssued, ManifestPassenger, MovementDeparted, PassengerDataErased
from corridor.mrz import check_digit
from corridor.settings import ServiceSettings
from services.border_clearance import api, domain, usecases
from services.border_clearance.domain import (
    CaseDecision,
    CaseProgress,
    ExpectedVehicle,
    Hold,
    Manifest,
    Passenger,
    Refusal,
    Requirement,
    Scan,
)
from services.border_clearance.store import BorderStore
from services.border_clearance.usecases import ClearVehicle, Context
from tests.fakes import FakeUnitOfWork

ROUTES = RouteBook.load(ServiceSettings.model_fields["routes_file"].default)
ROUTE = ROUTES.routes[0]
FIRST, SECOND = ROUTE.checkpoints[0], ROUTE.checkpoints[1]
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
MOVEMENT, VEHICLE = "MOV-1", "BUS-A"


class FakeBorderStore:
    """``BorderStore`` in memory."""

    def __init__(self) -> None:
        self.manifests: dict[tuple[str, str], Manifest] = {}
        self.people: dict[tuple[str, str], list[Passenger]] = {}
        self.departures: dict[uuid.UUID, tuple[str, str]] = {}
        self.upstream: set[tuple[uuid.UUID, str]] = set()
        self.decisions: dict[tuple[uuid.UUID, uuid.UUID], dict[str, object]] = {}
        self.reqs: dict[uuid.UUID, Requirement] = {}
        self.hold_list: dict[str, Hold] = {}
        self.locks: list[tuple[str, str]] = []
        self.erased: dict[uuid.UUID, datetime] = {}

    async def save_manifest(self, m: ManifestIssued) -> bool:
        key = (m.movement_id, m.vehicle_id)
        if key in self.manifests and self.manifests[key].revision >= m.revision:
            return False
        self.manifests[key] = Manifest(
            m.movement_id, m.vehicle_id, m.manifest_id, m.revision, m.route_id, m.departure_date
        )
        self.people[key] = sorted(
            (
                Passenger(
                    p.case_id,
                    p.person_id,
                    p.surname,
                    p.given_names,
                    p.birth_date,
                    p.sex,
                    p.nationality,
                    p.document_type.value,
                    p.document_number,
                )
                for p in m.passengers
            ),
            key=lambda p: (p.case_id, p.person_id),
        )
        return True

    async def erase_case(self, case_id: uuid.UUID, at: datetime) -> bool:
        if case_id in self.erased:
            return False
        self.erased[case_id] = at
        for key, people in self.people.items():
            self.people[key] = [
                dataclasses.replace(
                    p,
                    surname="",
                    given_names="",
                    document_number="-",
                    birth_date=p.birth_date.replace(month=1, day=1),
                )
                if p.case_id == case_id
                else p
                for p in people
            ]
        for key, decision in self.decisions.items():
            if key[0] == case_id:
                decision.update(reason=None, document_check=None)
        return True

    async def record_departures(
        self, case_ids: Sequence[uuid.UUID], movement_id: str, vehicle_id: str
    ) -> None:
        for case_id in case_ids:
            self.departures.setdefault(case_id, (movement_id, vehicle_id))

    async def record_upstream_clearances(self, cleared: Sequence[tuple[uuid.UUID, str]]) -> None:
        self.upstream.update(cleared)

    async def lock_manifest(self, movement_id: str, vehicle_id: str) -> Manifest | None:
        self.locks.append((movement_id, vehicle_id))
        return self.manifests.get((movement_id, vehicle_id))

    async def passengers(self, movement_id: str, vehicle_id: str) -> list[Passenger]:
        return list(self.people.get((movement_id, vehicle_id), []))

    async def progress_of(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, CaseProgress]:
        progress = {}
        for case_id in case_ids:
            mine = [bool(d["cleared"]) for (c, _), d in self.decisions.items() if c == case_id]
            progress[case_id] = CaseProgress(
                decision=all(mine) if mine else None,
                departed=case_id in self.departures,
                cleared_at=frozenset(cp for c, cp in self.upstream if c == case_id),
            )
        return progress

    async def save_decisions(
        self, decisions: list[CaseDecision], *, movement_id: str, vehicle_id: str, officer: str, at: datetime
    ) -> None:
        for decision in decisions:
            for p in decision.people:
                key = (decision.case_id, p.person_id)
                assert key not in self.decisions, "decided twice"
                self.decisions[key] = {
                    "movement_id": movement_id,
                    "vehicle_id": vehicle_id,
                    "cleared": p.cleared,
                    "reason_code": p.reason_code,
                    "reason": p.refusal.reason if p.refusal else None,
                    "officer": officer,
                    "decided_at": at,
                    "document_check": p.document_check,
                }

    async def expected_arrivals(self) -> list[ExpectedVehicle]:
        return [
            ExpectedVehicle(
                m.movement_id,
                m.vehicle_id,
                m.revision,
                m.departure_date,
                people=len(self.people[key]),
                cases=len({p.case_id for p in self.people[key]}),
                decided=sum((p.case_id, p.person_id) in self.decisions for p in self.people[key]),
            )
            for key, m in sorted(self.manifests.items(), key=lambda kv: (kv[1].departure_date, kv[0]))
        ]

    async def add_requirement(
        self, req: CrossingRequirementPublished, published_by: str, reference: str | None = None
    ) -> bool:
        if reference is not None and any(r.reference == reference for r in self.reqs.values()):
            return False
        self.reqs[req.requirement_id] = Requirement(
            req.requirement_id,
            req.code,
            req.description,
            req.evidence_kind,
            req.valid_hours,
            req.effective_from,
            published_by,
            req.published_at,
            None,
            reference,
            req.effective_until,
        )
        return True

    async def lift_requirement(self, requirement_id: uuid.UUID, at: datetime) -> bool:
        found = self.reqs.get(requirement_id)
        if found is None or found.lifted_at is not None:
            return False
        self.reqs[requirement_id] = Requirement(**{**found.__dict__, "lifted_at": at})
        return True

    async def requirements(self, reference: str | None = None) -> list[Requirement]:
        found = [r for r in self.reqs.values() if reference is None or r.reference == reference]
        return sorted(found, key=lambda r: r.published_at)

    async def hold(self, document_number: str, reason_code: str, reason: str, by: str) -> None:
        self.hold_list[document_number] = Hold(document_number, reason_code, reason)

    async def release(self, document_number: str) -> bool:
        return self.hold_list.pop(document_number, None) is not None

    async def holds_for(self, document_numbers: list[str]) -> dict[str, Hold]:
        return {n: self.hold_list[n] for n in document_numbers if n in self.hold_list}


def test_the_fake_store_has_the_methods_of_the_real_one() -> None:
    def methods(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(f).parameters)
            for name, f in inspect.getmembers(cls, inspect.iscoroutinefunction)
            if not name.startswith("_")
        }

    assert methods(FakeBorderStore) == methods(BorderStore)


# --- scaffolding -------------------------------------------------------------------------------


def post(checkpoint_index: int = 0) -> Context:
    return Context.of(ROUTE.checkpoints[checkpoint_index], ROUTES)


def unit(store: FakeBorderStore | None = None) -> FakeUnitOfWork[FakeBorderStore]:
    return FakeUnitOfWork(store or FakeBorderStore(), source="/missions/KAZ/border_clearance", now=NOW)


def td3(p: ManifestPassenger, *, number: str | None = None) -> str:
    """A passport zone for a passenger (check digits as ICAO Doc 9303 computes them)."""
    line1 = f"P<{p.nationality}{p.surname}<<{p.given_names}".replace(" ", "<").ljust(44, "<")[:44]
    num = (number or p.document_number).ljust(9, "<")
    b, e = p.birth_date.strftime("%y%m%d"), "310101"
    opt = "<" * 14
    body = f"{num}{check_digit(num)}{p.nationality}{b}{check_digit(b)}{p.sex}{e}{check_digit(e)}{opt}{check_digit(opt)}"
    return f"{line1}\n{body}{check_digit(body[0:10] + body[13:20] + body[21:43])}"


def person(case_id: uuid.UUID, n: int) -> ManifestPassenger:
    return ManifestPassenger(
        case_id=case_id,
        person_id=uuid.uuid4(),
        surname="KARIMOV",
        given_names="ALI",
        birth_date=date(1990, 5, n),
        sex="M",
        nationality="TJK",
        document_type=DocumentType.PASSPORT,
        document_number=f"40{n:07d}",
    )


def manifest(
    passengers: Sequence[ManifestPassenger], *, checkpoint: str = FIRST.checkpoint_id, revision: int = 1
) -> ManifestIssued:
    return ManifestIssued(
        manifest_id=uuid.uuid4(),
        revision=revision,
        movement_id=MOVEMENT,
        vehicle_id=VEHICLE,
        route_id=ROUTE.route_id,
        checkpoint_id=checkpoint,
        departure_date=date(2026, 12, 1),
        passengers=list(passengers),
        issued_at=NOW,
    )


def departed(*case_ids: uuid.UUID) -> MovementDeparted:
    return MovementDeparted(
        movement_id=MOVEMENT, vehicle_id=VEHICLE, case_ids=list(case_ids), departed_at=NOW
    )


def cleared_at(checkpoint_index: int, case_id: uuid.UUID) -> BorderCrossingCleared:
    cp = ROUTE.checkpoints[checkpoint_index]
    return BorderCrossingCleared(
        case_id=case_id,
        checkpoint_id=cp.checkpoint_id,
        country=cp.country,
        crossing=cp.crossing,
        direction=cp.direction,
        movement_id=MOVEMENT,
        vehicle_id=VEHICLE,
        decisions=[],
        decided_at=NOW,
    )


class Bus:
    """A family of three and two single travellers on one vehicle, manifested to a post."""

    def __init__(self, checkpoint_index: int = 0) -> None:
        self.family, self.single, self.other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        self.mother, self.father, self.child = (person(self.family, n) for n in (1, 2, 3))
        self.traveller = person(self.single, 4)
        self.stranger = person(self.other, 5)
        self.ctx = post(checkpoint_index)
        self.store = FakeBorderStore()

    @property
    def passengers(self) -> list[ManifestPassenger]:
        return [self.mother, self.father, self.child, self.traveller, self.stranger]

    @property
    def cases(self) -> list[uuid.UUID]:
        return [self.family, self.single, self.other]

    async def arrive(self, *case_ids: uuid.UUID) -> None:
        """The manifest is read, and cases (all unless named) reach this post: their vehicle
        departs (the first post) or the post before clears them."""
        uow = self.unit()
        await usecases.on_manifest(
            manifest(self.passengers, checkpoint=self.ctx.checkpoint_id), uow, self.ctx
        )
        reached = case_ids or tuple(self.cases)
        index = ROUTE.index_of(self.ctx.checkpoint_id)
        if index == 0:
            await usecases.on_departed(departed(*reached), uow, self.ctx)
        if index:
            await usecases.on_cleared_elsewhere(
                [envelope(cleared_at(index - 1, case_id)) for case_id in reached], uow, self.ctx
            )

    def unit(self) -> FakeUnitOfWork[FakeBorderStore]:
        self.uow = unit(self.store)
        return self.uow

    async def clear(self, **command: object) -> usecases.Clearance:
        result = await usecases.clear_vehicle(
            ClearVehicle(MOVEMENT, VEHICLE, officer="duty-officer", **command),  # type: ignore[arg-type]
            self.unit(),
            self.ctx,
        )
        return result


async def arrived_bus(checkpoint_index: int = 0, *reached: uuid.UUID) -> Bus:
    bus = Bus(checkpoint_index)
    await bus.arrive(*reached)
    return bus


def order_of(uow: FakeUnitOfWork[FakeBorderStore]) -> list[tuple[str, uuid.UUID]]:
    return [(type(p.event).__name__, p.event.case_id) for p in uow.published]  # type: ignore[attr-defined]


# --- clearing a vehicle -------------------------------------------------------------------------


async def test_everyone_who_departed_is_cleared_at_the_first_post_and_no_status_is_written() -> None:
    bus = await arrived_bus()
    result = await bus.clear()
    assert result == usecases.Clearance(FIRST.checkpoint_id, sorted(bus.cases), [], {})
    assert bus.store.locks == [(MOVEMENT, VEHICLE)]
    # One decision per case, and no status: transport announces the decision on the public stream.
    assert order_of(bus.uow) == [("BorderCrossingCleared", case) for case in sorted(bus.cases)]
    assert bus.uow.events(CaseStatusChanged) == []
    decision = next(e for e in bus.uow.events(BorderCrossingCleared) if e.case_id == bus.family)
    assert (decision.checkpoint_id, decision.country, decision.direction) == (
        FIRST.checkpoint_id,
        "KAZ",
        "exit",
    )
    assert (decision.movement_id, decision.decided_at, decision.public_reason_code) == (MOVEMENT, NOW, None)
    assert decision.decisions == [
        PersonDecision(person_id=p.person_id, cleared=True)
        for p in sorted([bus.mother, bus.father, bus.child], key=lambda p: p.person_id)
    ]
    topics = {p.topic for p in bus.uow.published}
    assert topics == {"border.crossings.kaz-zhibek-zholy-exit"}
    assert all(p.key == str(p.event.case_id) for p in bus.uow.published)  # type: ignore[attr-defined]
    assert len(bus.store.decisions) == 5
    assert all(
        d["officer"] == "duty-officer" and d["decided_at"] == NOW for d in bus.store.decisions.values()
    )


async def test_a_case_whose_vehicle_has_not_departed_waits_and_the_others_are_decided() -> None:
    bus = Bus()
    await bus.arrive(bus.family, bus.single)
    result = await bus.clear()
    assert result.waiting == {bus.other: "vehicle has not departed"}
    assert set(result.cleared) == {bus.family, bus.single}
    assert bus.other not in {p.event.case_id for p in bus.uow.published}  # type: ignore[attr-defined]


async def test_nobody_reached_the_post_is_a_409_saying_why_each_waits_and_changes_nothing() -> None:
    bus = Bus()
    await usecases.on_manifest(manifest(bus.passengers), unit(bus.store), bus.ctx)
    with pytest.raises(domain.NothingToDecide) as caught:
        await bus.clear()
    assert caught.value.status_code == 409
    assert caught.value.detail == {
        "message": "nobody on this vehicle can be decided now",
        "waiting": {str(c): "vehicle has not departed" for c in sorted(bus.cases)},
    }
    assert bus.uow.published == [] and bus.store.decisions == {}


async def test_further_on_a_case_is_decided_only_once_the_post_before_cleared_it() -> None:
    bus = Bus(1)
    await bus.arrive(bus.family)
    await usecases.on_departed(
        departed(*bus.cases), bus.unit(), bus.ctx
    )  # a departure does not bring it here
    result = await bus.clear()
    assert result.cleared == [bus.family]
    assert result.waiting == {c: f"not yet cleared at {FIRST.checkpoint_id}" for c in (bus.single, bus.other)}
    assert bus.uow.events(BorderCrossingCleared)[0].direction == "entry"
    assert bus.uow.events(CaseStatusChanged) == []


async def test_a_case_is_decided_once_two_clearances_one_after_the_other() -> None:
    bus = Bus()
    await bus.arrive(bus.family, bus.single)
    await bus.clear()
    await bus.arrive(bus.other)
    again = await bus.clear()
    assert again.cleared == [bus.other]
    assert again.waiting == {bus.family: "already decided", bus.single: "already decided"}
    with pytest.raises(domain.NothingToDecide) as caught:
        await bus.clear()
    assert caught.value.detail["waiting"] == {str(c): "already decided" for c in sorted(bus.cases)}


async def test_a_refused_child_holds_the_whole_family_and_the_officers_words_stay_here() -> None:
    bus = await arrived_bus()
    refusal = Refusal(bus.child.person_id, "document_damaged", "Certificate torn")
    result = await bus.clear(refusals=(refusal,))
    assert result.refused == [bus.family] and set(result.cleared) == {bus.single, bus.other}
    [event] = bus.uow.events(BorderCrossingRefused)
    # The officer's code and words stay at this post and on the restricted crossing topic; what
    # transport may announce on the public stream is only where the refusal came from.
    assert event.public_reason_code == "refused_by_officer"
    assert "Certificate torn" not in event.model_dump_json()
    assert {d.person_id: d.reason_code for d in event.decisions} == {
        bus.mother.person_id: None,
        bus.father.person_id: None,
        bus.child.person_id: "document_damaged",
    }
    assert not any(d.cleared for d in event.decisions)
    recorded = {p: d for (c, p), d in bus.store.decisions.items() if c == bus.family}
    assert recorded[bus.child.person_id]["reason"] == "Certificate torn"
    assert recorded[bus.mother.person_id]["reason_code"] == "family_member_refused"
    assert recorded[bus.mother.person_id]["reason"] is None
    assert bus.uow.events(CaseStatusChanged) == []


async def test_a_document_on_the_hold_list_refuses_its_holder_unless_the_officer_gave_a_reason() -> None:
    bus = await arrived_bus()
    hold = usecases.HoldDocument(bus.traveller.document_number, "court_order", "Travel ban", "kaz-duty")
    assert await usecases.hold_document(hold, unit(bus.store)) == usecases.HoldListEntry(
        bus.traveller.document_number, held=True
    )
    await usecases.hold_document(
        usecases.HoldDocument(bus.stranger.document_number, "court_order", "Alert", "kaz-duty"),
        unit(bus.store),
    )
    own = Refusal(bus.stranger.person_id, "no_visa", "no visa")
    result = await bus.clear(refusals=(own,))
    assert set(result.refused) == {bus.single, bus.other} and result.cleared == [bus.family]
    # A court order, an alert: the public stream will say only that the holder is held at the border.
    refusals = {e.case_id: e for e in bus.uow.events(BorderCrossingRefused)}
    assert refusals[bus.single].public_reason_code == "held_at_border"
    assert refusals[bus.other].public_reason_code == "refused_by_officer"
    assert "Travel ban" not in refusals[bus.single].model_dump_json()


async def test_a_released_document_is_cleared_and_releasing_twice_is_a_404() -> None:
    bus = await arrived_bus()
    number = bus.traveller.document_number
    await usecases.hold_document(usecases.HoldDocument(number, "court_order", "ban", "o"), unit(bus.store))
    assert await usecases.release_document(number, unit(bus.store)) == usecases.HoldListEntry(
        number, held=False
    )
    with pytest.raises(domain.NotOnHoldList) as caught:
        await usecases.release_document(number, unit(bus.store))
    assert caught.value.status_code == 404 and caught.value.detail == "not on the hold list"
    assert bus.single in (await bus.clear()).cleared


async def test_scans_are_checked_against_the_manifest_and_kept_with_the_decision() -> None:
    bus = await arrived_bus()
    scans = (
        Scan(bus.traveller.person_id, td3(bus.traveller)),
        Scan(bus.stranger.person_id, td3(bus.stranger, number="409999999")),
    )
    result = await bus.clear(scans=scans)
    assert result.refused == [bus.other] and bus.single in result.cleared
    assert bus.store.decisions[(bus.single, bus.traveller.person_id)]["document_check"] == "matches manifest"
    refused = bus.store.decisions[(bus.other, bus.stranger.person_id)]
    assert refused["document_check"] == "mismatch: document_number"
    assert refused["reason_code"] == "document_mismatch"
    assert bus.store.decisions[(bus.family, bus.mother.person_id)]["document_check"] is None


async def test_an_unreadable_scan_is_a_422_naming_person_and_field_and_nobody_is_decided() -> None:
    bus = await arrived_bus()
    good = td3(bus.traveller)
    misread = good[:-1] + str((int(good[-1]) + 1) % 10)
    with pytest.raises(domain.UnreadableScan) as caught:
        await bus.clear(scans=(Scan(bus.traveller.person_id, misread),))
    assert caught.value.status_code == 422
    assert caught.value.loc == ("body", "scans", str(bus.traveller.person_id), "composite")
    assert bus.uow.published == [] and bus.store.decisions == {}


async def test_refusing_or_scanning_someone_not_on_the_manifest_is_a_422_on_refusals() -> None:
    bus = await arrived_bus()
    stranger = uuid.uuid4()
    with pytest.raises(domain.NotOnManifest) as caught:
        await bus.clear(refusals=(Refusal(stranger, "no_visa", "x"),))
    assert caught.value.loc == ("body", "refusals") and caught.value.msg == f"not on the manifest: {stranger}"
    with pytest.raises(domain.NotOnManifest):
        await bus.clear(scans=(Scan(stranger, td3(bus.traveller)),))
    assert bus.store.decisions == {}


async def test_no_manifest_is_a_404_and_a_route_not_configured_here_a_409() -> None:
    bus = Bus()
    with pytest.raises(domain.NoManifest) as missing:
        await bus.clear()
    assert missing.value.status_code == 404
    assert missing.value.detail == f"no manifest received for {MOVEMENT}/{VEHICLE}"
    await usecases.on_manifest(manifest(bus.passengers), unit(bus.store), bus.ctx)
    m = bus.store.manifests[(MOVEMENT, VEHICLE)]
    bus.store.manifests[(MOVEMENT, VEHICLE)] = Manifest(**{**m.__dict__, "route_id": "elsewhere"})
    with pytest.raises(domain.RouteNotConfigured) as unknown:
        await bus.clear()
    assert (
        unknown.value.status_code == 409 and unknown.value.detail == "route elsewhere is not configured here"
    )


# --- events from the other services ---------------------------------------------------------


async def test_a_manifest_is_kept_for_this_post_only_and_a_later_revision_replaces_it() -> None:
    ctx, store = post(0), FakeBorderStore()
    case = uuid.uuid4()
    await usecases.on_manifest(manifest([person(case, 1)], checkpoint=SECOND.checkpoint_id), unit(store), ctx)
    assert store.manifests == {}
    await usecases.on_manifest(manifest([person(case, 1), person(case, 2)], revision=2), unit(store), ctx)
    await usecases.on_manifest(manifest([person(case, 1)], revision=1), unit(store), ctx)  # late, older
    assert store.manifests[(MOVEMENT, VEHICLE)].revision == 2
    assert len(store.people[(MOVEMENT, VEHICLE)]) == 2
    arrivals = await usecases.expected_arrivals(unit(store), ctx)
    assert arrivals.checkpoint_id == FIRST.checkpoint_id
    assert [(v.manifest_revision, v.people, v.cases, v.decided) for v in arrivals.vehicles] == [(2, 2, 1, 0)]


async def test_a_departure_is_recorded_and_nothing_written() -> None:
    ctx = post(0)
    first, second = uuid.uuid4(), uuid.uuid4()
    uow = unit()
    await usecases.on_departed(departed(first, second), uow, ctx)
    assert set(uow.store.departures) == {first, second}
    # The post writes no status, so it keeps none for a status guard either.
    assert uow.published == [] and uow.statuses == {}


def envelope(event: BorderCrossingCleared) -> CloudEvent:
    """A post's decision as the consumer hands it to a set use case."""
    return CloudEvent.new(event, source="/missions/UZB/border")


async def test_a_clearance_elsewhere_is_recorded_and_this_posts_own_ignored() -> None:
    ctx = post(1)
    case = uuid.uuid4()
    uow = unit()
    await usecases.on_cleared_elsewhere([envelope(cleared_at(1, case))], uow, ctx)  # this post's own
    assert uow.store.upstream == set()
    other = uuid.uuid4()
    await usecases.on_cleared_elsewhere(
        # the one before, and the one after read before this post decided, in one run
        [envelope(cleared_at(0, case)), envelope(cleared_at(2, case)), envelope(cleared_at(0, other))],
        uow,
        ctx,
    )
    assert uow.store.upstream == {
        (case, FIRST.checkpoint_id),
        (case, ROUTE.checkpoints[2].checkpoint_id),
        (other, FIRST.checkpoint_id),
    }
    assert uow.published == [] and uow.statuses == {}


async def test_the_handlers_table_gives_each_use_case_this_posts_context() -> None:
    assert set(usecases.HANDLERS) == {ManifestIssued, PassengerDataErased, MovementDeparted}
    assert set(usecases.IN_SETS) == {BorderCrossingCleared}
    ctx, store = post(0), FakeBorderStore()
    bound = usecases.handlers(ctx)
    await bound[ManifestIssued](manifest([person(uuid.uuid4(), 1)]), unit(store))
    assert (MOVEMENT, VEHICLE) in store.manifests


# --- requirements -------------------------------------------------------------------------------


def covid_test_required(**changes: Any) -> usecases.PublishRequirement:
    return dataclasses.replace(
        usecases.PublishRequirement(
            code="negative_covid19_test",
            description="a negative COVID-19 test taken within 72 hours",
            evidence_kind=EvidenceKind.COVID19_TEST,
            valid_hours=72,
            effective_from=date(2026, 12, 1),
            officer="uzb-duty",
        ),
        **changes,
    )


async def test_a_requirement_is_published_keyed_by_checkpoint_and_lifted_once() -> None:
    ctx, store = post(1), FakeBorderStore()
    command = covid_test_required()
    uow = unit(store)
    published = await usecases.publish_requirement(command, uow, ctx)
    assert published.checkpoint_id == SECOND.checkpoint_id
    [record] = uow.published
    assert (record.topic, record.key) == (f"border.requirements.{SECOND.checkpoint_id}", SECOND.checkpoint_id)
    event = record.event
    assert isinstance(event, CrossingRequirementPublished)
    assert (event.requirement_id, event.country, event.post, event.published_at) == (
        published.requirement_id,
        "UZB",
        SECOND.post,
        NOW,
    )
    listed = await usecases.requirements(unit(store), ctx)
    assert [(r.code, r.published_by, r.lifted_at) for r in listed.requirements] == [
        ("negative_covid19_test", "uzb-duty", None)
    ]

    uow = unit(store)
    lifted = await usecases.lift_requirement(published.requirement_id, uow, ctx)
    assert lifted == usecases.RequirementLifted(published.requirement_id, NOW)
    assert uow.events(CrossingRequirementLifted) == [
        CrossingRequirementLifted(
            requirement_id=published.requirement_id, checkpoint_id=SECOND.checkpoint_id, lifted_at=NOW
        )
    ]
    assert uow.published[0].key == SECOND.checkpoint_id
    with pytest.raises(domain.NoActiveRequirement) as caught:
        await usecases.lift_requirement(published.requirement_id, unit(store), ctx)
    assert caught.value.status_code == 404
    assert caught.value.detail == f"no active requirement {published.requirement_id}"


async def test_a_requirement_with_a_last_day_carries_it_and_a_reference_is_not_reused_for_another_window() -> (
    None
):
    ctx, store = post(1), FakeBorderStore()
    command = covid_test_required(effective_until=date(2026, 12, 3), reference="circular-7")
    uow = unit(store)
    await usecases.publish_requirement(command, uow, ctx)
    [event] = uow.events(CrossingRequirementPublished)
    assert (event.effective_from, event.effective_until) == (date(2026, 12, 1), date(2026, 12, 3))
    [listed] = (await usecases.requirements(unit(store), ctx)).requirements
    assert listed.effective_until == date(2026, 12, 3)
    again = await usecases.publish_requirement(command, unit(store), ctx)
    assert not again.created
    with pytest.raises(domain.ReferenceReused):
        await usecases.publish_requirement(
            dataclasses.replace(command, effective_until=date(2026, 12, 4)), unit(store), ctx
        )


def test_a_requirement_cannot_end_before_it_begins() -> None:
    body = {
        "code": "negative_covid19_test",
        "description": "a negative COVID-19 test taken within 72 hours",
        "evidence_kind": "covid19_test",
        "valid_hours": 72,
        "effective_from": "2026-12-02",
    }
    assert api.PublishRequirement.model_validate(body | {"effective_until": "2026-12-02"})  # one day
    with pytest.raises(pydantic.ValidationError, match="effective_until is before effective_from"):
        api.PublishRequirement.model_validate(body | {"effective_until": "2026-12-01"})


# --- erasure of personal data ------------------------------------------------------------------


def erased(case_id: uuid.UUID, checkpoint: str) -> PassengerDataErased:
    return PassengerDataErased(
        case_id=case_id, movement_id=MOVEMENT, vehicle_id=VEHICLE, checkpoint_id=checkpoint, erased_at=NOW
    )


async def test_an_erasure_anonymises_this_posts_copy_and_the_officers_notes_and_keeps_the_decisions() -> None:
    bus = await arrived_bus()
    await bus.clear(refusals=(Refusal(bus.child.person_id, "document_damaged", "Certificate torn"),))
    ctx = post(0)
    # Another post's notice is not this post's business.
    await usecases.on_passenger_data_erased(erased(bus.family, SECOND.checkpoint_id), unit(bus.store), ctx)
    assert bus.store.erased == {}
    await usecases.on_passenger_data_erased(erased(bus.family, FIRST.checkpoint_id), unit(bus.store), ctx)
    people = [p for p in bus.store.people[(MOVEMENT, VEHICLE)] if p.case_id == bus.family]
    assert people and {(p.surname, p.given_names, p.document_number) for p in people} == {("", "", "-")}
    others = [p for p in bus.store.people[(MOVEMENT, VEHICLE)] if p.case_id != bus.family]
    assert others and all(p.surname for p in others)
    recorded = {p: d for (c, p), d in bus.store.decisions.items() if c == bus.family}
    assert recorded[bus.child.person_id]["reason"] is None
    assert recorded[bus.child.person_id]["reason_code"] == "document_damaged"  # statistics stay
