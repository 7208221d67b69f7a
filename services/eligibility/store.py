"""Eligibility's persistence: the facts each case was judged on, and versioned decisions."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.eligibility.domain import CaseFacts, Decision


async def save_facts(conn: asyncpg.Connection, facts: CaseFacts) -> None:
    await conn.execute(
        """INSERT INTO cases (case_id, route_id, facts) VALUES ($1, $2, $3::jsonb)
           ON CONFLICT (case_id) DO UPDATE SET facts = EXCLUDED.facts""",
        facts.case_id,
        facts.route_id,
        facts.model_dump_json(),
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
