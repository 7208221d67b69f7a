"""Reporting: figures for the people who fund, coordinate and account for a movement: HXL-tagged
aggregates and a daily situation report, from the public status stream and the cases' profiles,
never from personal data.

Wiring only: the counting and suppression are in ``domain.py``, the exports in ``hxl.py``, the
situation report in ``sitrep.py`` and ``render.py``, what the service does in ``usecases.py``, the
HTTP API in ``api.py`` and the queries in ``store.py``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pydantic import Field

from contracts import topics
from contracts.routes import RouteBook
from corridor.runtime import ServiceRuntime, with_context
from corridor.settings import ServiceSettings
from services.reporting import api, usecases
from services.reporting.store import ReportingStore

MIGRATIONS = Path(__file__).parent / "migrations"


class ReportingSettings(ServiceSettings):
    http_port: int = 8006
    report_small_cell_threshold: int = Field(
        default=5, ge=1, le=100, description="Numbers from 1 to this minus 1 are suppressed in every report"
    )
    report_timezone: str = Field(
        default="UTC", description="Where a report's day begins and ends (IANA name, e.g. Asia/Almaty)"
    )
    report_check_seconds: float = Field(
        default=600.0, gt=0, description="How often reporting looks whether yesterday's report is due"
    )


def create_service(settings: ReportingSettings | None = None) -> ServiceRuntime:
    settings = settings or ReportingSettings()
    ctx = usecases.Context(
        routes=RouteBook.load(settings.routes_file),
        threshold=settings.report_small_cell_threshold,
        tz=ZoneInfo(settings.report_timezone),
    )
    rt = ServiceRuntime("reporting", settings, migrations=MIGRATIONS, title="Corridor reporting")
    rt.subscribe(
        topics.STATUS,
        # Aggregate-safe attributes of each case, so reporting never reads a registration.
        topics.PROFILES,
        *(topics.requirements(c) for c in ctx.routes.checkpoint_ids()),
        handlers=with_context(usecases.HANDLERS, ctx=ctx),
        in_sets=with_context(usecases.IN_SETS, ctx=ctx),
        store=ReportingStore,
        read_model=True,  # statistics: no step of a journey waits on them
    )
    units = rt.units(ReportingStore)
    rt.http.include_router(api.router(units, ctx))
    rt.every(
        settings.report_check_seconds,
        partial(usecases.report_previous_day, units, ctx),
        name="daily situation report",
    )
    return rt


if TYPE_CHECKING:  # mypy checks that the PostgreSQL store offers what the use cases ask of a store
    _store: type[usecases.Store] = ReportingStore
