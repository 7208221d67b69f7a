"""What intake does: each thing a module function of (command or event, unit of work, ...).

HTTP routes (``api.py``), the bulk import (``bulk/importer.py``) and the consumers (``HANDLERS``
tables, below) call these and nothing else; the rules they apply are in ``domain.py``, the reads
and writes in ``store.py``. Each runs in one unit of work (one transaction): what it writes and the
events it publishes commit together or not at all.

Locks (docs/consistency.md, "Intake"): a registration takes an advisory lock per duplicate key
before it looks for candidates; an update takes the same key locks, then the case row; a
withdrawal and a mission's report take the case row.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from contracts import reasons
from contracts.base import Event
from contracts.envelope import CloudEvent
from contracts.intake import (
    CaseRegistered,
    CaseUpdated,
    CaseWithdrawn,
    ErasureBasis,
    HealthEvidenceRecorded,
    Person,
    PersonalDataErased,
)
from contracts.missions import CaseStatusReported
from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged
from corridor.consumer import Rejected, RetryLater
from corridor.errors import Invalid
from corridor.statusguard import IllegalStatusChange
from corridor.uow import UnitOfWork
from services.intake import domain
from services.intake.domain import (
    AddHealthEvidence,
    CaseErased,
    CaseNotFound,
    ChangeCase,
    EraseCase,
    FlagNotOpen,
    FlagStatus,
    NotBeforeDeparture,
    PersonNotInCase,
    ReadCase,
    RegisterCase,
    ReportAction,
    RequestWithdrawal,
    ResolveFlag,
    WithdrawalTooLate,
)
from services.intake.duplicates import (
    Holder,
    PersonKeys,
    PersonLike,
    key_pairs,
    keys_of,
    lock_ids,
    matches_in_order,
)
from services.intake.store import (
    AccessRecord,
    CaseDetails,
    DuplicateFlag,
    Erasure,
    HealthEvidence,
    IntakeStore,
    RaisedFlag,
    TimelineEntry,
)

Uow = UnitOfWork[IntakeStore]
Units = Callable[[], AbstractAsyncContextManager[Uow]]
"""``async with units() as uow``: a unit of work of its own (routes that need more than one)."""

INBOUND = "intake-inbound"
"""The consumer of missions' reports: its inbox is shared by the Kafka and the HTTP path."""


@dataclass(frozen=True)
class Context:
    """What intake's use cases depend on beyond the unit of work: the deployment's routes, and how
    long a withdrawal request waits for its outcome on the status stream."""

    routes: RouteBook
    withdrawal_wait_seconds: float = 10.0
    retention: timedelta = timedelta(days=90)
    """How long after a case ended its people's personal data is kept."""
    import_chunk_rows: int = 2_000
    """Rows of a bulk import registered in one unit of work (``register_cases``): enough that each
    statement's round trip and the commit's flush are spread over many rows, few enough that a
    registration over HTTP waits for a chunk (``IMPORT_LOCK``) a second or so at most. 0: row by
    row (``register_case`` each, the earlier way, kept to compare with)."""


# --- registration and changes ------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    case_id: uuid.UUID
    created: bool
    duplicate_flags: list[RaisedFlag] = field(default_factory=list)
    repeated: bool = False
    """A registration key sent again (``POST /cases``, a bulk import's row), answered what its first
    registration answered (``created`` and ``duplicate_flags`` as then), or ``created`` False where
    that answer is not known (``register_or_repeat``)."""


