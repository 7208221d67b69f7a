"""Eligibility: decides, with reasons a caseworker can read, whether a case can travel."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException

from contracts import topics
from contracts.border import CrossingRequirementLifted, CrossingRequirementPublished
from contracts.eligibility import EligibilityDecided, Outcome, RuleOutcome, RuleResult
from contracts.envelope import CloudEvent
from contracts.intake import CaseRegistered, CaseWithdrawn, HealthEvidenceRecorded
from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged
from contracts.transport import MovementDeparted
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

    async def reevaluate(conn: asyncpg.Connection, case_id: uuid.UUID) -> None:
        """Decide again from everything known now; publish only if the outcome or a reason changed."""
        row = await store.facts(conn, case_id)
        if row is None or row["departed_at"] is not None:
            return  # not registered here yet, or on the road: the decision is frozen
        facts = domain.CaseFacts.model_validate_json(row["facts"])
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
            decision = domain.evaluate(
                facts,
                route,
                evidence=await store.evidence(conn, case_id),
                requirements=await store.active_requirements(conn),
                withdrawn_at=row["withdrawn_at"],
            )
        latest = await store.latest_decision(conn, case_id)
        if latest is not None and decision.same_as(latest["outcome"], json.loads(latest["rules"])):
            return
        status_changes = latest is None or latest["outcome"] != decision.outcome.value
        await publish_decision(conn, facts, decision, announce=status_changes and row["withdrawn_at"] is None)

    async def publish_decision(
        conn: asyncpg.Connection, facts: domain.CaseFacts, decision: domain.Decision, *, announce: bool
    ) -> None:
        now = datetime.now(UTC)
        version = await store.append_decision(conn, facts.case_id, decision, now)
        reason_code, reason = decision.summary()
        if announce:
            # A withdrawn case's status is "withdrawn", announced by intake: no second status.
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

    async def on_case_registered(conn: asyncpg.Connection, event: CloudEvent) -> None:
        assert isinstance(event.data, CaseRegistered)
        await store.save_facts(conn, domain.CaseFacts.from_registration(event.data))
        await reevaluate(conn, event.data.case_id)

    async def on_health_evidence(conn: asyncpg.Connection, event: CloudEvent) -> None:
        assert isinstance(event.data, HealthEvidenceRecorded)
        await store.add_evidence(conn, event.data)
        await reevaluate(conn, event.data.case_id)

    async def on_withdrawn(conn: asyncpg.Connection, event: CloudEvent) -> None:
        assert isinstance(event.data, CaseWithdrawn)
        await store.mark_withdrawn(conn, event.data.case_id, event.data.withdrawn_at)
        await reevaluate(conn, event.data.case_id)

    async def on_departed(conn: asyncpg.Connection, event: CloudEvent) -> None:
        assert isinstance(event.data, MovementDeparted)
        await store.mark_departed(conn, event.data.case_ids, event.data.departed_at)

    def routes_through(checkpoint_id: str) -> list[str]:
        return [r.route_id for r in routes.routes if r.checkpoint(checkpoint_id) is not None]

    async def on_requirement_published(conn: asyncpg.Connection, event: CloudEvent) -> None:
        req = event.data
        assert isinstance(req, CrossingRequirementPublished)
        await store.save_requirement(conn, req)
        for case_id in await store.cases_on_routes(conn, routes_through(req.checkpoint_id)):
            await reevaluate(conn, case_id)

    async def on_requirement_lifted(conn: asyncpg.Connection, event: CloudEvent) -> None:
        lifted = event.data
        assert isinstance(lifted, CrossingRequirementLifted)
        checkpoint_id = await store.lift_requirement(conn, lifted.requirement_id, lifted.lifted_at)
        if checkpoint_id is not None:
            for case_id in await store.cases_on_routes(conn, routes_through(checkpoint_id)):
                await reevaluate(conn, case_id)

    rt.consume(
        topics.CASES,
        topics.REQUIREMENTS,
        topics.MOVEMENTS,
        handlers={
            CaseRegistered: on_case_registered,
            HealthEvidenceRecorded: on_health_evidence,
            CaseWithdrawn: on_withdrawn,
            CrossingRequirementPublished: on_requirement_published,
            CrossingRequirementLifted: on_requirement_lifted,
            MovementDeparted: on_departed,
        },
    )

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
