"""Intake's persistence: cases, persons, duplicate keys and flags, the status timeline projection,
health evidence, withdrawals and the personal-data access log.

``IntakeStore`` is bound to one connection (the unit of work's, inside its transaction) and gives
back domain objects and the small records below, never raw rows or JSON text.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from contracts.envelope import CloudEvent
from contracts.intake import (
    CaseRegistered,
    CaseUpdated,
    CaseWithdrawn,
    CitizenshipProof,
    Consent,
    ErasureBasis,
    HealthEvidenceRecorded,
    Person,
    Relationship,
    TravelDocument,
    VulnerabilityFlag,
)
from contracts.missions import CaseStatusReported
from contracts.status import CaseStatus, CaseStatusChanged, Place
from corridor import inbox
from services.intake.domain import CaseStatistics, FlagStatus
from services.intake.duplicates import CANDIDATES_PER_KEY, Holder, KeyPair, Match

# --- what the store gives back -------------------------------------------------------------------


@dataclass(frozen=True)
class LockedCase:
    """A case as read under its row lock: what a change to it is decided from."""

    case_id: uuid.UUID
    route_id: str
    status: CaseStatus
    registered_at: datetime
    members: int


@dataclass(frozen=True)
class HealthEvidence:
    evidence_id: int
    person_id: uuid.UUID
    kind: str
    result: str
    taken_at: datetime
    recorded_at: datetime
    recorded_by: str
    event_id: str | None


@dataclass(frozen=True)
class KnownPerson:
    person_id: uuid.UUID
    surname: str
    given_names: str
    birth_date: date


@dataclass(frozen=True)
class RaisedFlag:
    """A duplicate flag just raised by a registration or an update."""

    flag_id: int
    person_id: uuid.UUID
    other_case_id: uuid.UUID
    basis: str


@dataclass(frozen=True)
class KeyTaken:
    """A registration key taken: its case and the flags its first answer named (None: registered
    before answers were kept), and whether a bulk import gave that answer."""

    case_id: uuid.UUID
    flags: list[RaisedFlag] | None
    imported: bool = False


@dataclass(frozen=True)
class DuplicateFlag:
    flag_id: int
    case_id: uuid.UUID
    person_id: uuid.UUID
    other_case_id: uuid.UUID
    other_person_id: uuid.UUID
    basis: str
    status: FlagStatus
    flagged_at: datetime
    resolved_by: str | None
    resolution_note: str | None


@dataclass(frozen=True)
class EventRef:
    source: str
    id: str


@dataclass(frozen=True)
class TimelineEntry:
    status: CaseStatus
    occurred_at: datetime
    place: Place | None
    movement_id: str | None
    reason_code: str | None
    reason: str | None
    event: EventRef


@dataclass(frozen=True)
class RegisteredPerson:
    """A member of a case with their personal data, as read back (``Person`` without the order
    of the contract: the order the read has always answered in)."""

    person_id: uuid.UUID
    role: Relationship
    given_names: str
    surname: str
    birth_date: date
    sex: str
    nationality: str
    document: TravelDocument
    vulnerabilities: list[VulnerabilityFlag]
    needs_escort: bool
    current_city: str | None
    given_names_cyrillic: str | None
    surname_cyrillic: str | None
    phone: str | None
    proof_of_citizenship: CitizenshipProof | None


@dataclass(frozen=True)
class CaseDetails:
    case_id: uuid.UUID
    route_id: str
    planned_travel_date: date
    status: CaseStatus
    consent: Consent
    members: list[RegisteredPerson]


@dataclass(frozen=True)
class AccessRecord:
    """One read of a case's personal data: who, when, why."""

    accessed_at: datetime
    actor: str
    purpose: str
    case_id: uuid.UUID


DUPLICATE_KEY_LOCKS = 7_241_101
"""Class id of the duplicate-key advisory locks (the two-int form, a key space apart from the single
bigint locks of corridor.db and corridor.outbox)."""
IMPORT_LOCK = (7_241_102, 0)
"""The lock a chunk of a bulk import holds exclusively, and every other registration or update
shared before its key locks: a chunk's thousands of keys would not fit PostgreSQL's lock table
one lock each, so it excludes the others as a whole, for the second or so it takes."""

