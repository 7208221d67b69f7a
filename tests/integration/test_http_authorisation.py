"""Who may call what, for every route of every running service: the role matrix, read from each
service's own OpenAPI document (``x-corridor-roles``, ``x-corridor-mission``, the service's scope in
``info.x-corridor-scope``), so that a route added without a rule fails here.

For every operation: no token, and tokens that do not verify (malformed, expired, signed with
another key, unsigned), are answered 401 with ``WWW-Authenticate: Bearer``; every role the rule does
not name, the allowed roles of another mission, and a border officer of another checkpoint are
answered 403. No refusal's body holds personal data, and no refused request changed anything: the
requests carry valid bodies aimed at a real case, flag, movement and vehicle, and the tables they
would have written are compared before and after. Then each allowed role passes the rule (neither
401 nor 403). A mission's report whose source names another mission than its token's is refused.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from contracts.missions import CaseStatusReported
from contracts.routes import Route
from contracts.status import CaseStatus
from corridor.auth import Purpose, Role
from devkit import scenario
from devkit.devidp import DevIssuer
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.conftest import report_figure

PUBLIC = {("GET", "/health/live"), ("GET", "/health/ready")}
MISSIONS = ("KAZ", "UZB", "TJK", "KGZ")
# The tables a request could write (those no consumer writes), per service; a refused request
# must leave each as it was.
WRITTEN_BY_REQUESTS = {
    "intake": ["pii_access_log", "duplicate_flags", "health_evidence", "withdrawals", "persons"],
    "eligibility": ["overrides"],
    "transport": ["pii_access_log", "movements", "vehicle_progress"],
    "border": ["hold_list", "requirements", "decisions"],
    "reporting": ["situation_reports"],
}
HOLD_DOCUMENT = "AUTHZ0000001"


@dataclass
class Target:
    """The real things the requests aim at, so a request let through would change something."""

    case_id: uuid.UUID
    registration: dict[str, Any]
    person_id: str
    flag_id: int
    movement_id: str
    vehicle_id: str
    personal: list[str]  # strings of the case's personal data that no refusal may contain


@dataclass
class Tally:
    operations: int = 0
    services: int = 0
    attempts: Counter[str] = field(default_factory=Counter)
    allowed: int = 0
    failures: list[str] = field(default_factory=list)


def _b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def bad_tokens(stack: Stack, tmp: Path) -> dict[str, str]:
    """Tokens that must not verify, each for a caller that would otherwise be admitted anywhere."""
    every_role = [r.value for r in Role]
    stranger = DevIssuer(tmp / "stranger-idp")
    good = stack.issuer.token(None, "KAZ", roles=every_role, subject="forger")
    claims = jwt.decode(good, options={"verify_signature": False})
    return {
        "malformed": "not-a-jwt",
        "expired": stack.issuer.token(None, "KAZ", roles=every_role, lifetime=-300),
        "foreign-signed": jwt.encode(claims, stranger.key, "ES256", {"kid": stack.issuer.kid}),
        "unknown key": jwt.encode(claims, stranger.key, "ES256", {"kid": stranger.kid}),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "other issuer": stranger.token(None, "KAZ", roles=every_role, iss="https://evil.example/idp"),
    }


def other_checkpoint(stack: Stack, mission: str, checkpoint: str) -> str:
    same_mission = [
        s.extra_env["CORRIDOR_CHECKPOINT"]
        for s in stack.specs.values()
        if s.mission == mission and s.extra_env.get("CORRIDOR_CHECKPOINT") not in (None, checkpoint)
    ]
    return same_mission[0] if same_mission else f"{mission.lower()}-another-post"


def request_for(method: str, path: str, target: Target, route: Route) -> dict[str, Any]:
    """A request a caller with the right role would have carried out: path parameters naming the
    real case, flag, movement and vehicle, and a valid body."""
    concrete = (
        path.replace("{case_id}", str(target.case_id))
        .replace("{flag_id}", str(target.flag_id))
        .replace("{movement_id}", target.movement_id)
        .replace("{vehicle_id}", target.vehicle_id)
        .replace("{requirement_id}", str(uuid.uuid4()))
        .replace("{document_number}", HOLD_DOCUMENT)
        .replace("{day}", "2000-01-01")  # reporting: a situation report's day
        .replace("{name}", "movements")  # reporting: an HXL export
    )
    far = "2990-01-01"
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/cases"): {**target.registration, "registration_key": f"authz/{uuid.uuid4()}"},
        ("PUT", "/cases/{case_id}"): {**target.registration, "planned_travel_date": "2991-01-01"},
        ("POST", "/duplicate-flags/{flag_id}/resolution"): {"decision": "duplicate", "note": "forged"},
        ("POST", "/cases/{case_id}/health-evidence"): {
            "person_id": target.person_id,
            "kind": "covid19_test",
            "result": "negative",
            "taken_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        },
        ("POST", "/cases/{case_id}/withdrawal"): {"reason": "a forged withdrawal"},
        ("POST", "/imports"): [
            {**{k: v for k, v in target.registration.items() if k != "registration_key"}, "row_key": "A-1"}
        ],
        ("POST", "/cases/{case_id}/override"): {"outcome": "ineligible", "reason": "a forged override here"},
        ("POST", "/movements"): {
            "movement_id": f"AUTHZ-{uuid.uuid4().hex[:6]}",
            "route_id": route.route_id,
            "departure_date": far,
            "vehicles": [{"vehicle_id": "AUTHZ-X", "capacity": 4}],
        },
        ("POST", "/movements/{movement_id}/vehicles/{vehicle_id}/departure"): {"no_shows": []},
        ("POST", "/movements/{movement_id}/vehicles/{vehicle_id}/progress"): {
            "checkpoint_id": route.checkpoints[0].checkpoint_id,
            "stage": "arrived",
        },
        ("POST", "/requirements"): {
            "code": "authz_forged",
            "description": "a forged requirement",
            "evidence_kind": "covid19_test",
            "valid_hours": 72,
            "effective_from": far,
        },
        ("PUT", "/hold-list"): {
            "document_number": HOLD_DOCUMENT,
            "reason_code": "court_order",
            "reason": "forged",
        },
        ("POST", "/movements/{movement_id}/vehicles/{vehicle_id}/clearance"): {},
    }
    request: dict[str, Any] = {
        "method": method,
        "url": concrete,
        "headers": {"X-Purpose": "travel_preparation"},
        "params": {"namespace": "authz"} if path == "/imports" else {},
    }
    if path == "/inbound/status-changes":
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/missions/TJK/reception",
            "type": CaseStatusReported.event_type,
            "data": {
                "case_id": str(target.case_id),
                "status": "closed",
                "occurred_at": datetime.now(UTC).isoformat(),
            },
        }
        request["content"] = json.dumps(event).encode()
        request["headers"]["Content-Type"] = "application/cloudevents+json"
    elif (method, path) in bodies:
        request["json"] = bodies[(method, path)]
    elif method in ("POST", "PUT", "PATCH"):
        request["json"] = {}
    return request


def service_kind(name: str) -> str:
    return "border" if name.startswith("border-") else name


async def fingerprint(stack: Stack, target: Target) -> dict[str, str]:
    """Each table a request could write, as one hash of its rows; and the target case's row."""
    found: dict[str, str] = {}
    for name, spec in stack.specs.items():
        conn = await asyncpg.connect(stack.postgres.dsn(spec.database))
        try:
            for table in WRITTEN_BY_REQUESTS[service_kind(name)]:
                found[f"{name}.{table}"] = await conn.fetchval(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
                )
            if name == "intake":
                found["intake.case"] = str(
                    await conn.fetchrow("SELECT * FROM cases WHERE case_id = $1", target.case_id)
                )
        finally:
            await conn.close()
    return found


