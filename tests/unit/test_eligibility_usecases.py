"""Eligibility's use cases in memory: what each input publishes, and what each command refuses.

They run against ``FakeUnitOfWork`` and ``FakeEligibilityStore`` (the real store's methods over
dicts; ``lock_case`` only notes the lock), in milliseconds. The integration tests stay the proof on
Kafka and PostgreSQL (tests/integration/test_intake_eligibility.py, test_case_flow.py).
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts import reasons, topics
from contracts.border import CrossingRequirementLifted, CrossingRequirementPublished
from contracts.eligibility import EligibilityDecided, Outcome, RuleOutcome
from contracts.envelope import CloudEvent
from contracts.intake import (
    CaseRegistered,
    CaseUpdated,
    CaseWithdrawn,
    EvidenceKind,
    EvidenceResult,
    HealthEvidenceRecorded,
    PersonalDataErased,
)
from contracts.routes import RouteBook
from contracts.status import CaseStatusChanged
from contracts.transport import MovementDeparted
from corridor.auth import Role
from corridor.errors import DomainError
from corridor.runtime import ServiceRuntime
from devkit import scenario
from devkit.devidp import DevIssuer
from services.eligibility import api, domain, usecases
from services.eligibility.app import MIGRATIONS, EligibilitySettings
from services.eligibility.domain import (
    ERASED_TEXT,
    CaseFacts,
    CaseRecord,
    Decision,
    Evidence,
    RecordedDecision,
    Requirement,
    SupervisorOverride,
)
from services.eligibility.usecases import Context, OverrideDecision, RevokeOverride
from tests.fakes import FakeUnitOfWork
from tests.paths import CENTRAL_ASIA_ROUTES
from tests.problemcheck import answered
from tests.unit.conftest import role_auth

ROUTES = RouteBook.load(CENTRAL_ASIA_ROUTES)
CTX = Context(routes=ROUTES)
TRAVEL = date(2026, 12, 1)
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ENTRY = "uzb-zhibek-zholy-entry"


class FakeEligibilityStore:
    """``EligibilityStore`` over dicts, with the same answers; ``lock_case`` takes no lock but
    notes it in ``locks``, so a test can see which cases a use case decided under a lock, in order."""

    def __init__(self) -> None:
        self.cases: dict[uuid.UUID, CaseRecord] = {}
        self.decided: dict[uuid.UUID, list[RecordedDecision]] = {}
        self.evidence_kept: dict[uuid.UUID, list[Evidence]] = {}
        self.requirements: dict[uuid.UUID, Requirement] = {}
        self.lifted: set[uuid.UUID] = set()
        self.used: dict[str, uuid.UUID] = {}
        self.override_log: dict[uuid.UUID, list[SupervisorOverride]] = {}
        self.locks: list[uuid.UUID] = []
        self.id_locks: list[uuid.UUID] = []
        self.revoked_unlocked = 0  # revocations made before the case was locked (a deadlock risk)

    async def save_facts(self, facts: CaseFacts) -> None:
        known = self.cases.get(facts.case_id)
        self.cases[facts.case_id] = dataclasses.replace(known, facts=facts) if known else CaseRecord(facts)

    async def lock_case_id(self, case_id: uuid.UUID) -> None:
        self.id_locks.append(case_id)

    async def lock_case(self, case_id: uuid.UUID) -> CaseRecord | None:
        self.locks.append(case_id)
        return self.cases.get(case_id)

    async def lock_cases(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, CaseRecord]:
        return {c: found for c in sorted(case_ids) if (found := await self.lock_case(c)) is not None}

    async def lock_case_ids(self, case_ids: list[uuid.UUID]) -> None:
        for c in sorted(set(case_ids), key=str):
            await self.lock_case_id(c)

    async def save_facts_many(self, facts: list[CaseFacts]) -> None:
        for f in facts:
            await self.save_facts(f)

    async def facts_of(self, case_ids: list[uuid.UUID]) -> list[CaseFacts]:
        return [self.cases[c].facts for c in case_ids if c in self.cases]

    async def mark_withdrawn(self, case_id: uuid.UUID, at: datetime) -> None:
        if case_id in self.cases:
            self.cases[case_id] = dataclasses.replace(self.cases[case_id], withdrawn_at=at)

    async def erase_case(self, facts: CaseFacts, at: datetime) -> None:
        case_id = facts.case_id
        self.cases[case_id] = dataclasses.replace(self.cases[case_id], facts=facts, erased_at=at)
        self.evidence_kept.pop(case_id, None)
        self.override_log[case_id] = [
            dataclasses.replace(o, reason=ERASED_TEXT) for o in self.override_log.get(case_id, [])
        ]

    async def mark_departed(self, case_ids: list[uuid.UUID], at: datetime) -> None:
        for c in case_ids:
            if c in self.cases and self.cases[c].departed_at is None:
                self.cases[c] = dataclasses.replace(self.cases[c], departed_at=at)

    async def cases_on_routes(
        self, route_ids: list[str], travelling_from: date, travelling_until: date | None = None
    ) -> list[uuid.UUID]:
        found = [
            c
            for c in self.cases.values()
            if c.facts.route_id in route_ids
            and c.facts.planned_travel_date >= travelling_from
            and (travelling_until is None or c.facts.planned_travel_date <= travelling_until)
            and c.departed_at is None
            and c.withdrawn_at is None
        ]
        return [
            c.facts.case_id
            for c in sorted(found, key=lambda c: (c.facts.planned_travel_date, c.facts.case_id))
        ]

    async def append_decisions(
        self, decided: list[tuple[uuid.UUID, int, Decision]], decided_at: datetime
    ) -> None:
        for case_id, version, decision in decided:
            versions = self.decided.setdefault(case_id, [])
            assert version == len(versions) + 1, (version, len(versions))  # the primary key's guard
            versions.append(
                RecordedDecision(version, decision.outcome, decision.priority, decision.rules, decided_at)
            )

    async def decisions(self, case_id: uuid.UUID) -> list[RecordedDecision]:
        return list(self.decided.get(case_id, []))

    async def latest_decision(self, case_id: uuid.UUID) -> RecordedDecision | None:
        return self.decided[case_id][-1] if self.decided.get(case_id) else None

    async def latest_decisions(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, RecordedDecision]:
        return {c: found for c in case_ids if (found := await self.latest_decision(c)) is not None}

    async def evidence_of(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Evidence]]:
        return {c: list(self.evidence_kept[c]) for c in case_ids if self.evidence_kept.get(c)}

    async def add_evidence(self, case_id: uuid.UUID, e: Evidence) -> None:
        self.evidence_kept.setdefault(case_id, []).append(e)

    async def active_requirements(self) -> list[Requirement]:
        return [r for r in self.requirements.values() if r.requirement_id not in self.lifted]

    async def save_requirement(self, r: Requirement) -> None:
        self.requirements.setdefault(r.requirement_id, r)

    async def lift_requirement(self, requirement_id: uuid.UUID, at: datetime) -> Requirement | None:
        if requirement_id not in self.requirements or requirement_id in self.lifted:
            return None
        self.lifted.add(requirement_id)
        return self.requirements[requirement_id]

    async def mark_certificates_used(self, used: Sequence[tuple[uuid.UUID, str]], at: datetime) -> None:
        for case_id, ref in used:
            self.used.setdefault(ref, case_id)

    async def certificates_used_by_others(
        self, refs: dict[uuid.UUID, list[str]]
    ) -> dict[uuid.UUID, frozenset[str]]:
        return {
            case_id: frozenset(r for r in case_refs if r in self.used and self.used[r] != case_id)
            for case_id, case_refs in refs.items()
        }

    async def active_overrides(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, SupervisorOverride]:
        found = {}
        for case_id in case_ids:
            active = [o for o in self.override_log.get(case_id, []) if o.revoked_at is None]
            if active:
                found[case_id] = active[-1]
        return found

    async def add_override(self, case_id: uuid.UUID, outcome: Outcome, reason: str, supervisor: str) -> int:
        await self.revoke_override(case_id, supervisor)
        log = self.override_log.setdefault(case_id, [])
        log.append(SupervisorOverride(outcome, reason, supervisor, NOW))
        return len(log)

    async def revoke_override(self, case_id: uuid.UUID, supervisor: str) -> bool:
        self.revoked_unlocked += case_id not in self.locks
        log = self.override_log.get(case_id, [])
        active = [i for i, o in enumerate(log) if o.revoked_at is None]
        for i in active:
            log[i] = dataclasses.replace(log[i], revoked_at=NOW, revoked_by=supervisor)
        return bool(active)

    async def overrides(self, case_id: uuid.UUID) -> list[SupervisorOverride]:
        return list(self.override_log.get(case_id, []))


# --- helpers -----------------------------------------------------------------------------------


def unit(store: FakeEligibilityStore) -> FakeUnitOfWork[FakeEligibilityStore]:
    return FakeUnitOfWork(store, source="/missions/KAZ/eligibility", now=NOW)


def registration(body: dict[str, Any], case_id: uuid.UUID | None = None) -> CaseRegistered:
    """A scenario's registration as intake publishes it (each person gets an id)."""
    return CaseRegistered.model_validate(
        {
            **{k: v for k, v in body.items() if k in CaseRegistered.model_fields},
            "case_id": case_id or uuid.uuid4(),
            "registered_at": NOW,
            "members": [{**m, "person_id": uuid.uuid4()} for m in body["members"]],
        }
    )


