"""Eligibility's HTTP API: caseworkers read decisions, supervisors override them.

Each route parses its input, calls its use case in a unit of work and returns what the use case
returns, in the response model declared here. Refusals are the domain's errors (404, 409), answered
by the runtime.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts.eligibility import Outcome, RuleResult
from corridor import idempotency
from corridor.auth import Principal, Role, allow
from corridor.http import Timestamp
from services.eligibility import usecases
from services.eligibility.domain import DecisionHistory, RecordedDecision
from services.eligibility.usecases import Context, Unit


class OverrideDecision(BaseModel):
    """The supervisor is the token's subject, not a field of the request."""

    model_config = ConfigDict(extra="forbid")
    outcome: Outcome
    reason: str = Field(min_length=10, max_length=1000, description="Why the rules are set aside")

    def command(self, case_id: uuid.UUID, supervisor: str) -> usecases.OverrideDecision:
        return usecases.OverrideDecision(case_id, self.outcome, self.reason, supervisor)


class DecisionOut(BaseModel):
    """One version of a case's decision, with every rule it evaluated."""

    version: int = Field(ge=1)
    outcome: Outcome
    priority: int = Field(ge=0, description="Higher travels first")
    rules: list[RuleResult]
    decided_at: Timestamp


class OverrideOut(BaseModel):
    """A supervisor's override, kept after it is revoked."""

    outcome: Outcome
    reason: str
    supervisor: str
    created_at: Timestamp
    revoked_at: Timestamp | None = Field(description="null while it is in force")
    revoked_by: str | None


class CaseDecisions(BaseModel):
    case_id: uuid.UUID
    decisions: list[DecisionOut] = Field(description="Oldest first")
    overrides: list[OverrideOut] = Field(description="Oldest first")

    @classmethod
    def of(cls, history: DecisionHistory) -> CaseDecisions:
        return cls.model_validate(history, from_attributes=True)


class DecisionInForce(BaseModel):
    """The case's decision after the command: a new version, or the one already in force."""

    case_id: uuid.UUID
    version: int
    outcome: Outcome

    @classmethod
    def of(cls, case_id: uuid.UUID, decision: RecordedDecision) -> DecisionInForce:
        return cls(case_id=case_id, version=decision.version, outcome=decision.outcome)


# Refusals are problem details (corridor.problems): the route names the statuses, the body is one.
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such case, decision or override (no_such_case, no_decision, no_active_override)"}
}
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"description": "No supervisor may make this override (override_refused), or the case was erased"}
}

Units = Callable[[], AbstractAsyncContextManager[Unit]]

# Who may do what here (corridor.auth): one rule per route, written into the OpenAPI document.
READING = allow(Role.CASEWORKER, Role.SUPERVISOR)
"""Decisions with their rules and overrides: the host mission's caseworkers."""
OVERRIDING = allow(Role.SUPERVISOR)
"""Setting the rules aside, and revoking that: supervisors only."""
Supervisor = Annotated[Principal, Depends(OVERRIDING)]


def router(units: Units, ctx: Context) -> APIRouter:
    api = APIRouter(tags=["decisions"])

    @api.get(
        "/cases/{case_id}/decisions",
        response_model=CaseDecisions,
        responses=NOT_FOUND,
        dependencies=[Depends(READING)],
    )
    async def case_decisions(case_id: uuid.UUID) -> CaseDecisions:
        """Every decision taken on the case, newest last, each with the rules it evaluated, and
        every supervisor override with its reason."""
        async with units() as uow:
            history = await usecases.case_decisions(case_id, uow)
        return CaseDecisions.of(history)

    @api.post(
        "/cases/{case_id}/override",
        status_code=201,
        response_model=DecisionInForce,
        responses={**NOT_FOUND, **REFUSED},
        openapi_extra=idempotency.keyed(),
    )
    async def override_decision(
        case_id: uuid.UUID,
        command: OverrideDecision,
        request: Request,
        supervisor: Supervisor,
        idempotency_key: idempotency.Key = None,
    ) -> Response:
        """A supervisor decides over the rules, with a written reason. Audited, and shown in the
        decision beside the rules it overrides; re-evaluation keeps it until it is revoked. Each
        override is a new decision version: retry with an Idempotency-Key."""

        async def override(uow: Unit) -> idempotency.Answer:
            decision = await usecases.override_decision(
                command.command(case_id, supervisor.subject), uow, ctx
            )
            return idempotency.Answer(DecisionInForce.of(case_id, decision), 201)

        return await idempotency.run(request, idempotency_key, supervisor, units, override)

    @api.delete(
        "/cases/{case_id}/override",
        response_model=DecisionInForce,
        responses=NOT_FOUND,
        openapi_extra=idempotency.keyed(),
    )
    async def revoke_override(
        case_id: uuid.UUID, request: Request, supervisor: Supervisor, idempotency_key: idempotency.Key = None
    ) -> Response:
        """A supervisor revokes the override in force on the case: the rules decide again. Once
        revoked, a repeat is 404: with an Idempotency-Key it is answered the revocation."""

        async def revoke(uow: Unit) -> idempotency.Answer:
            decision = await usecases.revoke_override(
                usecases.RevokeOverride(case_id, supervisor.subject), uow, ctx
            )
            return idempotency.Answer(DecisionInForce.of(case_id, decision))

        return await idempotency.run(request, idempotency_key, supervisor, units, revoke)

    return api
