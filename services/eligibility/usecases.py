"""What eligibility does: every use case is a function of (command or event, unit of work, context).

Every input that can change a case's decision (its registration or update, health evidence, a
withdrawal, a crossing requirement published or lifted, a supervisor's override or its
revocation) records what it says and then calls ``reevaluate``: decide again from everything known
now, under a lock on the case, and publish only if the outcome or a reason changed. A departure
freezes the decision: changes after it are the border's to make.

Eligibility announces no status: transport announces "eligible", "on hold" or "ineligible" as it
applies each decision to the case's seat (docs/consistency.md), from the decision's public reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from contracts.base import Event
from contracts.border import CrossingRequirementLifted, CrossingRequirementPublished
from contracts.eligibility import EligibilityDecided, Outcome
from contracts.envelope import CloudEvent
from contracts.intake import (
    CaseRegistered,
    CaseUpdated,
    CaseWithdrawn,
    HealthEvidenceRecorded,
    PersonalDataErased,
)
from contracts.routes import RouteBook
from contracts.transport import MovementDeparted
from corridor.uow import Publisher
from services.eligibility import domain
from services.eligibility.domain import (
    CaseFacts,
    CaseRecord,
    Decision,
    DecisionHistory,
    Evidence,
    RecordedDecision,
    Requirement,
    SupervisorOverride,
)

# --- what the use cases need ----------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """The configuration every use case may read: the routes eligibility judges cases on."""

    routes: RouteBook


class Store(Protocol):
    """What the use cases read and write (``store.EligibilityStore`` on PostgreSQL)."""

    async def save_facts(self, facts: CaseFacts) -> None: ...
    async def save_facts_many(self, facts: list[CaseFacts]) -> None: ...
    async def lock_case(self, case_id: uuid.UUID) -> CaseRecord | None: ...
    async def lock_cases(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, CaseRecord]: ...
    async def lock_case_id(self, case_id: uuid.UUID) -> None: ...
    async def lock_case_ids(self, case_ids: list[uuid.UUID]) -> None: ...
    async def facts_of(self, case_ids: list[uuid.UUID]) -> list[CaseFacts]: ...
    async def mark_withdrawn(self, case_id: uuid.UUID, at: datetime) -> None: ...
    async def erase_case(self, facts: CaseFacts, at: datetime) -> None: ...
    async def mark_departed(self, case_ids: list[uuid.UUID], at: datetime) -> None: ...
    async def cases_on_routes(
        self, route_ids: list[str], travelling_from: date, travelling_until: date | None = None
    ) -> list[uuid.UUID]: ...
    async def append_decisions(
        self, decided: list[tuple[uuid.UUID, int, Decision]], decided_at: datetime
    ) -> None: ...
    async def decisions(self, case_id: uuid.UUID) -> list[RecordedDecision]: ...
    async def latest_decision(self, case_id: uuid.UUID) -> RecordedDecision | None: ...
    async def latest_decisions(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, RecordedDecision]: ...
    async def evidence_of(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Evidence]]: ...
    async def add_evidence(self, case_id: uuid.UUID, e: Evidence) -> None: ...
    async def active_requirements(self) -> list[Requirement]: ...
    async def save_requirement(self, r: Requirement) -> None: ...
    async def lift_requirement(self, requirement_id: uuid.UUID, at: datetime) -> Requirement | None: ...
    async def mark_certificates_used(self, used: Sequence[tuple[uuid.UUID, str]], at: datetime) -> None: ...
    async def certificates_used_by_others(
        self, refs: dict[uuid.UUID, list[str]]
    ) -> dict[uuid.UUID, frozenset[str]]: ...
    async def active_overrides(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, SupervisorOverride]: ...
    async def add_override(
        self, case_id: uuid.UUID, outcome: Outcome, reason: str, supervisor: str
    ) -> int: ...
    async def revoke_override(self, case_id: uuid.UUID, supervisor: str) -> bool: ...
    async def overrides(self, case_id: uuid.UUID) -> list[SupervisorOverride]: ...


class Unit(Publisher, Protocol):
    """A unit of work on eligibility's store (``corridor.uow.UnitOfWork``, or the tests' fake)."""

    @property
    def store(self) -> Store: ...


# --- the decision --------------------------------------------------------------------------------


async def reevaluate(case_id: uuid.UUID, uow: Unit, ctx: Context) -> None:
    """Decide again from everything known now; publish only if the outcome or a reason changed."""
    await reevaluate_many([case_id], uow, ctx)


async def reevaluate_many(case_ids: Sequence[uuid.UUID], uow: Unit, ctx: Context) -> None:
    """``reevaluate`` for many cases, in a few statements whatever their number: each case decided
    under its lock (taken for all at once, in case-id order) from what is known of it now, and
    published in the order given only if its outcome or a reason changed."""
    store = uow.store
    ids = list(dict.fromkeys(case_ids))
    if not ids:
        return
    locked = await store.lock_cases(ids)
    # Not registered here yet, on the road, or erased: the decision is frozen.
    cases = [
        locked[c] for c in ids if c in locked and not locked[c].on_the_road and locked[c].erased_at is None
    ]
    if not cases:
        return
    judged = [c.facts.case_id for c in cases]
    evidence = await store.evidence_of(judged)
    requirements = await store.active_requirements()
    used = await store.certificates_used_by_others(
        {c.facts.case_id: [m.document_ref for m in c.facts.members] for c in cases}
    )
    overrides = await store.active_overrides(judged)
    latest = await store.latest_decisions(judged)
    changed: list[tuple[uuid.UUID, int, Decision]] = []
    for case in cases:
        facts = case.facts
        route = ctx.routes.get(facts.route_id)
        if route is None:
            decision = domain.route_unknown(facts)
        else:
            decision = domain.evaluate(
                facts,
                route,
                evidence=evidence.get(facts.case_id, []),
                requirements=requirements,
                withdrawn_at=case.withdrawn_at,
                used_certificates=used[facts.case_id],
            )
        decision = domain.overridden(decision, overrides.get(facts.case_id), case)
        before = latest.get(facts.case_id)
        if not decision.repeats(before):
            changed.append((facts.case_id, before.version + 1 if before else 1, decision))
    if changed:
        await _publish(changed, uow)


async def _publish(decided: list[tuple[uuid.UUID, int, Decision]], uow: Unit) -> None:
    # No status change here: transport announces "eligible", "on hold" or "ineligible" when it
    # applies the decision to the case's seat, so the stream never shows a decision after a
    # seat change it did not cause (a case held after its bus was planned, say). What the stream
    # may say travels in public_reason_code/public_reason: no medical fact (Decision.summary).
    now = uow.now()
    await uow.store.append_decisions(decided, now)
    events: list[Event] = []
    for case_id, version, decision in decided:
        public_code, public_reason = decision.summary()
        events.append(
            EligibilityDecided(
                case_id=case_id,
                version=version,
                outcome=decision.outcome,
                priority=decision.priority,
                rules=list(decision.rules),
                decided_at=now,
                public_reason_code=public_code,
                public_reason=public_reason,
            )
        )
    await uow.publish_many(events)


async def _reevaluate_affected(requirement: Requirement, uow: Unit, ctx: Context) -> None:
    """Every case a requirement may affect, decided in the order of travel, all in a few statements
    (a requirement at a busy crossing reaches thousands of cases)."""
    route_ids = domain.routes_through(ctx.routes.routes, requirement.checkpoint_id)
    cases = await uow.store.cases_on_routes(
        route_ids, requirement.effective_from, requirement.effective_until
    )
    await reevaluate_many(cases, uow, ctx)


# --- events --------------------------------------------------------------------------------------


# Health evidence travels on its own topic, so it may be read before or after its case's
# registration, in another transaction (another eligibility instance may hold that partition).
# Both take a lock on the case id first: evidence read first is kept and the registration's
# evaluation sees it; evidence read second re-evaluates the registered case. Without the lock, the
# registration could evaluate before the evidence commits while the evidence finds no case yet.


async def on_case_registered(event: CaseRegistered, uow: Unit, ctx: Context) -> None:
    await uow.store.lock_case_id(event.case_id)
    await uow.store.save_facts(CaseFacts.from_registration(event))
    await reevaluate(event.case_id, uow, ctx)


async def on_case_updated(event: CaseUpdated, uow: Unit, ctx: Context) -> None:
    await uow.store.lock_case_id(event.case_id)
    await uow.store.save_facts(CaseFacts.from_registration(event))
    await reevaluate(event.case_id, uow, ctx)


async def on_registrations(events: Sequence[CloudEvent], uow: Unit, ctx: Context) -> None:
    """Apply a run of registrations and updates (intake.cases: one a case, most of what eligibility
    reads) as applying them one after the other would, in a few statements whatever the run's
    length: every case's facts saved, then every case decided (``reevaluate_many``)."""
    registered: list[CaseRegistered | CaseUpdated] = []
    for e in events:
        assert isinstance(e.data, CaseRegistered | CaseUpdated), e.type  # IN_SETS
        registered.append(e.data)
    if len({r.case_id for r in registered}) < len(registered):
        # A case registered and updated within the run: each decided in turn, as one at a time.
        for r in registered:
            await (
                on_case_registered(r, uow, ctx)
                if isinstance(r, CaseRegistered)
                else on_case_updated(r, uow, ctx)
            )
        return
    case_ids = [r.case_id for r in registered]
    await uow.store.lock_case_ids(case_ids)
    await uow.store.save_facts_many([CaseFacts.from_registration(r) for r in registered])
    await reevaluate_many(case_ids, uow, ctx)


