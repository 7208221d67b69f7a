"""Transport's HTTP API: coordinators plan movements and board vehicles, drivers report progress,
staff export manifests. Each route parses the request, calls its use case in a unit of work and
answers with its documented response model; the use cases raise the domain's errors, which the
runtime answers (``corridor.errors``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import date
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from corridor import idempotency
from corridor.auth import Principal, Purpose, Role, allow
from corridor.http import Timestamp
from services.transport import commands, usecases
from services.transport.domain import (
    ManifestExport,
    MovementStatus,
    MovementVehicle,
    MovementView,
    Placement,
    SeatState,
)
from services.transport.usecases import Context, Unit

# --- requests ------------------------------------------------------------------------------------


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

    def command(self) -> commands.PlanMovement:
        return commands.PlanMovement(
            route_id=self.route_id,
            departure_date=self.departure_date,
            vehicles=tuple(commands.VehicleSpec(v.vehicle_id, v.capacity) for v in self.vehicles),
            movement_id=self.movement_id,
        )


class RecordDeparture(BaseModel):
    """Record a vehicle's departure; cases not at boarding are no-shows and leave the manifest."""

    model_config = ConfigDict(extra="forbid")
    no_shows: list[uuid.UUID] = Field(default_factory=list)
    fill_freed_seats: bool = Field(
        default=True, description="Offer freed seats to cases waiting for that day"
    )

    def command(self, movement_id: str, vehicle_id: str) -> commands.RecordDeparture:
        return commands.RecordDeparture(movement_id, vehicle_id, tuple(self.no_shows), self.fill_freed_seats)


