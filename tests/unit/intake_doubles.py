"""Intake's doubles for the fast tests: an in-memory store with the real store's methods (its lock
methods only note that they were called), a unit of work that guards the status stream as the real
one does, and registrations to send."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from contracts.envelope import CloudEvent
from contracts.intake import (
    CaseRegistered,
    CaseUpdated,
    CaseWithdrawn,
    Consent,
    HealthEvidenceRecorded,
    Person,
)
from contracts.missions import CaseStatusReported, ReportableStatus
from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged, Place, is_legal
from corridor.statusguard import IllegalStatusChange
from services.intake import domain, usecases
from services.intake.domain import CaseStatistics, FlagStatus
from services.intake.duplicates import CANDIDATES_PER_KEY, Holder, KeyPair, Match
from services.intake.store import (
    AccessRecord,
    CaseDetails,
    DuplicateFlag,
    Erasure,
    EventRef,
    HealthEvidence,
    KeyTaken,
    KnownPerson,
    LockedCase,
    RaisedFlag,
    RegisteredPerson,
    TimelineEntry,
)
from tests.fakes import FakeUnitOfWork
from tests.paths import CENTRAL_ASIA_ROUTES

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TRAVEL = date(2026, 12, 1)
CTX = usecases.Context(RouteBook.load(CENTRAL_ASIA_ROUTES), withdrawal_wait_seconds=0)
SOURCE = "/missions/KAZ/intake"


# --- the fake store ------------------------------------------------------------------------------


@dataclass
class _Case:
    case_id: uuid.UUID
    registration_key: str | None
    route_id: str
    planned_travel_date: date
    consent: Consent
    status: CaseStatus
    registered_at: datetime


@dataclass
class FakeIntakeStore:
    """IntakeStore's methods on dictionaries. ``calls`` keeps the order of locks and inserts."""

    cases: dict[uuid.UUID, _Case] = field(default_factory=dict)
    persons: dict[uuid.UUID, tuple[uuid.UUID, Person]] = field(default_factory=dict)
    keys: set[tuple[uuid.UUID, uuid.UUID, str, str]] = field(default_factory=set)
    flags: list[DuplicateFlag] = field(default_factory=list)
    timelines: dict[uuid.UUID, list[TimelineEntry]] = field(default_factory=dict)
    reported_reasons: dict[EventRef, tuple[str | None, str | None, Place | None]] = field(
        default_factory=dict
    )
    evidence: list[tuple[HealthEvidenceRecorded, str]] = field(default_factory=list)
    withdrawals: dict[uuid.UUID, tuple[CaseWithdrawn, str]] = field(default_factory=dict)
    reads: list[AccessRecord] = field(default_factory=list)
    inbox: set[tuple[str, str, str]] = field(default_factory=set)
    outcomes: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """What applying each inbox event published (the inbox row's ``outcome_id``)."""
    erasures: dict[uuid.UUID, Erasure] = field(default_factory=dict)
    answers: dict[uuid.UUID, tuple[list[int], bool]] = field(default_factory=dict)
    """What each registration under a key answered: its flags' ids, and whether an import did."""
    ended_at: dict[uuid.UUID, datetime] = field(default_factory=dict)
    """When a case last changed, for the retention sweep (cases not listed: never)."""
    calls: list[str] = field(default_factory=list)

    async def lock_duplicate_keys(self, lock_ids: list[int]) -> None:
        self.calls.append(f"lock keys {lock_ids}")

    async def lock_for_import(self) -> None:
        self.calls.append("lock for import")

    async def case_for_update(self, case_id: uuid.UUID) -> LockedCase | None:
        self.calls.append(f"lock case {case_id}")
        case = self.cases.get(case_id)
        if case is None:
            return None
        members = sum(1 for c, _ in self.persons.values() if c == case_id)
        return LockedCase(case_id, case.route_id, case.status, case.registered_at, members)

    async def case_for_key(self, registration_key: str) -> uuid.UUID | None:
        return next((c.case_id for c in self.cases.values() if c.registration_key == registration_key), None)

    async def cases_for_keys(self, keys: Sequence[str]) -> dict[str, uuid.UUID]:
        return {c.registration_key: c.case_id for c in self.cases.values() if c.registration_key in keys}

    async def keys_taken(self, keys: Sequence[str]) -> dict[str, KeyTaken]:
        flags = {f.flag_id: RaisedFlag(f.flag_id, f.person_id, f.other_case_id, f.basis) for f in self.flags}
        taken = await self.cases_for_keys(keys)
        return {
            key: KeyTaken(case_id, [flags[i] for i in answer[0]], answer[1])
            if (answer := self.answers.get(case_id)) is not None
            else KeyTaken(case_id, None)
            for key, case_id in taken.items()
        }

    async def save_answer(self, case_id: uuid.UUID, flag_ids: Sequence[int], *, imported: bool) -> None:
        assert case_id not in self.answers, "a case is answered once"
        self.answers[case_id] = (list(flag_ids), imported)

    async def save_import_answers(self, answers: Sequence[tuple[uuid.UUID, Sequence[int]]]) -> None:
        for case_id, flag_ids in answers:
            await self.save_answer(case_id, flag_ids, imported=True)

    async def insert_case(
        self, case: CaseRegistered, *, registration_key: str | None, status: CaseStatus
    ) -> bool:
        if registration_key is not None and await self.case_for_key(registration_key) is not None:
            return False
        self.calls.append(f"insert {case.case_id}")
        self.cases[case.case_id] = _Case(
            case.case_id,
            registration_key,
            case.route_id,
            case.planned_travel_date,
            case.consent,
            status,
            case.registered_at,
        )
        self.persons.update({p.person_id: (case.case_id, p) for p in case.members})
        return True

    async def insert_cases(
        self, cases: Sequence[tuple[CaseRegistered, str | None]], *, status: CaseStatus
    ) -> set[uuid.UUID]:
        return {
            case.case_id
            for case, key in cases
            if await self.insert_case(case, registration_key=key, status=status)
        }

    async def replace_case(self, case: CaseUpdated) -> None:
        stored = self.cases[case.case_id]
        stored.route_id, stored.planned_travel_date = case.route_id, case.planned_travel_date
        stored.consent = case.consent
        self.keys = {k for k in self.keys if k[1] != case.case_id}
        self.persons = {p: v for p, v in self.persons.items() if v[0] != case.case_id}
        self.persons.update({p.person_id: (case.case_id, p) for p in case.members})

    async def erasure_of(self, case_id: uuid.UUID) -> Erasure | None:
        return self.erasures.get(case_id)

    async def erase_case(self, erasure: Erasure) -> None:
        self.calls.append(f"erase {erasure.case_id}")
        for person_id, (case_id, p) in list(self.persons.items()):
            if case_id == erasure.case_id:
                blank = p.model_copy(
                    update={"given_names": "", "surname": "", "phone": None, "current_city": None}
                )
                self.persons[person_id] = (case_id, blank)
        self.keys = {k for k in self.keys if k[1] != erasure.case_id}
        self.answers.pop(erasure.case_id, None)
        if erasure.case_id in self.cases:
            self.cases[erasure.case_id].registration_key = None
        self.evidence = [e for e in self.evidence if e[0].case_id != erasure.case_id]
        self.erasures[erasure.case_id] = erasure

    async def cases_past_retention(
        self, statuses: Collection[CaseStatus], ended_before: datetime, limit: int
    ) -> list[uuid.UUID]:
        due = sorted(
            (at, c.case_id)
            for c in self.cases.values()
            if c.status in statuses
            and c.case_id not in self.erasures
            and (at := self.ended_at.get(c.case_id)) is not None
            and at < ended_before
        )
        return [case_id for _, case_id in due[:limit]]

    async def case_exists(self, case_id: uuid.UUID) -> bool:
        return case_id in self.cases

    async def case_status(self, case_id: uuid.UUID) -> CaseStatus:
        return self.cases[case_id].status

    async def set_status(self, case_id: uuid.UUID, status: CaseStatus) -> None:
        self.cases[case_id].status = status

    async def statistics_of(self, case_id: uuid.UUID) -> CaseStatistics | None:
        case = self.cases.get(case_id)
        if case is None:
            return None
        people = tuple((p.sex, p.birth_date) for c, p in self.persons.values() if c == case_id)
        return CaseStatistics(case.route_id, case.registered_at, case.planned_travel_date, people)

    async def people_of(self, case_id: uuid.UUID) -> list[KnownPerson]:
        return [
            KnownPerson(p.person_id, p.surname, p.given_names, p.birth_date)
            for c, p in self.persons.values()
            if c == case_id
        ]

    async def person_in_case(self, case_id: uuid.UUID, person_id: uuid.UUID) -> bool:
        return self.persons.get(person_id, (None,))[0] == case_id

    async def case_details(self, case_id: uuid.UUID) -> CaseDetails | None:
        case = self.cases.get(case_id)
        if case is None:
            return None
        people = sorted(
            (p for c, p in self.persons.values() if c == case_id),
            key=lambda p: (p.role != "principal", p.surname),
        )
        return CaseDetails(
            case_id,
            case.route_id,
            case.planned_travel_date,
            case.status,
            case.consent,
            [
                RegisteredPerson(
                    **p.model_dump(
                        include={
                            "person_id",
                            "role",
                            "given_names",
                            "surname",
                            "birth_date",
                            "sex",
                            "nationality",
                            "vulnerabilities",
                            "needs_escort",
                            "current_city",
                            "given_names_cyrillic",
                            "surname_cyrillic",
                            "phone",
                        }
                    ),
                    document=p.document,
                    proof_of_citizenship=p.proof_of_citizenship,
                )
                for p in people
            ],
        )

    async def record_statuses(self, read: Sequence[tuple[str, str, CaseStatusChanged]]) -> None:
        for source, event_id, change in read:
            timeline = self.timelines.setdefault(change.case_id, [])
            if all(e.event != EventRef(source, event_id) for e in timeline):
                timeline.append(
                    TimelineEntry(
                        change.status,
                        change.occurred_at,
                        change.place,
                        change.movement_id,
                        change.reason_code,
                        change.reason,
                        EventRef(source, event_id),
                    )
                )
            await self.set_status(change.case_id, change.status)

    async def keep_report_reason(
        self, published: CloudEvent, report: CaseStatusReported, reported_by: str
    ) -> None:
        self.reported_reasons.setdefault(
            EventRef(published.source, published.id), (report.reason_code, report.reason, report.place)
        )

    async def timeline(self, case_id: uuid.UUID) -> list[TimelineEntry]:
        # The mission's own code and words beside the stream's entry, as the real store joins them.
        entries = []
        for e in self.timelines.get(case_id, []):
            own = self.reported_reasons.get(e.event)
            if own is not None:
                e = replace(
                    e, reason_code=own[0] or e.reason_code, reason=own[1] or e.reason, place=own[2] or e.place
                )
            entries.append(e)
        return entries

    async def first_delivery(self, consumer: str, event: CloudEvent) -> bool:
        seen = (consumer, event.source, event.id)
        if seen in self.inbox:
            return False
        self.inbox.add(seen)
        return True

    async def keep_outcome(self, consumer: str, event: CloudEvent, outcome_id: str) -> None:
        if (consumer, event.source, event.id) in self.inbox:  # an UPDATE of the inbox row
            self.outcomes[(consumer, event.source, event.id)] = outcome_id

    async def outcome_of(self, consumer: str, event: CloudEvent) -> str | None:
        return self.outcomes.get((consumer, event.source, event.id))

    async def save_health_evidence(
        self, event: HealthEvidenceRecorded, recorded_by: str, event_id: str | None = None
    ) -> None:
        self.evidence.append((event, recorded_by))

    async def health_evidence(self, case_id: uuid.UUID) -> list[HealthEvidence]:
        return [
            HealthEvidence(i, e.person_id, e.kind.value, e.result.value, e.taken_at, e.recorded_at, by, None)
            for i, (e, by) in enumerate(self.evidence, start=1)
            if e.case_id == case_id
        ]

    async def save_withdrawal(self, event: CaseWithdrawn, recorded_by: str) -> None:
        self.withdrawals[event.case_id] = (event, recorded_by)

    async def is_withdrawn(self, case_id: uuid.UUID) -> bool:
        return case_id in self.withdrawals

    async def record_person_keys(
        self, keys: Sequence[tuple[Holder, KeyPair]], *, case_id: uuid.UUID
    ) -> dict[KeyPair, list[Holder]]:
        before = await self.key_holders({pair for _, pair in keys}, exclude_case=case_id)
        self.keys.update((h.person_id, h.case_id, kind, key) for h, (kind, key) in keys)
        return before

    async def add_keys(self, keys: Sequence[tuple[Holder, KeyPair]]) -> None:
        self.keys.update((h.person_id, h.case_id, kind, key) for h, (kind, key) in keys)

    async def key_holders(
        self, pairs: Collection[KeyPair], *, exclude_case: uuid.UUID | None = None
    ) -> dict[KeyPair, list[Holder]]:
        found: dict[KeyPair, list[Holder]] = {}
        for p, c, kind, key in sorted(self.keys, key=str):
            if c == exclude_case:
                continue
            if (kind, key) in pairs and len(found.setdefault((kind, key), [])) < CANDIDATES_PER_KEY:
                found[(kind, key)].append(Holder(p, c))
        return found

    async def flag_matches(self, matches: Sequence[Match]) -> list[RaisedFlag]:
        raised = []
        for m in matches:
            flag = await self._flag_duplicate(
                m.person.case_id, m.person.person_id, m.other.case_id, m.other.person_id, m.basis
            )
            if flag is not None:
                raised.append(flag)
        return raised

    async def _flag_duplicate(
        self,
        case_id: uuid.UUID,
        person_id: uuid.UUID,
        other_case_id: uuid.UUID,
        other_person_id: uuid.UUID,
        basis: str,
    ) -> RaisedFlag | None:
        if any((f.person_id, f.other_person_id) == (person_id, other_person_id) for f in self.flags):
            return None
        flag_id = len(self.flags) + 1
        self.flags.append(
            DuplicateFlag(
                flag_id,
                case_id,
                person_id,
                other_case_id,
                other_person_id,
                basis,
                FlagStatus.OPEN,
                NOW,
                None,
                None,
            )
        )
        return RaisedFlag(flag_id, person_id, other_case_id, basis)

    async def duplicate_flags(self, status: str | None, case_id: uuid.UUID | None) -> list[DuplicateFlag]:
        return [
            f
            for f in self.flags
            if (status is None or f.status == status) and case_id in (None, f.case_id, f.other_case_id)
        ]

    async def resolve_flag(self, flag_id: int, status: FlagStatus, by: str, note: str) -> bool:
        for i, f in enumerate(self.flags):
            if f.flag_id == flag_id and f.status is FlagStatus.OPEN:
                self.flags[i] = replace(f, status=status, resolved_by=by, resolution_note=note)
                return True
        return False

    async def record_access(self, case_id: uuid.UUID, actor: str, purpose: str) -> None:
        self.reads.append(AccessRecord(NOW, actor, purpose, case_id))

    async def access_log(self, case_id: uuid.UUID) -> list[AccessRecord]:
        return [r for r in self.reads if r.case_id == case_id]

    async def access_log_query(
        self, actor: str | None, since: datetime | None, limit: int
    ) -> list[AccessRecord]:
        found = [r for r in reversed(self.reads) if actor in (None, r.actor)]
        return [r for r in found if since is None or r.accessed_at >= since][:limit]


