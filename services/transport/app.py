"""Transport: plans movements, issues manifests to the crossing points, records departures and
arrival. A case is "arrived" once it is cleared at the last checkpoint of its route."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Header, HTTPException, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from contracts import topics
from contracts.border import BorderCrossingCleared, BorderCrossingRefused
from contracts.eligibility import EligibilityDecided, Outcome
from contracts.envelope import CloudEvent
from contracts.intake import CaseRegistered, CaseUpdated, CaseWithdrawn
from contracts.routes import Checkpoint, Route, RouteBook
from contracts.status import CaseStatus, CaseStatusChanged, Place
from contracts.transport import ManifestIssued, ManifestPassenger, MovementDeparted, VehicleProgressRecorded
from corridor import statusguard
from corridor.consumer import Rejected
from corridor.outbox import announce, enqueue
from corridor.runtime import ServiceRuntime
from corridor.settings import ServiceSettings
from services.transport import domain, store
from services.transport.pdf import manifest_pdf

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)

# Transport announces eligibility decisions on the public stream as it applies them to the case's
# seat: one writer for every status before departure keeps the stream in the order things happened.
STATUS_FOR_OUTCOME = {
    Outcome.ELIGIBLE: CaseStatus.ELIGIBLE,
    Outcome.INELIGIBLE: CaseStatus.INELIGIBLE,
    Outcome.PENDING: CaseStatus.ON_HOLD,
}


class TransportSettings(ServiceSettings):
    http_port: int = 8003


class VehicleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vehicle_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")
    capacity: int = Field(gt=0, le=100)


class PlanMovement(BaseModel):
    """Plan a movement: place the eligible cases travelling that day on these vehicles."""

    model_config = ConfigDict(extra="forbid")
    movement_id: str | None = Field(default=None, max_length=60, pattern=r"^[A-Za-z0-9._-]+$")
    route_id: str
    departure_date: date
    vehicles: list[VehicleIn] = Field(min_length=1, max_length=100)


class RecordDeparture(BaseModel):
    """Record a vehicle's departure; cases not at boarding are no-shows and leave the manifest."""

    model_config = ConfigDict(extra="forbid")
    no_shows: list[uuid.UUID] = Field(default_factory=list)
    fill_freed_seats: bool = Field(
        default=True, description="Offer freed seats to cases waiting for that day"
    )


