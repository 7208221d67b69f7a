"""Eligibility: decides, with reasons a caseworker can read, whether a case can travel."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from contracts import topics
from contracts.border import CrossingRequirementLifted, CrossingRequirementPublished
from contracts.eligibility import EligibilityDecided, Outcome, RuleOutcome, RuleResult
from contracts.envelope import CloudEvent
from contracts.intake import CaseRegistered, CaseUpdated, CaseWithdrawn, HealthEvidenceRecorded
from contracts.routes import RouteBook
from contracts.transport import MovementDeparted
from corridor.outbox import enqueue
from corridor.runtime import ServiceRuntime
from corridor.settings import ServiceSettings
from services.eligibility import domain, store

MIGRATIONS = Path(__file__).parent / "migrations"


class OverrideDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Outcome
    reason: str = Field(min_length=10, max_length=1000, description="Why the rules are set aside")
    supervisor: str = Field(min_length=1, max_length=100)


class EligibilitySettings(ServiceSettings):
    http_port: int = 8002


def create_service(settings: ServiceSettings | None = None) -> ServiceRuntime:
    settings = settings or EligibilitySettings()
    routes = RouteBook.load(settings.routes_file)
    rt = ServiceRuntime("eligibility", settings, migrations=MIGRATIONS, title="Corridor eligibility")
    rt.produces(topics.DECISIONS)

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
                used_certificates=await store.certificates_used_by_others(
                    conn, case_id, [m.document_ref for m in facts.members]
                ),
            )
        override = await store.active_override(conn, case_id)
        if override is not None and row["withdrawn_at"] is None:
            decision = domain.with_override(
                decision, Outcome(override["outcome"]), override["supervisor"], override["reason"]
            )
        latest = await store.latest_decision(conn, case_id)
        if latest is not None and decision.same_as(latest["outcome"], json.loads(latest["rules"])):
            return
        await publish_decision(conn, facts, decision)

    async def publish_decision(
        conn: asyncpg.Connection, facts: domain.CaseFacts, decision: domain.Decision
    ) -> None:
        # No status change here: transport announces "eligible", "on hold" or "ineligible" when it
        # applies the decision to the case's seat, so the stream never shows a decision after a
        # seat change it did not cause (a case held after its bus was planned, say).
        now = datetime.now(UTC)
        version = await store.append_decision(conn, facts.case_id, decision, now)
        public_code, public_reason = decision.summary()
        await enqueue(
            conn,
            EligibilityDecided(
                case_id=facts.case_id,
                version=version,
                outcome=decision.outcome,
                priority=decision.priority,
                rules=list(decision.rules),
                decided_at=now,
                public_reason_code=public_code,
                public_reason=public_reason,
            ),
            topic=topics.DECISIONS,
            source=rt.source,
        )

    async def on_case_registered(conn: asyncpg.Connection, event: CloudEvent) -> None:
        assert isinstance(event.data, CaseRegistered)
        await store.save_facts(conn, domain.CaseFacts.from_registration(event.data))
        await reevaluate(conn, event.data.case_id)

    async def on_case_updated(conn: asyncpg.Connection, event: CloudEvent) -> None:
        assert isinstance(event.data, CaseUpdated)
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
        await store.mark_certificates_used(conn, event.data.case_ids, event.data.departed_at)

    def routes_through(checkpoint_id: str) -> list[str]:
        return [r.route_id for r in routes.routes if r.checkpoint(checkpoint_id) is not None]

    async def on_requirement_published(conn: asyncpg.Connection, event: CloudEvent) -> None:
        req = event.data
        assert isinstance(req, CrossingRequirementPublished)
        await store.save_requirement(conn, req)
        for case_id in await store.cases_on_routes(
            conn, routes_through(req.checkpoint_id), req.effective_from
        ):
            await reevaluate(conn, case_id)

    async def on_requirement_lifted(conn: asyncpg.Connection, event: CloudEvent) -> None:
        lifted = event.data
        assert isinstance(lifted, CrossingRequirementLifted)
        found = await store.lift_requirement(conn, lifted.requirement_id, lifted.lifted_at)
        if found is not None:
            for case_id in await store.cases_on_routes(
                conn, routes_through(found["checkpoint_id"]), found["effective_from"]
            ):
                await reevaluate(conn, case_id)

    rt.consume(
        topics.CASES,
        topics.REQUIREMENTS,
        topics.MOVEMENTS,
        handlers={
            CaseRegistered: on_case_registered,
            CaseUpdated: on_case_updated,
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
        """Every decision taken on the case, newest last, each with the rules it evaluated, and
        every supervisor override with its reason."""
        async with rt.pool.acquire() as conn:
            found = await store.decisions(conn, case_id)
            overrides = await store.overrides(conn, case_id)
        if not found:
            raise HTTPException(404, f"no decision for case {case_id}")
        return {"case_id": str(case_id), "decisions": found, "overrides": overrides}

    @api.post("/cases/{case_id}/override", status_code=201)
    async def override_decision(case_id: uuid.UUID, command: OverrideDecision) -> dict[str, Any]:
        """A supervisor decides over the rules, with a written reason. Audited, and shown in the
        decision beside the rules it overrides; re-evaluation keeps it until it is revoked."""
        async with rt.pool.acquire() as conn, conn.transaction():
            row = await store.facts(conn, case_id)
            latest_rules = await store.latest_decision(conn, case_id)
            if row is None or latest_rules is None:
                raise HTTPException(404, f"no case {case_id}")
            rules = tuple(RuleResult.model_validate(r) for r in json.loads(latest_rules["rules"]))
            try:
                domain.check_override(
                    domain.Decision(Outcome(latest_rules["outcome"]), 0, rules), command.outcome
                )
            except domain.OverrideRefused as exc:
                raise HTTPException(409, str(exc)) from exc
            await store.add_override(conn, case_id, command.outcome.value, command.reason, command.supervisor)
            await reevaluate(conn, case_id)
            latest = await store.latest_decision(conn, case_id)
        assert latest is not None
        return {"case_id": str(case_id), "version": latest["version"], "outcome": latest["outcome"]}

    @api.delete("/cases/{case_id}/override")
    async def revoke_override(case_id: uuid.UUID, supervisor: str) -> dict[str, Any]:
        async with rt.pool.acquire() as conn, conn.transaction():
            if not await store.revoke_override(conn, case_id, supervisor):
                raise HTTPException(404, f"no active override on case {case_id}")
            await reevaluate(conn, case_id)
            latest = await store.latest_decision(conn, case_id)
        assert latest is not None
        return {"case_id": str(case_id), "version": latest["version"], "outcome": latest["outcome"]}

    rt.http.include_router(api)
    return rt