class GuardedUnitOfWork(FakeUnitOfWork[FakeIntakeStore]):
    """As the real unit (``corridor.outbox``): ``publish`` of a status change the case's last status
    refuses raises; ``announce`` records it as a bug and publishes nothing."""

    async def publish(self, event: Any, *, extensions: dict[str, str] | None = None) -> CloudEvent:
        if isinstance(event, CaseStatusChanged):
            previous = self.statuses.get(event.case_id)
            if not is_legal(previous, event.status):
                raise IllegalStatusChange(event, previous)
            await self.note_status(event.case_id, event.status)
        return await super().publish(event, extensions=extensions)

    async def announce(
        self, change: CaseStatusChanged, *, extensions: dict[str, str] | None = None
    ) -> CloudEvent | None:
        try:
            return await self.publish(change, extensions=extensions)
        except IllegalStatusChange as exc:
            self.illegal.append((exc.previous, change.status))
            return None


def unit(store: FakeIntakeStore, **kwargs: Any) -> GuardedUnitOfWork:
    return GuardedUnitOfWork(store, source=SOURCE, now=NOW, **kwargs)


# --- commands ------------------------------------------------------------------------------------


def person(role: str, given: str, surname: str, born: str, number: str, **extra: Any) -> dict[str, Any]:
    return {
        "role": role,
        "given_names": given,
        "surname": surname,
        "birth_date": born,
        "sex": "M" if role in ("principal", "child") else "F",
        "nationality": "TJK",
        "document": {
            "type": "passport",
            "number": number,
            "issuing_country": "TJK",
            "expires_on": (TRAVEL + timedelta(days=400)).isoformat(),
        },
        **extra,
    }


