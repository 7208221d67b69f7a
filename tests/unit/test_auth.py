"""Bearer tokens: what verifies and what does not, and the rule on each route (corridor.auth).

A real issuer (devkit.devidp, EC P-256 keys written as a JWKS file) signs every token here; the
forgeries are made with other keys, other claims or no signature at all."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends

from corridor import auth
from corridor.auth import Principal, Role, ServiceScope, TokenVerifier, Unauthenticated, allow
from corridor.runtime import ServiceRuntime
from corridor.settings import ServiceSettings
from devkit.devidp import AUDIENCE, REUSE_SECONDS, DevIssuer
from services import deployment
from tests.problemcheck import answered


def verifier_of(issuer: DevIssuer, **overrides: Any) -> TokenVerifier:
    options: dict[str, Any] = {
        "issuer": issuer.issuer,
        "audience": AUDIENCE,
        "algorithms": ["ES256"],
        "jwks_file": issuer.jwks_file,
        "leeway_seconds": 0,
    }
    return TokenVerifier(**{**options, **overrides})


def test_a_token_of_the_issuer_gives_its_principal(issuer: DevIssuer) -> None:
    token = issuer.token(Role.BORDER_OFFICER, "UZB", "uzb-oybek-exit", "d.karimov")
    assert verifier_of(issuer).verify_sync(token) == Principal(
        subject="d.karimov",
        roles=frozenset({Role.BORDER_OFFICER}),
        mission="UZB",
        checkpoint="uzb-oybek-exit",
    )


def test_the_development_client_holds_a_token_until_half_its_hour_has_passed(
    issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    first = issuer.reused_token(Role.CASEWORKER, "KAZ", subject="clerk")
    assert issuer.reused_token(Role.CASEWORKER, "KAZ", subject="clerk") == first
    # another actor (subject, role, mission, post) has a token of its own
    others = {
        issuer.reused_token(Role.CASEWORKER, "KAZ", subject="nurse"),
        issuer.reused_token(Role.CASEWORKER, "UZB", subject="clerk"),
        issuer.reused_token(Role.OPERATIONS_VIEWER, "KAZ", subject="clerk"),
        issuer.reused_token(Role.BORDER_OFFICER, "UZB", "uzb-oybek-exit", "clerk"),
    }
    assert first not in others and len(others) == 4
    assert verifier_of(issuer).verify_sync(first).subject == "clerk"
    clock[0] += REUSE_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: 1_900_000_000.0)
    renewed = issuer.reused_token(Role.CASEWORKER, "KAZ", subject="clerk")
    assert (
        renewed != first and jwt.decode(renewed, options={"verify_signature": False})["iat"] == 1_900_000_000
    )


def test_roles_the_platform_does_not_know_are_ignored(issuer: DevIssuer) -> None:
    token = issuer.token(None, "KAZ", roles=["offline_access", "caseworker", "uma_authorization"])
    assert verifier_of(issuer).verify_sync(token).roles == {Role.CASEWORKER}


def _refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify_sync(token)
    return caught.value.reason


def test_an_expired_token_is_refused(issuer: DevIssuer) -> None:
    token = issuer.token(Role.CASEWORKER, "KAZ", lifetime=-5)
    assert _refused(verifier_of(issuer), token) == "token expired"
    # within the configured clock skew it still holds
    assert verifier_of(issuer, leeway_seconds=30).verify_sync(token).subject


def test_another_issuer_or_audience_is_refused(issuer: DevIssuer) -> None:
    verifier = verifier_of(issuer)
    assert (
        _refused(verifier, issuer.token(Role.CASEWORKER, "KAZ", iss="https://evil.example")) == "wrong issuer"
    )
    assert _refused(verifier, issuer.token(Role.CASEWORKER, "KAZ", aud="another-app")) == "wrong audience"


def test_a_token_signed_with_another_key_is_refused(issuer: DevIssuer, tmp_path: Path) -> None:
    stranger = DevIssuer(tmp_path / "stranger")
    verifier = verifier_of(issuer)
    # same claims and issuer, another key: its kid is unknown here
    forged = jwt.encode(
        {**jwt.decode(issuer.token(Role.AUDITOR, "KAZ"), options={"verify_signature": False})},
        stranger.key,
        "ES256",
        {"kid": stranger.kid},
    )
    assert _refused(verifier, forged) == "no key of the issuer signs this token"
    # ... and claiming the issuer's own kid: the signature does not verify
    impostor = jwt.encode(
        jwt.decode(forged, options={"verify_signature": False}), stranger.key, "ES256", {"kid": issuer.kid}
    )
    assert _refused(verifier, impostor) == "signature does not verify"


def test_unsigned_and_symmetric_tokens_are_refused(issuer: DevIssuer) -> None:
    verifier = verifier_of(issuer)
    claims = jwt.decode(issuer.token(Role.SUPERVISOR, "KAZ"), options={"verify_signature": False})

    def b64(part: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()

    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': issuer.kid})}.{b64(claims)}."
    assert _refused(verifier, unsigned) == "algorithm not accepted"
    # HS256 keyed with the issuer's public key (the classic algorithm confusion), signed by hand
    # (PyJWT itself refuses to use a public key as an HMAC secret)
    public = issuer.jwks_file.read_bytes()
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': issuer.kid})}.{b64(claims)}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    hs = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert _refused(verifier, hs) == "algorithm not accepted"
    with pytest.raises(auth.AuthNotConfigured):
        verifier_of(issuer, algorithms=["HS256"])
    assert _refused(verifier, "not.a.token") == "malformed token"
    assert _refused(verifier, "x" * 9000) == "token too large"


def test_an_rsa_key_verifies_when_configured(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "r1", "use": "sig"}]}))
    now = int(time.time())
    claims = {"iss": "https://idp", "aud": "c", "sub": "s", "iat": now, "exp": now + 60}
    token = jwt.encode({**claims, "roles": ["auditor"], "mission": "TJK"}, key, "RS256", {"kid": "r1"})
    verifier = TokenVerifier(issuer="https://idp", audience="c", jwks_file=tmp_path / "jwks.json")
    assert verifier.verify_sync(token).mission == "TJK"


async def test_an_issuer_whose_keys_cannot_be_fetched_is_a_503_not_a_401(issuer: DevIssuer) -> None:
    """A JWKS URL that does not answer: the caller's token may be good, so "retry", not "invalid"."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    verifier = TokenVerifier(
        issuer=issuer.issuer,
        audience=AUDIENCE,
        algorithms=["ES256"],
        jwks_url=f"http://127.0.0.1:{port}/jwks",
    )
    rt = ServiceRuntime("test", ServiceSettings(), migrations=Path("."), title="t")
    rt._verifier = verifier
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rt.http), base_url="http://t") as client:
        answer = await client.get("/stats", headers=bearer(issuer.token(Role.OPERATIONS_VIEWER, "KAZ")))
    assert (answer.status_code, answer.json()["code"], answer.headers["retry-after"]) == (
        503,
        "unavailable",
        "5",
    )