async def register_case(
    command: RegisterCase, uow: Uow, ctx: Context, *, now: datetime | None = None
) -> Registration:
    """Register one person or a family group: the case, its duplicate keys and flags, "registered"
    on the status stream and ``CaseRegistered``, in one transaction. A registration key makes a
    repeat create nothing. ``now`` is the unit's time unless given (an import's one time).

    Before anything else it takes an advisory lock per duplicate key, so two registrations of the
    same person at the same moment (in one process or several, over HTTP or from an import) are
    made one after the other and the later one flags the earlier."""
    now = now or uow.now()
    domain.check_registration(command, ctx.routes, now.date())
    key = command.registration_key
    if key:
        existing = await uow.store.case_for_key(key)
        if existing is not None:
            return Registration(existing, created=False)
    case = domain.build_case(command, case_id=uuid.uuid4(), now=now)
    # Before anything else: a registration of the same person committing meanwhile is seen by the
    # lookups below, or waits for this one to commit and then sees it.
    await _lock_keys(uow, case.members)
    if not await uow.store.insert_case(case, registration_key=key, status=CaseStatus.REGISTERED):
        # The same registration key, committed by a concurrent request in the meantime.
        assert key is not None
        existing = await uow.store.case_for_key(key)
        assert existing is not None
        return Registration(existing, created=False)
    flags = await _record_keys(uow, case.case_id, case.members)
    await uow.publish_many(_registered(case, now))
    return Registration(case.case_id, created=True, duplicate_flags=flags)


def _registered(case: CaseRegistered, now: datetime) -> list[Event]:
    """What a registration publishes, status first: the relay publishes a case's rows in order, so
    everything downstream of CaseRegistered lands on the status stream after "registered"."""
    status = CaseStatusChanged(
        case_id=case.case_id, status=CaseStatus.REGISTERED, occurred_at=now, members=len(case.members)
    )
    return [status, case, domain.profile(case, now)]


@dataclass(frozen=True)
class NewCase:
    """A registration checked and built, ready to be written with others (``register_cases``)."""

    case: CaseRegistered
    registration_key: str | None
    keys: list[PersonKeys]
    """Each member's duplicate keys, in member order."""


def prepare_registration(command: RegisterCase, ctx: Context, now: datetime) -> NewCase:
    """What ``register_case`` decides before it touches the database: the same checks (raises
    ``RegistrationRejected``), the case with its ids, its people's keys. No I/O."""
    domain.check_registration(command, ctx.routes, now.date())
    case = domain.build_case(command, case_id=uuid.uuid4(), now=now)
    return NewCase(case, command.registration_key, [keys_of(m) for m in case.members])


async def register_cases(new: Sequence[NewCase], uow: Uow, *, now: datetime) -> list[Registration]:
    """``register_case`` for many registrations, in a handful of set-based statements in one unit of
    work, with the same outcome as registering them one after the other in this order: a key taken
    before creates nothing, every person is flagged against the cases registered before (those of
    ``new`` before theirs included), and each case has its status, ``CaseRegistered`` and
    ``CaseProfiled``, in that order, in the outbox. A registration per case, in the order given.

    Holds ``IMPORT_LOCK`` exclusively (``store.lock_for_import``) where one registration takes its
    key locks: the lookups see every registration committed before, the next ones see these."""
    await uow.store.lock_for_import()
    written = await uow.store.insert_cases(
        [(n.case, n.registration_key) for n in new], status=CaseStatus.REGISTERED
    )
    taken = [n.registration_key for n in new if n.case.case_id not in written and n.registration_key]
    existing = await uow.store.cases_for_keys(taken) if taken else {}
    created = [n for n in new if n.case.case_id in written]
    people = [
        (Holder(m.person_id, n.case.case_id), keys)
        for n in created
        for m, keys in zip(n.case.members, n.keys, strict=True)
    ]
    pairs = [(holder, pair) for holder, keys in people for pair in key_pairs(keys)]
    recorded = await uow.store.key_holders({pair for _, pair in pairs})
    await uow.store.add_keys(pairs)
    flags = await uow.store.flag_matches(matches_in_order(people, recorded))
    await uow.publish_many([e for n in created for e in _registered(n.case, now)])
    raised: dict[uuid.UUID, list[RaisedFlag]] = {}
    case_of = {holder.person_id: holder.case_id for holder, _ in people}
    for flag in flags:
        raised.setdefault(case_of[flag.person_id], []).append(flag)
    answers = []
    for n in new:
        if n.case.case_id in written:
            answers.append(Registration(n.case.case_id, True, raised.get(n.case.case_id, [])))
        else:
            assert n.registration_key is not None
            answers.append(Registration(existing[n.registration_key], created=False))
    return answers