async def on_health_evidence_recorded(event: HealthEvidenceRecorded, uow: Unit, ctx: Context) -> None:
    await uow.store.lock_case_id(event.case_id)
    case = await uow.store.lock_case(event.case_id)
    if case is not None and case.erased_at is not None:
        return  # recorded before the erasure, read after it: not kept
    evidence = Evidence(event.person_id, event.kind, event.result, event.taken_at)
    await uow.store.add_evidence(event.case_id, evidence)
    await reevaluate(event.case_id, uow, ctx)  # nothing yet if the case is not registered here


async def on_case_withdrawn(event: CaseWithdrawn, uow: Unit, ctx: Context) -> None:
    await uow.store.mark_withdrawn(event.case_id, event.withdrawn_at)
    await reevaluate(event.case_id, uow, ctx)


async def on_personal_data_erased(event: PersonalDataErased, uow: Unit, ctx: Context) -> None:
    """The case's people had their personal data erased at intake: erase what is kept of them here
    and decide nothing on the case again. Outcomes and dates stay for the statistics."""
    case = await uow.store.lock_case(event.case_id)
    if case is None or case.erased_at is not None:
        return  # never registered here (it follows the registration on the topic), or done before
    await uow.store.erase_case(domain.erased_facts(case.facts), event.erased_at)