def updated(case: CaseRegistered, **changes: Any) -> CaseUpdated:
    return CaseUpdated.model_validate({**case.model_dump(), "updated_at": NOW, **changes})


def published(uow: FakeUnitOfWork[Any]) -> list[EligibilityDecided]:
    return uow.events(EligibilityDecided)


def requirement(
    checkpoint: str = ENTRY, effective: date = TRAVEL, until: date | None = None
) -> CrossingRequirementPublished:
    return CrossingRequirementPublished(
        requirement_id=uuid.uuid4(),
        checkpoint_id=checkpoint,
        country="UZB",
        post="Gisht-Kuprik",
        code="negative_covid19_test",
        description="a negative COVID-19 test taken within 72 hours",
        evidence_kind=EvidenceKind.COVID19_TEST,
        valid_hours=72,
        effective_from=effective,
        effective_until=until,
        published_at=NOW,
    )


def covid_test(
    case: CaseRegistered, person: int, result: str, hours_before: int = 24
) -> HealthEvidenceRecorded:
    start = datetime.combine(case.planned_travel_date, datetime.min.time(), tzinfo=UTC)
    return HealthEvidenceRecorded(
        case_id=case.case_id,
        person_id=case.members[person].person_id,
        kind=EvidenceKind.COVID19_TEST,
        result=EvidenceResult(result),
        taken_at=start - timedelta(hours=hours_before),
        recorded_at=NOW,
    )