@pytest.mark.parametrize(
    ("drop_or_set", "reason"),
    [
        ({"sub": None}, "missing claim sub"),
        ({"exp": None}, "missing claim exp"),
        ({"iat": None}, "missing claim iat"),
        ({"roles": None}, "missing claim roles"),
        ({"roles": "caseworker"}, "missing claim roles"),
        ({"mission": None}, "missing claim mission"),
        ({"mission": "kaz"}, "missing claim mission"),
        ({"checkpoint": "../etc"}, "invalid claim checkpoint"),
    ],
)
def test_a_token_without_the_claims_is_refused(
    issuer: DevIssuer, drop_or_set: dict[str, Any], reason: str
) -> None:
    claims = jwt.decode(issuer.token(Role.CASEWORKER, "KAZ"), options={"verify_signature": False})
    claims.update(drop_or_set)
    signed = {k: v for k, v in claims.items() if v is not None}  # None: the claim is left out
    token = jwt.encode(signed, issuer.key, "ES256", {"kid": issuer.kid})
    assert _refused(verifier_of(issuer), token) == reason


# --- the rule of a route ---------------------------------------------------------------------


def principal(*roles: Role, mission: str = "KAZ", checkpoint: str | None = None) -> Principal:
    return Principal("someone", frozenset(roles), mission, checkpoint)


def _forbidden(rule: allow, who: Principal, scope: ServiceScope) -> str | None:
    try:
        rule.check(who, scope)
    except auth.Forbidden as exc:
        return exc.code
    return None


def test_a_role_holds_only_in_its_mission_and_a_border_officer_only_at_their_post() -> None:
    kaz = ServiceScope("KAZ")
    post = ServiceScope("UZB", "uzb-oybek-exit")
    casework = allow(Role.CASEWORKER, Role.SUPERVISOR)
    at_post = allow(Role.BORDER_OFFICER, Role.OPERATIONS_VIEWER)
    assert _forbidden(casework, principal(Role.CASEWORKER), kaz) is None
    assert _forbidden(casework, principal(Role.AUDITOR), kaz) == "role_not_allowed"
    assert _forbidden(casework, principal(Role.CASEWORKER, mission="UZB"), kaz) == "other_mission"
    officer = principal(Role.BORDER_OFFICER, mission="UZB", checkpoint="uzb-oybek-exit")
    assert _forbidden(at_post, officer, post) is None
    other_post = principal(Role.BORDER_OFFICER, mission="UZB", checkpoint="uzb-zhibek-zholy-entry")
    assert _forbidden(at_post, other_post, post) == "other_checkpoint"
    no_post = principal(Role.BORDER_OFFICER, mission="UZB")
    assert _forbidden(at_post, no_post, post) == "other_checkpoint"
    # the same checkpoint name in a token of another mission is still another mission
    foreign = principal(Role.BORDER_OFFICER, mission="KAZ", checkpoint="uzb-oybek-exit")
    assert _forbidden(at_post, foreign, post) == "other_mission"
    # a viewer of the mission needs no checkpoint
    assert _forbidden(at_post, principal(Role.OPERATIONS_VIEWER, mission="UZB"), post) is None
    reporting = allow(Role.INTEGRATION_CLIENT, any_mission=True)
    assert _forbidden(reporting, principal(Role.INTEGRATION_CLIENT, mission="TJK"), kaz) is None


