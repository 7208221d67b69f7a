"""Intake's HTTP API: each route parses its input, builds the command and calls its use case in a
unit of work; the use case's domain errors are answered by the runtime (404, 409, 422). Every
route declares what it answers, so the OpenAPI document describes it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.envelope import STRUCTURED_CONTENT_TYPE, CloudEvent, EnvelopeError
from contracts.intake import ErasureBasis
from contracts.missions import CaseStatusReported
from contracts.status import CaseStatus, Place
from corridor import idempotency, problems, tracing
from corridor.auth import Principal, Purpose, Role, allow
from corridor.consumer import EventConsumer, Rejected, RetryLater
from corridor.errors import invalid
from corridor.http import Timestamp, request_body
from corridor.idempotency import Answer
from corridor.runtime import ServiceRuntime
from services.intake import bulk, domain, usecases
from services.intake.domain import FlagStatus, RegistrationRejected
from services.intake.store import CaseDetails, IntakeStore
from services.intake.usecases import Context


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- what the routes answer ----------------------------------------------------------------------


class FlagRaisedOut(_Out):
    flag_id: int
    person_id: uuid.UUID
    other_case_id: uuid.UUID = Field(description="The case this person may repeat")
    basis: str = Field(description="document, or name (and birth date, across scripts)")


class RegistrationOut(_Out):
    case_id: uuid.UUID
    created: bool = Field(
        description="False: registered before under the same registration_key (200), answered what "
        "that registration answered"
    )
    status: CaseStatus | None = Field(
        default=None,
        description="registered: as the registration answered it, on a repeat too (absent on the "
        "repeat of a key registered before first answers were kept)",
    )
    duplicate_flags: list[FlagRaisedOut] | None = Field(
        default=None,
        description="Possible duplicates for a caseworker to review, as the registration raised them "
        "(a repeat names the same flags, even if resolved since); only to caseworkers and "
        "supervisors: to anyone else it would say who else is registered",
    )


class ErasureOut(_Out):
    case_id: uuid.UUID
    basis: ErasureBasis
    erased_at: Timestamp
    created: bool = Field(description="False when the case's data was erased before")


class UpdatedOut(_Out):
    case_id: uuid.UUID
    updated_at: Timestamp
    members: int


class DuplicateFlagOut(_Out):
    flag_id: int
    case_id: uuid.UUID
    person_id: uuid.UUID
    other_case_id: uuid.UUID
    other_person_id: uuid.UUID
    basis: str
    status: FlagStatus
    flagged_at: Timestamp
    resolved_by: str | None
    resolution_note: str | None


class DuplicateFlagsOut(_Out):
    flags: list[DuplicateFlagOut]


class ResolutionOut(_Out):
    flag_id: int
    status: FlagStatus


class AccessOut(_Out):
    accessed_at: Timestamp
    actor: str
    purpose: str
    case_id: uuid.UUID


class AccessLogOut(_Out):
    reads: list[AccessOut]


class CaseReadOut(_Out):
    accessed_at: Timestamp
    actor: str
    purpose: str


class CaseAccessLogOut(_Out):
    case_id: uuid.UUID
    reads: list[CaseReadOut]


class EventRefOut(_Out):
    source: str
    id: str


class TimelineEntryOut(_Out):
    status: CaseStatus
    occurred_at: Timestamp
    place: Place | None
    movement_id: str | None
    reason_code: str | None
    reason: str | None
    event: EventRefOut = Field(description="The status stream's event (CloudEvents source and id)")


class TimelineOut(_Out):
    case_id: uuid.UUID
    timeline: list[TimelineEntryOut]


class EvidenceOut(_Out):
    case_id: uuid.UUID
    event_id: str = Field(description="The HealthEvidenceRecorded event's id")


class HealthEvidenceOut(_Out):
    evidence_id: int
    person_id: uuid.UUID
    kind: str
    result: str
    taken_at: Timestamp
    recorded_at: Timestamp
    recorded_by: str = Field(description="The token subject that recorded it")
    event_id: str | None = Field(description="The HealthEvidenceRecorded event's id (as answered)")


class HealthEvidenceListOut(_Out):
    case_id: uuid.UUID
    evidence: list[HealthEvidenceOut] = Field(description="Oldest first")


class WithdrawalOut(_Out):
    case_id: uuid.UUID
    status: str = Field(description="withdrawn (201), or withdrawal_requested (202)")
    created: bool = Field(description="False: the withdrawal was recorded before")
    timeline: str | None = Field(default=None, description="Where to follow the case (202 only)")


class ReportAccepted(BaseModel):
    accepted: bool
    status_event_id: str = Field(description="The status change published on the status stream")


class ReportRepeated(BaseModel):
    duplicate: bool
    id: str = Field(description="The report's event id, applied before")
    status_event_id: str | None = Field(
        default=None,
        description="The status change the report's first delivery published (over HTTP or Kafka), "
        "as its 202 answered; absent for a report applied before these ids were kept",
    )


class StructuredStatusReport(BaseModel):
    """What ``POST /inbound/status-changes`` reads: one CloudEvents 1.0 event in structured mode
    (``application/cloudevents+json``), its data a ``CaseStatusReported``. The route parses the
    body itself (its refusals carry the envelope's own codes); this model documents it."""

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, description="With source, what makes a repeat recognised")
    source: str = Field(
        pattern=r"^/missions/[A-Z]{3}/",
        examples=["/missions/UZB/reception"],
        description="The token's mission",
    )
    type: Literal["org.corridor.mission.case-status-reported.v1"]
    subject: str | None = Field(default=None, description="The case id (default: the data's)")
    time: AwareDatetime | None = Field(default=None, description="RFC 3339")
    datacontenttype: Literal["application/json"] | None = None
    data: CaseStatusReported


