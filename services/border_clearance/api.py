"""The post's HTTP API: each route parses its input, runs its use case in a unit of work and
answers with a declared model. Domain errors (``services.border_clearance.domain``) are answered
by the runtime (404, 409, 422 naming the field)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.intake import EvidenceKind
from contracts.routes import Checkpoint
from corridor import idempotency
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


REFERENCE = r"^[A-Za-z0-9._:-]+$"


class PublishRequirement(BaseModel):
    """A new requirement at this post, for crossings from ``effective_from`` on (to
    ``effective_until``, when given)."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[a-z0-9_]{3,60}$", examples=["negative_covid19_test"])
    description: str = Field(
        min_length=3, max_length=500, examples=["a negative COVID-19 test taken within 72 hours"]
    )
    evidence_kind: EvidenceKind
    valid_hours: int = Field(ge=1, le=24 * 60)
    effective_from: date
    effective_until: date | None = Field(
        default=None,
        description="Last travel date it applies to (on or after effective_from); without it, every "
        "later date until it is lifted",
    )
    reference: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=REFERENCE,
        description="The post's own reference (a circular's number): publishing the same reference "
        "again creates nothing and answers the requirement published first (200); read it back with "
        "GET /requirements?reference=...",
        examples=["circular-2026-118"],
    )

    @model_validator(mode="after")
    def _a_window(self) -> PublishRequirement:
        if self.effective_until is not None and self.effective_until < self.effective_from:
            raise ValueError("effective_until is before effective_from")
        return self

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
    reference: str | None
    created: bool = Field(description="False: published before under this reference (200)")


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
    effective_until: date | None = Field(description="Last travel date it applies to; null: no end")
    published_by: str
    published_at: Timestamp
    lifted_at: Timestamp | None = Field(description="When it was lifted; null while it applies")
    reference: str | None = Field(description="The post's own reference, when it gave one")


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

    @api.post(
        "/requirements",
        status_code=201,
        response_model=RequirementPublishedOut,
        responses={
            200: {"model": RequirementPublishedOut, "description": "Published before under this reference"},
            409: {"description": "Another requirement was published under this reference (reference_reused)"},
        },
        openapi_extra=idempotency.keyed(
            natural="With a reference: publishing it again creates nothing and answers 200 with the "
            "requirement published first. Without one, send an Idempotency-Key."
        ),
    )
    async def publish_requirement(
        command: PublishRequirement,
        request: Request,
        officer: Officer,
        idempotency_key: idempotency.Key = None,
    ) -> Response:
        """Publish a requirement at short notice; every affected case is re-evaluated and sees why."""

        async def publish(uow: Unit) -> idempotency.Answer:
            done = await usecases.publish_requirement(command.command(officer.subject), uow, ctx)
            return idempotency.Answer(
                RequirementPublishedOut.model_validate(done), 201 if done.created else 200
            )

        return await idempotency.run(request, idempotency_key, officer, units, publish)

    @api.delete(
        "/requirements/{requirement_id}",
        response_model=RequirementLiftedOut,
        responses={404: {"description": "No active requirement of that id"}},
        openapi_extra=idempotency.keyed(),
    )
    async def lift_requirement(
        requirement_id: uuid.UUID, request: Request, officer: Officer, idempotency_key: idempotency.Key = None
    ) -> Response:
        """Lift a requirement. Once lifted a repeat is 404: with an Idempotency-Key it is answered
        the lifting (or read the requirement's ``lifted_at`` with GET /requirements)."""

        async def lift(uow: Unit) -> idempotency.Answer:
            lifted = await usecases.lift_requirement(requirement_id, uow, ctx)
            return idempotency.Answer(RequirementLiftedOut.model_validate(lifted))

        return await idempotency.run(request, idempotency_key, officer, units, lift)

    @api.get("/requirements", response_model=RequirementsOut, dependencies=[Depends(OVERVIEW)])
    async def list_requirements(
        reference: Annotated[
            str | None, Query(max_length=100, pattern=REFERENCE, description="Only the one of this reference")
        ] = None,
    ) -> usecases.Requirements:
        async with units() as uow:
            return await usecases.requirements(uow, ctx, reference)

    @api.put(
        "/hold-list",
        status_code=201,
        response_model=HoldListOut,
        openapi_extra=idempotency.natural(
            "The document number: a repeat replaces the entry with the same one and answers the same."
        ),
    )
    async def add_to_hold_list(entry: HoldEntry, officer: Officer) -> usecases.HoldListEntry:
        """A person this post must not clear, matched on the travel document number."""
        async with units() as uow:
            return await usecases.hold_document(entry.command(officer.subject), uow)

    @api.delete(
        "/hold-list/{document_number}",
        response_model=HoldListOut,
        responses={404: {"description": "Not on the hold list"}},
        openapi_extra=idempotency.keyed(),
    )
    async def remove_from_hold_list(
        document_number: str, request: Request, officer: Officer, idempotency_key: idempotency.Key = None
    ) -> Response:
        """Take a document off the hold list. Once off, a repeat is 404: with an Idempotency-Key it
        is answered the removal."""

        async def release(uow: Unit) -> idempotency.Answer:
            released = await usecases.release_document(document_number, uow)
            return idempotency.Answer(HoldListOut.model_validate(released))

        return await idempotency.run(request, idempotency_key, officer, units, release)

    @api.get("/expected-arrivals", response_model=ExpectedArrivalsOut, dependencies=[Depends(OVERVIEW)])
    async def expected_arrivals() -> usecases.ExpectedArrivals:
        async with units() as uow:
            return await usecases.expected_arrivals(uow, ctx)

    @api.post(
        "/movements/{movement_id}/vehicles/{vehicle_id}/clearance",
        response_model=ClearanceOut,
        responses={
            404: {"description": "No manifest received for this vehicle (no_manifest)"},
            409: {
                "description": "Nobody on the vehicle can be decided now (nothing_to_decide; waiting: each "
                "case and why it waits), or the route is not configured here (route_not_configured)"
            },
        },
        openapi_extra=idempotency.keyed(
            natural="The movement, vehicle and case: a case is decided once at this post, so a repeat decides "
            "nobody again (409, each case 'already decided'). With an Idempotency-Key a repeat is "
            "answered the first clearance itself."
        ),
    )
    async def clear_vehicle(
        movement_id: str,
        vehicle_id: str,
        command: ClearVehicle,
        request: Request,
        officer: Officer,
        idempotency_key: idempotency.Key = None,
    ) -> Response:
        async def clear(uow: Unit) -> idempotency.Answer:
            done = await usecases.clear_vehicle(
                command.command(movement_id, vehicle_id, officer.subject), uow, ctx
            )
            return idempotency.Answer(ClearanceOut.model_validate(done))

        return await idempotency.run(request, idempotency_key, officer, units, clear)

    return api