def test_every_operation_of_every_service_has_a_rule_or_is_public() -> None:
    """The offline twin of the integration matrix: a route added without a rule fails here first."""
    for rt in deployment.service_runtimes():
        document = rt.http.openapi()
        assert document["components"]["securitySchemes"]["bearer"]["bearerFormat"] == "JWT"
        for path, item in document["paths"].items():
            for method, operation in item.items():
                public = path in ("/health/live", "/health/ready")
                if public:
                    assert operation["security"] == [] and "x-corridor-roles" not in operation
                else:
                    assert operation["x-corridor-roles"], f"{rt.instance} {method} {path} has no rule"
                    assert operation["security"] == [{"bearer": []}]
                    assert {"401", "403"} <= set(operation["responses"])
        # personal data and audit trails are never for the operations viewer
        rules = auth.rules(rt.http)
        for (method, path), rule in rules.items():
            if "access-log" in path or "manifest" in path or path == "/cases/{case_id}":
                assert rule is not None and Role.OPERATIONS_VIEWER not in rule.roles, (method, path)
            if "access-log" in path:
                assert rule is not None and rule.roles == (Role.AUDITOR,), (method, path)


# --- a service without an identity provider, and the answers of refusal ------------------------


async def test_a_service_without_an_identity_provider_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("CORRIDOR_AUTH_ISSUER", "CORRIDOR_AUTH_JWKS_FILE"):
        monkeypatch.delenv(name)
    rt = ServiceRuntime("test", ServiceSettings(), migrations=Path("."), title="t")
    with pytest.raises(auth.AuthNotConfigured, match="CORRIDOR_AUTH_ISSUER"):
        await rt.start()  # before it touches the database or Kafka
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rt.http), base_url="http://t") as client:
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/stats", headers={"Authorization": "Bearer x.y.z"})).status_code == 401


@pytest.fixture
async def service(issuer: DevIssuer) -> AsyncIterator[httpx.AsyncClient]:
    rt = ServiceRuntime("test", ServiceSettings(mission="KAZ"), migrations=Path("."), title="t")

    async def secret(who: Principal = Depends(allow(Role.AUDITOR))) -> dict[str, str]:  # noqa: B008
        return {"reader": who.subject}

    async def echo(body: dict[str, Any], _: Principal = Depends(allow(Role.CASEWORKER))) -> int:  # noqa: B008
        return len(body)

    rt.http.add_api_route("/secret", secret, methods=["GET"])
    rt.http.add_api_route("/echo", echo, methods=["POST"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rt.http), base_url="http://t") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_401_says_bearer_and_why_and_403_says_nothing_of_the_data(
    service: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    none = await service.get("/secret")
    assert none.status_code == 401 and none.headers["www-authenticate"] == 'Bearer realm="corridor"'
    assert answered(none) == (401, "unauthenticated", "a bearer token is required")
    basic = await service.get("/secret", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401
    expired = await service.get("/secret", headers=bearer(issuer.token(Role.AUDITOR, "KAZ", lifetime=-60)))
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    wrong = await service.get("/secret", headers=bearer(issuer.token(Role.CASEWORKER, "KAZ")))
    assert answered(wrong)[:2] == (403, "role_not_allowed")
    foreign = await service.get("/secret", headers=bearer(issuer.token(Role.AUDITOR, "TJK")))
    assert answered(foreign)[:2] == (403, "other_mission")
    ok = await service.get("/secret", headers=bearer(issuer.token(Role.AUDITOR, "KAZ", subject="z.auditor")))
    assert (ok.status_code, ok.json()) == (200, {"reader": "z.auditor"})
    # a path that does not exist answers a stranger 401 too: nothing to learn about the API
    assert (await service.get("/no-such-thing")).status_code == 401


async def test_a_strangers_body_is_never_read(service: httpx.AsyncClient, issuer: DevIssuer) -> None:
    """No token: 401 even for a body that is not JSON (FastAPI would have parsed it first: 422)."""
    headers = {"Content-Type": "application/json"}
    assert (await service.post("/echo", content=b"{not json", headers=headers)).status_code == 401
    token = bearer(issuer.token(Role.CASEWORKER, "KAZ"))
    assert (await service.post("/echo", json={"a": 1}, headers=token)).json() == 1


async def test_an_oversized_body_is_413_declared_or_streamed(
    service: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    token = {**bearer(issuer.token(Role.CASEWORKER, "KAZ")), "Content-Type": "application/json"}
    declared = await service.post("/echo", content=b"[" + b"1," * 600_000 + b"1]", headers=token)
    assert answered(declared)[:2] == (413, "too_large")

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"a": "'
        for _ in range(40):
            yield b"x" * 32768
        yield b'"}'

    streamed = await service.post("/echo", content=stream(), headers=token)
    assert answered(streamed)[:2] == (413, "too_large")
    assert (await service.post("/echo", json={"a": "x" * 1000}, headers=token)).status_code == 200