# --- a registration under a key sent again: answered as the first time ----------------------------


async def register_or_repeat(
    command: RegisterCase, uow: Uow, ctx: Context, *, now: datetime | None = None, imported: bool = False
) -> Registration:
    """``register_case``, keeping what it answered in the same unit of work (``registration_answers``)
    when the command has a registration key: the same key sent again (a lost answer) is answered
    that, ``repeated``, not a bare "exists". ``imported``: a row of a bulk import."""
    done = await register_case(command, uow, ctx, now=now)
    key = command.registration_key
    if key is None:
        return done
    if done.created:
        await uow.store.save_answer(
            done.case_id, [f.flag_id for f in done.duplicate_flags], imported=imported
        )
        return done
    return (await answers_before([key], uow, for_import=imported)).get(key, done)


async def import_case(
    command: RegisterCase, uow: Uow, ctx: Context, *, now: datetime | None = None
) -> Registration:
    """A row of a bulk import, registered row by row (``register_or_repeat``)."""
    assert command.registration_key is not None, "an import's row has a key"
    return await register_or_repeat(command, uow, ctx, now=now, imported=True)


async def import_cases(new: Sequence[NewCase], uow: Uow, *, now: datetime) -> list[Registration]:
    """``register_cases`` for a chunk of a bulk import, keeping what it answered for each case in
    one more statement; the keys a concurrent import took meanwhile are answered as it answered."""
    done = await register_cases(new, uow, now=now)
    await uow.store.save_import_answers(
        [(d.case_id, [f.flag_id for f in d.duplicate_flags]) for d in done if d.created]
    )
    taken = [
        n.registration_key for n, d in zip(new, done, strict=True) if not d.created and n.registration_key
    ]
    if not taken:
        return done
    before = await answers_before(taken, uow, for_import=True)
    return [
        before.get(n.registration_key, d) if not d.created and n.registration_key else d
        for n, d in zip(new, done, strict=True)
    ]


async def answers_before(keys: Sequence[str], uow: Uow, *, for_import: bool) -> dict[str, Registration]:
    """For each registration key taken, what its registration answered (``repeated``; ``created``
    False where that answer is not known). For a bulk import only an import's answer counts: a
    row whose key ``POST /cases`` took was never imported, so it is answered "exists"."""
    taken = await uow.store.keys_taken(keys)
    answers = {}
    for key, t in taken.items():
        known = t.flags is not None and (t.imported or not for_import)
        answers[key] = Registration(t.case_id, known, (t.flags or []) if known else [], repeated=True)
    return answers


async def update_case(command: ChangeCase, uow: Uow, ctx: Context) -> CaseUpdated:
    """Replace a case's details before departure; members keep their ids by name and birth date.
    Eligibility and transport receive the case as it now stands."""
    details, case_id, now = command.details, command.case_id, uow.now()
    # Before the case's row lock, in the order registrations take them (a registration may wait for
    # that row, to flag this case, while holding its key locks).
    await _lock_keys(uow, details.members)
    case = await uow.store.case_for_update(case_id)
    if case is None:
        raise CaseNotFound(case_id)
    await _not_erased(uow, case_id)
    if not domain.may_change(case.status, withdrawn=await uow.store.is_withdrawn(case_id)):
        raise NotBeforeDeparture(f"case is {case.status.value}: it can be changed only before departure")
    domain.check_registration(details, ctx.routes, now.date())
    known = {
        domain.member_key(p.surname, p.given_names, p.birth_date): p.person_id
        for p in await uow.store.people_of(case_id)
    }
    rebuilt = domain.build_case(details, case_id=case_id, now=now)
    members = domain.keep_identities(rebuilt.members, known)
    updated = CaseUpdated(
        case_id=case_id,
        registered_at=case.registered_at,
        updated_at=now,
        route_id=details.route_id,
        planned_travel_date=details.planned_travel_date,
        consent=rebuilt.consent,
        members=members,
    )
    await uow.store.replace_case(updated)
    await _record_keys(uow, case_id, members)
    await uow.publish(updated)
    await uow.publish(domain.profile(updated, now))
    return updated