def registration(*members: dict[str, Any], key: str | None = None, **extra: Any) -> domain.RegisterCase:
    return domain.RegisterCase.model_validate(
        {
            "registration_key": key,
            "route_id": "kaz-uzb-tjk",
            "planned_travel_date": TRAVEL.isoformat(),
            "consent": {"given": True, "scope": ["UZB", "TJK"]},
            "members": list(members) or [person("principal", "Murod", "Rahimov", "1979-01-30", "400765432")],
            **extra,
        }
    )


NAZAROV = person("principal", "Farrukh", "Nazarov", "1985-03-02", "401000001")
NAZAROV_IN_CYRILLIC = person(
    "principal",
    "Farukh",
    "Nazarow",
    "1985-03-02",
    "501000001",
    given_names_cyrillic="Фаррух",
    surname_cyrillic="Назаров",
)
"""Nazarov in Cyrillic beside another Latin spelling and another passport: a name match."""
KARIMOVA = person("principal", "Dilnoza", "Karimova", "1958-09-03", "400998877")


def prepared(commands: Sequence[domain.RegisterCase]) -> list[usecases.NewCase | None]:
    """A chunk of an import's rows checked and built (None: rejected by the checks)."""
    ready: list[usecases.NewCase | None] = []
    for command in commands:
        try:
            ready.append(usecases.prepare_registration(command, CTX, NOW))
        except domain.RegistrationRejected:
            ready.append(None)
    return ready


