"""The post's HTTP API: each route parses its input, runs its use case in a unit of work and
answers with a declared model. Domain errors (``services.border_clearance.domain``) are answered
by the runtime (404, 409, 422 naming the field)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from contracts.intake import EvidenceKind
from contracts.routes import Checkpoint
from corridor.auth import Principal, Role, allow
from corridor.http import Timestamp
from services.border_clearance import usecases
from services.border_clearance.domain import Refusal, Scan
from services.border_clearance.usecases import Context, Unit

# --- what comes in --------------------------------------------------------------------------


class RefusalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: uuid.UUID
    reason_code: str = Field(pattern=r"^[a-z_]{3,40}$", examples=["document_mismatch"])
    reason: str = Field(min_length=3, max_length=500, description="Kept in this post's records only")


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: uuid.UUID
    mrz: str = Field(
        min_length=88, max_length=100, description="The document's machine-readable zone as read"
    )


class ClearVehicle(BaseModel):
    """Clear everyone on a vehicle who has reached this post, except the people refused: by the
    officer, by a document that does not match the manifest, or by the post's hold list."""

    model_config = ConfigDict(extra="forbid")
    refusals: list[RefusalIn] = Field(default_factory=list)
    scans: list[ScanIn] = Field(default_factory=list)

    def command(self, movement_id: str, vehicle_id: str, officer: str) -> usecases.ClearVehicle:
        return usecases.ClearVehicle(
            movement_id=movement_id,
            vehicle_id=vehicle_id,
            officer=officer,
            refusals=tuple(Refusal(r.person_id, r.reason_code, r.reason) for r in self.refusals),
            scans=tuple(Scan(s.person_id, s.mrz) for s in self.scans),
        )


