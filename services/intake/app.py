"""Intake: registers cases over HTTP and keeps each case's timeline from the status stream."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field

from contracts import topics
from contracts.envelope import CloudEvent, EnvelopeError
from contracts.intake import CaseWithdrawn, HealthEvidenceRecorded
from contracts.missions import CaseStatusReported
from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged
from corridor import statusguard
from corridor.consumer import Rejected, RetryLater
from corridor.inbox import first_delivery
from corridor.outbox import enqueue
from corridor.runtime import ServiceRuntime
from corridor.settings import ServiceSettings
from services.intake import bulk, domain, registration, store

MIGRATIONS = Path(__file__).parent / "migrations"
INBOUND = "intake-inbound"


class IntakeSettings(ServiceSettings):
    http_port: int = 8001
    withdrawal_wait_seconds: float = Field(
        default=10.0, ge=0, le=60, description="How long a withdrawal request waits for its outcome"
    )


# Statuses that say the case's vehicle left: a withdrawal not applied before them came too late.
ON_THE_ROAD = frozenset(CaseStatus) - domain.WITHDRAWABLE - {CaseStatus.WITHDRAWN, CaseStatus.NO_SHOW}


def create_service(settings: IntakeSettings | None = None) -> ServiceRuntime:
    settings = settings or IntakeSettings()
    withdrawal_wait = settings.withdrawal_wait_seconds
    routes = RouteBook.load(settings.routes_file)
    rt = ServiceRuntime("intake", settings, migrations=MIGRATIONS, title="Corridor intake")
    rt.produces(topics.CASES, topics.STATUS)

    async def on_status_changed(conn: asyncpg.Connection, event: CloudEvent) -> None:
        assert isinstance(event.data, CaseStatusChanged)
        await store.record_status(conn, event.source, event.id, event.data)
        await statusguard.note(conn, event.data.case_id, event.data.status)

    rt.consume(topics.STATUS, handlers={CaseStatusChanged: on_status_changed}, name="intake-timeline")

    async def apply_reported_status(conn: asyncpg.Connection, event: CloudEvent) -> CloudEvent:
        """Check a mission's reported status change, apply it and republish it on the stream."""
        report = event.data
        assert isinstance(report, CaseStatusReported)
        unusable = domain.unusable_report(report)
        if unusable is not None:
            raise Rejected("invalid_value", unusable)
        case = await store.case_for_update(conn, report.case_id)
        if case is None:
            raise Rejected("unknown_case", f"no case {report.case_id}")
        route = routes.get(case["route_id"])
        if route is None:
            raise Rejected("unknown_route", f"route {case['route_id']} is not configured")
        verdict = domain.judge_report(event.source, report.status, CaseStatus(case["status"]), route)
        if verdict.action == "later":
            raise RetryLater(verdict.code or "illegal_transition", verdict.detail or "")
        if verdict.action == "reject":
            raise Rejected(verdict.code or "rejected", verdict.detail or "")
        status = CaseStatus(report.status.value)
        await store.set_status(conn, report.case_id, status.value)
        try:
            return await enqueue(
                conn,
                CaseStatusChanged(
                    case_id=report.case_id,
                    status=status,
                    occurred_at=report.occurred_at,
                    members=case["members"],
                    place=report.place,
                    reason_code=report.reason_code,
                    reason=report.reason,
                ),
                topic=topics.STATUS,
                source=rt.source,
                # Who reported it, so a mission can recognise its own report on the stream.
                extensions={"originsource": event.source, "originid": event.id},
            )
        except statusguard.IllegalStatusChange as exc:
            # The projection let it through but the case's last status does not: not yet, at best.
            raise RetryLater("illegal_transition", str(exc)) from exc

    async def on_status_reported(conn: asyncpg.Connection, event: CloudEvent) -> None:
        await apply_reported_status(conn, event)

    inbound = rt.consume(
        topics.INBOUND_STATUS, handlers={CaseStatusReported: on_status_reported}, name=INBOUND
    )

    api = APIRouter(tags=["cases"])

    @api.post("/cases", status_code=201)
    async def register_case(command: domain.RegisterCase, response: Response) -> dict[str, Any]:
        """Register one person or a family group. Personal data stays in the host mission. A case
        that may repeat another (same document, or same name and birth date in either script) is
        registered and flagged for a caseworker to review."""
        try:
            async with rt.pool.acquire() as conn:
                result = await registration.register(
                    conn, command, routes=routes, source=rt.source, now=datetime.now(UTC)
                )
        except registration.RegistrationRejected as exc:
            raise RequestValidationError(exc.errors) from exc
        if not result.created:
            response.status_code = 200
            return {"case_id": str(result.case_id), "created": False}
        return {
            "case_id": str(result.case_id),
            "created": True,
            "status": CaseStatus.REGISTERED.value,
            "duplicate_flags": result.duplicate_flags,
        }

    @api.put("/cases/{case_id}")
    async def update_case(case_id: uuid.UUID, command: domain.UpdateCase) -> dict[str, Any]:
        """Change a case before departure; eligibility and transport receive the case as it stands."""
        try:
            async with rt.pool.acquire() as conn, conn.transaction():
                updated = await registration.update(
                    conn, case_id, command, routes=routes, source=rt.source, now=datetime.now(UTC)
                )
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        except PermissionError as exc:
            raise HTTPException(409, str(exc)) from exc
        except registration.RegistrationRejected as exc:
            raise RequestValidationError(exc.errors) from exc
        return {
            "case_id": str(case_id),
            "updated_at": updated.updated_at.isoformat(),
            "members": len(updated.members),
        }

    @api.get("/duplicate-flags", tags=["duplicates"])
    async def list_duplicate_flags(
        status: str | None = "open", case_id: uuid.UUID | None = None
    ) -> dict[str, Any]:
        async with rt.pool.acquire() as conn:
            return {"flags": await store.duplicate_flags(conn, status, case_id)}

    @api.post("/duplicate-flags/{flag_id}/resolution", tags=["duplicates"])
    async def resolve_duplicate_flag(flag_id: int, command: domain.ResolveDuplicate) -> dict[str, Any]:
        """A caseworker decides: the same person registered twice, or two different people."""
        async with rt.pool.acquire() as conn:
            if not await store.resolve_flag(
                conn, flag_id, command.decision, command.resolved_by, command.note
            ):
                raise HTTPException(404, f"no open flag {flag_id}")
        return {"flag_id": flag_id, "status": command.decision}

    @api.get("/access-log", tags=["audit"])
    async def query_access_log(
        actor: str | None = None, since: datetime | None = None, limit: int = Query(100, ge=1, le=1000)
    ) -> dict[str, Any]:
        """Every read of personal data: who, when, which case, why."""
        async with rt.pool.acquire() as conn:
            return {"reads": await store.access_log_query(conn, actor, since, limit)}

    @api.get("/cases/{case_id}/timeline")
    async def case_timeline(case_id: uuid.UUID) -> dict[str, Any]:
        """The case's status changes as read from the public status stream (no personal data)."""
        async with rt.pool.acquire() as conn:
            if not await store.case_exists(conn, case_id):
                raise HTTPException(404, f"no case {case_id}")
            return {"case_id": str(case_id), "timeline": await store.timeline(conn, case_id)}

    @api.get("/cases/{case_id}")
    async def read_case(
        case_id: uuid.UUID,
        x_actor: Annotated[str, Header(min_length=1, description="Who reads")],
        x_purpose: Annotated[str, Header(min_length=3, description="Why")],
    ) -> dict[str, Any]:
        """The case with personal data. Every read is recorded with who and why."""
        async with rt.pool.acquire() as conn, conn.transaction():
            case = await store.read_case(conn, case_id, actor=x_actor, purpose=x_purpose)
        if case is None:
            raise HTTPException(404, f"no case {case_id}")
        return case

    @api.post("/cases/{case_id}/health-evidence", status_code=201)
    async def record_health_evidence(
        case_id: uuid.UUID,
        command: domain.RecordHealthEvidence,
        x_actor: Annotated[str, Header(min_length=1, description="Who records it")],
    ) -> dict[str, Any]:
        """A test result or fit-to-travel examination. Medical data: it goes only to eligibility,
        on the host mission's restricted topic, and never onto the status stream."""
        now = datetime.now(UTC)
        if command.taken_at > now:
            raise RequestValidationError(
                [{"loc": ("body", "taken_at"), "msg": "is in the future", "type": "value_error"}]
            )
        async with rt.pool.acquire() as conn, conn.transaction():
            if not await store.person_in_case(conn, case_id, command.person_id):
                raise HTTPException(404, f"no person {command.person_id} in case {case_id}")
            evidence = HealthEvidenceRecorded(
                case_id=case_id,
                person_id=command.person_id,
                kind=command.kind,
                result=command.result,
                taken_at=command.taken_at,
                recorded_at=now,
            )
            await store.save_health_evidence(conn, evidence, x_actor)
            event = await enqueue(conn, evidence, topic=topics.CASES, source=rt.source)
        return {"case_id": str(case_id), "event_id": event.id}

    @api.post(
        "/cases/{case_id}/withdrawal",
        status_code=201,
        responses={
            202: {"description": "Recorded; neither applied nor refused yet: follow the case's timeline"},
            409: {"description": "The case's vehicle left before the withdrawal took effect"},
        },
    )
    async def withdraw_case(
        case_id: uuid.UUID,
        command: domain.WithdrawCase,
        x_actor: Annotated[str, Header(min_length=1, description="Who records it")],
        response: Response,
    ) -> dict[str, Any]:
        """The person withdraws, at any time before departure; the whole case leaves together.

        Transport, which seats cases and records departures, applies the withdrawal under the
        case's lock, so it and a departure happen one after the other: 201 once the status stream
        shows the case withdrawn (its seat freed, the border posts' manifests amended), 409 when
        the vehicle left first, 202 when neither is known within a few seconds (the withdrawal
        stands and is applied or refused as soon as transport reads it). Repeating it is safe."""
        now = datetime.now(UTC)
        async with rt.pool.acquire() as conn, conn.transaction():
            case = await store.case_for_update(conn, case_id)
            if case is None:
                raise HTTPException(404, f"no case {case_id}")
            current = CaseStatus(case["status"])
            created = not await store.is_withdrawn(conn, case_id)
            if created:
                if current not in domain.WITHDRAWABLE:
                    raise HTTPException(
                        409, f"case is {current.value}: withdrawal is possible only before departure"
                    )
                withdrawal = CaseWithdrawn(case_id=case_id, reason=command.reason, withdrawn_at=now)
                await store.save_withdrawal(conn, withdrawal, x_actor)
                # The caseworker's note may name people: it stays on the restricted topic. The
                # public "withdrawn" comes from transport once the seat is freed.
                await enqueue(conn, withdrawal, topic=topics.CASES, source=rt.source)
        outcome = await withdrawal_outcome(case_id)
        if outcome is CaseStatus.WITHDRAWN:
            return {"case_id": str(case_id), "status": CaseStatus.WITHDRAWN.value, "created": created}
        if outcome is not None:
            raise HTTPException(
                409, f"case is {outcome.value}: its vehicle left before the withdrawal took effect"
            )
        response.status_code = 202
        return {
            "case_id": str(case_id),
            "status": "withdrawal_requested",
            "created": created,
            "timeline": f"/cases/{case_id}/timeline",
        }

    async def withdrawal_outcome(case_id: uuid.UUID) -> CaseStatus | None:
        """Withdrawn, or a status past departure, as the stream shows it; None if neither in time."""
        deadline = asyncio.get_running_loop().time() + withdrawal_wait
        while True:
            async with rt.pool.acquire() as conn:
                current = CaseStatus(await store.case_status(conn, case_id))
            if current is CaseStatus.WITHDRAWN or current in ON_THE_ROAD:
                return current
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(0.1)

    @api.get("/cases/{case_id}/access-log")
    async def case_access_log(case_id: uuid.UUID) -> dict[str, Any]:
        async with rt.pool.acquire() as conn:
            return {"case_id": str(case_id), "reads": await store.access_log(conn, case_id)}

    @api.post("/inbound/status-changes", status_code=202, tags=["missions"])
    async def report_status_change(request: Request) -> JSONResponse:
        """For mission systems that cannot speak Kafka: one structured-mode CloudEvent
        (``application/cloudevents+json``) carrying ``CaseStatusReported``. Answers 202 when
        applied, 200 for a repeat of an event already applied, 4xx with a machine-readable code."""
        try:
            event = CloudEvent.from_structured(await request.body())
        except EnvelopeError as exc:
            status = 422 if exc.code == "schema_violation" else 400
            # The detail may quote the input, unpaired surrogates included: keep it encodable.
            detail = exc.detail.encode(errors="backslashreplace").decode()
            return JSONResponse({"code": exc.code, "detail": detail}, status_code=status)
        except RecursionError:
            return JSONResponse(
                {"code": "malformed_json", "detail": "JSON nested too deeply"}, status_code=400
            )
        if not isinstance(event.data, CaseStatusReported):
            return JSONResponse(
                {"code": "unexpected_type", "detail": f"{event.type} cannot be reported here"},
                status_code=400,
            )
        try:
            async with rt.pool.acquire() as conn, conn.transaction():
                # The same inbox as the Kafka path: an event sent both ways is applied once.
                if not await first_delivery(conn, INBOUND, event):
                    return JSONResponse({"duplicate": True, "id": event.id}, status_code=200)
                published = await apply_reported_status(conn, event)
        except RetryLater as exc:
            # Not applicable yet, most likely because this service has not yet read the status the
            # report follows: the same report will be accepted shortly. Not a final answer.
            return JSONResponse(
                {"code": exc.code, "detail": exc.detail, "retry": True},
                status_code=503,
                headers={"Retry-After": "2"},
            )
        except Rejected as exc:
            code = {"unknown_case": 404, "unauthorised_source": 403, "invalid_value": 422}.get(exc.code, 409)
            return JSONResponse({"code": exc.code, "detail": exc.detail}, status_code=code)
        inbound.applied += 1
        return JSONResponse({"accepted": True, "status_event_id": published.id}, status_code=202)

    # Rows of every import registered at once, each on a pool connection: the rest stay for the API.
    import_slots = asyncio.Semaphore(bulk.CONCURRENCY)

    @api.post(
        "/imports",
        tags=["imports"],
        openapi_extra=bulk.OPENAPI_BODY,
        responses={
            200: {"model": bulk.ImportReport, "description": "The outcome of every row"},
            400: {"model": bulk.ImportRefused, "description": "Not readable as an import: nothing imported"},
            413: {"model": bulk.ImportRefused, "description": "Larger than 20 MB"},
            415: {"model": bulk.ImportRefused, "description": "Neither text/csv nor application/json"},
        },
    )
    async def import_registrations(
        request: Request,
        namespace: Annotated[
            str,
            Query(
                pattern=bulk.NAMESPACE_PATTERN,
                description="The office or batch; a row is registered under bulk:<namespace>:<row_key>",
            ),
        ],
        x_actor: Annotated[str, Header(min_length=1, max_length=200, description="Who imports")],
    ) -> Response:
        """Register many cases from a field office's file (``text/csv``, one row per person, or
        ``application/json``, a list of registrations), each with the office's ``row_key``. A row
        imported before is reported ``exists`` and creates nothing. Answers the outcome of every
        row: created, flagged (a possible duplicate), exists, rejected (with the fields and why),
        failed (retry). Format: ``services/intake/bulk.py``, sample ``docs/bulk-import-sample.csv``."""
        fmt = bulk.media_format(request.headers.get("content-type", ""))
        if fmt is None:
            return JSONResponse(
                {"code": "unsupported_media_type", "detail": "send text/csv or application/json"},
                status_code=415,
            )
        try:
            rows = bulk.parse(await bulk.read_body(request), fmt)
        except bulk.FileRejected as exc:
            return JSONResponse({"code": exc.code, "detail": exc.detail}, status_code=exc.status)
        report = await bulk.run_import(
            rt.pool,
            rows,
            namespace=namespace,
            routes=routes,
            source=rt.source,
            actor=x_actor,
            slots=import_slots,
        )
        return Response(bulk.report_json(report), media_type="application/json")

    rt.http.include_router(api)
    return rt