async def registered(store: FakeEligibilityStore, body: dict[str, Any]) -> CaseRegistered:
    case = registration(body)
    await usecases.on_case_registered(case, unit(store), CTX)
    return case


def rule(decision: EligibilityDecided | RecordedDecision, name: str) -> Any:
    return next(r for r in decision.rules if r.rule == name)


# --- events ------------------------------------------------------------------------------------


async def test_a_registration_is_decided_and_published_keyed_by_case_without_a_status() -> None:
    store, case = FakeEligibilityStore(), registration(scenario.family_of_three(TRAVEL))
    uow = unit(store)
    await usecases.on_case_registered(case, uow, CTX)

    [decided] = published(uow)
    assert (decided.case_id, decided.version, decided.outcome) == (case.case_id, 1, Outcome.ELIGIBLE)
    assert decided.priority == 30 and decided.decided_at == NOW
    assert (decided.public_reason_code, decided.public_reason) == (None, None)
    [record] = uow.published
    assert (record.topic, record.key) == (topics.DECISIONS, str(case.case_id))
    # Transport announces what a decision does to the case; eligibility never writes the stream.
    assert uow.events(CaseStatusChanged) == [] and uow.illegal == []
    assert store.locks == [case.case_id]
    assert [d.version for d in store.decided[case.case_id]] == [1]


async def test_an_input_that_changes_no_outcome_or_reason_publishes_nothing() -> None:
    store = FakeEligibilityStore()
    case = await registered(store, scenario.single_traveller(TRAVEL))
    for event in (case, updated(case)):
        uow = unit(store)
        await usecases.HANDLERS[type(event)](event, uow, CTX)
        assert published(uow) == []
    assert len(store.decided[case.case_id]) == 1


async def test_a_change_of_document_is_a_new_version_with_its_public_reason() -> None:
    store = FakeEligibilityStore()
    case = await registered(store, scenario.single_traveller(TRAVEL))
    member = case.members[0].model_copy(
        update={"document": case.members[0].document.model_copy(update={"expires_on": TRAVEL - timedelta(1)})}
    )
    uow = unit(store)
    await usecases.on_case_updated(updated(case, members=[member]), uow, CTX)

    [decided] = published(uow)
    assert (decided.version, decided.outcome) == (2, Outcome.PENDING)
    assert decided.public_reason_code == "document_valid_on_travel_date"
    assert decided.public_reason == reasons.text_of("document_valid_on_travel_date")


async def test_a_withdrawal_makes_the_case_ineligible_and_ends_its_override() -> None:
    store = FakeEligibilityStore()
    body = scenario.single_traveller(TRAVEL)
    body["members"][0]["nationality"] = "UZB"
    case = await registered(store, body)
    await usecases.override_decision(
        OverrideDecision(case.case_id, Outcome.ELIGIBLE, "Embassy letter confirms citizenship", "sup-1"),
        unit(store),
        CTX,
    )
    uow = unit(store)
    await usecases.on_case_withdrawn(
        CaseWithdrawn(case_id=case.case_id, reason="Decided to stay", withdrawn_at=NOW), uow, CTX
    )

    [decided] = published(uow)
    assert decided.outcome is Outcome.INELIGIBLE and decided.withdrawn()
    assert "supervisor_override" not in [r.rule for r in decided.rules]
    assert decided.public_reason_code == "withdrawn_by_applicant"


