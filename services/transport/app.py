"""Transport: plans movements, issues manifests to the crossing points, records departures and
arrival. A case is "arrived" once it is cleared at the last checkpoint of its route."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from contracts import topics
from contracts.border import BorderCrossingCleared, BorderCrossingRefused
from contracts.eligibility import EligibilityDecided
from contracts.envelope import CloudEvent
from contracts.intake import CaseRegistered
from contracts.routes import Route, RouteBook
from contracts.status import CaseStatus, CaseStatusChanged, Place
from contracts.transport import ManifestIssued, MovementDeparted
from corridor.outbox import enqueue
from corridor.runtime import ServiceRuntime
from corridor.settings import ServiceSettings
from services.transport import domain, store

MIGRATIONS = Path(__file__).parent / "migrations"


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


def create_service(settings: ServiceSettings | None = None) -> ServiceRuntime:
    settings = settings or TransportSettings()
    routes = RouteBook.load(settings.routes_file)
    rt = ServiceRuntime("transport", settings, migrations=MIGRATIONS, title="Corridor transport")
    rt.produces(
        topics.STATUS,
        topics.MOVEMENTS,
        *(topics.manifests(c.checkpoint_id) for r in routes.routes for c in r.checkpoints),
    )

    def route_of(route_id: str) -> Route:
        route = routes.get(route_id)
        if route is None:
            raise HTTPException(422, f"unknown route {route_id!r}")
        return route

    async def status(
        conn: asyncpg.Connection,
        case_id: uuid.UUID,
        new_status: CaseStatus,
        members: int,
        place: Place,
        movement_id: str,
        at: datetime,
        reason_code: str | None = None,
        reason: str | None = None,
    ) -> None:
        await enqueue(
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
            topic=topics.STATUS,
            source=rt.source,
        )

    async def issue_manifests(
        conn: asyncpg.Connection,
        route: Route,
        movement_id: str,
        vehicle: asyncpg.Record,
        departure: date,
        at: datetime,
    ) -> None:
        passengers = await store.passengers_on(conn, movement_id, vehicle["vehicle_id"])
        # One topic per checkpoint: each border post's mission receives only its own manifests.
        for cp in route.checkpoints:
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
        assert isinstance(event.data, CaseRegistered)
        await store.save_case(conn, event.data)

    async def on_eligibility_decided(conn: asyncpg.Connection, event: CloudEvent) -> None:
        d = event.data
        assert isinstance(d, EligibilityDecided)
        await store.save_decision(conn, d.case_id, d.version, d.outcome.value, d.priority)

    async def on_crossing(conn: asyncpg.Connection, event: CloudEvent) -> None:
        d = event.data
        assert isinstance(d, BorderCrossingCleared | BorderCrossingRefused)
        cleared = isinstance(d, BorderCrossingCleared)
        await store.record_crossing(conn, d.case_id, d.checkpoint_id, cleared, d.decided_at)
        assigned = await store.assignment(conn, d.case_id)
        if assigned is None:
            return
        if not cleared:
            await store.set_assignment_state(conn, d.case_id, "refused")
            return
        route = routes.get(assigned["route_id"])
        if route is None or route.checkpoints[-1].checkpoint_id != d.checkpoint_id:
            return
        await store.set_assignment_state(conn, d.case_id, "arrived")
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
            cases = await store.ready_cases(conn, route.route_id, command.departure_date)
            try:
                placements = domain.plan(
                    cases, [domain.Vehicle(v.vehicle_id, v.capacity) for v in command.vehicles]
                )
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc
            await store.create_movement(
                conn,
                movement_id,
                route.route_id,
                command.departure_date,
                [(v.vehicle_id, v.capacity, uuid.uuid4()) for v in command.vehicles],
            )
            size = {c.case_id: c.members for c in cases}
            for p in placements:
                if p.vehicle_id is None:
                    continue
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
            cases = await store.ready_cases(conn, route_id, departure_date)
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

    @api.post("/movements/{movement_id}/vehicles/{vehicle_id}/departure")
    async def record_departure(movement_id: str, vehicle_id: str, command: RecordDeparture) -> dict[str, Any]:
        now = datetime.now(UTC)
        async with rt.pool.acquire() as conn, conn.transaction():
            found = await store.movement(conn, movement_id)
            if found is None:
                raise HTTPException(404, f"no movement {movement_id}")
            route = route_of(found["route_id"])
            vehicle = next(
                (v for v in await store.vehicles(conn, movement_id) if v["vehicle_id"] == vehicle_id), None
            )
            if vehicle is None:
                raise HTTPException(404, f"no vehicle {vehicle_id} on {movement_id}")
            if vehicle["departed_at"] is not None:
                raise HTTPException(409, f"{vehicle_id} departed at {vehicle['departed_at'].isoformat()}")
            on_board = [
                a
                for a in await store.assignments(conn, movement_id)
                if a["vehicle_id"] == vehicle_id and a["state"] == "manifested"
            ]
            unknown = set(command.no_shows) - {a["case_id"] for a in on_board}
            if unknown:
                raise HTTPException(
                    422, f"not on {vehicle_id}'s manifest: {', '.join(sorted(map(str, unknown)))}"
                )
            gathering = Place(country=route.gathering_point.country, name=route.gathering_point.name)
            departed: list[uuid.UUID] = []
            for a in on_board:
                if a["case_id"] in command.no_shows:
                    await store.set_assignment_state(conn, a["case_id"], "no_show")
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
                else:
                    await store.set_assignment_state(conn, a["case_id"], "departed")
                    await status(
                        conn, a["case_id"], CaseStatus.DEPARTED, a["seats"], gathering, movement_id, now
                    )
                    departed.append(a["case_id"])
            if command.no_shows:
                # The border posts must not expect people who did not board.
                await store.bump_manifest(conn, movement_id, vehicle_id)
                refreshed = next(
                    v for v in await store.vehicles(conn, movement_id) if v["vehicle_id"] == vehicle_id
                )
                await issue_manifests(conn, route, movement_id, refreshed, found["departure_date"], now)
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
        }

    rt.http.include_router(api)
    return rt
