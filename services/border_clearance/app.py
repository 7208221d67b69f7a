"""Border clearance: one instance per checkpoint (a country's exit or entry post on a crossing).

It receives manifests before the vehicle arrives, knows when each case has reached the post
(its vehicle departed, or it was cleared at the checkpoint before), and records a decision per
person. A family is cleared together or held together. The rules are in ``domain``, what the post
does in ``usecases``, its HTTP API in ``api``; this module wires them to the runtime.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from contracts import topics
from contracts.border import BorderCrossingCleared
from contracts.routes import RouteBook
from corridor.runtime import ServiceRuntime
from corridor.settings import ServiceSettings
from services.border_clearance import api, domain, usecases
from services.border_clearance.figures import crossing_figures
from services.border_clearance.store import BorderStore

MIGRATIONS = Path(__file__).parent / "migrations"


class BorderSettings(ServiceSettings):
    http_port: int = 8010
    checkpoint: str = Field(default="kaz-zhibek-zholy-exit", pattern=r"^[a-z0-9-]+$")


def create_service(settings: BorderSettings | None = None) -> ServiceRuntime:
    settings = settings or BorderSettings()
    routes = RouteBook.load(settings.routes_file)
    found = routes.checkpoint(settings.checkpoint)
    if found is None:
        raise SystemExit(f"checkpoint {settings.checkpoint!r} is not on any route in {settings.routes_file}")
    _, checkpoint = found
    if checkpoint.country != settings.mission:
        raise SystemExit(
            f"checkpoint {checkpoint.checkpoint_id} belongs to {checkpoint.country}, not mission {settings.mission}"
        )
    ctx = usecases.Context.of(checkpoint, routes)
    rt = ServiceRuntime(
        "border_clearance",
        settings,
        migrations=MIGRATIONS,
        instance=f"border-clearance.{checkpoint.checkpoint_id}",
        title=f"Corridor border clearance at {checkpoint.post} ({checkpoint.country} {checkpoint.direction})",
        checkpoint=checkpoint.checkpoint_id,  # a border officer's token must name this post
    )
    # Its own crossings and requirements topics only: the broker refuses it any other post's.
    # No status: the public stream is written by the host mission's services only (transport
    # announces this post's decisions), so no country's post can write another country's statuses
    # and a mirrored cluster never receives the stream from two directions.
    rt.produces(
        topics.crossings(checkpoint.checkpoint_id),
        topics.requirements(checkpoint.checkpoint_id),
    )
    # The decisions of the post just before it (on each route through it): a case cleared there
    # reaches this post. Posts further back say nothing this post acts on, and reading them cost
    # a transaction per case and post.
    before = list(
        dict.fromkeys(
            previous
            for route in routes.routes
            if route.checkpoint(checkpoint.checkpoint_id) is not None
            and (previous := domain.previous_checkpoint(route, checkpoint.checkpoint_id)) is not None
        )
    )
    handlers, in_sets = usecases.handlers(ctx), usecases.in_sets(ctx)
    if not before:  # the first post of its routes reads no other post's decisions
        in_sets.pop(BorderCrossingCleared)
    rt.subscribe(
        topics.manifests(checkpoint.checkpoint_id),
        topics.MOVEMENTS,
        *(topics.crossings(c) for c in before),
        handlers=handlers,
        in_sets=in_sets,
        store=BorderStore,
    )
    rt.http.include_router(api.router(ctx, rt.units(BorderStore)))
    rt.metrics.read(crossing_figures(rt.metrics.registry, routes, checkpoint.checkpoint_id))
    return rt