async def test_health_evidence_completes_a_fit_to_travel_check() -> None:
    store = FakeEligibilityStore()
    body = scenario.single_traveller(TRAVEL)
    body["members"][0]["vulnerabilities"] = ["pregnant"]
    case = await registered(store, body)
    assert store.decided[case.case_id][-1].outcome is Outcome.PENDING

    fit = covid_test(case, 0, "negative").model_copy(
        update={"kind": EvidenceKind.FIT_TO_TRAVEL, "result": EvidenceResult.FIT}
    )
    uow = unit(store)
    await usecases.on_health_evidence_recorded(fit, uow, CTX)
    [decided] = published(uow)
    assert (decided.version, decided.outcome) == (2, Outcome.ELIGIBLE)


async def test_health_evidence_read_before_its_registration_counts_when_the_registration_comes() -> None:
    # Evidence travels on intake.health-evidence, registrations on intake.cases: either may be
    # read first. Both lock the case id before anything else (two instances, two transactions).
    store = FakeEligibilityStore()
    body = scenario.single_traveller(TRAVEL)
    body["members"][0]["vulnerabilities"] = ["pregnant"]
    case = registration(body)
    fit = covid_test(case, 0, "negative").model_copy(
        update={"kind": EvidenceKind.FIT_TO_TRAVEL, "result": EvidenceResult.FIT}
    )
    early = unit(store)
    await usecases.on_health_evidence_recorded(fit, early, CTX)
    assert published(early) == []  # no case here yet: nothing to decide
    later = unit(store)
    await usecases.on_case_registered(case, later, CTX)
    [decided] = published(later)
    assert (decided.version, decided.outcome) == (1, Outcome.ELIGIBLE)
    assert store.id_locks == [case.case_id, case.case_id]
    assert topics.topic_for(HealthEvidenceRecorded).name == topics.HEALTH_EVIDENCE


async def test_a_case_on_an_unconfigured_route_waits_for_its_route() -> None:
    store = FakeEligibilityStore()
    case = registration(scenario.single_traveller(TRAVEL)).model_copy(update={"route_id": "kaz-kgz"})
    uow = unit(store)
    await usecases.on_case_registered(case, uow, CTX)
    [decided] = published(uow)
    assert decided.outcome is Outcome.PENDING and [r.rule for r in decided.rules] == ["route_known"]
    assert (decided.public_reason_code, decided.public_reason) == (
        "route_known",
        reasons.text_of("route_known"),
    )


async def test_a_requirement_reevaluates_cases_travelling_from_its_first_day_under_their_locks() -> None:
    store = FakeEligibilityStore()
    day_before = await registered(store, scenario.single_traveller(TRAVEL - timedelta(days=1)))
    later = await registered(store, scenario.single_traveller(TRAVEL + timedelta(days=3)))
    first = await registered(store, scenario.single_traveller(TRAVEL))
    gone = await registered(store, scenario.single_traveller(TRAVEL))
    await usecases.on_case_withdrawn(
        CaseWithdrawn(case_id=gone.case_id, reason="Decided to stay", withdrawn_at=NOW), unit(store), CTX
    )
    store.locks.clear()

    uow = unit(store)
    await usecases.on_requirement_published(requirement(), uow, CTX)

    # Decided in order of travel, under their locks (taken together, in case-id order); not the
    # day before, not the withdrawn case.
    assert store.locks == sorted([first.case_id, later.case_id])
    assert [(d.case_id, d.outcome) for d in published(uow)] == [
        (first.case_id, Outcome.PENDING),
        (later.case_id, Outcome.PENDING),
    ]
    assert {d.public_reason_code for d in published(uow)} == {"evidence_pending"}
    assert day_before.case_id not in [d.case_id for d in published(uow)]


