"""Who calls a service's HTTP API, and what they may do there: OAuth 2.0 / OpenID Connect bearer
tokens (JWT) verified against the issuer's published keys, and one rule per route naming the roles
it admits.

The identity provider is configuration (``ServiceSettings.auth_*``): issuer, audience, the keys (a
JWKS file, or the IdP's JWKS URL) and the algorithms accepted, so a mission plugs in its own IdP.
There is no switch to turn authentication off: a service without that configuration refuses to
start, and answers 401 to everything but its health checks if it is built without starting.

The token's claims (a mission's IdP maps its users' attributes onto these; e.g. a Keycloak
protocol mapper per claim)::

    {
      "iss": "<auth_issuer>", "aud": "<auth_audience>",     # both checked
      "sub": "k.abenova",                                    # the actor in every audit record
      "exp": ..., "iat": ...,                                # required; nbf checked when present
      "roles": ["caseworker"],                               # Role values; unknown ones are ignored
      "mission": "KAZ",                                      # the mission the roles hold in
      "checkpoint": "uzb-oybek-exit"                         # border officers only: their post
    }

A role holds only in its token's mission: a KAZ caseworker is refused (403) at UZB's services, and a
border officer only at their own checkpoint's post. The one exception is the route a mission's
integration client reports to from outside (``allow(..., any_mission=True)``), where the token's
mission is who is reporting, and the route checks it against what is reported.

Each route declares its rule once, as a dependency: ``Depends(allow(Role.CASEWORKER, ...))``. The
rule is also written into the OpenAPI document (``x-corridor-roles``, ``x-corridor-mission`` on the
operation, the service's scope in ``info.x-corridor-scope``, the bearer security scheme), which is
where the tests read the role matrix from; an operation that has neither a rule nor the public mark
fails them.
"""

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import Match, Mount

from corridor import problems

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Role(StrEnum):
    CASEWORKER = "caseworker"
    SUPERVISOR = "supervisor"
    BORDER_OFFICER = "border_officer"
    TRANSPORT_COORDINATOR = "transport_coordinator"
    OPERATIONS_VIEWER = "operations_viewer"
    """Operational figures only: never a route that answers personal data."""
    INTEGRATION_CLIENT = "integration_client"
    """A mission's system, not a person: reports statuses, registers the host mission's cases."""
    AUDITOR = "auditor"
    """Reads the access logs (who read or exported whose data): nobody else does."""


class Purpose(StrEnum):
    """Why personal data is read or exported (``X-Purpose``): a fixed list, so the access log can
    be queried and reviewed by purpose, and a caller cannot write a justification of its own."""

    CASE_MANAGEMENT = "case_management"
    ELIGIBILITY_REVIEW = "eligibility_review"
    HEALTH_FOLLOW_UP = "health_follow_up"
    DUPLICATE_REVIEW = "duplicate_review"
    TRAVEL_PREPARATION = "travel_preparation"
    BORDER_CHECK = "border_check"
    AUDIT = "audit"


# Asymmetric algorithms only: with an HMAC algorithm the "key" would be a secret every service
# shares (any of them could mint tokens), and "none" is never an algorithm.
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_MISSION = re.compile(r"^[A-Z]{3}$")
_CHECKPOINT = re.compile(r"^[a-z0-9-]{1,60}$")
MAX_TOKEN_BYTES = 8192


@dataclass(frozen=True)
class Principal:
    """The verified caller: the token's subject, its (known) roles, the mission they hold in."""

    subject: str
    roles: frozenset[Role]
    mission: str
    checkpoint: str | None = None

    def has(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)


class AuthNotConfigured(RuntimeError):
    """The service has no identity provider configured: it must not start."""


