"""Transport: plans movements, issues manifests to the crossing points, records departures,
announces the border posts' decisions on the public stream, and the arrival. A case is "arrived"
once it is cleared at the last checkpoint of its route.

Wiring only: the rules are in ``domain``, what the service does in ``usecases``, the HTTP API in
``api``, persistence in ``store``."""

from __future__ import annotations

from pathlib import Path

from contracts import topics
from contracts.routes import RouteBook
from corridor.runtime import ServiceRuntime, with_context
from corridor.settings import ServiceSettings
from services.transport import api, usecases
from services.transport.pdf import DEBIAN_DEJAVU, ManifestFonts
from services.transport.store import TransportStore

MIGRATIONS = Path(__file__).parent / "migrations"


class TransportSettings(ServiceSettings):
    http_port: int = 8003
    # Checked at start: a post must never receive a manifest that cannot print its names.
    manifest_font_dir: Path = DEBIAN_DEJAVU


def create_service(settings: TransportSettings | None = None) -> ServiceRuntime:
    settings = settings or TransportSettings()
    routes = RouteBook.load(settings.routes_file)
    fonts = ManifestFonts.dejavu(settings.manifest_font_dir)
    ctx = usecases.Context(routes=routes, mission=settings.mission, fonts=fonts)
    rt = ServiceRuntime("transport", settings, migrations=MIGRATIONS, title="Corridor transport")
    rt.produces(
        topics.STATUS,
        topics.MOVEMENTS,
        *(topics.manifests(c) for c in routes.checkpoint_ids()),
    )
    rt.subscribe(
        topics.CASES,
        topics.DECISIONS,
        *(topics.crossings(c) for c in routes.checkpoint_ids()),
        handlers=with_context(usecases.HANDLERS, ctx=ctx),
        in_sets=with_context(usecases.IN_SETS, ctx=ctx),
        store=TransportStore,
        lock_batch=usecases.lock_batch,
    )
    rt.http.include_router(api.router(rt.units(TransportStore), ctx))
    return rt