async def test_a_requirement_with_a_last_day_holds_the_cases_to_that_day_and_none_after() -> None:
    store = FakeEligibilityStore()
    first = await registered(store, scenario.single_traveller(TRAVEL))
    last = await registered(store, scenario.single_traveller(TRAVEL + timedelta(days=1)))
    after = await registered(store, scenario.single_traveller(TRAVEL + timedelta(days=2)))
    store.locks.clear()

    uow = unit(store)
    await usecases.on_requirement_published(requirement(until=TRAVEL + timedelta(days=1)), uow, CTX)

    assert store.locks == sorted([first.case_id, last.case_id])
    assert [(d.case_id, d.outcome) for d in published(uow)] == [
        (first.case_id, Outcome.PENDING),
        (last.case_id, Outcome.PENDING),
    ]
    # A case registered later, for the day after the window, is decided without it.
    uow = unit(store)
    await usecases.on_case_registered(
        registration(scenario.single_traveller(TRAVEL + timedelta(days=2))), uow, CTX
    )
    [decided] = published(uow)
    assert rule(decided, "crossing_requirements_met").outcome == RuleOutcome.PASS
    assert after.case_id not in store.locks


async def test_a_requirement_at_a_checkpoint_off_every_route_reevaluates_nothing() -> None:
    store = FakeEligibilityStore()
    await registered(store, scenario.single_traveller(TRAVEL))
    store.locks.clear()
    uow = unit(store)
    await usecases.on_requirement_published(requirement(checkpoint="kgz-dostuk-entry"), uow, CTX)
    assert published(uow) == [] and store.locks == []


async def test_a_positive_test_stays_off_the_public_reason() -> None:
    store = FakeEligibilityStore()
    case = await registered(store, scenario.single_traveller(TRAVEL))
    await usecases.on_requirement_published(requirement(), unit(store), CTX)
    uow = unit(store)
    await usecases.on_health_evidence_recorded(covid_test(case, 0, "positive"), uow, CTX)

    [decided] = published(uow)
    assert "was positive" in rule(decided, "crossing_requirements_met").reason
    assert decided.public_reason is not None and "positive" not in decided.public_reason
    assert decided.public_reason == reasons.text_of("evidence_pending")


async def test_lifting_a_requirement_clears_the_cases_it_held_and_a_second_lift_changes_nothing() -> None:
    store = FakeEligibilityStore()
    case = await registered(store, scenario.single_traveller(TRAVEL))
    published_requirement = requirement()
    await usecases.on_requirement_published(published_requirement, unit(store), CTX)
    lifted = CrossingRequirementLifted(
        requirement_id=published_requirement.requirement_id, checkpoint_id=ENTRY, lifted_at=NOW
    )

    uow = unit(store)
    await usecases.on_requirement_lifted(lifted, uow, CTX)
    [decided] = published(uow)
    assert (decided.case_id, decided.version, decided.outcome) == (case.case_id, 3, Outcome.ELIGIBLE)

    again = unit(store)
    store.locks.clear()
    await usecases.on_requirement_lifted(lifted, again, CTX)
    unknown = lifted.model_copy(update={"requirement_id": uuid.uuid4()})
    await usecases.on_requirement_lifted(unknown, again, CTX)
    assert published(again) == [] and store.locks == []


async def test_a_departure_freezes_the_decision_and_uses_the_certificate_of_return() -> None:
    store = FakeEligibilityStore()
    family = await registered(store, scenario.family_of_three(TRAVEL))
    await usecases.on_movement_departed(
        MovementDeparted(movement_id="M1", vehicle_id="BUS-1", case_ids=[family.case_id], departed_at=NOW),
        unit(store),
        CTX,
    )

    # Frozen: neither a requirement nor a withdrawal changes a decision on the road.
    uow = unit(store)
    await usecases.on_requirement_published(requirement(), uow, CTX)
    await usecases.on_case_withdrawn(
        CaseWithdrawn(case_id=family.case_id, reason="Too late", withdrawn_at=NOW), uow, CTX
    )
    assert published(uow) == []

    # The child's certificate of return carried her home: a second journey on it is refused.
    body = scenario.single_traveller(TRAVEL + timedelta(days=1))
    body["members"][0]["document"] = family.members[2].document.model_dump(mode="json")
    uow = unit(store)
    reused = registration(body)
    await usecases.on_case_registered(reused, uow, CTX)
    [decided] = published(uow)
    assert decided.outcome is Outcome.INELIGIBLE
    assert "already used" in rule(decided, "certificate_of_return_usable").reason