class RecordProgress(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checkpoint_id: str = Field(pattern=r"^[a-z0-9-]+$")
    stage: Literal["arrived", "departed"]


def invalid(field: str, msg: str) -> RequestValidationError:
    """A 422 in the documented shape (a list of errors naming the field), like FastAPI's own."""
    return RequestValidationError([{"loc": ("body", field), "msg": msg, "type": "value_error"}])


def create_service(settings: ServiceSettings | None = None) -> ServiceRuntime:
    settings = settings or TransportSettings()
    routes = RouteBook.load(settings.routes_file)
    rt = ServiceRuntime("transport", settings, migrations=MIGRATIONS, title="Corridor transport")
    rt.produces(
        topics.STATUS,
        topics.MOVEMENTS,
        *(topics.manifests(c.checkpoint_id) for r in routes.routes for c in r.checkpoints),
    )

    def abroad(route: Route) -> list[str]:
        """Countries whose posts receive manifests, other than the host mission's own."""
        return sorted({cp.country for cp in route.checkpoints} - {settings.mission})

    def route_of(route_id: str) -> Route:
        route = routes.get(route_id)
        if route is None:
            raise invalid("route_id", f"unknown route {route_id!r}")
        return route

    async def status(
        conn: asyncpg.Connection,
        case_id: uuid.UUID,
        new_status: CaseStatus,
        members: int,
        place: Place | None,
        movement_id: str | None,
        at: datetime,
        reason_code: str | None = None,
        reason: str | None = None,
    ) -> None:
        await announce(
            conn,
            CaseStatusChanged(
                case_id=case_id,
                status=new_status,
                occurred_at=at,
                members=members,
                place=place,
                movement_id=movement_id,
                reason_code=reason_code,
                reason=reason,
            ),
            source=rt.source,
        )

    async def issue_manifests(
        conn: asyncpg.Connection,
        route: Route,
        movement_id: str,
        vehicle: asyncpg.Record,
        departure: date,
        at: datetime,
        checkpoints: list[Checkpoint] | None = None,
    ) -> None:
        passengers = await store.passengers_on(conn, movement_id, vehicle["vehicle_id"])
        # One topic per checkpoint: each border post's mission receives only its own manifests.
        for cp in route.checkpoints if checkpoints is None else checkpoints:
            await enqueue(
                conn,
                ManifestIssued(
                    manifest_id=vehicle["manifest_id"],
                    revision=vehicle["manifest_revision"],
                    movement_id=movement_id,
                    vehicle_id=vehicle["vehicle_id"],
                    route_id=route.route_id,
                    checkpoint_id=cp.checkpoint_id,
                    departure_date=departure,
                    passengers=passengers,
                    issued_at=at,
                ),
                topic=topics.manifests(cp.checkpoint_id),
                source=rt.source,
                key=f"{movement_id}/{vehicle['vehicle_id']}",
            )

    # --- consumers -------------------------------------------------------------------------

    async def on_case_registered(conn: asyncpg.Connection, event: CloudEvent) -> None:
        case = event.data
        assert isinstance(case, CaseRegistered)
        await store.lock_case_id(conn, case.case_id)
        await store.lock_case(conn, case.case_id)
        await store.save_case(conn, case)
        if await statusguard.known(conn, case.case_id) is None:
            # Intake announced it before publishing the registration: transport's statuses follow.
            await statusguard.note(conn, case.case_id, CaseStatus.REGISTERED)
        decided = await store.decision(conn, case.case_id)
        if decided is not None:
            # The decision overtook the registration (another topic): apply it now.
            found = await store.lock_case(conn, case.case_id)
            assert found is not None
            await apply_decision(conn, found, decided)

    async def on_case_updated(conn: asyncpg.Connection, event: CloudEvent) -> None:
        case = event.data
        assert isinstance(case, CaseUpdated)
        found = await store.lock_case(conn, case.case_id)
        before = await store.save_case(conn, case)
        if found is None or found["withdrawn_at"] is not None:
            return
        assigned = await store.assignment(conn, case.case_id)
        if assigned is None or assigned["state"] != "manifested":
            return
        moved = before is not None and before != (case.route_id, case.planned_travel_date)
        if moved or assigned["seats"] != len(case.members):
            # Another day or route, or another number of seats: off this vehicle, back to the pool.
            removed = await store.remove_assignment(conn, case.case_id)
            if removed is not None:
                await amend_manifests(conn, removed["movement_id"], removed["vehicle_id"])
                await status(
                    conn,
                    case.case_id,
                    CaseStatus.ELIGIBLE,
                    len(case.members),
                    None,
                    None,
                    datetime.now(UTC),
                    reason_code="taken_off_vehicle",
                    reason=(
                        f"Taken off vehicle {removed['vehicle_id']} of {removed['movement_id']}: "
                        + (
                            "the route or travel date changed"
                            if moved
                            else "the number of travellers changed"
                        )
                    ),
                )
        else:
            # Corrected details (a name, a document number): the posts need the new manifest.
            await amend_manifests(conn, assigned["movement_id"], assigned["vehicle_id"])

    async def withdraw(conn: asyncpg.Connection, case: asyncpg.Record, at: datetime) -> None:
        """Apply the applicant's withdrawal under the case's lock: before departure the seat is
        freed and the withdrawal announced; after departure it comes too late, and the stream,
        which shows the departure, tells intake so."""
        case_id = case["case_id"]
        if case["withdrawn_at"] is not None:
            return
        assigned = await store.assignment(conn, case_id)
        if assigned is not None and assigned["state"] not in ("manifested", "no_show"):
            detail = f"withdrawal received after the case {assigned['state']} on {assigned['movement_id']}"
            log.warning("case %s: %s; not applied", case_id, detail)
            await store.mark_withdrawn(conn, case_id, at, applied=False, detail=detail)
            return
        movement_id = None
        if assigned is not None and assigned["state"] == "manifested":
            removed = await store.remove_assignment(conn, case_id)
            if removed is not None:
                movement_id = removed["movement_id"]
                await amend_manifests(conn, removed["movement_id"], removed["vehicle_id"])
        await store.mark_withdrawn(conn, case_id, at, applied=True, detail="applied before departure")
        await status(
            conn,
            case_id,
            CaseStatus.WITHDRAWN,
            case["members"],
            None,
            movement_id,
            datetime.now(UTC),
            # The caseworker's note may name people: it stays on the restricted topic.
            reason_code="withdrawn_by_applicant",
            reason="Withdrawn by the applicant before departure",
        )

    async def on_case_withdrawn(conn: asyncpg.Connection, event: CloudEvent) -> None:
        w = event.data
        assert isinstance(w, CaseWithdrawn)
        case = await store.lock_case(conn, w.case_id)
        if case is None:
            # Intake publishes the registration before the withdrawal, on the same partition.
            raise Rejected("unknown_case", f"withdrawal of case {w.case_id}, never registered here")
        await withdraw(conn, case, w.withdrawn_at)

    async def amend_manifests(
        conn: asyncpg.Connection, movement_id: str, vehicle_id: str, *, after_checkpoint: str | None = None
    ) -> None:
        """Send a new revision of a vehicle's manifest to the posts it has not passed yet."""
        found = await store.movement(conn, movement_id)
        route = routes.get(found["route_id"]) if found else None
        if found is None or route is None:
            return
        await store.bump_manifest(conn, movement_id, vehicle_id)
        vehicle = next(v for v in await store.vehicles(conn, movement_id) if v["vehicle_id"] == vehicle_id)
        start = 0 if after_checkpoint is None else route.index_of(after_checkpoint) + 1
        await issue_manifests(
            conn,
            route,
            movement_id,
            vehicle,
            found["departure_date"],
            datetime.now(UTC),
            route.checkpoints[start:],
        )

    async def on_eligibility_decided(conn: asyncpg.Connection, event: CloudEvent) -> None:
        d = event.data
        assert isinstance(d, EligibilityDecided)
        decided = store.Decision(
            version=d.version,
            outcome=d.outcome.value,
            priority=d.priority,
            reason_code=d.public_reason_code,
            reason=d.public_reason,
            withdrawn=d.withdrawn(),
            decided_at=d.decided_at,
        )
        case = await store.lock_case(conn, d.case_id)
        if case is None:
            # The registration travels on another topic and may not be here yet: keep the decision
            # (under a lock on the case id, which the registration takes too); it applies it.
            await store.lock_case_id(conn, d.case_id)
            case = await store.lock_case(conn, d.case_id)
        if not await store.save_decision(conn, d.case_id, decided):
            return  # a newer decision was applied already
        if case is not None:
            await apply_decision(conn, case, decided)

    async def apply_decision(conn: asyncpg.Connection, case: asyncpg.Record, d: store.Decision) -> None:
        """Apply eligibility's decision to the case's seat and announce it, under the case's lock."""
        case_id = case["case_id"]
        if d.withdrawn:
            await withdraw(conn, case, d.decided_at)  # whichever of the two arrives first
            return
        if case["withdrawn_at"] is not None:
            return
        assigned = await store.assignment(conn, case_id)
        if assigned is not None and assigned["state"] != "manifested":
            return  # a no-show, or on the road: the decision no longer moves the case
        outcome = Outcome(d.outcome)
        new_status = STATUS_FOR_OUTCOME[outcome]
        movement_id = None
        if assigned is not None:
            if outcome is Outcome.ELIGIBLE:
                return
            # Held (a new crossing requirement, a missing check) or ineligible before departure:
            # the seat is freed, the posts get a manifest without the family, the stream says why.
            movement_id = assigned["movement_id"]
            removed = await store.remove_assignment(conn, case_id)
            if removed is not None:
                await amend_manifests(conn, removed["movement_id"], removed["vehicle_id"])
        elif await statusguard.known(conn, case_id) == new_status:
            return  # new reasons, same status: the stream has nothing new to say
        await status(
            conn,
            case_id,
            new_status,
            case["members"],
            None,
            movement_id,
            d.decided_at,
            reason_code=d.reason_code,
            reason=d.reason,
        )

    async def on_crossing(conn: asyncpg.Connection, event: CloudEvent) -> None:
        d = event.data
        assert isinstance(d, BorderCrossingCleared | BorderCrossingRefused)
        cleared = isinstance(d, BorderCrossingCleared)
        await store.lock_case(conn, d.case_id)
        await store.record_crossing(conn, d.case_id, d.checkpoint_id, cleared, d.decided_at)
        # The post announced its decision before publishing it: transport's arrival follows it.
        await statusguard.note(
            conn,
            d.case_id,
            (CaseStatus.EXIT_CLEARED if d.direction == "exit" else CaseStatus.ENTRY_CLEARED)
            if cleared
            else CaseStatus.REFUSED_AT_BORDER,
        )
        assigned = await store.assignment(conn, d.case_id)
        if assigned is None or assigned["state"] != "departed":
            return
        if not cleared:
            await store.set_assignment_state(conn, d.case_id, "refused", was=("departed",))
            # The family stays at this post; the posts ahead must not expect it.
            await amend_manifests(
                conn, assigned["movement_id"], assigned["vehicle_id"], after_checkpoint=d.checkpoint_id
            )
            return
        route = routes.get(assigned["route_id"])
        if route is None or route.checkpoints[-1].checkpoint_id != d.checkpoint_id:
            return
        await store.set_assignment_state(conn, d.case_id, "arrived", was=("departed",))
        await status(
            conn,
            d.case_id,
            CaseStatus.ARRIVED,
            assigned["members"],
            Place(country=route.reception_point.country, name=route.reception_point.name),
            assigned["movement_id"],
            d.decided_at,
        )
        await store.close_movement_if_done(conn, assigned["movement_id"])

    rt.consume(
        topics.CASES,
        topics.DECISIONS,
        topics.BORDER_DECISIONS,
        handlers={
            CaseRegistered: on_case_registered,
            CaseUpdated: on_case_updated,
            CaseWithdrawn: on_case_withdrawn,
            EligibilityDecided: on_eligibility_decided,
            BorderCrossingCleared: on_crossing,
            BorderCrossingRefused: on_crossing,
        },
    )

    # --- HTTP --------------------------------------------------------------------------------

    api = APIRouter(tags=["movements"])

    @api.post("/movements", status_code=201)
    async def plan_movement(command: PlanMovement) -> dict[str, Any]:
        route = route_of(command.route_id)
        movement_id = command.movement_id or f"MOV-{command.departure_date:%Y%m%d}-{uuid.uuid4().hex[:6]}"
        now = datetime.now(UTC)
        gathering = Place(country=route.gathering_point.country, name=route.gathering_point.name)
        async with rt.pool.acquire() as conn, conn.transaction():
            if await store.movement(conn, movement_id) is not None:
                raise HTTPException(409, f"movement {movement_id} exists")
            # Every case of the day is locked first, then read again: a withdrawal, a decision or
            # another planning run on one of them is applied wholly before this plan or after it.
            locked = await store.lock_cases_for_day(conn, route.route_id, command.departure_date)
            cases = await store.ready_cases(
                conn, route.route_id, command.departure_date, abroad(route), among=locked
            )
            try:
                placements = domain.plan(
                    cases, [domain.Vehicle(v.vehicle_id, v.capacity) for v in command.vehicles]
                ).placements
            except ValueError as exc:
                raise invalid("vehicles", str(exc)) from exc
            if not await store.create_movement(
                conn,
                movement_id,
                route.route_id,
                command.departure_date,
                [(v.vehicle_id, v.capacity, uuid.uuid4()) for v in command.vehicles],
            ):
                raise HTTPException(409, f"movement {movement_id} exists")
            size = {c.case_id: c.members for c in cases}
            for p in placements:
                if p.vehicle_id is None:
                    continue
                if p.escort_seat_reserved:
                    await store.set_escort_seat(conn, movement_id, p.vehicle_id)
                await store.assign(conn, p.case_id, movement_id, p.vehicle_id, size[p.case_id], p.explanation)
                await status(
                    conn, p.case_id, CaseStatus.MANIFESTED, size[p.case_id], gathering, movement_id, now
                )
            for vehicle in await store.vehicles(conn, movement_id):
                await issue_manifests(conn, route, movement_id, vehicle, command.departure_date, now)
            described = store.describe(
                await store.movement(conn, movement_id),  # type: ignore[arg-type]
                await store.vehicles(conn, movement_id),
                await store.assignments(conn, movement_id),
            )
        described["not_placed"] = [
            {"case_id": str(p.case_id), "explanation": p.explanation}
            for p in placements
            if p.vehicle_id is None
        ]
        return described

    @api.get("/ready-cases")
    async def ready_cases(route_id: str, departure_date: date) -> dict[str, Any]:
        """Eligible cases for that route and day that no movement has taken yet."""
        async with rt.pool.acquire() as conn, conn.transaction():
            cases = await store.ready_cases(conn, route_id, departure_date, abroad(route_of(route_id)))
        return {
            "route_id": route_id,
            "departure_date": departure_date.isoformat(),
            "cases": [
                {"case_id": str(c.case_id), "members": c.members, "priority": c.priority} for c in cases
            ],
        }

    @api.get("/movements/{movement_id}")
    async def get_movement(movement_id: str) -> dict[str, Any]:
        async with rt.pool.acquire() as conn:
            found = await store.movement(conn, movement_id)
            if found is None:
                raise HTTPException(404, f"no movement {movement_id}")
            return store.describe(
                found, await store.vehicles(conn, movement_id), await store.assignments(conn, movement_id)
            )

    async def vehicle_of(
        conn: asyncpg.Connection, movement_id: str, vehicle_id: str
    ) -> tuple[asyncpg.Record, asyncpg.Record]:
        found = await store.movement(conn, movement_id)
        if found is None:
            raise HTTPException(404, f"no movement {movement_id}")
        vehicle = next(
            (v for v in await store.vehicles(conn, movement_id) if v["vehicle_id"] == vehicle_id), None
        )
        if vehicle is None:
            raise HTTPException(404, f"no vehicle {vehicle_id} on {movement_id}")
        return found, vehicle

    @api.post("/movements/{movement_id}/vehicles/{vehicle_id}/departure")
    async def record_departure(movement_id: str, vehicle_id: str, command: RecordDeparture) -> dict[str, Any]:
        """Boarding against the manifest: no-shows leave it, their seats go to the next eligible
        cases waiting for that day, the posts get the amended manifest, and the vehicle leaves."""
        now = datetime.now(UTC)
        async with rt.pool.acquire() as conn, conn.transaction():
            found, _ = await vehicle_of(conn, movement_id, vehicle_id)
            route = route_of(found["route_id"])
            # Lock order as everywhere: the cases (those on board and those who may get a freed
            # seat), then the vehicle; then read again what the decision rests on.
            aboard = [
                a["case_id"]
                for a in await store.assignments(conn, movement_id)
                if a["vehicle_id"] == vehicle_id
            ]
            locked = await store.lock_cases_for_day(
                conn, route.route_id, found["departure_date"], also=aboard
            )
            vehicle = await store.lock_vehicle(conn, movement_id, vehicle_id)
            assert vehicle is not None
            if vehicle["departed_at"] is not None:
                raise HTTPException(409, f"{vehicle_id} departed at {vehicle['departed_at'].isoformat()}")
            on_board = [
                a
                for a in await store.assignments(conn, movement_id)
                if a["vehicle_id"] == vehicle_id and a["state"] == "manifested"
            ]
            unknown = set(command.no_shows) - {a["case_id"] for a in on_board}
            if unknown:
                raise invalid(
                    "no_shows", f"not on {vehicle_id}'s manifest: {', '.join(sorted(map(str, unknown)))}"
                )
            gathering = Place(country=route.gathering_point.country, name=route.gathering_point.name)
            for a in on_board:
                if a["case_id"] in command.no_shows:
                    await store.set_assignment_state(conn, a["case_id"], "no_show", was=("manifested",))
                    await status(
                        conn,
                        a["case_id"],
                        CaseStatus.NO_SHOW,
                        a["seats"],
                        gathering,
                        movement_id,
                        now,
                        reason_code="no_show",
                        reason="Not present at boarding",
                    )
            offered: list[domain.Placement] = []
            if command.fill_freed_seats:
                load = next(
                    v for v in await store.vehicle_loads(conn, movement_id) if v.vehicle_id == vehicle_id
                )
                waiting = await store.ready_cases(
                    conn, route.route_id, found["departure_date"], abroad(route), among=locked
                )
                offered = domain.plan(waiting, [load]).placed()
                size = {c.case_id: c.members for c in waiting}
                for p in offered:
                    await store.assign(
                        conn, p.case_id, movement_id, vehicle_id, size[p.case_id], p.explanation
                    )
                    if p.escort_seat_reserved:
                        await store.set_escort_seat(conn, movement_id, vehicle_id)
                    await status(
                        conn,
                        p.case_id,
                        CaseStatus.MANIFESTED,
                        size[p.case_id],
                        gathering,
                        movement_id,
                        now,
                        reason_code="seat_offered",
                        reason="Offered a seat freed at boarding",
                    )
            departed: list[uuid.UUID] = []
            for a in await store.assignments(conn, movement_id):
                if a["vehicle_id"] == vehicle_id and a["state"] == "manifested":
                    await store.set_assignment_state(conn, a["case_id"], "departed", was=("manifested",))
                    await status(
                        conn, a["case_id"], CaseStatus.DEPARTED, a["seats"], gathering, movement_id, now
                    )
                    departed.append(a["case_id"])
            if command.no_shows or offered:
                # The border posts must expect exactly who is on board.
                await amend_manifests(conn, movement_id, vehicle_id)
            await store.mark_departed(conn, movement_id, vehicle_id, now)
            await enqueue(
                conn,
                MovementDeparted(
                    movement_id=movement_id, vehicle_id=vehicle_id, case_ids=departed, departed_at=now
                ),
                topic=topics.MOVEMENTS,
                source=rt.source,
                key=f"{movement_id}/{vehicle_id}",
            )
        return {
            "movement_id": movement_id,
            "vehicle_id": vehicle_id,
            "departed": [str(c) for c in departed],
            "no_shows": [str(c) for c in command.no_shows],
            "seats_offered": [{"case_id": str(p.case_id), "explanation": p.explanation} for p in offered],
        }

    @api.post("/movements/{movement_id}/vehicles/{vehicle_id}/progress", status_code=201)
    async def record_progress(movement_id: str, vehicle_id: str, command: RecordProgress) -> dict[str, Any]:
        """The vehicle reached or left a checkpoint on its route (reported by the escort or driver)."""
        now = datetime.now(UTC)
        async with rt.pool.acquire() as conn, conn.transaction():
            found, vehicle = await vehicle_of(conn, movement_id, vehicle_id)
            route = route_of(found["route_id"])
            if route.checkpoint(command.checkpoint_id) is None:
                raise invalid("checkpoint_id", f"{command.checkpoint_id} is not on route {route.route_id}")
            if vehicle["departed_at"] is None:
                raise HTTPException(409, f"{vehicle_id} has not left the gathering point")
            if await store.record_progress(
                conn, movement_id, vehicle_id, command.checkpoint_id, command.stage, now
            ):
                on_board = [
                    a["case_id"]
                    for a in await store.assignments(conn, movement_id)
                    if a["vehicle_id"] == vehicle_id and a["state"] == "departed"
                ]
                await enqueue(
                    conn,
                    VehicleProgressRecorded(
                        movement_id=movement_id,
                        vehicle_id=vehicle_id,
                        checkpoint_id=command.checkpoint_id,
                        stage=command.stage,
                        case_ids=on_board,
                        at=now,
                    ),
                    topic=topics.MOVEMENTS,
                    source=rt.source,
                    key=f"{movement_id}/{vehicle_id}",
                )
        return {"movement_id": movement_id, "vehicle_id": vehicle_id, **command.model_dump()}

    async def export(
        movement_id: str, vehicle_id: str, actor: str, purpose: str, fmt: str
    ) -> tuple[asyncpg.Record, asyncpg.Record, list[ManifestPassenger]]:
        async with rt.pool.acquire() as conn, conn.transaction():
            found, vehicle = await vehicle_of(conn, movement_id, vehicle_id)
            passengers = await store.passengers_on(conn, movement_id, vehicle_id)
            await store.log_export(conn, actor, purpose, movement_id, vehicle_id, fmt)
        return found, vehicle, passengers

    @api.get("/movements/{movement_id}/vehicles/{vehicle_id}/manifest.csv", response_class=Response)
    async def manifest_as_csv(
        movement_id: str,
        vehicle_id: str,
        x_actor: Annotated[str, Header(min_length=1)],
        x_purpose: Annotated[str, Header(min_length=3)],
    ) -> Response:
        """The current manifest with personal data; every export is recorded with who and why."""
        _, _, passengers = await export(movement_id, vehicle_id, x_actor, x_purpose, "csv")
        return Response(
            domain.manifest_csv(passengers),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{movement_id}-{vehicle_id}.csv"'},
        )

    @api.get("/movements/{movement_id}/vehicles/{vehicle_id}/manifest.pdf", response_class=Response)
    async def manifest_as_pdf(
        movement_id: str,
        vehicle_id: str,
        x_actor: Annotated[str, Header(min_length=1)],
        x_purpose: Annotated[str, Header(min_length=3)],
    ) -> Response:
        found, vehicle, passengers = await export(movement_id, vehicle_id, x_actor, x_purpose, "pdf")
        document = manifest_pdf(
            movement_id=movement_id,
            vehicle_id=vehicle_id,
            route=found["route_id"],
            departure=found["departure_date"].isoformat(),
            revision=vehicle["manifest_revision"],
            passengers=passengers,
            printed_at=datetime.now(UTC),
            printed_by=x_actor,
        )
        return Response(
            document,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{movement_id}-{vehicle_id}.pdf"'},
        )

    @api.get("/movements/{movement_id}/access-log")
    async def movement_access_log(movement_id: str) -> dict[str, Any]:
        async with rt.pool.acquire() as conn:
            return {"movement_id": movement_id, "exports": await store.access_log(conn, movement_id)}

    rt.http.include_router(api)
    return rt