async def on_requirement_published(event: CrossingRequirementPublished, uow: Unit, ctx: Context) -> None:
    requirement = Requirement.from_published(event)
    await uow.store.save_requirement(requirement)
    await _reevaluate_affected(requirement, uow, ctx)


async def on_requirement_lifted(event: CrossingRequirementLifted, uow: Unit, ctx: Context) -> None:
    lifted = await uow.store.lift_requirement(event.requirement_id, event.lifted_at)
    if lifted is not None:  # unknown here, or lifted before: nothing changes
        await _reevaluate_affected(lifted, uow, ctx)


async def on_movement_departed(event: MovementDeparted, uow: Unit, ctx: Context) -> None:
    """The cases on board are on the road: their decisions are frozen, and each certificate of
    return they travel on is used (a second journey on it is refused)."""
    await uow.store.mark_departed(event.case_ids, event.departed_at)
    used = [
        (facts.case_id, ref)
        for facts in await uow.store.facts_of(event.case_ids)
        for ref in facts.certificates_of_return()
    ]
    await uow.store.mark_certificates_used(used, event.departed_at)


class EventUseCase(Protocol):
    """(the event's data, a unit of work, the context): ``ctx`` is bound when subscribing."""

    def __call__(self, event: Any, uow: Unit, ctx: Context) -> Awaitable[None]: ...


