"""The development identity provider: an issuer key pair per stack working directory, its public
key as a JWKS file the services read (``CORRIDOR_AUTH_JWKS_FILE``), and tokens minted with it.

It stands in for a mission's OpenID Connect provider in the local stack, the demo and the tests:
the services verify its tokens exactly as they would verify the real IdP's (``corridor.auth``),
only the keys and the issuer differ. The private key never leaves the stack's directory.

``RoleAuth`` is for callers that act "as whoever may": it gives each request a token of a role the
target route admits, read from that service's OpenAPI document (``x-corridor-roles``).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from corridor.auth import Role

ALGORITHM = "ES256"
AUDIENCE = "corridor"
KEY_FILE = "issuer-key.pem"
REUSE_SECONDS = 1800.0
"""How long a client keeps a token of the default hour before it takes a fresh one."""
JWKS_FILE = "jwks.json"
ISSUER_FILE = "issuer.json"


class DevIssuer:
    """The issuer of a stack in ``directory`` (created with a fresh EC P-256 key on first use, read
    back afterwards, so ``python -m devkit token`` mints for a running ``make up``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        key_path = directory / KEY_FILE
        if key_path.exists():
            loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            assert isinstance(loaded, ec.EllipticCurvePrivateKey)
            self.key = loaded
            self.issuer = json.loads((directory / ISSUER_FILE).read_text())["issuer"]
        else:
            self.key = ec.generate_private_key(ec.SECP256R1())
            pem = self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            key_path.touch(mode=0o600)
            key_path.write_bytes(pem)
            self.issuer = f"https://idp.corridor.invalid/dev/{uuid.uuid4().hex[:12]}"
            (directory / ISSUER_FILE).write_text(json.dumps({"issuer": self.issuer, "audience": AUDIENCE}))
        self.kid = _kid(self.key)
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        self.jwks_file = directory / JWKS_FILE
        self.jwks_file.write_text(json.dumps({"keys": [jwk]}, indent=2))
        self._tokens: dict[tuple[str, str, str | None, str | None], tuple[float, str]] = {}

    def env(self) -> dict[str, str]:
        """The services' settings that trust this issuer."""
        return {
            "CORRIDOR_AUTH_ISSUER": self.issuer,
            "CORRIDOR_AUTH_AUDIENCE": AUDIENCE,
            "CORRIDOR_AUTH_JWKS_FILE": str(self.jwks_file),
            "CORRIDOR_AUTH_ALGORITHMS": json.dumps([ALGORITHM]),
        }

    def token(
        self,
        role: Role | str | None,
        mission: str,
        checkpoint: str | None = None,
        subject: str | None = None,
        *,
        roles: list[str] | None = None,
        lifetime: float = 3600.0,
        **claims: Any,
    ) -> str:
        """A signed access token. ``claims`` override or add any claim (tests forge with it)."""
        now = int(time.time())
        names = roles if roles is not None else [Role(role).value] if role is not None else []
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": subject or f"{'+'.join(names) or 'nobody'}@{(checkpoint or mission).lower()}",
            "iat": now,
            "exp": now + int(lifetime),
            "roles": names,
            "mission": mission,
        }
        if checkpoint is not None:
            body["checkpoint"] = checkpoint
        body.update(claims)
        return jwt.encode(
            {k: v for k, v in body.items() if v is not None}, self.key, ALGORITHM, {"kid": self.kid}
        )

    def reused_token(
        self, role: Role | str, mission: str, checkpoint: str | None = None, subject: str | None = None
    ) -> str:
        """``token(...)`` as a client holds one: the same token for the same actor while it has
        at least half of its hour left, then a fresh one. Signing one (ECDSA) for every request
        took 7 % of the benchmark driver's samples at 50/s, on the cores the services share."""
        key = (Role(role).value, mission, checkpoint, subject)
        cached = self._tokens.get(key)
        if cached is None or cached[0] < time.monotonic():
            cached = (time.monotonic() + REUSE_SECONDS, self.token(role, mission, checkpoint, subject))
            self._tokens[key] = cached
        return cached[1]


def _kid(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return uuid.uuid5(uuid.NAMESPACE_OID, der.hex()).hex[:16]


# --- acting in whatever role a route admits -------------------------------------------------------


class OperationRules:
    """One service's rules, read from its OpenAPI document: the roles each operation admits, and
    the mission (and checkpoint) the service's roles hold in."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        scope = document.get("info", {}).get("x-corridor-scope", {})
        self.mission: str = scope.get("mission", "")
        self.checkpoint: str | None = scope.get("checkpoint")
        self._ops: list[tuple[str, re.Pattern[str], list[str]]] = []
        for path, item in document.get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$")
            for method, operation in item.items():
                roles = operation.get("x-corridor-roles") if isinstance(operation, dict) else None
                if roles:
                    self._ops.append((method.upper(), pattern, list(roles)))

    def roles_for(self, method: str, path: str) -> list[str] | None:
        for op_method, pattern, roles in self._ops:
            if op_method == method and pattern.match(path):
                return roles
        return None


class RoleAuth(httpx.Auth):
    """Signs each request with a token of the first role its route admits, in the target service's
    mission (and, for a border officer, checkpoint). A request that already carries an
    ``Authorization`` header is left as it is. Functional tests act in an allowed role through
    this; that every other role is refused is the role-matrix test's business
    (tests/integration/test_http_authorisation.py)."""

    def __init__(self, issuer: DevIssuer, rules_for: Callable[[httpx.URL], OperationRules | None]) -> None:
        self.issuer = issuer
        self.rules_for = rules_for

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "authorization" not in request.headers:
            rules = self.rules_for(request.url)
            roles = rules.roles_for(request.method, request.url.path) if rules else None
            if rules is not None and roles:
                role = roles[0]
                checkpoint = rules.checkpoint if role == Role.BORDER_OFFICER else None
                token = self.issuer.reused_token(role, rules.mission, checkpoint)
                request.headers["Authorization"] = f"Bearer {token}"
        yield request