FAMILY = (
    person("principal", "Farrukh", "Nazarov", "1985-03-02", "401000001"),
    person("spouse", "Malika", "Nazarova", "1988-07-11", "401000002"),
    person("child", "Aziz", "Nazarov", "2015-05-20", "401000003"),
)


async def registered(store: FakeIntakeStore, command: domain.RegisterCase | None = None) -> uuid.UUID:
    done = await usecases.register_case(command or registration(), unit(store), CTX)
    assert done.created
    return done.case_id


def report(case_id: uuid.UUID, status: ReportableStatus) -> CaseStatusReported:
    return CaseStatusReported(case_id=case_id, status=status, occurred_at=NOW)


def envelope(data: Any, source: str = "/missions/TJK/reception") -> CloudEvent:
    return CloudEvent.new(data, source=source)


def units_for(store: FakeIntakeStore, then: CaseStatus | None = None) -> Any:
    """Units of work on ``store``, each its own transaction as a route opens them: what a unit that
    raises wrote is rolled back. They share what the stream guard knows (``units.statuses``) as the
    database does. From the second unit on, every case is ``then`` if given (transport's answer,
    read from the stream meanwhile). ``units.opened`` keeps every unit."""
    opened: list[GuardedUnitOfWork] = []
    statuses: dict[Any, CaseStatus] = {}

    @asynccontextmanager
    async def units() -> AsyncIterator[GuardedUnitOfWork]:
        if opened and then is not None:
            for case in store.cases.values():
                case.status = then
        opened.append(unit(store))
        opened[-1].statuses = statuses
        before = copy.deepcopy((vars(store), statuses))
        try:
            yield opened[-1]
        except BaseException:
            vars(store).update(before[0])
            statuses.clear()
            statuses.update(before[1])
            raise

    units.opened = opened  # type: ignore[attr-defined]
    units.statuses = statuses  # type: ignore[attr-defined]
    return units