# A mission's report refused for good: the status it is answered with (409 otherwise).
REFUSAL_STATUS = {"unknown_case": 404, "unauthorised_source": 403, "invalid_value": 422}


async def registration_rejected(request: Request, exc: Exception) -> Response:
    """Every problem of a registration in one 422, each a field error as FastAPI's own are."""
    assert isinstance(exc, RegistrationRejected)
    errors = [error for p in exc.problems for error in invalid(p.loc, p.msg).errors()]
    return problems.invalid_request(problems.field_errors(errors), code=exc.code)


# The refusals of the use cases a route calls (corridor.errors), each a problem (corridor.problems).
NO_CASE: dict[int | str, dict[str, Any]] = {404: {"description": "No such case (case_not_found)"}}
ERASED: dict[int | str, dict[str, Any]] = {
    410: {"description": "The case's personal data was erased (case_erased)"}
}
PAST_DEPARTURE: dict[int | str, dict[str, Any]] = {
    409: {"description": "The case is past the point where it may be changed (not_before_departure)"}
}

# Who may do what here (corridor.auth): one rule per route, written into the OpenAPI document.
CASEWORK = allow(Role.CASEWORKER, Role.SUPERVISOR)
"""Personal data and the commands that change a case: the host mission's caseworkers."""
REGISTRATION = allow(Role.CASEWORKER, Role.SUPERVISOR, Role.INTEGRATION_CLIENT)
"""Registration also by the host mission's own systems (an integration client)."""
STATUS_ONLY = allow(Role.CASEWORKER, Role.SUPERVISOR, Role.OPERATIONS_VIEWER)
"""What the public status stream shows of a case: no personal data."""
AUDIT = allow(Role.AUDITOR)
"""Who read whose data: auditors only."""
ERASURE = allow(Role.SUPERVISOR)
"""Erasing a person's data cannot be undone: a supervisor decides it, recorded as its requester."""
REPORTING = allow(Role.INTEGRATION_CLIENT, any_mission=True)
"""A mission's system reports its own mission's statuses (the route checks the event's source)."""

Caller = Annotated[Principal, Depends(CASEWORK)]
Registrar = Annotated[Principal, Depends(REGISTRATION)]
Reporter = Annotated[Principal, Depends(REPORTING)]
WhyHeader = Annotated[Purpose, Header(description="Why the personal data is read (a fixed list)")]


