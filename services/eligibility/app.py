"""Eligibility: decides, with reasons a caseworker can read, whether a case can travel.

Wiring only: the rules are in ``domain.py``, what the service does in ``usecases.py``, the HTTP
API in ``api.py`` and the queries in ``store.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from contracts import topics
from contracts.routes import RouteBook
from corridor.runtime import ServiceRuntime, with_context
from corridor.settings import ServiceSettings
from services.eligibility import api, usecases
from services.eligibility.figures import requirement_figures
from services.eligibility.store import EligibilityStore

MIGRATIONS = Path(__file__).parent / "migrations"


class EligibilitySettings(ServiceSettings):
    http_port: int = 8002


def create_service(settings: ServiceSettings | None = None) -> ServiceRuntime:
    settings = settings or EligibilitySettings()
    ctx = usecases.Context(routes=RouteBook.load(settings.routes_file))
    rt = ServiceRuntime("eligibility", settings, migrations=MIGRATIONS, title="Corridor eligibility")
    rt.produces(topics.DECISIONS)
    rt.subscribe(
        topics.CASES,
        # Medical facts on their own topic, which only eligibility reads (transport must not).
        topics.HEALTH_EVIDENCE,
        *(topics.requirements(c) for c in ctx.routes.checkpoint_ids()),
        topics.MOVEMENTS,
        handlers=with_context(usecases.HANDLERS, ctx=ctx),
        in_sets=with_context(usecases.IN_SETS, ctx=ctx),
        store=EligibilityStore,
    )
    rt.http.include_router(api.router(rt.units(EligibilityStore), ctx))
    rt.metrics.read(requirement_figures(rt.metrics.registry, ctx.routes))
    return rt


if TYPE_CHECKING:  # mypy checks that the PostgreSQL store offers what the use cases ask of a store
    _store: type[usecases.Store] = EligibilityStore