async def _lock_keys(uow: Uow, members: Sequence[PersonLike]) -> None:
    """Serialise, across processes, registrations and updates that may be the same person."""
    await uow.store.lock_duplicate_keys(lock_ids(keys_of(m) for m in members))


async def _record_keys(uow: Uow, case_id: uuid.UUID, members: list[Person]) -> list[RaisedFlag]:
    """Record the people's duplicate keys and flag every other case's person that shares one: the
    keys recorded and the other cases' holders of every key found in one statement, the flags in one
    (what recording and looking up each key of each person in turn flagged, in that order; the
    keys are locked, ``_lock_keys``, so no registration sharing one runs meanwhile)."""
    people = [(Holder(m.person_id, case_id), keys_of(m)) for m in members]
    pairs = [(holder, pair) for holder, keys in people for pair in key_pairs(keys)]
    recorded = await uow.store.record_person_keys(pairs, case_id=case_id)
    return await uow.store.flag_matches(matches_in_order(people, recorded))


async def list_duplicate_flags(
    status: str | None, case_id: uuid.UUID | None, uow: Uow
) -> list[DuplicateFlag]:
    return await uow.store.duplicate_flags(status, case_id)


async def resolve_duplicate_flag(command: ResolveFlag, uow: Uow) -> FlagStatus:
    """A caseworker decides: the same person registered twice, or two different people."""
    decision = FlagStatus(command.resolution.decision)
    assert decision in domain.FLAG_TRANSITIONS[FlagStatus.OPEN]
    resolution = command.resolution
    if not await uow.store.resolve_flag(command.flag_id, decision, command.resolved_by, resolution.note):
        raise FlagNotOpen(command.flag_id)
    return decision


# --- health evidence ---------------------------------------------------------------------------


async def record_health_evidence(command: AddHealthEvidence, uow: Uow) -> CloudEvent:
    """A test result or fit-to-travel examination. Medical data: it goes only to eligibility, on
    the host mission's restricted topic, and never onto the status stream."""
    now, evidence = uow.now(), command.evidence
    if evidence.taken_at > now:
        raise Invalid("taken_at", "is in the future")
    await _not_erased(uow, command.case_id)
    if not await uow.store.person_in_case(command.case_id, evidence.person_id):
        raise PersonNotInCase(command.case_id, evidence.person_id)
    recorded = HealthEvidenceRecorded(
        case_id=command.case_id,
        person_id=evidence.person_id,
        kind=evidence.kind,
        result=evidence.result,
        taken_at=evidence.taken_at,
        recorded_at=now,
    )
    event = await uow.publish(recorded)
    await uow.store.save_health_evidence(recorded, command.recorded_by, event.id)
    return event


async def read_health_evidence(command: ReadCase, uow: Uow) -> list[HealthEvidence]:
    """What was recorded for the case (how a client learns whether a result it sent was taken);
    medical data, so the read is recorded with who and why, like ``read_case``."""
    await _not_erased(uow, command.case_id)
    if not await uow.store.case_exists(command.case_id):
        raise CaseNotFound(command.case_id)
    await uow.store.record_access(command.case_id, command.actor, command.purpose)
    return await uow.store.health_evidence(command.case_id)


# --- withdrawal --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WithdrawalAnswer:
    """Withdrawn (``pending`` False), or recorded and not yet applied nor refused (``pending``)."""

    case_id: uuid.UUID
    created: bool
    pending: bool

    @property
    def status(self) -> str:
        return "withdrawal_requested" if self.pending else CaseStatus.WITHDRAWN.value