async def settled(stack: Stack, target: Target) -> dict[str, str]:
    """The fingerprint once two reads a second apart agree (what earlier tests set going is done)."""
    last = await fingerprint(stack, target)
    async with asyncio.timeout(60):
        while True:
            await asyncio.sleep(1.0)
            now = await fingerprint(stack, target)
            if now == last:
                return now
            last = now


async def prepare(
    client: httpx.AsyncClient, stack: Stack, stream: StatusStream, route: Route, day: date
) -> Target:
    """A case (with a possible duplicate, so there is a flag) on a movement of its own day."""
    body = scenario.single_traveller(day)
    case_id = await scenario.register(client, stack, body)
    twin = {**body, "registration_key": f"authz-twin/{uuid.uuid4()}"}
    flagged = await client.post(stack.url("intake") + "/cases", json=twin, headers=scenario.caseworker(stack))
    assert flagged.status_code == 201, flagged.text
    (flag,) = flagged.json()["duplicate_flags"]
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    movement = await scenario.plan_movement(
        client, stack, stream, route, day, vehicles=[("AUTHZ-1", 10)], expect=[case_id]
    )
    vehicle = next(v["vehicle_id"] for v in movement["vehicles"] if v["cases"])
    (member,) = await scenario.members_of(client, stack, case_id, Purpose.CASE_MANAGEMENT)
    personal = [
        member["given_names"],
        member["surname"],
        member["document"]["number"],
        member["birth_date"],
    ]
    return Target(
        case_id=case_id,
        registration=body,
        person_id=member["person_id"],
        flag_id=flag["flag_id"],
        movement_id=movement["movement_id"],
        vehicle_id=vehicle,
        personal=personal,
    )


