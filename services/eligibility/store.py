"""Eligibility's persistence: the facts each case was judged on, and versioned decisions."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

import asyncpg

from contracts.border import CrossingRequirementPublished
from contracts.intake import DocumentType, EvidenceKind, EvidenceResult, HealthEvidenceRecorded
from services.eligibility.domain import CaseFacts, Decision, Evidence, Requirement


async def save_facts(conn: asyncpg.Connection, facts: CaseFacts) -> None:
    await conn.execute(
        """INSERT INTO cases (case_id, route_id, facts, planned_travel_date) VALUES ($1, $2, $3::jsonb, $4)
           ON CONFLICT (case_id) DO UPDATE SET facts = EXCLUDED.facts, route_id = EXCLUDED.route_id,
               planned_travel_date = EXCLUDED.planned_travel_date""",
        facts.case_id,
        facts.route_id,
        facts.model_dump_json(),
        facts.planned_travel_date,
    )


async def append_decision(
    conn: asyncpg.Connection, case_id: uuid.UUID, decision: Decision, decided_at: datetime
) -> int:
    version: int = await conn.fetchval(
        "SELECT coalesce(max(version), 0) + 1 FROM decisions WHERE case_id = $1", case_id
    )
    await conn.execute(
        """INSERT INTO decisions (case_id, version, outcome, priority, rules, decided_at)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6)""",
        case_id,
        version,
        decision.outcome.value,
        decision.priority,
        json.dumps([r.model_dump(mode="json") for r in decision.rules]),
        decided_at,
    )
    return version


async def decisions(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT version, outcome, priority, rules, decided_at FROM decisions WHERE case_id = $1 ORDER BY version",
        case_id,
    )
    return [
        {
            "version": r["version"],
            "outcome": r["outcome"],
            "priority": r["priority"],
            "rules": json.loads(r["rules"]),
            "decided_at": r["decided_at"].isoformat(),
        }
        for r in rows
    ]


async def facts(conn: asyncpg.Connection, case_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT facts, withdrawn_at, departed_at FROM cases WHERE case_id = $1 FOR UPDATE", case_id
    )


async def latest_decision(conn: asyncpg.Connection, case_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT version, outcome, rules FROM decisions WHERE case_id = $1 ORDER BY version DESC LIMIT 1",
        case_id,
    )


async def evidence(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[Evidence]:
    rows = await conn.fetch(
        "SELECT person_id, kind, result, taken_at FROM evidence WHERE case_id = $1", case_id
    )
    return [
        Evidence(r["person_id"], EvidenceKind(r["kind"]), EvidenceResult(r["result"]), r["taken_at"])
        for r in rows
    ]


async def add_evidence(conn: asyncpg.Connection, e: HealthEvidenceRecorded) -> None:
    await conn.execute(
        "INSERT INTO evidence (case_id, person_id, kind, result, taken_at) VALUES ($1, $2, $3, $4, $5)",
        e.case_id,
        e.person_id,
        e.kind.value,
        e.result.value,
        e.taken_at,
    )


async def mark_withdrawn(conn: asyncpg.Connection, case_id: uuid.UUID, at: datetime) -> None:
    await conn.execute("UPDATE cases SET withdrawn_at = $2 WHERE case_id = $1", case_id, at)


async def mark_departed(conn: asyncpg.Connection, case_ids: list[uuid.UUID], at: datetime) -> None:
    await conn.execute(
        "UPDATE cases SET departed_at = $2 WHERE case_id = ANY($1::uuid[]) AND departed_at IS NULL",
        case_ids,
        at,
    )


async def active_requirements(conn: asyncpg.Connection) -> list[Requirement]:
    rows = await conn.fetch("SELECT * FROM requirements WHERE lifted_at IS NULL")
    return [
        Requirement(
            r["requirement_id"],
            r["checkpoint_id"],
            r["country"],
            r["post"],
            r["code"],
            r["description"],
            EvidenceKind(r["evidence_kind"]),
            r["valid_hours"],
            r["effective_from"],
        )
        for r in rows
    ]


async def save_requirement(conn: asyncpg.Connection, r: CrossingRequirementPublished) -> None:
    await conn.execute(
        """INSERT INTO requirements (requirement_id, checkpoint_id, country, post, code, description,
                                     evidence_kind, valid_hours, effective_from)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (requirement_id) DO NOTHING""",
        r.requirement_id,
        r.checkpoint_id,
        r.country,
        r.post,
        r.code,
        r.description,
        r.evidence_kind.value,
        r.valid_hours,
        r.effective_from,
    )


async def lift_requirement(
    conn: asyncpg.Connection, requirement_id: uuid.UUID, at: datetime
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """UPDATE requirements SET lifted_at = $2 WHERE requirement_id = $1 AND lifted_at IS NULL
           RETURNING checkpoint_id, effective_from""",
        requirement_id,
        at,
    )


async def cases_on_routes(
    conn: asyncpg.Connection, route_ids: list[str], travelling_from: date
) -> list[uuid.UUID]:
    """Cases a requirement may affect: on those routes, travelling from its first day, not departed
    and not withdrawn."""
    rows = await conn.fetch(
        """SELECT case_id FROM cases WHERE route_id = ANY($1::text[]) AND planned_travel_date >= $2
           AND departed_at IS NULL AND withdrawn_at IS NULL ORDER BY planned_travel_date, case_id""",
        route_ids,
        travelling_from,
    )
    return [r["case_id"] for r in rows]


async def mark_certificates_used(conn: asyncpg.Connection, case_ids: list[uuid.UUID], at: datetime) -> None:
    rows = await conn.fetch("SELECT case_id, facts FROM cases WHERE case_id = ANY($1::uuid[])", case_ids)
    for row in rows:
        facts = CaseFacts.model_validate_json(row["facts"])
        for m in facts.members:
            if m.document_type is DocumentType.CERTIFICATE_OF_RETURN and m.document_ref:
                await conn.execute(
                    "INSERT INTO used_certificates (document_ref, case_id, used_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT DO NOTHING",
                    m.document_ref,
                    row["case_id"],
                    at,
                )


async def certificates_used_by_others(
    conn: asyncpg.Connection, case_id: uuid.UUID, refs: list[str]
) -> frozenset[str]:
    rows = await conn.fetch(
        "SELECT document_ref FROM used_certificates WHERE document_ref = ANY($1::text[]) AND case_id <> $2",
        refs,
        case_id,
    )
    return frozenset(r["document_ref"] for r in rows)


async def active_override(conn: asyncpg.Connection, case_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM overrides WHERE case_id = $1 AND revoked_at IS NULL ORDER BY id DESC LIMIT 1", case_id
    )


async def add_override(
    conn: asyncpg.Connection, case_id: uuid.UUID, outcome: str, reason: str, supervisor: str
) -> int:
    await conn.execute(
        "UPDATE overrides SET revoked_at = now(), revoked_by = $2 WHERE case_id = $1 AND revoked_at IS NULL",
        case_id,
        supervisor,
    )
    return int(
        await conn.fetchval(
            "INSERT INTO overrides (case_id, outcome, reason, supervisor) VALUES ($1, $2, $3, $4) RETURNING id",
            case_id,
            outcome,
            reason,
            supervisor,
        )
    )


async def revoke_override(conn: asyncpg.Connection, case_id: uuid.UUID, supervisor: str) -> bool:
    status = await conn.execute(
        "UPDATE overrides SET revoked_at = now(), revoked_by = $2 WHERE case_id = $1 AND revoked_at IS NULL",
        case_id,
        supervisor,
    )
    return not status.endswith(" 0")


async def overrides(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM overrides WHERE case_id = $1 ORDER BY id", case_id)
    return [
        {
            "outcome": r["outcome"],
            "reason": r["reason"],
            "supervisor": r["supervisor"],
            "created_at": r["created_at"].isoformat(),
            "revoked_at": r["revoked_at"].isoformat() if r["revoked_at"] else None,
            "revoked_by": r["revoked_by"],
        }
        for r in rows
    ]
