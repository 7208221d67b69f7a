"""Border clearance: one instance per checkpoint (a country's exit or entry post on a crossing).

It receives manifests before the vehicle arrives, knows when each case has reached the post
(its vehicle departed, or it was cleared at the checkpoint before), and records a decision per
person. A family is cleared together or held together.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from contracts import topics
from contracts.border import (
    BorderCrossingCleared,
    BorderCrossingRefused,
    CrossingRequirementLifted,
    CrossingRequirementPublished,
    PersonDecision,
)
from contracts.envelope import CloudEvent
from contracts.intake import EvidenceKind
from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged, Place
from contracts.transport import ManifestIssued, MovementDeparted
from corridor import statusguard
from corridor.mrz import MRZError
from corridor.mrz import parse as parse_mrz
from corridor.outbox import announce, enqueue
from corridor.runtime import ServiceRuntime
from corridor.settings import ServiceSettings
from services.border_clearance import domain, store

MIGRATIONS = Path(__file__).parent / "migrations"


class BorderSettings(ServiceSettings):
    http_port: int = 8010
    checkpoint: str = Field(default="kaz-zhibek-zholy-exit", pattern=r"^[a-z0-9-]+$")


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
    officer: str = Field(min_length=1, max_length=100)
    refusals: list[RefusalIn] = Field(default_factory=list)
    scans: list[ScanIn] = Field(default_factory=list)


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
    officer: str = Field(min_length=1, max_length=100)


class HoldEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document_number: str = Field(min_length=1, max_length=20, pattern=r"^[A-Z0-9]+$")
    reason_code: str = Field(pattern=r"^[a-z_]{3,40}$", examples=["court_order"])
    reason: str = Field(min_length=3, max_length=500)
    officer: str = Field(min_length=1, max_length=100)


def create_service(settings: BorderSettings | None = None) -> ServiceRuntime:
    settings = settings or BorderSettings()
    routes = RouteBook.load(settings.routes_file)
    found = routes.checkpoint(settings.checkpoint)
    if found is None:
        raise SystemExit(f"checkpoint {settings.checkpoint!r} is not on any route in {settings.routes_file}")
    _, checkpoint = found
    if checkpoint.country != settings.mission:
        raise SystemExit(
            f"checkpoint {checkpoint.checkpoint_id} belongs to {checkpoint.country}, not mission {settings.mission}"
        )
    instance = f"border-clearance.{checkpoint.checkpoint_id}"
    rt = ServiceRuntime(
        "border_clearance",
        settings,
        migrations=MIGRATIONS,
        instance=instance,
        title=f"Corridor border clearance at {checkpoint.post} ({checkpoint.country} {checkpoint.direction})",
    )
    rt.produces(topics.STATUS, topics.BORDER_DECISIONS, topics.REQUIREMENTS)
    place = Place(country=checkpoint.country, name=checkpoint.post, checkpoint_id=checkpoint.checkpoint_id)
    cleared_status = CaseStatus.EXIT_CLEARED if checkpoint.direction == "exit" else CaseStatus.ENTRY_CLEARED

    async def on_manifest(conn: asyncpg.Connection, event: CloudEvent) -> None:
        assert isinstance(event.data, ManifestIssued)
        if event.data.checkpoint_id == checkpoint.checkpoint_id:
            await store.save_manifest(conn, event.data)

    async def on_departed(conn: asyncpg.Connection, event: CloudEvent) -> None:
        d = event.data
        assert isinstance(d, MovementDeparted)
        for case_id in d.case_ids:
            await store.record_departure(conn, case_id, d.movement_id, d.vehicle_id)
            # Transport announced the departure before publishing it; this post's decision follows
            # it (or a crossing further on, if that was read first on another topic).
            if await statusguard.known(conn, case_id) in (None, CaseStatus.MANIFESTED):
                await statusguard.note(conn, case_id, CaseStatus.DEPARTED)

    async def on_cleared_elsewhere(conn: asyncpg.Connection, event: CloudEvent) -> None:
        d = event.data
        assert isinstance(d, BorderCrossingCleared)
        if d.checkpoint_id != checkpoint.checkpoint_id:
            await store.record_upstream_clearance(conn, d.case_id, d.checkpoint_id)
            await statusguard.note(
                conn,
                d.case_id,
                CaseStatus.EXIT_CLEARED if d.direction == "exit" else CaseStatus.ENTRY_CLEARED,
            )

    rt.consume(
        topics.manifests(checkpoint.checkpoint_id),
        topics.MOVEMENTS,
        topics.BORDER_DECISIONS,
        handlers={
            ManifestIssued: on_manifest,
            MovementDeparted: on_departed,
            BorderCrossingCleared: on_cleared_elsewhere,
        },
    )

    api = APIRouter(tags=["clearance"])

    @api.get("/checkpoint")
    async def describe_checkpoint() -> dict[str, Any]:
        return checkpoint.model_dump()

    @api.post("/requirements", status_code=201)
    async def publish_requirement(command: PublishRequirement) -> dict[str, Any]:
        """Publish a requirement at short notice; every affected case is re-evaluated and sees why."""
        requirement = CrossingRequirementPublished(
            requirement_id=uuid.uuid4(),
            checkpoint_id=checkpoint.checkpoint_id,
            country=checkpoint.country,
            post=checkpoint.post,
            code=command.code,
            description=command.description,
            evidence_kind=command.evidence_kind,
            valid_hours=command.valid_hours,
            effective_from=command.effective_from,
            published_at=datetime.now(UTC),
        )
        async with rt.pool.acquire() as conn, conn.transaction():
            await store.add_requirement(conn, requirement, command.officer)
            await enqueue(
                conn, requirement, topic=topics.REQUIREMENTS, source=rt.source, key=checkpoint.checkpoint_id
            )
        return {"requirement_id": str(requirement.requirement_id), "checkpoint_id": checkpoint.checkpoint_id}

    @api.delete("/requirements/{requirement_id}")
    async def lift_requirement(requirement_id: uuid.UUID) -> dict[str, Any]:
        now = datetime.now(UTC)
        async with rt.pool.acquire() as conn, conn.transaction():
            if not await store.lift_requirement(conn, requirement_id, now):
                raise HTTPException(404, f"no active requirement {requirement_id}")
            await enqueue(
                conn,
                CrossingRequirementLifted(
                    requirement_id=requirement_id, checkpoint_id=checkpoint.checkpoint_id, lifted_at=now
                ),
                topic=topics.REQUIREMENTS,
                source=rt.source,
                key=checkpoint.checkpoint_id,
            )
        return {"requirement_id": str(requirement_id), "lifted_at": now.isoformat()}

    @api.get("/requirements")
    async def list_requirements() -> dict[str, Any]:
        async with rt.pool.acquire() as conn:
            return {"checkpoint_id": checkpoint.checkpoint_id, "requirements": await store.requirements(conn)}

    @api.put("/hold-list", status_code=201)
    async def add_to_hold_list(entry: HoldEntry) -> dict[str, Any]:
        """A person this post must not clear, matched on the travel document number."""
        async with rt.pool.acquire() as conn:
            await store.hold(conn, entry.document_number, entry.reason_code, entry.reason, entry.officer)
        return {"document_number": entry.document_number, "held": True}

    @api.delete("/hold-list/{document_number}")
    async def remove_from_hold_list(document_number: str) -> dict[str, Any]:
        async with rt.pool.acquire() as conn:
            if not await store.release(conn, document_number):
                raise HTTPException(404, "not on the hold list")
        return {"document_number": document_number, "held": False}

    @api.get("/expected-arrivals")
    async def expected_arrivals() -> dict[str, Any]:
        async with rt.pool.acquire() as conn:
            return {
                "checkpoint_id": checkpoint.checkpoint_id,
                "vehicles": await store.expected_arrivals(conn),
            }

    @api.post("/movements/{movement_id}/vehicles/{vehicle_id}/clearance")
    async def clear_vehicle(movement_id: str, vehicle_id: str, command: ClearVehicle) -> dict[str, Any]:
        now = datetime.now(UTC)
        refusals = {
            r.person_id: domain.Refusal(r.person_id, r.reason_code, r.reason) for r in command.refusals
        }
        async with rt.pool.acquire() as conn, conn.transaction():
            manifest = await store.manifest(conn, movement_id, vehicle_id)
            if manifest is None:
                raise HTTPException(404, f"no manifest received for {movement_id}/{vehicle_id}")
            route = routes.get(manifest["route_id"])
            if route is None:
                raise HTTPException(409, f"route {manifest['route_id']} is not configured here")
            people = await store.passengers(conn, movement_id, vehicle_id)
            unknown = (set(refusals) | {scan.person_id for scan in command.scans}) - {
                p["person_id"] for p in people
            }
            if unknown:
                raise RequestValidationError(
                    [
                        {
                            "loc": ("body", "refusals"),
                            "msg": f"not on the manifest: {', '.join(sorted(map(str, unknown)))}",
                            "type": "value_error",
                        }
                    ]
                )
            checks: dict[uuid.UUID, str] = {}
            by_person = {p["person_id"]: p for p in people}
            for scan in command.scans:
                try:
                    zone = parse_mrz(scan.mrz, today=now.date())
                except MRZError as exc:
                    # A misread is the scanner's problem, not the traveller's: scan again.
                    raise RequestValidationError(
                        [
                            {
                                "loc": ("body", "scans", str(scan.person_id), exc.field),
                                "msg": exc.reason,
                                "type": "value_error",
                            }
                        ]
                    ) from exc
                mismatched = domain.document_mismatches(zone, by_person[scan.person_id])
                checks[scan.person_id] = (
                    "mismatch: " + ", ".join(mismatched) if mismatched else "matches manifest"
                )
                if mismatched and scan.person_id not in refusals:
                    refusals[scan.person_id] = domain.Refusal(
                        scan.person_id,
                        "document_mismatch",
                        f"document differs from the manifest: {', '.join(mismatched)}",
                    )
            for number, held in (await store.holds_for(conn, [p["document_number"] for p in people])).items():
                for p in people:
                    if p["document_number"] == number and p["person_id"] not in refusals:
                        refusals[p["person_id"]] = domain.Refusal(
                            p["person_id"], held["reason_code"], held["reason"]
                        )
            by_case: dict[uuid.UUID, list[asyncpg.Record]] = defaultdict(list)
            for p in people:
                by_case[p["case_id"]].append(p)
            previous = domain.previous_checkpoint(route, checkpoint.checkpoint_id)
            cleared: list[str] = []
            refused: list[str] = []
            waiting: dict[str, str] = {}
            for case_id, members in by_case.items():
                if await store.decided(conn, case_id):
                    waiting[str(case_id)] = "already decided"
                    continue
                reached = (
                    await store.has_departed(conn, case_id)
                    if previous is None
                    else await store.cleared_upstream(conn, case_id, previous)
                )
                if not reached:
                    waiting[str(case_id)] = (
                        "vehicle has not departed" if previous is None else f"not yet cleared at {previous}"
                    )
                    continue
                person_ids = [m["person_id"] for m in members]
                ok = domain.case_outcome(person_ids, refusals)
                for pid in person_ids:
                    refusal = refusals.get(pid)
                    await store.save_decision(
                        conn,
                        case_id=case_id,
                        person_id=pid,
                        movement_id=movement_id,
                        vehicle_id=vehicle_id,
                        cleared=ok,
                        reason_code=refusal.reason_code
                        if refusal
                        else (None if ok else "family_member_refused"),
                        reason=refusal.reason if refusal else None,
                        officer=command.officer,
                        at=now,
                        document_check=checks.get(pid),
                    )
                decisions = [
                    PersonDecision(
                        person_id=pid,
                        cleared=ok,
                        reason_code=refusals[pid].reason_code if pid in refusals else None,
                    )
                    for pid in person_ids
                ]
                event_model = BorderCrossingCleared if ok else BorderCrossingRefused
                first_refusal = next((refusals[p] for p in person_ids if p in refusals), None)
                await announce(
                    conn,
                    CaseStatusChanged(
                        case_id=case_id,
                        status=cleared_status if ok else CaseStatus.REFUSED_AT_BORDER,
                        occurred_at=now,
                        members=len(person_ids),
                        place=place,
                        movement_id=movement_id,
                        reason_code=None if ok else first_refusal.reason_code if first_refusal else None,
                        # The officer's words stay in this post's records: they may name a person.
                        reason=None
                        if ok
                        else f"Refused {checkpoint.direction} at {checkpoint.post}; the family is held together",
                    ),
                    source=rt.source,
                )
                await enqueue(
                    conn,
                    event_model(
                        case_id=case_id,
                        checkpoint_id=checkpoint.checkpoint_id,
                        country=checkpoint.country,
                        crossing=checkpoint.crossing,
                        direction=checkpoint.direction,
                        movement_id=movement_id,
                        vehicle_id=vehicle_id,
                        decisions=decisions,
                        decided_at=now,
                    ),
                    topic=topics.BORDER_DECISIONS,
                    source=rt.source,
                )
                (cleared if ok else refused).append(str(case_id))
            if not cleared and not refused:
                raise HTTPException(
                    409, {"message": "nobody on this vehicle can be decided now", "waiting": waiting}
                )
        return {
            "checkpoint_id": checkpoint.checkpoint_id,
            "cleared": cleared,
            "refused": refused,
            "waiting": waiting,
        }

    rt.http.include_router(api)
    return rt
