"""Eligibility: decides, with reasons a caseworker can read, whether a case can travel."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException

from contracts import topics
from contracts.eligibility import EligibilityDecided, Outcome, RuleOutcome, RuleResult
from contracts.envelope import CloudEvent
from contracts.intake import CaseRegistered
from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged
from corridor.outbox import enqueue
from corridor.runtime import ServiceRuntime
from corridor.settings import ServiceSettings
from services.eligibility import domain, store

MIGRATIONS = Path(__file__).parent / "migrations"

STATUS_FOR_OUTCOME = {
    Outcome.ELIGIBLE: CaseStatus.ELIGIBLE,
    Outcome.INELIGIBLE: CaseStatus.INELIGIBLE,
    Outcome.PENDING: CaseStatus.ON_HOLD,
}


class EligibilitySettings(ServiceSettings):
    http_port: int = 8002


def create_service(settings: ServiceSettings | None = None) -> ServiceRuntime:
    settings = settings or EligibilitySettings()
    routes = RouteBook.load(settings.routes_file)
    rt = ServiceRuntime("eligibility", settings, migrations=MIGRATIONS, title="Corridor eligibility")
    rt.produces(topics.DECISIONS, topics.STATUS)

    async def on_case_registered(conn: asyncpg.Connection, event: CloudEvent) -> None:
        assert isinstance(event.data, CaseRegistered)
        facts = domain.CaseFacts.from_registration(event.data)
        route = routes.get(facts.route_id)
        if route is None:
            decision = domain.Decision(
                outcome=Outcome.PENDING,
                priority=0,
                rules=(
                    RuleResult(
                        rule="route_known",
                        outcome=RuleOutcome.PENDING,
                        reason=f"Route {facts.route_id} is not configured for eligibility",
                    ),
                ),
            )
        else:
            decision = domain.evaluate(facts, route)
        await store.save_facts(conn, facts)
        await publish_decision(conn, facts, decision)

    async def publish_decision(
        conn: asyncpg.Connection, facts: domain.CaseFacts, decision: domain.Decision
    ) -> None:
        now = datetime.now(UTC)
        version = await store.append_decision(conn, facts.case_id, decision, now)
        reason_code, reason = decision.summary()
        await enqueue(
            conn,
            CaseStatusChanged(
                case_id=facts.case_id,
                status=STATUS_FOR_OUTCOME[decision.outcome],
                occurred_at=now,
                members=len(facts.members),
                reason_code=reason_code,
                reason=reason,
            ),
            topic=topics.STATUS,
            source=rt.source,
        )
        await enqueue(
            conn,
            EligibilityDecided(
                case_id=facts.case_id,
                version=version,
                outcome=decision.outcome,
                priority=decision.priority,
                rules=list(decision.rules),
                decided_at=now,
            ),
            topic=topics.DECISIONS,
            source=rt.source,
        )

    rt.consume(topics.CASES, handlers={CaseRegistered: on_case_registered})

    api = APIRouter(tags=["decisions"])

    @api.get("/cases/{case_id}/decisions")
    async def case_decisions(case_id: uuid.UUID) -> dict[str, Any]:
        """Every decision taken on the case, newest last, each with the rules it evaluated."""
        async with rt.pool.acquire() as conn:
            found = await store.decisions(conn, case_id)
        if not found:
            raise HTTPException(404, f"no decision for case {case_id}")
        return {"case_id": str(case_id), "decisions": found}

    rt.http.include_router(api)
    return rt