class Unauthenticated(Exception):
    """No token, or one that does not verify: 401. ``reason`` is safe to answer (it names the
    check that failed, never the token's content)."""

    def __init__(self, reason: str, *, token_given: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.token_given = token_given


class KeysUnavailable(Exception):
    """The issuer's keys cannot be fetched (its JWKS URL does not answer): 503, retry; not the
    caller's fault, so not a 401 that would make a client drop a good token."""


KEYS_UNAVAILABLE = "the identity provider's keys cannot be fetched; retry"


class Forbidden(Exception):
    """A verified caller this route does not admit: 403, with a code and nothing about the data."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


# --- verification -----------------------------------------------------------------------------


class TokenVerifier:
    """Verifies a bearer token's signature against the issuer's keys, its issuer, audience and
    lifetime, and reads the principal from its claims."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: Iterable[str] = ("RS256", "ES256"),
        jwks_file: Path | None = None,
        jwks_url: str | None = None,
        leeway_seconds: float = 30.0,
    ) -> None:
        self.algorithms = list(algorithms)
        weak = set(self.algorithms) - ASYMMETRIC
        if weak or not self.algorithms:
            raise AuthNotConfigured(
                f"algorithms must be asymmetric ({sorted(ASYMMETRIC)}), not {sorted(weak)}"
            )
        if (jwks_file is None) == (jwks_url is None):
            raise AuthNotConfigured("configure exactly one of auth_jwks_file, auth_jwks_url")
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds
        self.jwks_file = jwks_file
        self._url_client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if jwks_url else None
        self._file_keys: dict[str | None, jwt.PyJWK] = {}
        self._file_read_at = -1e9

    @classmethod
    def from_settings(cls, settings: Any) -> "TokenVerifier":
        """The verifier the settings describe; ``AuthNotConfigured`` when they describe none."""
        missing = [
            name
            for name, value in (
                ("auth_issuer", settings.auth_issuer),
                ("auth_audience", settings.auth_audience),
            )
            if not value
        ]
        if settings.auth_jwks_file is None and not settings.auth_jwks_url:
            missing.append("auth_jwks_file or auth_jwks_url")
        if missing:
            raise AuthNotConfigured(
                "no identity provider configured: set "
                + ", ".join(f"CORRIDOR_{m.upper().replace(' OR ', ' or CORRIDOR_')}" for m in missing)
            )
        return cls(
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            algorithms=settings.auth_algorithms,
            jwks_file=settings.auth_jwks_file,
            jwks_url=settings.auth_jwks_url or None,
            leeway_seconds=settings.auth_leeway_seconds,
        )

    def check(self) -> None:
        """Fail now (at start-up) if the keys cannot be read, rather than at the first request."""
        if self.jwks_file is not None:
            self._load_file()
            if not self._file_keys:
                raise AuthNotConfigured(f"{self.jwks_file} holds no usable signing key")

    async def verify(self, token: str) -> Principal:
        if self._url_client is not None:
            # Fetching the IdP's keys is blocking network I/O (cached for minutes).
            return await asyncio.to_thread(self.verify_sync, token)
        return self.verify_sync(token)

    def verify_sync(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthenticated("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("malformed token") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise Unauthenticated("algorithm not accepted")
        key = self._key(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("wrong issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"missing claim {exc.claim}") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("signature does not verify") from None
        except jwt.PyJWTError:
            raise Unauthenticated("invalid token") from None
        return principal_of(claims)

    def _key(self, kid: Any) -> jwt.PyJWK:
        if self._url_client is not None:
            try:
                return (
                    self._url_client.get_signing_key(kid) if kid else self._url_client.get_signing_keys()[0]
                )
            except jwt.PyJWKClientConnectionError as exc:
                log.warning("the issuer's keys cannot be fetched: %s", exc)
                raise KeysUnavailable from None
            except jwt.PyJWKClientError:
                raise Unauthenticated("no key of the issuer signs this token") from None
        if kid not in self._file_keys and time.monotonic() - self._file_read_at > 5.0:
            self._load_file()  # the issuer may have rotated its keys: read the file again
        if kid in self._file_keys:
            return self._file_keys[kid]
        if kid is None and len(self._file_keys) == 1:
            return next(iter(self._file_keys.values()))
        raise Unauthenticated("no key of the issuer signs this token")

    def _load_file(self) -> None:
        assert self.jwks_file is not None
        self._file_read_at = time.monotonic()
        try:
            keys = jwt.PyJWKSet.from_json(self.jwks_file.read_text()).keys
        except (OSError, jwt.PyJWTError, json.JSONDecodeError) as exc:
            log.error("cannot read the issuer's keys from %s: %s", self.jwks_file, exc)
            return
        self._file_keys = {k.key_id: k for k in keys if k.public_key_use in (None, "sig")}


def principal_of(claims: dict[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 1 <= len(subject) <= 200:
        raise Unauthenticated("invalid claim sub")
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthenticated("missing claim roles")
    mission = claims.get("mission")
    if not isinstance(mission, str) or not _MISSION.match(mission):
        raise Unauthenticated("missing claim mission")
    checkpoint = claims.get("checkpoint")
    if checkpoint is not None and (not isinstance(checkpoint, str) or not _CHECKPOINT.match(checkpoint)):
        raise Unauthenticated("invalid claim checkpoint")
    known = frozenset(Role(r) for r in roles if r in Role.__members__.values())
    return Principal(subject=subject, roles=known, mission=mission, checkpoint=checkpoint)


# --- the rule on each route ---------------------------------------------------------------------

BEARER = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An access token of the mission's identity provider (claims: corridor/auth.py)",
    auto_error=False,
)

UNAUTHENTICATED = "unauthenticated"

PUBLIC = {"x-corridor-public": True}
"""``openapi_extra`` of a route anyone may call (the health checks): no token is asked for."""


@dataclass(frozen=True)
class ServiceScope:
    """Where this service's roles hold: its mission, and for a border post its checkpoint."""

    mission: str
    checkpoint: str | None = None


class allow:  # lower case: it reads as a rule, Depends(allow(Role.CASEWORKER))
    """The roles a route admits. Used as a dependency, it answers the verified ``Principal``, or
    refuses (403) a caller without one of ``roles`` in this service's mission (for a border
    officer: at this checkpoint). ``any_mission``: a role of any mission is admitted, the route
    itself decides what that mission may do (a mission's inbound reports)."""

    def __init__(self, *roles: Role, any_mission: bool = False) -> None:
        if not roles:
            raise ValueError("a rule names at least one role")
        self.roles = tuple(roles)
        self.any_mission = any_mission

    async def __call__(
        self,
        request: Request,
        # Verified by the middleware already; declared so the OpenAPI document shows the scheme.
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
    ) -> Principal:
        principal = getattr(request.state, "principal", None)
        if not isinstance(principal, Principal):
            # The middleware verified no token for this route: never admit without one.
            raise Unauthenticated("a bearer token is required", token_given=False)
        self.check(principal, request.app.state.corridor_scope)
        return principal

    def check(self, principal: Principal, scope: ServiceScope) -> None:
        held = principal.roles.intersection(self.roles)
        if not held:
            raise Forbidden("role_not_allowed", f"this operation is for: {', '.join(self.roles)}")
        if not self.any_mission and principal.mission != scope.mission:
            raise Forbidden("other_mission", f"roles hold here only for mission {scope.mission}")
        if not self.any_mission and scope.checkpoint is not None and held == {Role.BORDER_OFFICER}:
            if principal.checkpoint != scope.checkpoint:
                raise Forbidden("other_checkpoint", "a border officer acts only at their own checkpoint")

    def openapi(self) -> dict[str, Any]:
        return {
            "x-corridor-roles": [r.value for r in self.roles],
            "x-corridor-mission": "any" if self.any_mission else "own",
        }


ALL_ROLES = tuple(Role)


def _rule_of(route: APIRoute) -> allow | None:
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, allow):
            return dependant.call
        pending.extend(dependant.dependencies)
    return None


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every API route of ``app``, those of included routers too (FastAPI keeps an included router
    as one entry of ``app.routes``). Corridor's routers are included without a prefix."""
    pending: list[Any] = list(app.routes)
    while pending:
        route = pending.pop(0)
        if isinstance(route, APIRoute):
            yield route
        elif (router := getattr(route, "original_router", None)) is not None:
            pending[:0] = list(router.routes)


def rules(app: FastAPI) -> dict[tuple[str, str], allow | None]:
    """(method, path) -> the route's rule (None: public or, a bug, without a rule)."""
    return {
        (method, route.path_format): _rule_of(route)
        for route in api_routes(app)
        for method in route.methods or ()
    }


def _openapi_with_rules(
    app: FastAPI, scope: ServiceScope, build: Callable[[], dict[str, Any]]
) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        document["info"]["x-corridor-scope"] = {"mission": scope.mission, "checkpoint": scope.checkpoint}
        for route in api_routes(app):
            if not route.include_in_schema:
                continue
            rule = _rule_of(route)
            for method in route.methods or ():
                operation = document["paths"].get(route.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                if rule is not None:
                    operation.update(rule.openapi())  # the 401 and 403 it answers: corridor.problems
                elif (route.openapi_extra or {}).get("x-corridor-public"):
                    operation["security"] = []
        app.openapi_schema = document
        return document

    return openapi


# --- the middleware: nobody's request is read before they are known ------------------------------


class AuthMiddleware:
    """Verifies the bearer token of every request to a route that is not public, before the route
    reads anything (a stranger's body is never parsed), and hands the ``Principal`` to the route's
    rule in ``request.state``. A path that matches no route also needs a token: strangers learn
    nothing about which paths exist."""

    def __init__(self, app: Any, *, fastapi: FastAPI, verifier: Callable[[], TokenVerifier | None]) -> None:
        self.app = app
        self.fastapi = fastapi
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._public(scope):
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._authenticate(scope)
        except Unauthenticated as exc:
            await problems.send(
                scope, send, 401, UNAUTHENTICATED, exc.reason, [(b"www-authenticate", challenge(exc))]
            )
            return
        except KeysUnavailable:
            await problems.send(scope, send, 503, "unavailable", KEYS_UNAVAILABLE, [(b"retry-after", b"5")])
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _public(self, scope: Scope) -> bool:
        path = scope["path"]
        app = self.fastapi
        if path in {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}:
            return True
        if path in getattr(app.state, "public_paths", frozenset()):
            return True  # documentation pages: scripts and forms, no data
        for route in app.router.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                if isinstance(route, Mount):
                    return route.name in getattr(app.state, "public_mounts", frozenset())
                return isinstance(route, APIRoute) and bool(
                    (route.openapi_extra or {}).get("x-corridor-public")
                )
        return False

    async def _authenticate(self, scope: Scope) -> Principal:
        values = [v for k, v in scope["headers"] if k == b"authorization"]
        if not values:
            raise Unauthenticated("a bearer token is required", token_given=False)
        scheme, _, token = values[0].decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("a bearer token is required", token_given=False)
        verifier = self.verifier()
        if verifier is None:
            raise Unauthenticated("no identity provider configured")
        return await verifier.verify(token.strip())


def challenge(exc: Unauthenticated) -> bytes:
    """RFC 6750's WWW-Authenticate: the error and its (safe) description when a token was given."""
    if not exc.token_given:
        return b'Bearer realm="corridor"'
    return f'Bearer realm="corridor", error="invalid_token", error_description="{exc.reason}"'.encode()


def unauthenticated(exc: Unauthenticated) -> Response:
    """401 as a problem, with RFC 6750's challenge."""
    return problems.response(
        401, UNAUTHENTICATED, exc.reason, headers={"WWW-Authenticate": challenge(exc).decode()}
    )


def install(app: FastAPI, *, scope: ServiceScope, verifier: Callable[[], TokenVerifier | None]) -> None:
    """Authentication on every route of ``app`` but the public ones, the rules in its OpenAPI
    document, and the 401/403 answers."""
    app.state.corridor_scope = scope
    app.add_middleware(AuthMiddleware, fastapi=app, verifier=verifier)
    app.openapi = _openapi_with_rules(app, scope, app.openapi)  # type: ignore[method-assign]

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Unauthenticated)
        return unauthenticated(exc)

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Forbidden)
        return problems.response(403, exc.code, exc.detail)

    async def keys_unavailable(request: Request, _: Exception) -> Response:
        # A route that verifies a token itself (the operations page's sign-in) meets it too.
        return problems.response(503, "unavailable", KEYS_UNAVAILABLE, headers={"Retry-After": "5"})

    app.add_exception_handler(Unauthenticated, refused)
    app.add_exception_handler(KeysUnavailable, keys_unavailable)
    app.add_exception_handler(Forbidden, forbidden)