HANDLERS: Mapping[type[Event], EventUseCase] = {
    CaseRegistered: on_case_registered,
    CaseUpdated: on_case_updated,
    HealthEvidenceRecorded: on_health_evidence_recorded,
    CaseWithdrawn: on_case_withdrawn,
    PersonalDataErased: on_personal_data_erased,
    CrossingRequirementPublished: on_requirement_published,
    CrossingRequirementLifted: on_requirement_lifted,
    MovementDeparted: on_movement_departed,
}
"""The use case for each event eligibility consumes (intake.cases, border.requirements,
transport.movements)."""


class SetUseCase(Protocol):
    """A use case for a run of events: (their envelopes, in order, a unit of work, the context)."""

    def __call__(self, events: Sequence[CloudEvent], uow: Unit, ctx: Context) -> Awaitable[None]: ...


IN_SETS: Mapping[type[Event], SetUseCase] = {CaseRegistered: on_registrations, CaseUpdated: on_registrations}
"""The events eligibility applies many at once (a run mixing them is one call)."""


# --- commands and queries ------------------------------------------------------------------------


@dataclass(frozen=True)
class OverrideDecision:
    """A supervisor decides over the rules, with a written reason."""

    case_id: uuid.UUID
    outcome: Outcome
    reason: str
    supervisor: str


@dataclass(frozen=True)
class RevokeOverride:
    case_id: uuid.UUID
    supervisor: str


async def case_decisions(case_id: uuid.UUID, uow: Unit) -> DecisionHistory:
    """Every decision taken on the case, oldest first, and every override with its reason."""
    found = await uow.store.decisions(case_id)
    overrides = await uow.store.overrides(case_id)
    if not found:
        raise domain.NoDecision(f"no decision for case {case_id}")
    return DecisionHistory(case_id, tuple(found), tuple(overrides))


async def override_decision(cmd: OverrideDecision, uow: Unit, ctx: Context) -> RecordedDecision:
    """Audited, and shown in the decision beside the rules it overrides; re-evaluation keeps it
    until it is revoked. No override makes a case travel without consent (``OverrideRefused``)."""
    case = await uow.store.lock_case(cmd.case_id)
    latest = await uow.store.latest_decision(cmd.case_id)
    if case is None or latest is None:
        raise domain.NoSuchCase(f"no case {cmd.case_id}")
    if case.erased_at is not None:
        raise domain.CaseErased(f"the personal data of case {cmd.case_id} was erased")
    domain.check_override(latest.as_decision(), cmd.outcome)
    await uow.store.add_override(cmd.case_id, cmd.outcome, cmd.reason, cmd.supervisor)
    return await _decided(cmd.case_id, uow, ctx)


async def revoke_override(cmd: RevokeOverride, uow: Unit, ctx: Context) -> RecordedDecision:
    """The rules decide again."""
    # The case first, as every change to it (an override being added at the same moment waits
    # here instead of holding the case while waiting for the override row: no deadlock).
    await uow.store.lock_case(cmd.case_id)
    if not await uow.store.revoke_override(cmd.case_id, cmd.supervisor):
        raise domain.NoActiveOverride(f"no active override on case {cmd.case_id}")
    return await _decided(cmd.case_id, uow, ctx)


async def _decided(case_id: uuid.UUID, uow: Unit, ctx: Context) -> RecordedDecision:
    """Re-evaluate, and return the decision now in force (a new version, or the same one)."""
    await reevaluate(case_id, uow, ctx)
    latest = await uow.store.latest_decision(case_id)
    if latest is None:  # an override needs a decision to override: cannot happen
        raise domain.NoDecision(f"no decision for case {case_id}")
    return latest