class PublishRequirement(BaseModel):
    """A new requirement at this post, for crossings from ``effective_from`` on."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[a-z0-9_]{3,60}$", examples=["negative_covid19_test"])
    description: str = Field(
        min_length=3, max_length=500, examples=["a negative COVID-19 test taken within 72 hours"]
    )
    evidence_kind: EvidenceKind
    valid_hours: int = Field(ge=1, le=24 * 60)
    effective_from: date

    def command(self, officer: str) -> usecases.PublishRequirement:
        return usecases.PublishRequirement(**self.model_dump(), officer=officer)


class HoldEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document_number: str = Field(min_length=1, max_length=20, pattern=r"^[A-Z0-9]+$")
    reason_code: str = Field(pattern=r"^[a-z_]{3,40}$", examples=["court_order"])
    reason: str = Field(min_length=3, max_length=500)

    def command(self, officer: str) -> usecases.HoldDocument:
        return usecases.HoldDocument(**self.model_dump(), officer=officer)


# --- what goes out (read from the use cases' results) -------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class RequirementPublishedOut(_Out):
    requirement_id: uuid.UUID
    checkpoint_id: str


class RequirementLiftedOut(_Out):
    requirement_id: uuid.UUID
    lifted_at: Timestamp


class RequirementOut(_Out):
    requirement_id: uuid.UUID
    code: str
    description: str
    evidence_kind: EvidenceKind
    valid_hours: int
    effective_from: date
    published_by: str
    published_at: Timestamp
    lifted_at: Timestamp | None = Field(description="When it was lifted; null while it applies")


class RequirementsOut(_Out):
    checkpoint_id: str
    requirements: list[RequirementOut]


class HoldListOut(_Out):
    document_number: str
    held: bool


class ExpectedVehicleOut(_Out):
    movement_id: str
    vehicle_id: str
    manifest_revision: int
    departure_date: date
    people: int
    cases: int
    decided: int = Field(description="People on this manifest decided at this post")


class ExpectedArrivalsOut(_Out):
    checkpoint_id: str
    vehicles: list[ExpectedVehicleOut]


class ClearanceOut(_Out):
    checkpoint_id: str
    cleared: list[uuid.UUID] = Field(description="Cases cleared now")
    refused: list[uuid.UUID] = Field(description="Cases refused now: the whole family is held")
    waiting: dict[uuid.UUID, str] = Field(description="Cases not decided now, and why")


class Problem(BaseModel):
    """A command the post refuses (404, 409): why, as text."""

    detail: str


class WaitingDetail(BaseModel):
    message: str
    waiting: dict[uuid.UUID, str] = Field(description="Each case on the vehicle, and why it waits")


class NobodyToDecide(BaseModel):
    """409: the route is not configured here (text), or nobody on the vehicle can be decided now."""

    detail: WaitingDetail | str


# Who may do what here (corridor.auth): the post's own officers (their token names this checkpoint),
# and for what carries no personal data, whoever watches operations in this mission.
AT_THE_POST = allow(Role.BORDER_OFFICER)
OVERVIEW = allow(Role.BORDER_OFFICER, Role.OPERATIONS_VIEWER)
Officer = Annotated[Principal, Depends(AT_THE_POST)]


def router(ctx: Context, units: Callable[[], AbstractAsyncContextManager[Unit]]) -> APIRouter:
    """This post's routes; ``units()`` opens a unit of work (``ServiceRuntime.units``). The officer
    in every record is the token's subject."""
    api = APIRouter(tags=["clearance"])

    @api.get("/checkpoint", response_model=Checkpoint, dependencies=[Depends(OVERVIEW)])
    async def describe_checkpoint() -> Checkpoint:
        return ctx.checkpoint

    @api.post("/requirements", status_code=201, response_model=RequirementPublishedOut)
    async def publish_requirement(
        command: PublishRequirement, officer: Officer
    ) -> usecases.RequirementPublished:
        """Publish a requirement at short notice; every affected case is re-evaluated and sees why."""
        async with units() as uow:
            return await usecases.publish_requirement(command.command(officer.subject), uow, ctx)

    @api.delete(
        "/requirements/{requirement_id}",
        response_model=RequirementLiftedOut,
        responses={404: {"model": Problem, "description": "No active requirement of that id"}},
        dependencies=[Depends(AT_THE_POST)],
    )
    async def lift_requirement(requirement_id: uuid.UUID) -> usecases.RequirementLifted:
        async with units() as uow:
            return await usecases.lift_requirement(requirement_id, uow, ctx)

    @api.get("/requirements", response_model=RequirementsOut, dependencies=[Depends(OVERVIEW)])
    async def list_requirements() -> usecases.Requirements:
        async with units() as uow:
            return await usecases.requirements(uow, ctx)

    @api.put("/hold-list", status_code=201, response_model=HoldListOut)
    async def add_to_hold_list(entry: HoldEntry, officer: Officer) -> usecases.HoldListEntry:
        """A person this post must not clear, matched on the travel document number."""
        async with units() as uow:
            return await usecases.hold_document(entry.command(officer.subject), uow)

    @api.delete(
        "/hold-list/{document_number}",
        response_model=HoldListOut,
        responses={404: {"model": Problem, "description": "Not on the hold list"}},
        dependencies=[Depends(AT_THE_POST)],
    )
    async def remove_from_hold_list(document_number: str) -> usecases.HoldListEntry:
        async with units() as uow:
            return await usecases.release_document(document_number, uow)

    @api.get("/expected-arrivals", response_model=ExpectedArrivalsOut, dependencies=[Depends(OVERVIEW)])
    async def expected_arrivals() -> usecases.ExpectedArrivals:
        async with units() as uow:
            return await usecases.expected_arrivals(uow, ctx)

    @api.post(
        "/movements/{movement_id}/vehicles/{vehicle_id}/clearance",
        response_model=ClearanceOut,
        responses={
            404: {"model": Problem, "description": "No manifest received for this vehicle"},
            409: {"model": NobodyToDecide, "description": "Nobody on the vehicle can be decided now"},
        },
    )
    async def clear_vehicle(
        movement_id: str, vehicle_id: str, command: ClearVehicle, officer: Officer
    ) -> usecases.Clearance:
        async with units() as uow:
            return await usecases.clear_vehicle(
                command.command(movement_id, vehicle_id, officer.subject), uow, ctx
            )

    return api