def router(rt: ServiceRuntime, ctx: Context, inbound: EventConsumer) -> APIRouter:
    units = rt.units(IntakeStore)
    api = APIRouter(tags=["cases"])

    @api.post(
        "/cases",
        status_code=201,
        response_model=RegistrationOut,
        response_model_exclude_none=True,
        responses={
            200: {
                "model": RegistrationOut,
                "description": "Registered before under this key: the first answer, created false",
            }
        },
        openapi_extra=idempotency.keyed(
            natural="With a registration_key: registering the same key again creates nothing and answers "
            "200 with what the first registration answered (the case, its status and duplicate flags), "
            "created false. Without one, send an Idempotency-Key."
        ),
    )
    async def register_case(
        command: domain.RegisterCase,
        request: Request,
        caller: Registrar,
        idempotency_key: idempotency.Key = None,
    ) -> Response:
        """Register one person or a family group. Personal data stays in the host mission. A case
        that may repeat another (same document, or same name and birth date in either script) is
        registered and flagged for a caseworker to review; the flags are answered to caseworkers
        and supervisors only."""

        async def register(uow: usecases.Uow) -> Answer:
            done = await usecases.register_or_repeat(command, uow, ctx)
            tracing.found_case(tracing.CaseRef(case_id=str(done.case_id)))  # the request's span and log line
            if not done.created:  # the key taken before its first answer was kept
                return Answer(RegistrationOut(case_id=done.case_id, created=False), 200, exclude_none=True)
            # A repeat is the first answer apart from what marks it one: created false, 200.
            out = RegistrationOut(
                case_id=done.case_id,
                created=not done.repeated,
                status=CaseStatus.REGISTERED,
                duplicate_flags=[FlagRaisedOut.model_validate(f) for f in done.duplicate_flags]
                if caller.has(Role.CASEWORKER, Role.SUPERVISOR)
                else None,
            )
            return Answer(out, 200 if done.repeated else 201, exclude_none=True)

        return await idempotency.run(request, idempotency_key, caller, units, register)

    @api.put(
        "/cases/{case_id}",
        response_model=UpdatedOut,
        responses={**NO_CASE, **PAST_DEPARTURE, **ERASED},
        openapi_extra=idempotency.keyed(),
    )
    async def update_case(
        case_id: uuid.UUID,
        command: domain.UpdateCase,
        request: Request,
        caller: Caller,
        idempotency_key: idempotency.Key = None,
    ) -> Response:
        """Change a case before departure; eligibility and transport receive the case as it stands.
        The case ends up the same when repeated, but each update is published again: send an
        Idempotency-Key to make a repeat answer the first update and publish nothing."""

        async def update(uow: usecases.Uow) -> Answer:
            updated = await usecases.update_case(domain.ChangeCase(case_id, command), uow, ctx)
            return Answer(
                UpdatedOut(case_id=case_id, updated_at=updated.updated_at, members=len(updated.members))
            )

        return await idempotency.run(request, idempotency_key, caller, units, update)

    @api.get(
        "/duplicate-flags",
        tags=["duplicates"],
        response_model=DuplicateFlagsOut,
        dependencies=[Depends(CASEWORK)],
    )
    async def list_duplicate_flags(
        status: str | None = "open", case_id: uuid.UUID | None = None
    ) -> DuplicateFlagsOut:
        async with units() as uow:
            flags = await usecases.list_duplicate_flags(status, case_id, uow)
        return DuplicateFlagsOut(flags=[DuplicateFlagOut.model_validate(f) for f in flags])

    @api.post(
        "/duplicate-flags/{flag_id}/resolution",
        tags=["duplicates"],
        response_model=ResolutionOut,
        responses={404: {"description": "No open flag of that id (flag_not_open)"}},
        openapi_extra=idempotency.keyed(),
    )
    async def resolve_duplicate_flag(
        flag_id: int,
        command: domain.ResolveDuplicate,
        request: Request,
        caller: Caller,
        idempotency_key: idempotency.Key = None,
    ) -> Response:
        """A caseworker decides: the same person registered twice, or two different people. A flag
        is resolved once (409 after): send an Idempotency-Key to have a repeat answered the first
        resolution."""

        async def resolve(uow: usecases.Uow) -> Answer:
            status = await usecases.resolve_duplicate_flag(
                domain.ResolveFlag(flag_id, command, caller.subject), uow
            )
            return Answer(ResolutionOut(flag_id=flag_id, status=status))

        return await idempotency.run(request, idempotency_key, caller, units, resolve)

    @api.get("/access-log", tags=["audit"], response_model=AccessLogOut, dependencies=[Depends(AUDIT)])
    async def query_access_log(
        actor: str | None = None, since: datetime | None = None, limit: int = Query(100, ge=1, le=1000)
    ) -> AccessLogOut:
        """Every read of personal data: who, when, which case, why."""
        async with units() as uow:
            reads = await usecases.query_access_log(actor, since, limit, uow)
        return AccessLogOut(reads=[AccessOut.model_validate(r) for r in reads])

    @api.get(
        "/cases/{case_id}/timeline",
        response_model=TimelineOut,
        responses=NO_CASE,
        dependencies=[Depends(STATUS_ONLY)],
    )
    async def case_timeline(case_id: uuid.UUID) -> TimelineOut:
        """The case's status changes as read from the public status stream (no personal data)."""
        async with units() as uow:
            timeline = await usecases.case_timeline(case_id, uow)
        return TimelineOut(case_id=case_id, timeline=[TimelineEntryOut.model_validate(e) for e in timeline])

    @api.get("/cases/{case_id}", response_model=CaseDetails, responses={**NO_CASE, **ERASED})
    async def read_case(case_id: uuid.UUID, caller: Caller, x_purpose: WhyHeader) -> CaseDetails:
        """The case with personal data. Every read is recorded with who (the token's subject) and
        why (``X-Purpose``)."""
        async with units() as uow:
            return await usecases.read_case(domain.ReadCase(case_id, caller.subject, x_purpose), uow)

    @api.post(
        "/cases/{case_id}/health-evidence",
        status_code=201,
        response_model=EvidenceOut,
        responses={
            404: {
                "description": "No such case, or no such person in it (case_not_found, person_not_in_case)"
            },
            **ERASED,
        },
        openapi_extra=idempotency.keyed(),
    )
    async def record_health_evidence(
        case_id: uuid.UUID,
        command: domain.RecordHealthEvidence,
        request: Request,
        caller: Caller,
        idempotency_key: idempotency.Key = None,
    ) -> Response:
        """A test result or fit-to-travel examination. Medical data: it goes only to eligibility,
        on the host mission's restricted topic, and never onto the status stream. Each request
        records one more result: send an Idempotency-Key to retry safely, and read what was
        recorded with ``GET /cases/{case_id}/health-evidence``."""

        async def record(uow: usecases.Uow) -> Answer:
            event = await usecases.record_health_evidence(
                domain.AddHealthEvidence(case_id, command, caller.subject), uow
            )
            return Answer(EvidenceOut(case_id=case_id, event_id=event.id), 201)

        return await idempotency.run(request, idempotency_key, caller, units, record)

    @api.get(
        "/cases/{case_id}/health-evidence",
        response_model=HealthEvidenceListOut,
        responses={**NO_CASE, **ERASED},
    )
    async def read_health_evidence(
        case_id: uuid.UUID, caller: Caller, x_purpose: WhyHeader
    ) -> HealthEvidenceListOut:
        """The health evidence recorded for the case (medical data: caseworkers and supervisors
        only). Like every read of personal data, recorded with who and why (``X-Purpose``)."""
        async with units() as uow:
            recorded = await usecases.read_health_evidence(
                domain.ReadCase(case_id, caller.subject, x_purpose), uow
            )
        return HealthEvidenceListOut(
            case_id=case_id, evidence=[HealthEvidenceOut.model_validate(e) for e in recorded]
        )

    @api.post(
        "/cases/{case_id}/withdrawal",
        status_code=201,
        response_model=WithdrawalOut,
        response_model_exclude_none=True,
        responses={
            202: {
                "model": WithdrawalOut,
                "description": "Recorded; neither applied nor refused yet: follow the case's timeline",
            },
            409: {
                "description": "The case's vehicle left before the withdrawal took effect (withdrawal_too_late), "
                "or it is past departure (not_before_departure)"
            },
            **NO_CASE,
            **ERASED,
        },
        openapi_extra=idempotency.natural(
            "A case is withdrawn once: a repeat records nothing and answers the withdrawal as it "
            "stands (created false)."
        ),
    )
    async def withdraw_case(
        case_id: uuid.UUID,
        command: domain.WithdrawCase,
        caller: Caller,
        response: Response,
    ) -> WithdrawalOut:
        """The person withdraws, at any time before departure; the whole case leaves together.

        Transport, which seats cases and records departures, applies the withdrawal under the
        case's lock, so it and a departure happen one after the other: 201 once the status stream
        shows the case withdrawn (its seat freed, the border posts' manifests amended), 409 when
        the vehicle left first, 202 when neither is known within a few seconds (the withdrawal
        stands and is applied or refused as soon as transport reads it). Repeating it is safe."""
        answer = await usecases.withdraw_case(
            domain.RequestWithdrawal(case_id, command.reason, caller.subject), units, ctx
        )
        if answer.pending:
            response.status_code = 202
        return WithdrawalOut(
            case_id=case_id,
            status=answer.status,
            created=answer.created,
            timeline=f"/cases/{case_id}/timeline" if answer.pending else None,
        )

    @api.post(
        "/cases/{case_id}/erasure",
        status_code=201,
        tags=["privacy"],
        response_model=ErasureOut,
        responses={
            200: {"model": ErasureOut, "description": "Erased before: nothing changed"},
            409: {"description": "The case has not ended: withdraw it first (not_erasable)"},
            **NO_CASE,
        },
        openapi_extra=idempotency.natural(
            "A case's data is erased once: a repeat changes nothing and answers 200 with the erasure."
        ),
    )
    async def erase_personal_data(
        case_id: uuid.UUID,
        caller: Annotated[Principal, Depends(ERASURE)],
        response: Response,
    ) -> ErasureOut:
        """The person asks for their personal data to be erased. Once the case has ended (arrived,
        closed, withdrawn, no-show or ineligible), their names, birth dates (the year stays),
        documents, contacts, health evidence and notes are erased here and, through an event, in
        every service that holds a copy; the case and its statuses stay for the statistics.
        Irreversible: a supervisor's decision, recorded with who made it. Repeating it is safe."""
        async with units() as uow:
            erasure, created = await usecases.erase_personal_data(
                domain.EraseCase(case_id, ErasureBasis.DATA_SUBJECT_REQUEST, caller.subject), uow
            )
        if not created:
            response.status_code = 200
        return ErasureOut(case_id=case_id, basis=erasure.basis, erased_at=erasure.erased_at, created=created)

    @api.get(
        "/cases/{case_id}/access-log",
        tags=["audit"],
        response_model=CaseAccessLogOut,
        dependencies=[Depends(AUDIT)],
    )
    async def case_access_log(case_id: uuid.UUID) -> CaseAccessLogOut:
        async with units() as uow:
            reads = await usecases.case_access_log(case_id, uow)
        return CaseAccessLogOut(case_id=case_id, reads=[CaseReadOut.model_validate(r) for r in reads])

    @api.post(
        "/inbound/status-changes",
        status_code=202,
        tags=["missions"],
        response_model=ReportAccepted,
        responses={
            200: {"model": ReportRepeated, "description": "A repeat of a report applied before"},
            400: {
                "description": "Not a CloudEvent carrying CaseStatusReported (malformed_json, unknown_type, ...)"
            },
            403: {
                "description": "The event's source is not the token's mission (source_not_token_mission), or "
                "that mission may not report this status (unauthorised_source)",
            },
            404: {"description": "No such case (unknown_case)"},
            409: {"description": "The status cannot follow the case's"},
            422: {
                "description": "The event's data breaks its schema (schema_violation), or holds a value that "
                "cannot be stored",
            },
            503: {"description": "Not yet (retry: true): send the same report again after Retry-After"},
        },
        openapi_extra=idempotency.merged(
            request_body(StructuredStatusReport, STRUCTURED_CONTENT_TYPE, "One structured-mode CloudEvent"),
            idempotency.natural(
                "The CloudEvent's source and id: a report applied before answers 200 duplicate, with the "
                "status_event_id its first delivery published, and changes nothing."
            ),
        ),
    )
    async def report_status_change(request: Request, reporter: Reporter) -> Response:
        """For mission systems that cannot speak Kafka: one structured-mode CloudEvent
        (``application/cloudevents+json``) carrying ``CaseStatusReported``. Answers 202 when
        applied, 200 for a repeat of an event already applied (with the status change it published
        then), 4xx with a machine-readable code.

        The reporting mission is the token's (an integration client's): an event whose ``source``
        names another mission is refused (403 ``source_not_token_mission``) and changes nothing."""
        try:
            event = CloudEvent.from_structured(await request.body())
        except EnvelopeError as exc:
            status = 422 if exc.code == "schema_violation" else 400
            # The detail may quote the input, unpaired surrogates included: keep it encodable.
            detail = exc.detail.encode(errors="backslashreplace").decode()
            return _refused(exc.code, detail, status)
        except RecursionError:
            return _refused("malformed_json", "JSON nested too deeply", 400)
        if not isinstance(event.data, CaseStatusReported):
            return _refused("unexpected_type", f"{event.type} cannot be reported here", 400)
        tracing.found_case(tracing.ref_of(event.data))
        if domain.reporting_country(event.source) != reporter.mission:
            # The source is what the sender writes; who is reporting is who the token says.
            return _refused(
                "source_not_token_mission",
                f"a report of mission {reporter.mission} has the source /missions/{reporter.mission}/...",
                403,
            )
        try:
            async with units() as uow:
                answer = await usecases.receive_report(event, uow, ctx)
        except RetryLater as exc:
            # Not applicable yet, most likely because this service has not yet read the status the
            # report follows: the same report will be accepted shortly. Not a final answer.
            return problems.response(503, exc.code, exc.detail, headers={"Retry-After": "2"}, retry=True)
        except Rejected as exc:
            return _refused(exc.code, exc.detail, REFUSAL_STATUS.get(exc.code, 409))
        if answer.repeated:
            repeated = ReportRepeated(duplicate=True, id=event.id, status_event_id=answer.status_event_id)
            return JSONResponse(repeated.model_dump(exclude_none=True), status_code=200)
        assert answer.status_event_id is not None
        inbound.applied += 1
        accepted = ReportAccepted(accepted=True, status_event_id=answer.status_event_id)
        return JSONResponse(accepted.model_dump(), status_code=202)

    # Rows of every import registered at once, each on a pool connection: the rest stay for the API.
    import_slots = asyncio.Semaphore(bulk.CONCURRENCY)

    @api.post(
        "/imports",
        tags=["imports"],
        openapi_extra=idempotency.merged(
            bulk.OPENAPI_BODY,
            idempotency.natural(
                "Each row's namespace and row_key: a row imported before creates nothing and is answered "
                "what the first import answered for it (created or flagged, its case and flags), with "
                "repeated true, so a whole file may be sent again. The key decides: other content under "
                "the same row_key is answered the same way and changes nothing."
            ),
        ),
        response_model=bulk.ImportReport,
        responses={
            200: {"model": bulk.ImportReport, "description": "The outcome of every row"},
            400: {"description": "Not readable as an import: nothing imported"},
            413: {"description": "Larger than 20 MB"},
            415: {"description": "Neither text/csv nor application/json"},
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
        caller: Caller,
    ) -> Response:
        """Register many cases from a field office's file (``text/csv``, one row per person, or
        ``application/json``, a list of registrations), each with the office's ``row_key``. A row
        imported before creates nothing and is answered what the first import answered for it,
        with ``repeated`` true. Answers the outcome of every row: created, flagged (a possible
        duplicate), exists (the key taken by ``POST /cases``), rejected (with the fields and why),
        failed (retry). Format: ``services/intake/bulk/format.py``, sample
        ``docs/bulk-import-sample.csv``."""
        fmt = bulk.media_format(request.headers.get("content-type", ""))
        if fmt is None:
            return _refused("unsupported_media_type", "send text/csv or application/json", 415)
        try:
            rows = bulk.parse(await read_body(request), fmt)
        except bulk.FileRejected as exc:
            return _refused(exc.code, exc.detail, exc.status)
        report = await bulk.run_import(
            rt.pool,
            rows,
            namespace=namespace,
            ctx=ctx,
            source=rt.source,
            actor=caller.subject,
            slots=import_slots,
        )
        return Response(bulk.report_json(report), media_type="application/json")

    return api


def _refused(code: str, detail: str, status: int) -> Response:
    """A refusal of the missions' and the imports' endpoints, which read their bodies themselves."""
    return problems.response(status, code, detail)


async def read_body(request: Request, limit: int = bulk.MAX_BYTES) -> bytes:
    """The request body, refused (413) beyond ``limit`` bytes before it is all read."""
    declared = request.headers.get("content-length", "")
    too_large = bulk.FileRejected(
        413, "too_large", f"an import is at most {limit // 2**20} MB: split the file"
    )
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