class RecordProgress(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checkpoint_id: str = Field(pattern=r"^[a-z0-9-]+$")
    stage: Literal["arrived", "departed"]

    def command(self, movement_id: str, vehicle_id: str) -> commands.RecordProgress:
        return commands.RecordProgress(movement_id, vehicle_id, self.checkpoint_id, self.stage)


# --- answers -------------------------------------------------------------------------------------


class SeatOut(BaseModel):
    case_id: uuid.UUID
    seats: int
    state: SeatState
    explanation: str = Field(description="Why the case was placed here")


class VehicleOut(BaseModel):
    vehicle_id: str
    capacity: int
    escort_seat: bool = Field(description="A seat is kept for an escort")
    manifest_revision: int
    departed_at: Timestamp | None
    cases: list[SeatOut]
    seats_taken: int = Field(description="Seats of the cases on it, no-shows aside")

    @classmethod
    def of(cls, view: MovementView, v: MovementVehicle) -> VehicleOut:
        return cls(
            vehicle_id=v.vehicle_id,
            capacity=v.capacity,
            escort_seat=v.escort_seat,
            manifest_revision=v.manifest_revision,
            departed_at=v.departed_at,
            cases=[
                SeatOut(case_id=s.case_id, seats=s.seats, state=s.state, explanation=s.explanation)
                for s in view.seats_on(v.vehicle_id)
            ],
            seats_taken=view.seats_taken(v.vehicle_id),
        )


class MovementOut(BaseModel):
    movement_id: str
    route_id: str
    departure_date: date
    status: MovementStatus
    vehicles: list[VehicleOut]

    @classmethod
    def of(cls, view: MovementView, **more: Any) -> Self:
        m = view.movement
        return cls(
            movement_id=m.movement_id,
            route_id=m.route_id,
            departure_date=m.departure_date,
            status=m.status,
            vehicles=[VehicleOut.of(view, v) for v in view.vehicles],
            **more,
        )


class PlacementOut(BaseModel):
    case_id: uuid.UUID
    explanation: str

    @classmethod
    def of(cls, p: Placement) -> PlacementOut:
        return cls(case_id=p.case_id, explanation=p.explanation)


class PlannedMovementOut(MovementOut):
    not_placed: list[PlacementOut] = Field(description="Cases ready that day that did not fit, and why")
    created: bool = Field(
        default=True,
        description="False: planned before under this movement_id (200); the movement as it stands, and "
        "not_placed the cases of that day no movement has taken",
    )


class ReadyCaseOut(BaseModel):
    case_id: uuid.UUID
    members: int
    priority: int


class ReadyCasesOut(BaseModel):
    route_id: str
    departure_date: date
    cases: list[ReadyCaseOut]


class DepartureOut(BaseModel):
    movement_id: str
    vehicle_id: str
    departed: list[uuid.UUID] = Field(description="Cases on board as the vehicle left")
    no_shows: list[uuid.UUID]
    seats_offered: list[PlacementOut] = Field(description="Cases given a seat freed at boarding")

    @classmethod
    def of(cls, d: usecases.Departure) -> DepartureOut:
        return cls(
            movement_id=d.movement_id,
            vehicle_id=d.vehicle_id,
            departed=d.departed,
            no_shows=d.no_shows,
            seats_offered=[PlacementOut.of(p) for p in d.seats_offered],
        )


class ProgressOut(BaseModel):
    movement_id: str
    vehicle_id: str
    checkpoint_id: str
    stage: Literal["arrived", "departed"]


class ExportOut(BaseModel):
    accessed_at: Timestamp
    actor: str
    purpose: str
    vehicle_id: str
    format: str

    @classmethod
    def of(cls, e: ManifestExport) -> ExportOut:
        return cls(
            accessed_at=e.accessed_at,
            actor=e.actor,
            purpose=e.purpose,
            vehicle_id=e.vehicle_id,
            format=e.format,
        )


class AccessLogOut(BaseModel):
    movement_id: str
    exports: list[ExportOut]


def _file(media_type: str, what: str, **schema: str) -> dict[int | str, dict[str, object]]:
    """A file answer, documented by its media type."""
    return {200: {"description": what, "content": {media_type: {"schema": {"type": "string", **schema}}}}}


# --- routes --------------------------------------------------------------------------------------


# The refusals of the use cases a route calls (corridor.errors), each a problem (corridor.problems).
NO_MOVEMENT: dict[int | str, dict[str, object]] = {
    404: {"description": "No such movement (no_such_movement)"}
}
NO_VEHICLE: dict[int | str, dict[str, object]] = {
    404: {"description": "No such movement or vehicle (no_such_movement, no_such_vehicle)"}
}

# Who may do what here (corridor.auth): one rule per route, written into the OpenAPI document.
COORDINATION = allow(Role.TRANSPORT_COORDINATOR)
"""Planning, boarding, progress and the manifests (personal data): the transport coordinators."""
OVERVIEW = allow(Role.TRANSPORT_COORDINATOR, Role.OPERATIONS_VIEWER)
"""Movements and seats by case id and count: no personal data."""
AUDIT = allow(Role.AUDITOR)
"""Who exported whose manifest: auditors only."""

Coordinator = Annotated[Principal, Depends(COORDINATION)]
WhyHeader = Annotated[Purpose, Header(description="Why the manifest is exported (a fixed list)")]


def router(units: Callable[[], AbstractAsyncContextManager[Unit]], ctx: Context) -> APIRouter:
    """The API on units of work from ``units`` (``rt.units(TransportStore)``)."""
    api = APIRouter(tags=["movements"])

    @api.post(
        "/movements",
        status_code=201,
        response_model=PlannedMovementOut,
        responses={
            200: {"model": PlannedMovementOut, "description": "Planned before under this movement_id"},
            409: {"description": "Another plan exists under this movement_id (movement_exists)"},
        },
        openapi_extra=idempotency.keyed(
            natural="With a movement_id: the same plan sent again creates nothing and answers 200 with the "
            "movement (created false); a different plan under that id is 409. Without one, send "
            "an Idempotency-Key."
        ),
    )
    async def plan_movement(
        command: PlanMovement, request: Request, caller: Coordinator, idempotency_key: idempotency.Key = None
    ) -> Response:
        async def plan(uow: Unit) -> idempotency.Answer:
            planned = await usecases.plan_movement(command.command(), uow, ctx)
            out = PlannedMovementOut.of(
                planned.view,
                not_placed=[PlacementOut.of(p) for p in planned.not_placed],
                created=planned.created,
            )
            return idempotency.Answer(out, 201 if planned.created else 200)

        return await idempotency.run(request, idempotency_key, caller, units, plan)

    @api.get("/ready-cases", response_model=ReadyCasesOut, dependencies=[Depends(OVERVIEW)])
    async def ready_cases(route_id: str, departure_date: date) -> ReadyCasesOut:
        """Eligible cases for that route and day that no movement has taken yet."""
        async with units() as uow:
            ready = await usecases.ready_cases(route_id, departure_date, uow, ctx)
        return ReadyCasesOut(
            route_id=ready.route_id,
            departure_date=ready.departure_date,
            cases=[
                ReadyCaseOut(case_id=c.case_id, members=c.members, priority=c.priority) for c in ready.cases
            ],
        )

    @api.get(
        "/movements/{movement_id}",
        response_model=MovementOut,
        responses=NO_MOVEMENT,
        dependencies=[Depends(OVERVIEW)],
    )
    async def get_movement(movement_id: str) -> MovementOut:
        async with units() as uow:
            return MovementOut.of(await usecases.movement(movement_id, uow))

    @api.post(
        "/movements/{movement_id}/vehicles/{vehicle_id}/departure",
        response_model=DepartureOut,
        responses={
            **NO_VEHICLE,
            409: {
                "description": "Departed before with other no-shows (departed): its departure member says how"
            },
        },
        dependencies=[Depends(COORDINATION)],
        openapi_extra=idempotency.natural(
            "The movement and vehicle: a vehicle departs once. The same departure sent again changes "
            f"nothing and is answered what the first decided (with {idempotency.REPLAYED}: true); "
            "one with other no-shows is 409 with that outcome. Read it with GET .../departure."
        ),
    )
    async def record_departure(
        movement_id: str, vehicle_id: str, command: RecordDeparture, response: Response
    ) -> DepartureOut:
        """Boarding against the manifest: no-shows leave it, their seats go to the next eligible
        cases waiting for that day, the posts get the amended manifest, and the vehicle leaves."""

        async def depart() -> Any:
            async with units() as uow:
                return await usecases.record_departure(command.command(movement_id, vehicle_id), uow, ctx)

        d = await idempotency.retrying_conflicts(depart)
        if d.replayed:
            response.headers[idempotency.REPLAYED] = "true"
        return DepartureOut.of(d)

    @api.get(
        "/movements/{movement_id}/vehicles/{vehicle_id}/departure",
        response_model=DepartureOut,
        responses={404: {"description": "No such movement or vehicle, or it has not departed (not_found)"}},
        dependencies=[Depends(OVERVIEW)],
    )
    async def read_departure(movement_id: str, vehicle_id: str) -> DepartureOut:
        """What the vehicle's departure decided: who left, who did not show, who got a freed seat."""
        async with units() as uow:
            return DepartureOut.of(await usecases.departure(movement_id, vehicle_id, uow))

    @api.post(
        "/movements/{movement_id}/vehicles/{vehicle_id}/progress",
        status_code=201,
        response_model=ProgressOut,
        responses={**NO_VEHICLE, 409: {"description": "The vehicle has not left (not_departed)"}},
        dependencies=[Depends(COORDINATION)],
        openapi_extra=idempotency.natural(
            "The movement, vehicle, checkpoint and stage: a report repeated changes nothing and is "
            "answered the same."
        ),
    )
    async def record_progress(movement_id: str, vehicle_id: str, command: RecordProgress) -> ProgressOut:
        """The vehicle reached or left a checkpoint on its route (reported by the escort or driver)."""

        async def progress() -> None:
            async with units() as uow:
                await usecases.record_progress(command.command(movement_id, vehicle_id), uow, ctx)

        await idempotency.retrying_conflicts(progress)
        return ProgressOut(movement_id=movement_id, vehicle_id=vehicle_id, **command.model_dump())

    async def export(
        movement_id: str, vehicle_id: str, actor: str, purpose: str, fmt: Literal["csv", "pdf"]
    ) -> Response:
        async with units() as uow:
            document = await usecases.export_manifest(
                commands.ExportManifest(movement_id, vehicle_id, actor, purpose, fmt), uow, ctx
            )
        return Response(
            document.content,
            media_type=document.media_type,
            headers={"Content-Disposition": f'attachment; filename="{document.filename}"'},
        )

    @api.get(
        "/movements/{movement_id}/vehicles/{vehicle_id}/manifest.csv",
        response_class=Response,
        responses={**_file("text/csv", "The manifest, one row per person"), **NO_VEHICLE},
    )
    async def manifest_as_csv(
        movement_id: str,
        vehicle_id: str,
        caller: Coordinator,
        x_purpose: WhyHeader,
    ) -> Response:
        """The current manifest with personal data; every export is recorded with who (the token's
        subject) and why (``X-Purpose``)."""
        return await export(movement_id, vehicle_id, caller.subject, x_purpose, "csv")

    @api.get(
        "/movements/{movement_id}/vehicles/{vehicle_id}/manifest.pdf",
        response_class=Response,
        responses={**_file("application/pdf", "The manifest, printable", format="binary"), **NO_VEHICLE},
    )
    async def manifest_as_pdf(
        movement_id: str,
        vehicle_id: str,
        caller: Coordinator,
        x_purpose: WhyHeader,
    ) -> Response:
        return await export(movement_id, vehicle_id, caller.subject, x_purpose, "pdf")

    @api.get(
        "/movements/{movement_id}/access-log",
        tags=["audit"],
        response_model=AccessLogOut,
        dependencies=[Depends(AUDIT)],
    )
    async def movement_access_log(movement_id: str) -> AccessLogOut:
        async with units() as uow:
            exports = await usecases.access_log(movement_id, uow)
        return AccessLogOut(movement_id=movement_id, exports=[ExportOut.of(e) for e in exports])

    return api