async def _world() -> tuple[FakeEligibilityStore, list[CaseRegistered | CaseUpdated]]:
    """A store with history (a certificate used, an override, evidence, a withdrawal, a departure,
    an erasure) and a run of registrations and updates touching each kind of case."""
    store = FakeEligibilityStore()
    requirement_published = requirement()
    await usecases.on_requirement_published(requirement_published, unit(store), CTX)
    travelled = await registered(store, scenario.family_of_three(TRAVEL))
    await usecases.on_movement_departed(
        MovementDeparted(movement_id="M1", vehicle_id="BUS-1", case_ids=[travelled.case_id], departed_at=NOW),
        unit(store),
        CTX,
    )
    overridden = await registered(store, scenario.single_traveller(TRAVEL))
    await usecases.override_decision(
        OverrideDecision(overridden.case_id, Outcome.PENDING, "Awaiting the family's papers", "sup-1"),
        unit(store),
        CTX,
    )
    tested = await registered(store, scenario.single_traveller(TRAVEL))
    await usecases.on_health_evidence_recorded(covid_test(tested, 0, "negative"), unit(store), CTX)
    withdrawn = await registered(store, scenario.single_traveller(TRAVEL))
    await usecases.on_case_withdrawn(
        CaseWithdrawn(case_id=withdrawn.case_id, reason="Stays", withdrawn_at=NOW), unit(store), CTX
    )
    erased = await registered(store, scenario.single_traveller(TRAVEL))
    await usecases.on_personal_data_erased(
        PersonalDataErased(case_id=erased.case_id, basis="retention_expired", erased_at=NOW), unit(store), CTX
    )
    reused = scenario.single_traveller(TRAVEL + timedelta(days=1))
    reused["members"][0]["document"] = travelled.members[2].document.model_dump(mode="json")
    expired = travelled.members[0].document.model_copy(update={"expires_on": TRAVEL - timedelta(1)})
    run: list[CaseRegistered | CaseUpdated] = [
        registration(scenario.family_of_three(TRAVEL)),  # new, waits for its tests
        registration(reused),  # new, on a certificate another case travelled on
        registration(scenario.single_traveller(TRAVEL)).model_copy(update={"route_id": "kaz-kgz"}),
        updated(overridden),  # the override stands: nothing new
        updated(tested, planned_travel_date=TRAVEL + timedelta(days=1)),
        updated(withdrawn),
        updated(travelled, members=[travelled.members[0].model_copy(update={"document": expired})]),
        updated(erased),
        registration(scenario.single_traveller(TRAVEL)),
    ]
    return store, run


async def test_a_run_of_registrations_decides_as_one_at_a_time_would() -> None:
    one_by_one, run = await _world()
    together = copy.deepcopy(one_by_one)
    together.locks.clear()

    alone = unit(one_by_one)
    for event in run:
        await usecases.HANDLERS[type(event)](event, alone, CTX)
    at_once = unit(together)
    await usecases.on_registrations(
        [CloudEvent.new(e, source="/missions/KAZ/intake") for e in run], at_once, CTX
    )

    def decided(uow: FakeUnitOfWork[Any]) -> list[tuple[Any, ...]]:
        return [(d.case_id, d.version, d.outcome, d.public_reason_code, d.rules) for d in published(uow)]

    assert decided(at_once) == decided(alone)
    assert {e.case_id for e in published(alone)} >= {run[0].case_id, run[1].case_id, run[-1].case_id}
    assert [d.outcome for d in published(alone) if d.case_id == run[1].case_id] == [Outcome.INELIGIBLE]
    assert together.decided == one_by_one.decided
    # Every case of the run was decided under its lock, all taken at once in case-id order.
    assert together.locks == sorted({e.case_id for e in run})


async def test_a_run_that_registers_and_updates_one_case_is_applied_one_event_after_the_other() -> None:
    store = FakeEligibilityStore()
    case = registration(scenario.single_traveller(TRAVEL))
    member = case.members[0].model_copy(
        update={"document": case.members[0].document.model_copy(update={"expires_on": TRAVEL - timedelta(1)})}
    )
    uow = unit(store)
    await usecases.on_registrations(
        [CloudEvent.new(e, source="/missions/KAZ/intake") for e in (case, updated(case, members=[member]))],
        uow,
        CTX,
    )
    assert [(d.version, d.outcome) for d in published(uow)] == [(1, Outcome.ELIGIBLE), (2, Outcome.PENDING)]


async def test_every_event_eligibility_reads_has_its_use_case() -> None:
    assert set(usecases.HANDLERS) == {
        CaseRegistered,
        CaseUpdated,
        HealthEvidenceRecorded,
        CaseWithdrawn,
        PersonalDataErased,
        CrossingRequirementPublished,
        CrossingRequirementLifted,
        MovementDeparted,
    }


# --- commands and queries ------------------------------------------------------------------------