_PERSON_COLUMNS = (
    "person_id",
    "case_id",
    "role",
    "given_names",
    "surname",
    "birth_date",
    "sex",
    "nationality",
    "document",
    "vulnerabilities",
    "needs_escort",
    "current_city",
    "given_names_cyrillic",
    "surname_cyrillic",
    "phone",
    "proof_of_citizenship",
)

_UPSERT_PERSON = """
    INSERT INTO persons (person_id, case_id, role, given_names, surname, birth_date, sex, nationality, document,
                         vulnerabilities, needs_escort, current_city, given_names_cyrillic, surname_cyrillic, phone,
                         proof_of_citizenship)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16::jsonb)
    ON CONFLICT (person_id) DO UPDATE SET role = EXCLUDED.role, given_names = EXCLUDED.given_names,
        surname = EXCLUDED.surname, birth_date = EXCLUDED.birth_date, sex = EXCLUDED.sex,
        nationality = EXCLUDED.nationality, document = EXCLUDED.document,
        vulnerabilities = EXCLUDED.vulnerabilities, needs_escort = EXCLUDED.needs_escort,
        current_city = EXCLUDED.current_city, given_names_cyrillic = EXCLUDED.given_names_cyrillic,
        surname_cyrillic = EXCLUDED.surname_cyrillic, phone = EXCLUDED.phone,
        proof_of_citizenship = EXCLUDED.proof_of_citizenship"""


_HOLDERS = """
    SELECT wanted.kind, wanted.key, k.person_id, k.case_id
    FROM unnest($1::text[], $2::text[]) AS wanted(kind, key)
    CROSS JOIN LATERAL (SELECT person_id, case_id
                        FROM person_keys k
                        WHERE k.kind = wanted.kind AND k.key = wanted.key
                          AND ($4::uuid IS NULL OR k.case_id <> $4)
                        LIMIT $3) AS k"""
"""Who holds each of the keys ($1 kinds, $2 keys), at most $3 people a key, other than the
people of case $4 (if not null). The index scan of each key stops at $3 holders: numbering every
holder and keeping the first $3 read them all, so a key held by thousands (a common name, the
same person registered again and again) made every registration sharing it slower than the last."""


def _holders(rows: Sequence[asyncpg.Record]) -> dict[KeyPair, list[Holder]]:
    holders: dict[KeyPair, list[Holder]] = {}
    for r in rows:
        holders.setdefault((r["kind"], r["key"]), []).append(Holder(r["person_id"], r["case_id"]))
    return holders


def _person_record(case_id: uuid.UUID, p: Person) -> tuple[object, ...]:
    return (
        p.person_id,
        case_id,
        p.role,
        p.given_names,
        p.surname,
        p.birth_date,
        p.sex,
        p.nationality,
        p.document.model_dump_json(),
        [str(v) for v in p.vulnerabilities],
        p.needs_escort,
        p.current_city,
        p.given_names_cyrillic,
        p.surname_cyrillic,
        p.phone,
        p.proof_of_citizenship.model_dump_json() if p.proof_of_citizenship else None,
    )


@dataclass(frozen=True)
class Erasure:
    """The erasure of a case's personal data: on what basis, who asked, when."""

    case_id: uuid.UUID
    basis: ErasureBasis
    requested_by: str
    erased_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "basis", ErasureBasis(self.basis))


class IntakeStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # --- locks ---------------------------------------------------------------------------------

    async def lock_duplicate_keys(self, lock_ids: list[int]) -> None:
        """Wait for, and hold until the transaction ends, the locks of these duplicate keys.

        One statement takes them all in ascending order, so two registrations sharing several keys
        cannot deadlock. A lookup made by a later statement of the transaction sees every case that
        held one of these locks before (READ COMMITTED: each statement sees what committed before it).
        """
        assert self.conn.is_in_transaction(), (
            "a transaction-level lock outside a transaction is released at once"
        )
        if not lock_ids:
            return
        await self.conn.execute(
            # Sorted in the outer query, whose output (the locking) PostgreSQL documents it computes
            # after sorting (``corridor.db.lock_keys``): the import lock (the NULL row) first, as a
            # chunk of an import takes it, then the keys in ascending order.
            """SELECT CASE WHEN k IS NULL THEN pg_advisory_xact_lock_shared($3::int4, $4::int4)
                           ELSE pg_advisory_xact_lock($1::int4, k) END
               FROM (SELECT DISTINCT k FROM unnest($2::int4[]) AS k UNION ALL SELECT NULL) AS ks
               ORDER BY k NULLS FIRST""",
            DUPLICATE_KEY_LOCKS,
            lock_ids,
            *IMPORT_LOCK,
        )

    async def lock_for_import(self) -> None:
        """Wait for every registration and update in flight, and hold off the next ones, until the
        transaction ends (``IMPORT_LOCK``): a chunk's lookups then see every case that may share a
        key with it, and the next registration sees the chunk's."""
        assert self.conn.is_in_transaction()
        await self.conn.execute("SELECT pg_advisory_xact_lock($1::int4, $2::int4)", *IMPORT_LOCK)

    async def case_for_update(self, case_id: uuid.UUID) -> LockedCase | None:
        """The case, its row locked until the transaction ends; None if there is no such case."""
        row = await self.conn.fetchrow(
            """SELECT c.case_id, c.route_id, c.status, c.registered_at,
                      (SELECT count(*) FROM persons p WHERE p.case_id = c.case_id) AS members
               FROM cases c WHERE c.case_id = $1 FOR UPDATE""",
            case_id,
        )
        if row is None:
            return None
        return LockedCase(
            case_id=row["case_id"],
            route_id=row["route_id"],
            status=CaseStatus(row["status"]),
            registered_at=row["registered_at"],
            members=row["members"],
        )

    # --- cases ---------------------------------------------------------------------------------

    async def case_for_key(self, registration_key: str) -> uuid.UUID | None:
        found: uuid.UUID | None = await self.conn.fetchval(
            "SELECT case_id FROM cases WHERE registration_key = $1", registration_key
        )
        return found

    async def cases_for_keys(self, keys: Sequence[str]) -> dict[str, uuid.UUID]:
        """Registration keys already taken, with their cases: one query for a whole import."""
        if not keys:
            return {}
        found = await self.conn.fetch(
            "SELECT registration_key, case_id FROM cases WHERE registration_key = ANY($1::text[])",
            list(keys),
        )
        return {r["registration_key"]: r["case_id"] for r in found}

    async def keys_taken(self, keys: Sequence[str]) -> dict[str, KeyTaken]:
        """``cases_for_keys`` with what the registration of each case answered: one query for a
        whole import, its flags in the order that answer gave them."""
        if not keys:
            return {}
        rows = await self.conn.fetch(
            """SELECT c.registration_key, c.case_id, a.case_id IS NOT NULL AS answered,
                      coalesce(a.imported, false) AS imported,
                      u.n, f.flag_id, f.person_id, f.other_case_id, f.basis
               FROM cases c
               LEFT JOIN registration_answers a USING (case_id)
               LEFT JOIN LATERAL unnest(a.flag_ids) WITH ORDINALITY AS u(flag_id, n) ON true
               LEFT JOIN duplicate_flags f ON f.flag_id = u.flag_id
               WHERE c.registration_key = ANY($1::text[])""",
            list(keys),
        )
        taken: dict[str, KeyTaken] = {}
        for r in sorted(rows, key=lambda r: r["n"] or 0):
            key = r["registration_key"]
            if key not in taken:
                taken[key] = KeyTaken(r["case_id"], [] if r["answered"] else None, r["imported"])
            flags = taken[key].flags
            if r["flag_id"] is not None and flags is not None:
                flags.append(RaisedFlag(r["flag_id"], r["person_id"], r["other_case_id"], r["basis"]))
        return taken

    async def save_answer(self, case_id: uuid.UUID, flag_ids: Sequence[int], *, imported: bool) -> None:
        """What the registration of a case under a key answered (``POST /cases``, an import's row)."""
        await self.conn.execute(
            "INSERT INTO registration_answers (case_id, flag_ids, imported) VALUES ($1, $2::bigint[], $3)",
            case_id,
            list(flag_ids),
            imported,
        )

    async def save_import_answers(self, answers: Sequence[tuple[uuid.UUID, Sequence[int]]]) -> None:
        """``save_answer`` for a chunk of an import's cases, in one COPY."""
        if not answers:
            return
        await self.conn.copy_records_to_table(
            "registration_answers",
            records=[(case_id, list(flag_ids), True) for case_id, flag_ids in answers],
            columns=("case_id", "flag_ids", "imported"),
        )

    async def insert_case(
        self, case: CaseRegistered, *, registration_key: str | None, status: CaseStatus
    ) -> bool:
        """Write a new case and its people; False (and nothing written) if ``registration_key`` is
        already taken, by a registration committed before or (waited for) meanwhile."""
        inserted = await self.conn.fetchval(
            """INSERT INTO cases (case_id, registration_key, route_id, planned_travel_date, consent,
                                  status, registered_at)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
               ON CONFLICT (registration_key) DO NOTHING
               RETURNING true""",
            case.case_id,
            registration_key,
            case.route_id,
            case.planned_travel_date,
            case.consent.model_dump_json(),
            status.value,
            case.registered_at,
        )
        if not inserted:
            return False
        await self._upsert_persons(case.case_id, case.members)
        return True

    async def insert_cases(
        self, cases: Sequence[tuple[CaseRegistered, str | None]], *, status: CaseStatus
    ) -> set[uuid.UUID]:
        """Write new cases (each with its registration key) and their people in two statements;
        the cases written: not those whose key is already taken (nor their people)."""
        if not cases:
            return set()
        rows = await self.conn.fetch(
            """INSERT INTO cases (case_id, registration_key, route_id, planned_travel_date, consent,
                                  status, registered_at)
               SELECT c, k, r, d, j::jsonb, $6, t
               FROM unnest($1::uuid[], $2::text[], $3::text[], $4::date[], $5::text[], $7::timestamptz[])
                    AS u(c, k, r, d, j, t)
               ON CONFLICT (registration_key) DO NOTHING
               RETURNING case_id""",
            [c.case_id for c, _ in cases],
            [k for _, k in cases],
            [c.route_id for c, _ in cases],
            [c.planned_travel_date for c, _ in cases],
            [c.consent.model_dump_json() for c, _ in cases],
            status.value,
            [c.registered_at for c, _ in cases],
        )
        written = {r["case_id"] for r in rows}
        await self.conn.copy_records_to_table(
            "persons",
            records=[
                _person_record(c.case_id, p) for c, _ in cases if c.case_id in written for p in c.members
            ],
            columns=_PERSON_COLUMNS,
        )
        return written

    async def replace_case(self, case: CaseUpdated) -> None:
        """The case's details as they now stand; its duplicate keys are dropped, to be recorded again."""
        await self.conn.execute(
            """UPDATE cases SET route_id = $2, planned_travel_date = $3, consent = $4::jsonb,
                                version = version + 1, updated_at = now()
               WHERE case_id = $1""",
            case.case_id,
            case.route_id,
            case.planned_travel_date,
            case.consent.model_dump_json(),
        )
        await self.conn.execute("DELETE FROM person_keys WHERE case_id = $1", case.case_id)
        keep = [p.person_id for p in case.members]
        await self.conn.execute(
            "DELETE FROM persons WHERE case_id = $1 AND NOT (person_id = ANY($2::uuid[]))", case.case_id, keep
        )
        await self._upsert_persons(case.case_id, case.members)

    async def _upsert_persons(self, case_id: uuid.UUID, members: list[Person]) -> None:
        await self.conn.executemany(_UPSERT_PERSON, [_person_record(case_id, p) for p in members])

    async def case_exists(self, case_id: uuid.UUID) -> bool:
        return bool(await self.conn.fetchval("SELECT 1 FROM cases WHERE case_id = $1", case_id))

    async def case_status(self, case_id: uuid.UUID) -> CaseStatus:
        return CaseStatus(await self.conn.fetchval("SELECT status FROM cases WHERE case_id = $1", case_id))

    async def set_status(self, case_id: uuid.UUID, status: CaseStatus) -> None:
        await self.conn.execute(
            "UPDATE cases SET status = $2, updated_at = now() WHERE case_id = $1", case_id, status.value
        )

    async def statistics_of(self, case_id: uuid.UUID) -> CaseStatistics | None:
        """Sex and birth date of the case's people, its route and dates: what reporting keeps."""
        case = await self.conn.fetchrow(
            "SELECT route_id, registered_at, planned_travel_date FROM cases WHERE case_id = $1", case_id
        )
        if case is None:
            return None
        people = await self.conn.fetch(
            "SELECT sex, birth_date FROM persons WHERE case_id = $1 ORDER BY person_id", case_id
        )
        return CaseStatistics(
            case["route_id"],
            case["registered_at"],
            case["planned_travel_date"],
            tuple((p["sex"], p["birth_date"]) for p in people),
        )

    async def people_of(self, case_id: uuid.UUID) -> list[KnownPerson]:
        rows = await self.conn.fetch(
            "SELECT person_id, surname, given_names, birth_date FROM persons WHERE case_id = $1", case_id
        )
        return [KnownPerson(r["person_id"], r["surname"], r["given_names"], r["birth_date"]) for r in rows]

    async def person_in_case(self, case_id: uuid.UUID, person_id: uuid.UUID) -> bool:
        return bool(
            await self.conn.fetchval(
                "SELECT 1 FROM persons WHERE case_id = $1 AND person_id = $2", case_id, person_id
            )
        )

    async def case_details(self, case_id: uuid.UUID) -> CaseDetails | None:
        """The case with its people's personal data (record the read: ``record_access``)."""
        case = await self.conn.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
        if case is None:
            return None
        persons = await self.conn.fetch(
            "SELECT * FROM persons WHERE case_id = $1 ORDER BY role <> 'principal', surname", case_id
        )
        return CaseDetails(
            case_id=case["case_id"],
            route_id=case["route_id"],
            planned_travel_date=case["planned_travel_date"],
            status=CaseStatus(case["status"]),
            consent=Consent.model_validate_json(case["consent"]),
            members=[
                RegisteredPerson(
                    person_id=p["person_id"],
                    role=Relationship(p["role"]),
                    given_names=p["given_names"],
                    surname=p["surname"],
                    birth_date=p["birth_date"],
                    sex=p["sex"],
                    nationality=p["nationality"],
                    document=TravelDocument.model_validate_json(p["document"]),
                    vulnerabilities=[VulnerabilityFlag(v) for v in p["vulnerabilities"]],
                    needs_escort=p["needs_escort"],
                    current_city=p["current_city"],
                    given_names_cyrillic=p["given_names_cyrillic"],
                    surname_cyrillic=p["surname_cyrillic"],
                    phone=p["phone"],
                    proof_of_citizenship=CitizenshipProof.model_validate_json(p["proof_of_citizenship"])
                    if p["proof_of_citizenship"]
                    else None,
                )
                for p in persons
            ],
        )

    # --- the status stream, as intake reads it -------------------------------------------------

    async def record_statuses(self, read: Sequence[tuple[str, str, CaseStatusChanged]]) -> None:
        """Status changes read from the stream, each (its event's source and id, the change), in
        stream order: on their cases' timelines (once per event), and each case's current status
        (its last change here)."""
        if not read:
            return
        changes = [change for _, _, change in read]
        await self.conn.execute(
            """INSERT INTO status_timeline (event_source, event_id, case_id, status, occurred_at, place,
                                            movement_id, reason_code, reason)
               SELECT event_source, event_id, case_id, status, occurred_at, place, movement_id,
                      reason_code, reason
               FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[],
                           $6::jsonb[], $7::text[], $8::text[], $9::text[])
                   WITH ORDINALITY AS r(event_source, event_id, case_id, status, occurred_at, place,
                                        movement_id, reason_code, reason, n)
               ORDER BY n
               ON CONFLICT DO NOTHING""",
            [source for source, _, _ in read],
            [event_id for _, event_id, _ in read],
            [c.case_id for c in changes],
            [c.status.value for c in changes],
            [c.occurred_at for c in changes],
            [c.place.model_dump_json() if c.place else None for c in changes],
            [c.movement_id for c in changes],
            [c.reason_code for c in changes],
            [c.reason for c in changes],
        )
        last = {c.case_id: c.status.value for c in changes}  # a case's later change wins
        await self.conn.execute(
            """UPDATE cases SET status = u.status, updated_at = now()
               FROM unnest($1::uuid[], $2::text[]) AS u(case_id, status)
               WHERE cases.case_id = u.case_id""",
            list(last),
            list(last.values()),
        )

    async def keep_report_reason(
        self, published: CloudEvent, report: CaseStatusReported, reported_by: str
    ) -> None:
        """A mission's own code, words and place for the status change ``published`` (the stream
        has a public code and a place of the route): the case's timeline shows them to caseworkers."""
        await self.conn.execute(
            """INSERT INTO reported_reasons (event_source, event_id, case_id, reported_by, reason_code, reason,
                                             place)
               VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT DO NOTHING""",
            published.source,
            published.id,
            report.case_id,
            reported_by,
            report.reason_code,
            report.reason,
            report.place.model_dump_json() if report.place else None,
        )

    async def timeline(self, case_id: uuid.UUID) -> list[TimelineEntry]:
        rows = await self.conn.fetch(
            """SELECT t.status, t.occurred_at, COALESCE(r.place, t.place) AS place, t.movement_id,
                      COALESCE(r.reason_code, t.reason_code) AS reason_code,
                      COALESCE(r.reason, t.reason) AS reason, t.event_source, t.event_id
               FROM status_timeline t
               LEFT JOIN reported_reasons r USING (event_source, event_id)
               WHERE t.case_id = $1 ORDER BY t.seq""",
            case_id,
        )
        return [
            TimelineEntry(
                status=CaseStatus(r["status"]),
                occurred_at=r["occurred_at"],
                place=Place.model_validate_json(r["place"]) if r["place"] else None,
                movement_id=r["movement_id"],
                reason_code=r["reason_code"],
                reason=r["reason"],
                event=EventRef(r["event_source"], r["event_id"]),
            )
            for r in rows
        ]

    async def first_delivery(self, consumer: str, event: CloudEvent) -> bool:
        """Record ``event`` in ``consumer``'s inbox; False when it was applied before."""
        return await inbox.first_delivery(self.conn, consumer, event)

    async def keep_outcome(self, consumer: str, event: CloudEvent, outcome_id: str) -> None:
        """With ``event``'s inbox row: the id of what applying it published."""
        await inbox.keep_outcome(self.conn, consumer, event, outcome_id)

    async def outcome_of(self, consumer: str, event: CloudEvent) -> str | None:
        return await inbox.outcome_of(self.conn, consumer, event)

    # --- health evidence and withdrawals -------------------------------------------------------

    async def save_health_evidence(
        self, event: HealthEvidenceRecorded, recorded_by: str, event_id: str | None = None
    ) -> None:
        await self.conn.execute(
            """INSERT INTO health_evidence
                   (case_id, person_id, kind, result, taken_at, recorded_by, recorded_at, event_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            event.case_id,
            event.person_id,
            event.kind.value,
            event.result.value,
            event.taken_at,
            recorded_by,
            event.recorded_at,
            event_id,
        )

    async def health_evidence(self, case_id: uuid.UUID) -> list[HealthEvidence]:
        rows = await self.conn.fetch(
            """SELECT id, person_id, kind, result, taken_at, recorded_at, recorded_by, event_id
               FROM health_evidence WHERE case_id = $1 ORDER BY id""",
            case_id,
        )
        return [
            HealthEvidence(
                r["id"],
                r["person_id"],
                r["kind"],
                r["result"],
                r["taken_at"],
                r["recorded_at"],
                r["recorded_by"],
                r["event_id"],
            )
            for r in rows
        ]

    async def save_withdrawal(self, event: CaseWithdrawn, recorded_by: str) -> None:
        await self.conn.execute(
            "INSERT INTO withdrawals (case_id, reason, recorded_by, withdrawn_at) VALUES ($1, $2, $3, $4)",
            event.case_id,
            event.reason,
            recorded_by,
            event.withdrawn_at,
        )

    async def is_withdrawn(self, case_id: uuid.UUID) -> bool:
        return bool(await self.conn.fetchval("SELECT 1 FROM withdrawals WHERE case_id = $1", case_id))

    # --- erasure of personal data --------------------------------------------------------------

    async def erasure_of(self, case_id: uuid.UUID) -> Erasure | None:
        row = await self.conn.fetchrow(
            "SELECT case_id, basis, requested_by, erased_at FROM erasures WHERE case_id = $1", case_id
        )
        return None if row is None else Erasure(**dict(row))

    async def erase_case(self, erasure: Erasure) -> None:
        """Anonymise every person of the case and drop what identifies them or speaks of them
        (keys, health evidence, notes); keep what statistics count (sex, nationality, birth year,
        vulnerability categories, the case's statuses and dates). Recorded with who asked."""
        case_id = erasure.case_id
        await self.conn.execute(
            """UPDATE persons SET given_names = '', surname = '', given_names_cyrillic = NULL,
                      surname_cyrillic = NULL, phone = NULL, current_city = NULL,
                      proof_of_citizenship = NULL,
                      birth_date = date_trunc('year', birth_date)::date,
                      document = jsonb_build_object('type', document->'type',
                                                    'issuing_country', document->'issuing_country')
               WHERE case_id = $1""",
            case_id,
        )
        await self.conn.execute(
            """UPDATE cases SET registration_key = NULL,
                      consent = consent - 'proxy_name' - 'proxy_reason', updated_at = now()
               WHERE case_id = $1""",
            case_id,
        )
        await self.conn.execute("DELETE FROM person_keys WHERE case_id = $1", case_id)
        await self.conn.execute("DELETE FROM registration_answers WHERE case_id = $1", case_id)
        await self.conn.execute("DELETE FROM health_evidence WHERE case_id = $1", case_id)
        await self.conn.execute("UPDATE withdrawals SET reason = '' WHERE case_id = $1", case_id)
        await self.conn.execute(
            """UPDATE duplicate_flags SET resolution_note = NULL
               WHERE case_id = $1 OR other_case_id = $1""",
            case_id,
        )
        await self.conn.execute("UPDATE status_timeline SET reason = NULL WHERE case_id = $1", case_id)
        await self.conn.execute(
            """INSERT INTO erasures (case_id, basis, requested_by, erased_at) VALUES ($1, $2, $3, $4)""",
            case_id,
            erasure.basis.value,
            erasure.requested_by,
            erasure.erased_at,
        )

    async def cases_past_retention(
        self, statuses: Collection[CaseStatus], ended_before: datetime, limit: int
    ) -> list[uuid.UUID]:
        """Ended cases last changed before ``ended_before`` and not yet erased, their rows locked;
        rows another sweep holds are skipped, so two intake instances never erase one case twice."""
        rows = await self.conn.fetch(
            """SELECT c.case_id FROM cases c
               WHERE c.status = ANY($1::text[]) AND c.updated_at < $2
                 AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.case_id = c.case_id)
               ORDER BY c.updated_at
               LIMIT $3
               FOR UPDATE OF c SKIP LOCKED""",
            [s.value for s in statuses],
            ended_before,
            limit,
        )
        return [r["case_id"] for r in rows]

    # --- duplicate keys and flags --------------------------------------------------------------

    async def record_person_keys(
        self, keys: Sequence[tuple[Holder, KeyPair]], *, case_id: uuid.UUID
    ) -> dict[KeyPair, list[Holder]]:
        """Record people's keys (a key a person holds already stays: an update records its people's
        keys again) and answer who held each of them before, outside ``case_id`` (``key_holders``):
        one statement, whose lookup sees the keys as they stood before it."""
        if not keys:
            return {}
        wanted = list(dict.fromkeys(pair for _, pair in keys))
        rows = await self.conn.fetch(
            f"""WITH added AS (
                    INSERT INTO person_keys (person_id, case_id, kind, key)
                    SELECT * FROM unnest($5::uuid[], $6::uuid[], $7::text[], $8::text[])
                    ON CONFLICT DO NOTHING)
                {_HOLDERS}""",
            [kind for kind, _ in wanted],
            [key for _, key in wanted],
            CANDIDATES_PER_KEY,
            case_id,
            [h.person_id for h, _ in keys],
            [h.case_id for h, _ in keys],
            [kind for _, (kind, _) in keys],
            [key for _, (_, key) in keys],
        )
        return _holders(rows)

    async def add_keys(self, keys: Sequence[tuple[Holder, KeyPair]]) -> None:
        """Record many people's keys in one statement (new people: none is recorded yet)."""
        await self.conn.copy_records_to_table(
            "person_keys",
            records=[(h.person_id, h.case_id, kind, key) for h, (kind, key) in keys],
            columns=("person_id", "case_id", "kind", "key"),
        )

    async def key_holders(
        self, pairs: Collection[KeyPair], *, exclude_case: uuid.UUID | None = None
    ) -> dict[KeyPair, list[Holder]]:
        """Who holds each of these keys, other than the people of ``exclude_case``: one lookup for
        a registration or a whole chunk of an import, at most ``CANDIDATES_PER_KEY`` people a key."""
        if not pairs:
            return {}
        kinds, keys = zip(*pairs, strict=True)
        rows = await self.conn.fetch(_HOLDERS, list(kinds), list(keys), CANDIDATES_PER_KEY, exclude_case)
        return _holders(rows)

    async def flag_matches(self, matches: Sequence[Match]) -> list[RaisedFlag]:
        """Flag many pairs in one statement; the flags raised (not those of pairs flagged before)."""
        if not matches:
            return []
        rows = await self.conn.fetch(
            """INSERT INTO duplicate_flags (case_id, person_id, other_case_id, other_person_id, basis)
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[])
               ON CONFLICT (person_id, other_person_id) DO NOTHING
               RETURNING flag_id, person_id, other_case_id, basis""",
            [m.person.case_id for m in matches],
            [m.person.person_id for m in matches],
            [m.other.case_id for m in matches],
            [m.other.person_id for m in matches],
            [m.basis for m in matches],
        )
        return sorted(
            (RaisedFlag(r["flag_id"], r["person_id"], r["other_case_id"], r["basis"]) for r in rows),
            key=lambda f: f.flag_id,
        )

    async def duplicate_flags(self, status: str | None, case_id: uuid.UUID | None) -> list[DuplicateFlag]:
        rows = await self.conn.fetch(
            """SELECT * FROM duplicate_flags
               WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR case_id = $2 OR other_case_id = $2)
               ORDER BY flag_id""",
            status,
            case_id,
        )
        return [
            DuplicateFlag(
                flag_id=r["flag_id"],
                case_id=r["case_id"],
                person_id=r["person_id"],
                other_case_id=r["other_case_id"],
                other_person_id=r["other_person_id"],
                basis=r["basis"],
                status=FlagStatus(r["status"]),
                flagged_at=r["flagged_at"],
                resolved_by=r["resolved_by"],
                resolution_note=r["resolution_note"],
            )
            for r in rows
        ]

    async def resolve_flag(self, flag_id: int, status: FlagStatus, by: str, note: str) -> bool:
        """Close an open flag; False if there is no open flag ``flag_id``."""
        result = await self.conn.execute(
            """UPDATE duplicate_flags SET status = $2, resolved_by = $3, resolution_note = $4, resolved_at = now()
               WHERE flag_id = $1 AND status = $5""",
            flag_id,
            status.value,
            by,
            note,
            FlagStatus.OPEN.value,
        )
        return str(result).endswith(" 1")

    # --- the access log ------------------------------------------------------------------------

    async def record_access(self, case_id: uuid.UUID, actor: str, purpose: str) -> None:
        await self.conn.execute(
            "INSERT INTO pii_access_log (actor, purpose, case_id) VALUES ($1, $2, $3)",
            actor,
            purpose,
            case_id,
        )

    async def access_log(self, case_id: uuid.UUID) -> list[AccessRecord]:
        rows = await self.conn.fetch(
            "SELECT accessed_at, actor, purpose, case_id FROM pii_access_log WHERE case_id = $1 ORDER BY id",
            case_id,
        )
        return [AccessRecord(r["accessed_at"], r["actor"], r["purpose"], r["case_id"]) for r in rows]

    async def access_log_query(
        self, actor: str | None, since: datetime | None, limit: int
    ) -> list[AccessRecord]:
        rows = await self.conn.fetch(
            """SELECT accessed_at, actor, purpose, case_id FROM pii_access_log
               WHERE ($1::text IS NULL OR actor = $1) AND ($2::timestamptz IS NULL OR accessed_at >= $2)
               ORDER BY id DESC LIMIT $3""",
            actor,
            since,
            limit,
        )
        return [AccessRecord(r["accessed_at"], r["actor"], r["purpose"], r["case_id"]) for r in rows]
