"""Eligibility's persistence: the facts each case was judged on, and versioned decisions.

``EligibilityStore`` is bound to one connection (the unit of work's, in its transaction) and
speaks in the domain's values. Its one lock is ``lock_case``: the case row, held until the unit
ends, under which every decision on the case is taken (docs/consistency.md).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime

import asyncpg

from contracts.eligibility import Outcome, RuleResult
from contracts.intake import EvidenceKind, EvidenceResult
from corridor import db
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

_CASE_ID_LOCKS = 7_241_301  # advisory lock class: case ids (see lock_case_id)


class EligibilityStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # --- cases ---------------------------------------------------------------------------------

    async def save_facts(self, facts: CaseFacts) -> None:
        await self.save_facts_many([facts])

    async def lock_case_id(self, case_id: uuid.UUID) -> None:
        """A lock on the case id itself, for the moment before its row exists: a registration and
        health evidence read from another topic are applied one after the other."""
        await self.lock_case_ids([case_id])

    async def save_facts_many(self, facts: list[CaseFacts]) -> None:
        """``save_facts`` for many cases (each once) in one statement."""
        await self.conn.execute(
            """INSERT INTO cases (case_id, route_id, facts, planned_travel_date)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::date[])
               ON CONFLICT (case_id) DO UPDATE SET facts = EXCLUDED.facts, route_id = EXCLUDED.route_id,
                   planned_travel_date = EXCLUDED.planned_travel_date""",
            [f.case_id for f in facts],
            [f.route_id for f in facts],
            [f.model_dump_json() for f in facts],
            [f.planned_travel_date for f in facts],
        )

    async def lock_case_ids(self, case_ids: list[uuid.UUID]) -> None:
        """``lock_case_id`` for many, in one statement, in one order for everyone."""
        await db.lock_keys(self.conn, _CASE_ID_LOCKS, case_ids)

    async def lock_cases(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, CaseRecord]:
        """``lock_case`` for many, in one statement, in case-id order: those registered here."""
        rows = await self.conn.fetch(
            """SELECT case_id, facts, withdrawn_at, departed_at, erased_at FROM cases
               WHERE case_id = ANY($1::uuid[]) ORDER BY case_id FOR UPDATE""",
            case_ids,
        )
        return {
            r["case_id"]: CaseRecord(
                CaseFacts.model_validate_json(r["facts"]), r["withdrawn_at"], r["departed_at"], r["erased_at"]
            )
            for r in rows
        }

    async def lock_case(self, case_id: uuid.UUID) -> CaseRecord | None:
        """The case as it stands, read under a lock on its row held until the unit ends: two
        re-evaluations of one case take effect one after the other. None if not registered here."""
        return (await self.lock_cases([case_id])).get(case_id)

    async def erase_case(self, facts: CaseFacts, at: datetime) -> None:
        """Keep ``facts`` (already stripped of what speaks of the people) and outcomes; drop the
        health evidence and every text about the people (the rules' reasons, overrides' reasons)."""
        await self.conn.execute(
            "UPDATE cases SET facts = $2::jsonb, erased_at = $3 WHERE case_id = $1",
            facts.case_id,
            facts.model_dump_json(),
            at,
        )
        await self.conn.execute("DELETE FROM evidence WHERE case_id = $1", facts.case_id)
        await self.conn.execute(
            """UPDATE decisions SET rules = (
                   SELECT coalesce(jsonb_agg(r || jsonb_build_object('reason', $2::text)), '[]'::jsonb)
                   FROM jsonb_array_elements(rules) AS r)
               WHERE case_id = $1""",
            facts.case_id,
            ERASED_TEXT,
        )
        await self.conn.execute(
            "UPDATE overrides SET reason = $2 WHERE case_id = $1", facts.case_id, ERASED_TEXT
        )

    async def facts_of(self, case_ids: list[uuid.UUID]) -> list[CaseFacts]:
        rows = await self.conn.fetch("SELECT facts FROM cases WHERE case_id = ANY($1::uuid[])", case_ids)
        return [CaseFacts.model_validate_json(r["facts"]) for r in rows]

    async def mark_withdrawn(self, case_id: uuid.UUID, at: datetime) -> None:
        await self.conn.execute("UPDATE cases SET withdrawn_at = $2 WHERE case_id = $1", case_id, at)

    async def mark_departed(self, case_ids: list[uuid.UUID], at: datetime) -> None:
        await self.conn.execute(
            "UPDATE cases SET departed_at = $2 WHERE case_id = ANY($1::uuid[]) AND departed_at IS NULL",
            case_ids,
            at,
        )

    async def cases_on_routes(
        self, route_ids: list[str], travelling_from: date, travelling_until: date | None = None
    ) -> list[uuid.UUID]:
        """Cases a requirement may affect: on those routes, travelling from its first day (to its
        last, if it has one), not departed and not withdrawn."""
        rows = await self.conn.fetch(
            """SELECT case_id FROM cases WHERE route_id = ANY($1::text[]) AND planned_travel_date >= $2
               AND ($3::date IS NULL OR planned_travel_date <= $3)
               AND departed_at IS NULL AND withdrawn_at IS NULL ORDER BY planned_travel_date, case_id""",
            route_ids,
            travelling_from,
            travelling_until,
        )
        return [r["case_id"] for r in rows]

    # --- decisions -----------------------------------------------------------------------------

    async def append_decisions(
        self, decided: list[tuple[uuid.UUID, int, Decision]], decided_at: datetime
    ) -> None:
        """Record many decisions (case, its new version, decision) in one statement; each version is
        one more than the case's latest, read under the case's lock."""
        await self.conn.execute(
            """INSERT INTO decisions (case_id, version, outcome, priority, rules, decided_at)
               SELECT c, v, o, p, r, $6 FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[], $5::jsonb[])
                   AS u(c, v, o, p, r)""",
            [case_id for case_id, _, _ in decided],
            [version for _, version, _ in decided],
            [d.outcome.value for _, _, d in decided],
            [d.priority for _, _, d in decided],
            [json.dumps([r.model_dump(mode="json") for r in d.rules]) for _, _, d in decided],
            decided_at,
        )

    async def latest_decisions(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, RecordedDecision]:
        rows = await self.conn.fetch(
            """SELECT DISTINCT ON (case_id) case_id, version, outcome, priority, rules, decided_at
               FROM decisions WHERE case_id = ANY($1::uuid[]) ORDER BY case_id, version DESC""",
            case_ids,
        )
        return {r["case_id"]: _decision(r) for r in rows}

    async def decisions(self, case_id: uuid.UUID) -> list[RecordedDecision]:
        rows = await self.conn.fetch(
            "SELECT version, outcome, priority, rules, decided_at FROM decisions WHERE case_id = $1 ORDER BY version",
            case_id,
        )
        return [_decision(r) for r in rows]

    async def latest_decision(self, case_id: uuid.UUID) -> RecordedDecision | None:
        return (await self.latest_decisions([case_id])).get(case_id)

    # --- health evidence -----------------------------------------------------------------------

    async def evidence_of(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Evidence]]:
        """The health evidence kept for each of these cases (those with some)."""
        rows = await self.conn.fetch(
            "SELECT case_id, person_id, kind, result, taken_at FROM evidence WHERE case_id = ANY($1::uuid[])",
            case_ids,
        )
        found: dict[uuid.UUID, list[Evidence]] = {}
        for r in rows:
            found.setdefault(r["case_id"], []).append(
                Evidence(r["person_id"], EvidenceKind(r["kind"]), EvidenceResult(r["result"]), r["taken_at"])
            )
        return found

    async def add_evidence(self, case_id: uuid.UUID, e: Evidence) -> None:
        await self.conn.execute(
            "INSERT INTO evidence (case_id, person_id, kind, result, taken_at) VALUES ($1, $2, $3, $4, $5)",
            case_id,
            e.person_id,
            e.kind.value,
            e.result.value,
            e.taken_at,
        )

    # --- crossing requirements -----------------------------------------------------------------

    async def active_requirements(self) -> list[Requirement]:
        rows = await self.conn.fetch("SELECT * FROM requirements WHERE lifted_at IS NULL")
        return [_requirement(r) for r in rows]

    async def save_requirement(self, r: Requirement) -> None:
        await self.conn.execute(
            """INSERT INTO requirements (requirement_id, checkpoint_id, country, post, code, description,
                                         evidence_kind, valid_hours, effective_from, effective_until)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (requirement_id) DO NOTHING""",
            r.requirement_id,
            r.checkpoint_id,
            r.country,
            r.post,
            r.code,
            r.description,
            r.evidence_kind.value,
            r.valid_hours,
            r.effective_from,
            r.effective_until,
        )

    async def lift_requirement(self, requirement_id: uuid.UUID, at: datetime) -> Requirement | None:
        """The requirement lifted now; None if unknown here or lifted before."""
        row = await self.conn.fetchrow(
            """UPDATE requirements SET lifted_at = $2 WHERE requirement_id = $1 AND lifted_at IS NULL
               RETURNING *""",
            requirement_id,
            at,
        )
        return _requirement(row) if row is not None else None

    # --- certificates of return ----------------------------------------------------------------

    async def mark_certificates_used(self, used: Sequence[tuple[uuid.UUID, str]], at: datetime) -> None:
        """Certificates of return (case, document) travelled on, in one statement; the first
        journey on each stays recorded."""
        await self.conn.execute(
            """INSERT INTO used_certificates (document_ref, case_id, used_at)
               SELECT r, c, $3 FROM unnest($1::text[], $2::uuid[]) AS u(r, c) ON CONFLICT DO NOTHING""",
            [ref for _, ref in used],
            [case_id for case_id, _ in used],
            at,
        )

    async def certificates_used_by_others(
        self, refs: dict[uuid.UUID, list[str]]
    ) -> dict[uuid.UUID, frozenset[str]]:
        """For each case, those of its certificates of return (``refs``) another case travelled on."""
        rows = await self.conn.fetch(
            "SELECT document_ref, case_id FROM used_certificates WHERE document_ref = ANY($1::text[])",
            list({ref for case_refs in refs.values() for ref in case_refs}),
        )
        used_by: dict[str, set[uuid.UUID]] = {}
        for r in rows:
            used_by.setdefault(r["document_ref"], set()).add(r["case_id"])
        return {
            case_id: frozenset(ref for ref in case_refs if used_by.get(ref, set()) - {case_id})
            for case_id, case_refs in refs.items()
        }

    # --- supervisors' overrides ----------------------------------------------------------------

    async def active_overrides(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, SupervisorOverride]:
        """The override in force on each of these cases (those with one)."""
        rows = await self.conn.fetch(
            """SELECT DISTINCT ON (case_id) * FROM overrides
               WHERE case_id = ANY($1::uuid[]) AND revoked_at IS NULL ORDER BY case_id, id DESC""",
            case_ids,
        )
        return {r["case_id"]: _override(r) for r in rows}

    async def add_override(self, case_id: uuid.UUID, outcome: Outcome, reason: str, supervisor: str) -> int:
        """Record an override; the one in force before it is revoked by the same supervisor."""
        await self.conn.execute(
            "UPDATE overrides SET revoked_at = now(), revoked_by = $2 WHERE case_id = $1 AND revoked_at IS NULL",
            case_id,
            supervisor,
        )
        return int(
            await self.conn.fetchval(
                "INSERT INTO overrides (case_id, outcome, reason, supervisor) VALUES ($1, $2, $3, $4) RETURNING id",
                case_id,
                outcome.value,
                reason,
                supervisor,
            )
        )

    async def revoke_override(self, case_id: uuid.UUID, supervisor: str) -> bool:
        """True if an override was in force (and is revoked now)."""
        status = await self.conn.execute(
            "UPDATE overrides SET revoked_at = now(), revoked_by = $2 WHERE case_id = $1 AND revoked_at IS NULL",
            case_id,
            supervisor,
        )
        return not status.endswith(" 0")

    async def overrides(self, case_id: uuid.UUID) -> list[SupervisorOverride]:
        rows = await self.conn.fetch("SELECT * FROM overrides WHERE case_id = $1 ORDER BY id", case_id)
        return [_override(r) for r in rows]


def _decision(r: asyncpg.Record) -> RecordedDecision:
    return RecordedDecision(
        version=r["version"],
        outcome=Outcome(r["outcome"]),
        priority=r["priority"],
        rules=tuple(RuleResult.model_validate(x) for x in json.loads(r["rules"])),
        decided_at=r["decided_at"],
    )


def _requirement(r: asyncpg.Record) -> Requirement:
    return Requirement(
        r["requirement_id"],
        r["checkpoint_id"],
        r["country"],
        r["post"],
        r["code"],
        r["description"],
        EvidenceKind(r["evidence_kind"]),
        r["valid_hours"],
        r["effective_from"],
        r["effective_until"],
    )


def _override(r: asyncpg.Record) -> SupervisorOverride:
    return SupervisorOverride(
        outcome=Outcome(r["outcome"]),
        reason=r["reason"],
        supervisor=r["supervisor"],
        created_at=r["created_at"],
        revoked_at=r["revoked_at"],
        revoked_by=r["revoked_by"],
    )