async def test_an_override_is_decided_under_the_case_lock_and_shown_beside_the_rules() -> None:
    store = FakeEligibilityStore()
    body = scenario.single_traveller(TRAVEL)
    body["members"][0]["nationality"] = "UZB"
    case = await registered(store, body)
    store.locks.clear()

    uow = unit(store)
    command = OverrideDecision(case.case_id, Outcome.ELIGIBLE, "Embassy letter confirms citizenship", "sup-1")
    decision = await usecases.override_decision(command, uow, CTX)

    assert (decision.version, decision.outcome) == (2, Outcome.ELIGIBLE)
    assert store.locks[0] == case.case_id  # before anything is read
    [decided] = published(uow)
    assert rule(decided, "nationality_matches_destination").outcome is RuleOutcome.FAIL
    note = decided.rules[-1]
    assert (
        note.rule == "supervisor_override"
        and "sup-1" in note.reason
        and "rules said ineligible" in note.reason
    )

    # The same override again changes nothing: the decision in force is returned.
    again = unit(store)
    assert await usecases.override_decision(command, again, CTX) == decision
    assert published(again) == []


async def test_no_override_makes_a_case_travel_without_consent() -> None:
    store = FakeEligibilityStore()
    body = scenario.single_traveller(TRAVEL)
    body["consent"]["scope"] = ["UZB"]
    case = await registered(store, body)
    uow = unit(store)
    with pytest.raises(domain.OverrideRefused, match="consent cannot be overridden") as refused:
        await usecases.override_decision(
            OverrideDecision(case.case_id, Outcome.ELIGIBLE, "The family asked us to hurry", "sup-9"),
            uow,
            CTX,
        )
    assert refused.value.status_code == 409
    assert published(uow) == [] and store.override_log == {}

    # Holding such a case is allowed.
    held = await usecases.override_decision(
        OverrideDecision(case.case_id, Outcome.PENDING, "Held pending a medical check", "sup-9"), uow, CTX
    )
    assert held.outcome is Outcome.PENDING


async def test_an_override_on_an_unknown_or_undecided_case_is_not_found() -> None:
    store = FakeEligibilityStore()
    with pytest.raises(domain.NoSuchCase, match="no case") as missing:
        await usecases.override_decision(
            OverrideDecision(uuid.uuid4(), Outcome.PENDING, "Held pending a medical check", "sup-1"),
            unit(store),
            CTX,
        )
    assert missing.value.status_code == 404


async def test_revoking_lets_the_rules_decide_again_and_nothing_to_revoke_is_not_found() -> None:
    store = FakeEligibilityStore()
    body = scenario.single_traveller(TRAVEL)
    body["members"][0]["nationality"] = "UZB"
    case = await registered(store, body)
    with pytest.raises(domain.NoActiveOverride, match="no active override") as none:
        await usecases.revoke_override(RevokeOverride(case.case_id, "sup-2"), unit(store), CTX)
    assert none.value.status_code == 404

    await usecases.override_decision(
        OverrideDecision(case.case_id, Outcome.ELIGIBLE, "Embassy letter confirms citizenship", "sup-1"),
        unit(store),
        CTX,
    )
    uow = unit(store)
    store.locks.clear()
    decision = await usecases.revoke_override(RevokeOverride(case.case_id, "sup-2"), uow, CTX)
    assert store.revoked_unlocked == 0, "the override row was locked before the case"
    assert (decision.version, decision.outcome) == (3, Outcome.INELIGIBLE)
    assert [d.outcome for d in published(uow)] == [Outcome.INELIGIBLE]
    history = await usecases.case_decisions(case.case_id, unit(store))
    assert [d.outcome for d in history.decisions] == [
        Outcome.INELIGIBLE,
        Outcome.ELIGIBLE,
        Outcome.INELIGIBLE,
    ]
    assert [(o.supervisor, o.revoked_by) for o in history.overrides] == [("sup-1", "sup-2")]


async def test_a_case_without_decisions_has_no_history() -> None:
    with pytest.raises(domain.NoDecision, match="no decision for case"):
        await usecases.case_decisions(uuid.uuid4(), unit(FakeEligibilityStore()))


# --- the HTTP API on the fake unit (its shapes; errors answered by the runtime) --------------------


def _client(store: FakeEligibilityStore, issuer: DevIssuer) -> httpx.AsyncClient:
    @asynccontextmanager
    async def units() -> AsyncIterator[FakeUnitOfWork[FakeEligibilityStore]]:
        yield unit(store)

    rt = ServiceRuntime("eligibility", EligibilitySettings(), migrations=MIGRATIONS, title="test")
    rt.http.include_router(api.router(units, CTX))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rt.http),
        base_url="http://eligibility",
        auth=role_auth(issuer, rt.http),
    )


def supervisor(issuer: DevIssuer, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(Role.SUPERVISOR, 'KAZ', subject=subject)}"}


