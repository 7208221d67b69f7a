"""The operations page as a process: its settings, the feeds that fill the board, its routes.

It has no database and writes nothing (so not ``corridor.runtime.ServiceRuntime``, whose process
is built around a database, an outbox and consumer groups): it reads Kafka as its own principal
with read-only ACLs (``opstools.kafkaadmin``: the operations pages of ``deploy/deployments/shared.yaml``),
and calls the services' health checks and metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from contracts.routes import RouteBook
from corridor import auth, problems
from corridor.http import http_server
from corridor.redaction import RedactedServerErrors
from corridor.settings import ServiceSettings
from corridor.telemetry import setup_logging
from services.operations import api
from services.operations.domain import Board
from services.operations.feeds import ServicePoller, ServiceTarget, StreamFollower


class OperationsSettings(ServiceSettings):
    http_port: int = 8010
    operations_services: dict[str, ServiceTarget] = Field(
        default_factory=dict,
        description="The services to watch: name -> {url, mission} (JSON in CORRIDOR_OPERATIONS_SERVICES)",
    )
    operations_tokens_dir: Path | None = Field(
        default=None,
        description="<MISSION>.token files: an operations-viewer token of each mission, to read the "
        "services' /metrics (read at every poll, so replacing a file rotates it)",
    )
    operations_stuck_after_seconds: float = Field(
        default=1800.0, gt=0, description="A case or vehicle unchanged this long on the road is stuck"
    )
    operations_poll_seconds: float = Field(default=5.0, gt=0, description="Health, metrics, lag")
    operations_push_seconds: float = Field(default=0.5, gt=0, description="Fastest the page is updated")
    operations_refresh_seconds: float = Field(default=10.0, gt=0, description="Slowest it is updated")
    operations_cookie_secure: bool = Field(
        default=False, description="Mark the session cookie Secure (set wherever the page is served over TLS)"
    )


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, bool]


def create_app(settings: OperationsSettings | None = None) -> FastAPI:
    settings = settings or OperationsSettings()
    setup_logging(settings.log_level)
    routes = RouteBook.load(settings.routes_file)
    board = Board(routes, stuck_after_seconds=settings.operations_stuck_after_seconds)
    access = settings.kafka_access()
    follower = StreamFollower(access, board)
    poller = ServicePoller(
        board,
        settings.operations_services,
        settings.operations_tokens_dir,
        access,
        settings.operations_poll_seconds,
    )
    verifier = auth.TokenVerifier.from_settings(settings)  # AuthNotConfigured: it does not start

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        verifier.check()
        await follower.start()
        await poller.start()
        try:
            yield
        finally:
            await poller.stop()
            await follower.stop()

    app = FastAPI(title="Corridor operations page", lifespan=lifespan)
    app.state.board = board
    app.state.verifier = verifier
    app.state.cookie_secure = settings.operations_cookie_secure
    app.state.push_seconds = settings.operations_push_seconds
    app.state.refresh_seconds = settings.operations_refresh_seconds
    app.add_middleware(RedactedServerErrors)

    async def live() -> dict[str, str]:
        return {"status": "live"}

    async def ready() -> JSONResponse:
        checks = {"kafka": follower.alive, "caught_up": follower.caught_up}
        body = Readiness(status="ready" if all(checks.values()) else "not_ready", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if all(checks.values()) else 503)

    app.add_api_route("/health/live", live, methods=["GET"], tags=["health"], openapi_extra=auth.PUBLIC)
    app.add_api_route(
        "/health/ready",
        ready,
        methods=["GET"],
        tags=["health"],
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready: the failing checks say why"}},
        openapi_extra=auth.PUBLIC,
    )
    api.install(app)
    auth.install(app, scope=auth.ServiceScope(settings.mission), verifier=lambda: verifier)
    problems.install(app)  # after the rules: the statuses a route answers follow from them
    app.add_middleware(api.CookieBearer)  # outermost: the cookie becomes the header auth reads
    return app


def run(settings: OperationsSettings | None = None) -> None:
    settings = settings or OperationsSettings()
    # Its only long requests are event streams, which browsers reopen by themselves: no point
    # holding a stop for them.
    server = http_server(create_app(settings), settings, graceful_shutdown_seconds=1)
    asyncio.run(server.serve())
