"""Intake: registers cases over HTTP and keeps each case's timeline from the status stream.

Wiring only: what intake does is in ``usecases.py``, its rules in ``domain.py``, its HTTP API in
``api.py`` and its persistence in ``store.py``.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path

from pydantic import Field

from contracts import topics
from contracts.routes import RouteBook
from corridor.runtime import ServiceRuntime, with_context
from corridor.settings import ServiceSettings
from services.intake import api, bulk, usecases
from services.intake.domain import RegistrationRejected
from services.intake.store import IntakeStore

MIGRATIONS = Path(__file__).parent / "migrations"
INBOUND = usecases.INBOUND


class IntakeSettings(ServiceSettings):
    http_port: int = 8001
    withdrawal_wait_seconds: float = Field(
        default=10.0, ge=0, le=60, description="How long a withdrawal request waits for its outcome"
    )
    personal_data_retention_days: float = Field(
        default=90.0,
        gt=0,
        description="How long after a case ended (arrived, closed, withdrawn, no-show, ineligible) "
        "its people's personal data is kept before it is erased",
    )
    import_chunk_rows: int = Field(
        default=2_000,
        ge=0,
        le=10_000,
        description="Rows of a bulk import registered in one transaction (0: one transaction a row)",
    )
    retention_sweep_seconds: float = Field(
        default=600.0, gt=0, description="How often intake looks for cases past the retention period"
    )


def create_service(settings: IntakeSettings | None = None) -> ServiceRuntime:
    settings = settings or IntakeSettings()
    ctx = usecases.Context(
        routes=RouteBook.load(settings.routes_file),
        withdrawal_wait_seconds=settings.withdrawal_wait_seconds,
        retention=timedelta(days=settings.personal_data_retention_days),
        import_chunk_rows=settings.import_chunk_rows,
    )
    rt = ServiceRuntime("intake", settings, migrations=MIGRATIONS, title="Corridor intake")
    rt.produces(topics.CASES, topics.HEALTH_EVIDENCE, topics.PROFILES, topics.STATUS)
    rt.subscribe(
        topics.STATUS,
        handlers={},
        in_sets=with_context(usecases.TIMELINE_IN_SETS, ctx=ctx),
        store=IntakeStore,
        # Not a read model to gather (CORRIDOR_READ_MODEL_GATHER_MS): besides the timelines, it
        # keeps what intake knows of each case's status, which judges a mission's reports, a
        # withdrawal and an erasure; a lag there answers a mission "retry later" for longer.
        name="intake-timeline",
    )
    # One inbound topic per country on the routes: each mission's client may write only its own.
    inbound = rt.subscribe(
        *(topics.inbound_status(country) for country in ctx.routes.countries()),
        handlers=with_context(usecases.INBOUND_HANDLERS, ctx=ctx),
        store=IntakeStore,
        name=INBOUND,
    )
    rt.http.include_router(api.router(rt, ctx, inbound))
    rt.every(
        settings.retention_sweep_seconds,
        partial(usecases.sweep_retention, rt.units(IntakeStore), ctx),
        name="retention sweep",
    )
    rt.allow_body("/imports", bulk.MAX_BYTES)  # a field office's file; every other body: the default
    rt.http.add_exception_handler(RegistrationRejected, api.registration_rejected)
    return rt