async def test_the_api_answers_as_it_always_has(issuer: DevIssuer) -> None:
    store = FakeEligibilityStore()
    body = scenario.single_traveller(TRAVEL)
    body["members"][0]["nationality"] = "UZB"
    case = await registered(store, body)
    async with _client(store, issuer) as client:
        url = f"/cases/{case.case_id}"
        r = await client.post(
            f"{url}/override",
            json={"outcome": "eligible", "reason": "Embassy letter confirms citizenship"},
            headers=supervisor(issuer, "sup-1"),
        )
        assert r.status_code == 201
        assert r.json() == {"case_id": str(case.case_id), "version": 2, "outcome": "eligible"}

        found = (await client.get(f"{url}/decisions")).json()
        assert list(found) == ["case_id", "decisions", "overrides"]
        first = found["decisions"][0]
        assert list(first) == ["version", "outcome", "priority", "rules", "decided_at"]
        assert first["decided_at"] == "2026-11-30T09:00:00+00:00"  # offset, as always (not "Z")
        assert found["overrides"] == [
            {
                "outcome": "eligible",
                "reason": "Embassy letter confirms citizenship",
                "supervisor": "sup-1",
                "created_at": "2026-11-30T09:00:00+00:00",
                "revoked_at": None,
                "revoked_by": None,
            }
        ]

        r = await client.delete(f"{url}/override", headers=supervisor(issuer, "sup-2"))
        assert (r.status_code, r.json()["outcome"], r.json()["version"]) == (200, "ineligible", 3)
        assert (await client.get(f"{url}/decisions")).json()["overrides"][0]["revoked_by"] == "sup-2"
        r = await client.delete(f"{url}/override", headers=supervisor(issuer, "sup-2"))
        assert answered(r) == (404, "no_active_override", f"no active override on case {case.case_id}")

        other = uuid.uuid4()
        r = await client.get(f"/cases/{other}/decisions")
        assert answered(r) == (404, "no_decision", f"no decision for case {other}")
        r = await client.post(
            f"/cases/{other}/override",
            json={"outcome": "pending", "reason": "Held pending a medical check"},
        )
        assert answered(r) == (404, "no_such_case", f"no case {other}")


async def test_the_api_refuses_an_override_of_consent_with_409(issuer: DevIssuer) -> None:
    store = FakeEligibilityStore()
    body = scenario.single_traveller(TRAVEL)
    body["consent"]["scope"] = ["UZB"]
    case = await registered(store, body)
    async with _client(store, issuer) as client:
        r = await client.post(
            f"/cases/{case.case_id}/override",
            json={"outcome": "eligible", "reason": "The family asked us to hurry"},
        )
    status, code, detail = answered(r)
    assert (status, code) == (409, "override_refused")
    assert detail.startswith("consent cannot be overridden: Consent does not cover")
    assert isinstance(domain.OverrideRefused("x"), DomainError)


# --- erasure of personal data ------------------------------------------------------------------------


async def test_an_erased_case_keeps_its_outcomes_loses_what_speaks_of_its_people_and_is_never_decided_again() -> (
    None
):
    store = FakeEligibilityStore()
    body = scenario.single_traveller(TRAVEL)
    body["members"][0]["vulnerabilities"] = ["pregnant"]
    case = await registered(store, body)
    await usecases.on_health_evidence_recorded(covid_test(case, 0, "negative"), unit(store), CTX)
    await usecases.override_decision(
        OverrideDecision(case.case_id, Outcome.INELIGIBLE, "Told us about her illness", "sup-1"),
        unit(store),
        CTX,
    )
    decided = len(store.decided[case.case_id])

    uow = unit(store)
    erasure = PersonalDataErased(case_id=case.case_id, basis="retention_expired", erased_at=NOW)
    await usecases.on_personal_data_erased(erasure, uow, CTX)
    kept = store.cases[case.case_id]
    assert kept.erased_at == NOW and published(uow) == []
    assert all(m.vulnerabilities == () and m.document_ref == "" for m in kept.facts.members)
    assert store.evidence_kept.get(case.case_id, []) == []
    assert [o.reason for o in store.override_log[case.case_id]] == [ERASED_TEXT]
    assert len(store.decided[case.case_id]) == decided  # the outcomes stay

    # Nothing decides on it again: evidence read late, a requirement, an override.
    late = unit(store)
    await usecases.on_health_evidence_recorded(covid_test(case, 0, "positive"), late, CTX)
    await usecases.on_requirement_published(requirement(), late, CTX)
    assert published(late) == [] and store.evidence_kept.get(case.case_id, []) == []
    with pytest.raises(domain.CaseErased):
        await usecases.override_decision(
            OverrideDecision(case.case_id, Outcome.ELIGIBLE, "Reconsidered after review", "sup-2"),
            unit(store),
            CTX,
        )