async def request_withdrawal(command: RequestWithdrawal, uow: Uow) -> bool:
    """Record the withdrawal and send it to transport, under the case's row lock; True if this
    request recorded it, False if it was recorded before (repeating it is safe)."""
    case = await uow.store.case_for_update(command.case_id)
    if case is None:
        raise CaseNotFound(command.case_id)
    await _not_erased(uow, command.case_id)
    created = not await uow.store.is_withdrawn(command.case_id)
    if created:
        if case.status not in domain.WITHDRAWABLE:
            raise NotBeforeDeparture(
                f"case is {case.status.value}: withdrawal is possible only before departure"
            )
        withdrawal = CaseWithdrawn(case_id=command.case_id, reason=command.reason, withdrawn_at=uow.now())
        await uow.store.save_withdrawal(withdrawal, command.recorded_by)
        # The caseworker's note may name people: it stays on the restricted topic. The public
        # "withdrawn" comes from transport once the seat is freed.
        await uow.publish(withdrawal)
    return created


async def withdrawal_outcome(case_id: uuid.UUID, units: Units, wait_seconds: float) -> CaseStatus | None:
    """Withdrawn, or a status past departure, as the stream shows it; None if neither in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        async with units() as uow:
            current = await uow.store.case_status(case_id)
        if domain.withdrawal_settled(current):
            return current
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(0.1)


async def withdraw_case(command: RequestWithdrawal, units: Units, ctx: Context) -> WithdrawalAnswer:
    """The person withdraws, at any time before departure; the whole case leaves together.

    Transport, which seats cases and records departures, applies the withdrawal under the case's
    lock, so it and a departure happen one after the other. The answer waits for the status
    stream: withdrawn (its seat freed, the border posts' manifests amended), ``WithdrawalTooLate``
    when the vehicle left first, pending when neither is known in time (the withdrawal stands and
    is applied or refused as soon as transport reads it)."""
    async with units() as uow:
        created = await request_withdrawal(command, uow)
    outcome = await withdrawal_outcome(command.case_id, units, ctx.withdrawal_wait_seconds)
    if outcome is CaseStatus.WITHDRAWN:
        return WithdrawalAnswer(command.case_id, created, pending=False)
    if outcome is not None:
        raise WithdrawalTooLate(outcome)
    return WithdrawalAnswer(command.case_id, created, pending=True)


# --- reads of personal data and of the timeline ---------------------------------------------------


async def read_case(command: ReadCase, uow: Uow) -> CaseDetails:
    """The case with personal data; the read is recorded, with who and why, in the same transaction."""
    await _not_erased(uow, command.case_id)  # what is left would not make a case any more
    case = await uow.store.case_details(command.case_id)
    if case is None:
        raise CaseNotFound(command.case_id)
    await uow.store.record_access(command.case_id, command.actor, command.purpose)
    return case


async def case_access_log(case_id: uuid.UUID, uow: Uow) -> list[AccessRecord]:
    return await uow.store.access_log(case_id)


async def query_access_log(
    actor: str | None, since: datetime | None, limit: int, uow: Uow
) -> list[AccessRecord]:
    return await uow.store.access_log_query(actor, since, limit)


async def case_timeline(case_id: uuid.UUID, uow: Uow) -> list[TimelineEntry]:
    """The case's status changes as read from the public status stream (no personal data)."""
    if not await uow.store.case_exists(case_id):
        raise CaseNotFound(case_id)
    return await uow.store.timeline(case_id)


# --- the status stream, read back ----------------------------------------------------------------


async def record_status_changes(changes: Sequence[CloudEvent], uow: Uow, ctx: Context) -> None:
    """Status changes on the public stream, in their order: on their cases' timelines, each case's
    current status, and what the stream guard knows of each case (applied in sets: a few statements
    for any number of changes)."""
    read = [(c.source, c.id, c.data) for c in changes if isinstance(c.data, CaseStatusChanged)]
    await uow.store.record_statuses(read)
    await uow.note_statuses([(change.case_id, change.status) for _, _, change in read])


# --- erasure of personal data ----------------------------------------------------------------------


async def _not_erased(uow: Uow, case_id: uuid.UUID) -> None:
    erasure = await uow.store.erasure_of(case_id)
    if erasure is not None:
        raise CaseErased(case_id, erasure.erased_at)


async def erase_personal_data(command: EraseCase, uow: Uow) -> tuple[Erasure, bool]:
    """Erase the personal data of a case's people here, and tell every service holding a copy
    (``PersonalDataErased``, after everything intake sent about the case on the same topic, so no
    copy is made again after it). Under the case's row lock: a withdrawal, an update or a read of
    the case waits for it, then finds the data gone. The erasure, and whether this command made it
    (a repeat changes nothing)."""
    case = await uow.store.case_for_update(command.case_id)
    if case is None:
        raise CaseNotFound(command.case_id)
    done = await uow.store.erasure_of(command.case_id)
    if done is not None:
        return done, False
    if case.status not in domain.ERASABLE:
        raise domain.NotErasable(case.status)
    return await _erase(uow, command.case_id, command.basis, command.requested_by), True


async def _erase(uow: Uow, case_id: uuid.UUID, basis: ErasureBasis, requested_by: str) -> Erasure:
    erasure = Erasure(case_id=case_id, basis=basis, requested_by=requested_by, erased_at=uow.now())
    # Read before the erasure truncates birth dates: the age bands reporting keeps stay exact.
    stats = await uow.store.statistics_of(case_id)
    await uow.store.erase_case(erasure)
    await uow.forget_published(str(case_id))  # the registrations and updates it sent
    await uow.publish(PersonalDataErased(case_id=case_id, basis=basis, erased_at=erasure.erased_at))
    if stats is not None:
        await uow.publish(domain.erased_profile(case_id, stats, erasure.erased_at))
    return erasure


RETENTION_SWEEPER = "retention"
"""Who the audit names for erasures the retention period decided."""


async def expire_personal_data(uow: Uow, ctx: Context, *, limit: int = 100) -> list[uuid.UUID]:
    """Erase the personal data of cases that ended longer ago than the retention period (at most
    ``limit`` of them, oldest first; the sweep runs again for the rest). Cases another sweep is
    erasing at the same moment are skipped, not waited for."""
    ended_before = uow.now() - ctx.retention
    expired = await uow.store.cases_past_retention(domain.ERASABLE, ended_before, limit)
    for case_id in expired:
        await _erase(uow, case_id, ErasureBasis.RETENTION_EXPIRED, RETENTION_SWEEPER)
    return expired


async def sweep_retention(units: Units, ctx: Context, *, batch: int = 100) -> int:
    """Erase every case past the retention period, a batch per transaction; how many."""
    erased = 0
    while True:
        async with units() as uow:
            expired = await expire_personal_data(uow, ctx, limit=batch)
        erased += len(expired)
        if len(expired) < batch:
            return erased


# --- status changes reported by country missions -------------------------------------------------


async def apply_reported_status(
    report: CaseStatusReported, uow: Uow, ctx: Context, *, origin: CloudEvent | None = None
) -> CloudEvent:
    """Check a mission's reported status change (``origin``: its envelope, the event being
    handled unless given), apply it under the case's row lock and republish it on the stream.

    Raises ``RetryLater`` when the case is not ready for it yet (intake has not yet read the status
    it follows), ``Rejected`` when it never fits (a value that could never be stored, an unknown
    case, a mission that may not report it, a status it cannot follow)."""
    origin = origin or uow.cause
    assert origin is not None, "a report arrives in an envelope"
    unusable = domain.unusable_report(report)
    if unusable is not None:
        raise Rejected("invalid_value", unusable)
    case = await uow.store.case_for_update(report.case_id)
    if case is None:
        raise Rejected("unknown_case", f"no case {report.case_id}")
    route = ctx.routes.get(case.route_id)
    if route is None:
        raise Rejected("unknown_route", f"route {case.route_id} is not configured")
    # The reporting mission is the source's: on Kafka the consumer has already checked it against
    # the mission's own topic, which only that mission's principal may write (source_mismatch);
    # over HTTP it is the caller's to prove.
    verdict = domain.judge_report(origin.source, report.status, case.status, route)
    if verdict.action is ReportAction.LATER:
        raise RetryLater(verdict.code or "illegal_transition", verdict.detail or "")
    if verdict.action is ReportAction.REJECT:
        raise Rejected(verdict.code or "rejected", verdict.detail or "")
    status = CaseStatus(report.status.value)
    await uow.store.set_status(report.case_id, status)
    change = CaseStatusChanged(
        case_id=report.case_id,
        status=status,
        occurred_at=report.occurred_at,
        members=case.members,
        place=domain.public_place(report.place, route),
        # The mission's code, when the public stream has it, and its text: the mission's own words
        # (up to 500 characters, which may name a person) stay in intake (keep_report_reason).
        reason_code=reasons.mission_code(report.reason_code),
    )
    try:
        # publish, not announce: a change the stream guard refuses is not a bug here but a report
        # ahead of the stream. Who reported it goes along, so a mission recognises its own report.
        published = await uow.publish(
            change, extensions={"originsource": origin.source, "originid": origin.id}
        )
    except IllegalStatusChange as exc:
        # The projection let it through but the case's last status does not: not yet, at best.
        raise RetryLater("illegal_transition", str(exc)) from exc
    if report.reason_code is not None or report.reason is not None or report.place != change.place:
        await uow.store.keep_report_reason(published, report, origin.source)
    # With the report's inbox row (recorded by the consumer or by receive_report in this unit of
    # work): a repeat over HTTP is answered the status change, whichever way the report came first.
    await uow.store.keep_outcome(INBOUND, origin, published.id)
    return published


@dataclass(frozen=True)
class ReportAnswer:
    """What a mission's report over HTTP is answered: the status change it published, or for a
    repeat (``repeated``) the one its first delivery published."""

    status_event_id: str | None
    """None only for a repeat of a report applied before these ids were kept."""
    repeated: bool = False


async def receive_report(event: CloudEvent, uow: Uow, ctx: Context) -> ReportAnswer:
    """A report sent over HTTP: through the same inbox as the Kafka path, so an event sent both ways
    is applied once, and a repeat is answered what the first delivery published."""
    assert isinstance(event.data, CaseStatusReported)
    if not await uow.store.first_delivery(INBOUND, event):
        return ReportAnswer(await uow.store.outcome_of(INBOUND, event), repeated=True)
    published = await apply_reported_status(event.data, uow, ctx, origin=event)
    return ReportAnswer(published.id)


# --- the consumers' tables ---------------------------------------------------------------------


class EventUseCase(Protocol):
    """A consumer's use case: the event's data, its unit of work, and the context (by name)."""

    def __call__(self, event: Any, uow: Uow, /, *, ctx: Context) -> Awaitable[Any]: ...


class SetUseCase(Protocol):
    """A consumer's use case for many events of one type: their envelopes, in order, the unit of
    work, and the context (by name)."""

    def __call__(self, events: Sequence[CloudEvent], uow: Uow, /, *, ctx: Context) -> Awaitable[Any]: ...


TIMELINE_IN_SETS: dict[type[Event], SetUseCase] = {CaseStatusChanged: record_status_changes}
"""``corridor.case-status``, read back into each case's timeline (most of what intake reads)."""

INBOUND_HANDLERS: dict[type[Event], EventUseCase] = {CaseStatusReported: apply_reported_status}
"""``missions.case-status-reported``: the missions' reports (``INBOUND``)."""
