"""The operations page's HTTP routes: the page itself, its sign-in, the board as JSON and as a
server-sent event stream, and a case's public timeline.

A browser cannot put a bearer token on a page load or on an ``EventSource``, so the page signs in
once: it posts the operations viewer's token to ``POST /session``, which verifies it as every
route would (signature, issuer, audience, lifetime, role and mission) and answers it back as a
cookie that is ``HttpOnly`` (scripts on the page cannot read it), ``SameSite=Strict`` (no other
site's page can make the browser send it) and expires with the token. ``CookieBearer`` turns that
cookie into the ``Authorization`` header the authentication reads, so every data route keeps the
same rule as any service's. The token never travels in a URL (and so never into a log or the
browser's history), and the server keeps no session state to steal or expire.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from corridor import auth, problems
from services.operations.domain import Board
from services.operations.feeds import parse_case_id

STATIC = Path(__file__).parent / "static"
COOKIE = "corridor_ops_session"
VIEW = auth.allow(auth.Role.OPERATIONS_VIEWER, auth.Role.SUPERVISOR)

router = APIRouter()


class SignIn(BaseModel):
    token: str = Field(
        min_length=10, max_length=auth.MAX_TOKEN_BYTES, description="The viewer's bearer token"
    )


class Signed(BaseModel):
    subject: str
    expires_at: datetime


def board_of(request: Request) -> Board:
    board: Board = request.app.state.board
    return board


def _asset(name: str, media_type: str) -> Callable[[], Any]:
    async def serve() -> FileResponse:
        # no-cache: after an upgrade a border post's browser must not keep an old script.
        return FileResponse(STATIC / name, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return serve


# The page and its assets hold no data: anyone may load them; the data routes ask for the role.
for path, name, media in (
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/static/app.js", "app.js", "text/javascript; charset=utf-8"),
    ("/static/app.css", "app.css", "text/css; charset=utf-8"),
):
    router.add_api_route(
        path, _asset(name, media), methods=["GET"], include_in_schema=False, openapi_extra=auth.PUBLIC
    )


@router.post(
    "/session",
    response_model=Signed,
    tags=["session"],
    openapi_extra=auth.PUBLIC,  # it checks the token it is given itself, as the middleware would
    responses={
        401: {"description": "The token does not verify (unauthenticated)"},
        403: {"description": "Not a viewer here (role_not_allowed, other_mission)"},
        503: {"description": "The identity provider's keys cannot be fetched: retry"},
    },
)
async def sign_in(request: Request, body: Annotated[SignIn, Body()]) -> Response:
    verifier: auth.TokenVerifier = request.app.state.verifier
    try:
        principal = await verifier.verify(body.token)
    except auth.Unauthenticated as exc:
        return auth.unauthenticated(exc)
    VIEW.check(principal, request.app.state.corridor_scope)  # Forbidden: answered 403
    # Verified above: exp is the token's own, required by the verifier.
    exp = int(jwt.decode(body.token, options={"verify_signature": False})["exp"])
    answer = JSONResponse(
        Signed(subject=principal.subject, expires_at=datetime.fromtimestamp(exp, UTC)).model_dump(mode="json")
    )
    answer.set_cookie(
        COOKIE,
        body.token,
        max_age=max(0, exp - int(time.time())),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.app.state.cookie_secure,
    )
    return answer


@router.delete("/session", status_code=204, tags=["session"], openapi_extra=auth.PUBLIC)
async def sign_out() -> Response:
    answer = Response(status_code=204)
    answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return answer


@router.get("/api/board", tags=["board"], dependencies=[Depends(VIEW)])
async def board(request: Request) -> dict[str, Any]:
    return board_of(request).snapshot(datetime.now(UTC))


@router.get(
    "/api/events",
    tags=["board"],
    dependencies=[Depends(VIEW)],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The board, as it changes"}},
)
async def events(request: Request) -> StreamingResponse:
    """Server-sent events: the whole board (``event: board``) whenever it changes, at most
    ``push_seconds`` apart, and at least every ``refresh_seconds`` (a case becomes stuck by time
    passing, with no record arriving)."""
    state = request.app.state
    return StreamingResponse(
        _board_events(
            request, board_of(request), state.push_seconds, state.refresh_seconds, _expiry(request)
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _expiry(request: Request) -> float:
    """When the token this request was admitted with expires (it was verified, exp included, by
    the authentication before the route ran)."""
    header = request.headers.get("authorization", "")
    try:
        claims = jwt.decode(header.partition(" ")[2], options={"verify_signature": False})
        return float(claims["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return 0.0


async def _board_events(
    request: Request, board: Board, push_seconds: float, refresh_seconds: float, expires_at: float
) -> AsyncIterator[str]:
    """Ends when the viewer's token expires: the browser reconnects, is refused, and the page asks
    for a new token (a connection must not outlive the permission it was opened with)."""
    sent = -1
    sent_at = 0.0
    yield f"retry: {int(max(push_seconds, 1.0) * 1000)}\n\n"
    while time.time() < expires_at and not await request.is_disconnected():
        now = time.monotonic()
        if board.version != sent or now - sent_at >= refresh_seconds:
            sent, sent_at = board.version, now
            payload = json.dumps(board.snapshot(datetime.now(UTC)), separators=(",", ":"))
            yield f"event: board\nid: {sent}\ndata: {payload}\n\n"
        await asyncio.sleep(push_seconds)


class TimelineStep(BaseModel):
    status: str
    at: datetime
    country: str | None
    place: str | None
    checkpoint_id: str | None
    movement_id: str | None
    reason_code: str | None
    reason: str | None


class Timeline(BaseModel):
    case_id: str
    members: int
    steps: list[TimelineStep]


@router.get(
    "/api/cases/{case_id}",
    tags=["board"],
    response_model=Timeline,
    responses={404: {"description": "No such case on the status stream (unknown_case)"}},
    dependencies=[Depends(VIEW)],
)
async def case_timeline(request: Request, case_id: str) -> Timeline:
    parsed = parse_case_id(case_id)
    if parsed is None:
        raise problems.Refused(422, "invalid_case_id", "a case id is a UUID")
    found = board_of(request).cases.get(parsed)
    if found is None:
        raise problems.Refused(404, "unknown_case", "no such case on the status stream")
    return Timeline(
        case_id=str(parsed),
        members=found.members,
        steps=[TimelineStep.model_validate(s.to_json()) for s in found.steps],
    )


class CookieBearer:
    """Outermost middleware: a request without an ``Authorization`` header but with the session
    cookie is authenticated with the cookie's token, by the same middleware and rules."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            if not any(k == b"authorization" for k, _ in headers):
                token = _cookie(headers, COOKIE)
                if token:
                    scope = {**scope, "headers": [*headers, (b"authorization", b"Bearer " + token.encode())]}
        await self.app(scope, receive, send)


def _cookie(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            k, _, v = part.strip().partition("=")
            if k == name and v:
                return v
    return None


def install(app: FastAPI) -> None:
    # The routes themselves, not the router as one entry (as include_router keeps it): the
    # authentication finds a public route among the app's own routes only.
    app.router.routes.extend(router.routes)