def check_refusal(
    tally: Tally, response: httpx.Response, status: int, what: str, target: Target, code: str | None = None
) -> None:
    if response.status_code != status:
        tally.failures.append(f"{what}: {response.status_code} (wanted {status}) {response.text[:200]}")
        return
    body = response.text
    leaked = [p for p in target.personal if p in body]
    # A problem (RFC 9457) and nothing more: no member that could carry the data.
    if leaked or set(response.json()) != {"type", "title", "status", "detail", "instance", "code"}:
        tally.failures.append(f"{what}: the refusal says too much: {body[:300]}")
    if status == 401 and not response.headers.get("www-authenticate", "").startswith("Bearer"):
        tally.failures.append(f"{what}: 401 without WWW-Authenticate: Bearer")
    if code is not None and response.json()["code"] != code:
        tally.failures.append(f"{what}: code {response.json()['code']}, wanted {code}")


@pytest.mark.timeout(600)
async def test_every_route_admits_exactly_its_roles_and_refusals_change_nothing(
    stack: Stack,
    stream: StatusStream,
    route: Route,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    day = date(2960, 1, 1) + timedelta(days=uuid.uuid4().int % 3000)  # a day of its own
    target = await prepare(client, stack, stream, route, day)
    forged = bad_tokens(stack, tmp_path)
    tally = Tally()
    allowed_probes: list[tuple[str, dict[str, Any], str]] = []
    before = await settled(stack, target)

    async with httpx.AsyncClient(timeout=15.0) as raw:  # no RoleAuth: every token is chosen here
        for name, spec in stack.specs.items():
            document = (await raw.get(spec.url + "/openapi.json")).raise_for_status().json()
            scope = document["info"]["x-corridor-scope"]
            mission, checkpoint = scope["mission"], scope["checkpoint"]
            assert mission == spec.mission
            tally.services += 1
            for path, item in document["paths"].items():
                for method, operation in item.items():
                    method = method.upper()
                    what = f"{name} {method} {path}"
                    tally.operations += 1
                    if (method, path) in PUBLIC:
                        if operation.get("security") != []:
                            tally.failures.append(f"{what}: a health check should be public")
                        response = await raw.request(method, spec.url + path)
                        if response.status_code not in (200, 503):
                            tally.failures.append(f"{what}: public, answered {response.status_code}")
                        continue
                    roles = operation.get("x-corridor-roles")
                    if not roles:
                        tally.failures.append(f"{what}: no rule (x-corridor-roles) for this operation")
                        continue
                    any_mission = operation.get("x-corridor-mission") == "any"
                    request = request_for(method, path, target, route)
                    request["url"] = spec.url + request["url"]

                    async def send(token: str | None, request: dict[str, Any] = request) -> httpx.Response:
                        headers = dict(request["headers"])
                        if token is not None:
                            headers["Authorization"] = f"Bearer {token}"
                        return await raw.request(**{**request, "headers": headers})

                    tally.attempts["unauthenticated"] += 1
                    check_refusal(tally, await send(None), 401, f"{what} without a token", target)
                    for kind, token in forged.items():
                        tally.attempts["unauthenticated"] += 1
                        check_refusal(tally, await send(token), 401, f"{what} with a {kind} token", target)
                    for role in Role:
                        cp = checkpoint if role == Role.BORDER_OFFICER else None
                        if role.value not in roles:
                            tally.attempts["wrong role"] += 1
                            token = stack.issuer.token(role, mission, cp or None)
                            check_refusal(
                                tally, await send(token), 403, f"{what} as {role}", target, "role_not_allowed"
                            )
                            continue
                        if not any_mission:
                            for other in (m for m in MISSIONS if m != mission):
                                tally.attempts["wrong mission"] += 1
                                token = stack.issuer.token(role, other, cp)
                                check_refusal(
                                    tally,
                                    await send(token),
                                    403,
                                    f"{what} as {role} of {other}",
                                    target,
                                    "other_mission",
                                )
                        if role == Role.BORDER_OFFICER and checkpoint is not None and not any_mission:
                            elsewhere = other_checkpoint(stack, mission, checkpoint)
                            tally.attempts["wrong checkpoint"] += 1
                            token = stack.issuer.token(role, mission, elsewhere)
                            check_refusal(
                                tally,
                                await send(token),
                                403,
                                f"{what} as {role} of {elsewhere}",
                                target,
                                "other_checkpoint",
                            )
                            tally.attempts["wrong checkpoint"] += 1
                            token = stack.issuer.token(None, mission, None, roles=[role.value])
                            check_refusal(
                                tally,
                                await send(token),
                                403,
                                f"{what} as {role} of no post",
                                target,
                                "other_checkpoint",
                            )
                        allowed_probes.append((what, request, stack.issuer.token(role, mission, cp)))

        # A mission's report in another mission's name: the token says who reports.
        inbound = stack.url("intake") + "/inbound/status-changes"
        for reporter, source in (
            ("UZB", "/missions/TJK/reception"),
            ("TJK", "/missions/UZB/operations"),
            ("KAZ", "/missions/TJK/reception"),
        ):
            event = json.loads(request_for("POST", "/inbound/status-changes", target, route)["content"])
            event["source"] = source
            tally.attempts["forged source"] += 1
            response = await raw.post(
                inbound,
                content=json.dumps(event).encode(),
                headers={
                    "Content-Type": "application/cloudevents+json",
                    **stack.headers(Role.INTEGRATION_CLIENT, mission=reporter),
                },
            )
            check_refusal(
                tally, response, 403, f"report of {reporter} as {source}", target, "source_not_token_mission"
            )

        after = await fingerprint(stack, target)
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        assert not changed, f"refused requests changed {sorted(changed)}"
        assert not tally.failures, f"{len(tally.failures)} wrong answer(s):\n" + "\n".join(
            tally.failures[:15]
        )

        # Each allowed role passes the rule. Bodies are emptied (a 422 proves the rule let it in)
        # so that nothing is actually planned, cleared or withdrawn.
        for what, request, token in allowed_probes:
            probe = {k: v for k, v in request.items() if k not in ("json", "content")}
            if "json" in request or "content" in request:
                probe["json"] = []
            probe["headers"] = {**request["headers"], "Authorization": f"Bearer {token}"}
            response = await raw.request(**probe)
            tally.allowed += 1
            if response.status_code in (401, 403):
                tally.failures.append(
                    f"{what}: an allowed role answered {response.status_code} {response.text[:200]}"
                )
    assert not tally.failures, "\n".join(tally.failures[:15])

    refused = sum(tally.attempts.values())
    report_figure(
        "HTTP authorisation",
        f"{tally.operations} operations on {tally.services} services, rules read from their OpenAPI documents",
    )
    for kind in ("unauthenticated", "wrong role", "wrong mission", "wrong checkpoint", "forged source"):
        report_figure("HTTP authorisation", f"  {kind}: {tally.attempts[kind]} attempts, all refused")
    report_figure(
        "HTTP authorisation",
        f"  {refused} refused in all, none got through or changed anything; "
        f"{tally.allowed} allowed-role requests passed the rule",
    )
