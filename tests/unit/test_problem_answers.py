"""Every answer documented (issue 15): every route of every service, walked from its own OpenAPI
document, is sent what a caller gets wrong (no token, a forged one, a role or mission not admitted,
a body that is not JSON or is too large, a parameter of the wrong kind, a missing header) and asked
while its database is away; every answer's status must be one the route's document lists, and
every error an RFC 9457 problem (``application/problem+json``) valid against the ``Problem``
schema, documented as such. The refusals only a database can give (404, 409, 410) are met by the
API tests, whose every answer is checked the same way (``tests.unit.conftest.role_auth``), and on
the real platform by ``tests/integration/test_problem_answers.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from corridor import problems
from corridor.auth import Role
from corridor.runtime import ServiceRuntime
from devkit.devidp import DevIssuer
from services import deployment
from services.operations.app import OperationsSettings, create_app
from tests.problemcheck import operation_of, problem, undocumented

BODY_METHODS = {"post", "put", "patch"}


@dataclass
class Service:
    name: str
    app: FastAPI
    document: dict[str, Any]
    runtime: ServiceRuntime | None


class AwayPool:
    """A database that does not answer: every use of it fails as a dropped connection does."""

    def __getattr__(self, name: str) -> Any:
        raise ConnectionRefusedError(f"database away ({name})")


def _services() -> list[Service]:
    found: list[Service] = []
    seen: set[str] = set()
    for rt in deployment.service_runtimes():
        if rt.service in seen:
            continue  # one border post stands for all: the same code, another checkpoint
        seen.add(rt.service)
        rt._pool = AwayPool()  # type: ignore[assignment]
        found.append(Service(rt.service, rt.http, rt.http.openapi(), rt))
    operations = create_app(OperationsSettings(mission="KAZ"))
    found.append(Service("operations", operations, operations.openapi(), None))
    return found


@pytest.fixture(scope="module")
def services(issuer: DevIssuer) -> list[Service]:
    return _services()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


# --- the document ---------------------------------------------------------------------------------


def test_the_walk_finds_every_service_and_its_routes(services: list[Service]) -> None:
    names = {s.name for s in services}
    assert names == {"intake", "eligibility", "transport", "border_clearance", "reporting", "operations"}
    assert sum(1 for s in services for _ in _operations(s.document)) >= 60


def test_every_error_of_every_route_is_documented_as_a_problem(services: list[Service]) -> None:
    schema = problems.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    wrong: list[str] = []
    for service in services:
        schemas = service.document["components"]["schemas"]
        assert schemas["Problem"] == {k: v for k, v in schema.items() if k != "$defs"}
        assert "HTTPValidationError" not in schemas  # FastAPI's 422 shape is gone everywhere
        for path, method, operation in _operations(service.document):
            statuses = set(operation["responses"])
            assert "500" in statuses, f"{service.name} {method} {path}"
            if "x-corridor-roles" in operation:
                assert {"401", "403", "503"} <= statuses, f"{service.name} {method} {path}"
            for status, answer in operation["responses"].items():
                if int(status) < 400 or (path, status) == ("/health/ready", "503"):
                    continue  # readiness answers its checks, also when they fail
                content = answer.get("content", {})
                ref = content.get(problems.MEDIA_TYPE, {}).get("schema", {}).get("$ref")
                if set(content) != {problems.MEDIA_TYPE} or ref != "#/components/schemas/Problem":
                    wrong.append(f"{service.name} {method.upper()} {path} {status}: {content}")
                if not answer.get("description"):
                    wrong.append(f"{service.name} {method.upper()} {path} {status}: no description")
    assert not wrong, "\n".join(wrong)


def test_the_inbound_structured_mode_endpoint_documents_the_cloudevent_it_reads(
    services: list[Service],
) -> None:
    (intake,) = [s for s in services if s.name == "intake"]
    body = intake.document["paths"]["/inbound/status-changes"]["post"]["requestBody"]
    schema = body["content"]["application/cloudevents+json"]["schema"]
    assert body["required"] is True
    assert {"specversion", "id", "source", "type", "data"} <= set(schema["required"])
    assert schema["properties"]["type"]["const"] == "org.corridor.mission.case-status-reported.v1"
    data = schema["properties"]["data"]
    assert {"case_id", "status", "occurred_at"} <= set(data["required"])
    assert set(data["properties"]["status"]["enum"]) == {"received", "transit_incident", "closed"}
    assert "$ref" not in str(schema)  # whole: a reader needs nothing else to build the request


# --- the walk -------------------------------------------------------------------------------------


def _example(parameter: dict[str, Any]) -> str:
    schema = parameter.get("schema", {})
    kinds = {schema.get("type"), *(s.get("type") for s in schema.get("anyOf", []))}
    formats = {schema.get("format"), *(s.get("format") for s in schema.get("anyOf", []))}
    if "uuid" in formats:
        return "6f1c2b6e-0000-4000-8000-000000000001"
    if "date" in formats:
        return "2026-12-01"
    if "integer" in kinds:
        return "1"
    if "enum" in schema:
        return str(schema["enum"][0])
    return "x1"


def _bad(parameter: dict[str, Any]) -> str | None:
    """A value of the wrong kind for ``parameter`` (None: it takes any text)."""
    schema = parameter.get("schema", {})
    formats = {schema.get("format"), *(s.get("format") for s in schema.get("anyOf", []))}
    kinds = {schema.get("type"), *(s.get("type") for s in schema.get("anyOf", []))}
    if formats & {"uuid", "date"} or "integer" in kinds or "enum" in schema or "pattern" in schema:
        return "not~valid"
    return None


def _probes(
    service: Service, path: str, method: str, operation: dict[str, Any], issuer: DevIssuer
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what, request) for each thing a caller can get wrong on this operation."""
    params = [p for p in operation.get("parameters", []) if p["in"] in ("path", "query", "header")]
    path_values = {p["name"]: _example(p) for p in params if p["in"] == "path"}
    url = path.format(**path_values)
    scope = service.document["info"].get("x-corridor-scope", {})
    mission, checkpoint = scope.get("mission", "KAZ"), scope.get("checkpoint")
    roles = operation.get("x-corridor-roles") or []
    admitted: dict[str, str] = {}
    if roles:
        role = roles[0]
        token = issuer.token(Role(role), mission, checkpoint if role == Role.BORDER_OFFICER else None)
        admitted = {"Authorization": f"Bearer {token}"}
        yield "no token", {"url": url}
        yield "a forged token", {"url": url, "headers": {"Authorization": "Bearer a.b.c"}}
        # A role the route does not admit (a route that admits every role: one the platform does
        # not know, which holds nothing).
        stranger = next((r.value for r in Role if r.value not in roles), "visitor")
        other = issuer.token(None, mission, checkpoint, roles=[stranger])
        yield f"role {stranger}", {"url": url, "headers": {"Authorization": f"Bearer {other}"}}
        if operation.get("x-corridor-mission") == "own":
            foreign = issuer.token(Role(role), "ZZZ" if mission != "ZZZ" else "YYY", checkpoint)
            yield "another mission", {"url": url, "headers": {"Authorization": f"Bearer {foreign}"}}
    required = {
        p["name"]: _example(p) for p in params if p["in"] in ("query", "header") and p.get("required")
    }
    queries = {
        k: v for k, v in required.items() if any(p["name"] == k and p["in"] == "query" for p in params)
    }
    headers = {k: v for k, v in required.items() if k not in queries}
    if "x-purpose" in {k.lower() for k in headers}:
        headers = {k: ("case_management" if k.lower() == "x-purpose" else v) for k, v in headers.items()}
    base = {"url": url, "params": queries, "headers": {**admitted, **headers}}
    streams = "text/event-stream" in operation["responses"].get("200", {}).get("content", {})
    if not streams:  # a stream admitted never ends: its refusals are all it has to check here
        yield "as admitted, the database away", {**base, "json": {}} if method in BODY_METHODS else base
    if method in BODY_METHODS or "requestBody" in operation:
        json_headers = {**base["headers"], "Content-Type": "application/json"}
        yield "a body that is not JSON", {**base, "headers": json_headers, "content": b"{not json"}
        yield "a body of the wrong kind", {**base, "json": ["a", "list"]}
    if service.runtime is not None:
        limit = service.runtime.body_limits.get(url, service.runtime.settings.http_body_limit_bytes)
        if limit <= 2**20:
            big = b'{"x": "' + b"x" * limit + b'"}'
            yield (
                "a body over the limit",
                {**base, "headers": {**base["headers"], "Content-Type": "application/json"}, "content": big},
            )
    for p in params:
        bad = _bad(p)
        if bad is None:
            continue
        if p["in"] == "path":
            yield f"path {p['name']} {bad}", {**base, "url": path.format(**{**path_values, p["name"]: bad})}
        elif p["in"] == "query":
            yield f"query {p['name']} {bad}", {**base, "params": {**queries, p["name"]: bad}}
        else:
            yield f"header {p['name']} {bad}", {**base, "headers": {**base["headers"], p["name"]: bad}}
    for p in params:
        if p["in"] in ("query", "header") and p.get("required"):
            without = {k: v for k, v in base["headers"].items() if k != p["name"]}
            kept = {k: v for k, v in queries.items() if k != p["name"]}
            yield f"without {p['name']}", {**base, "params": kept, "headers": without}


async def test_every_answer_of_every_route_is_one_its_document_lists(
    services: list[Service], issuer: DevIssuer
) -> None:
    wrong: list[str] = []
    met: dict[int, int] = {}
    for service in services:
        transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for path, method, operation in _operations(service.document):
                for what, request in _probes(service, path, method, operation, issuer):
                    try:
                        response = await asyncio.wait_for(client.request(method.upper(), **request), 20)
                    except TimeoutError:
                        wrong.append(f"{service.name} {method.upper()} {path}, {what}: no answer in 20 s")
                        continue
                    met[response.status_code] = met.get(response.status_code, 0) + 1
                    try:
                        why = undocumented(service.document, method.upper(), response.url.path, response)
                    except AssertionError as exc:
                        why = f"{method.upper()} {path} answered {response.status_code}, not a problem: {exc}"
                    if why is not None:
                        wrong.append(f"{service.name}, {what}: {why}")
    assert not wrong, f"{len(wrong)} answers not documented:\n" + "\n".join(wrong)
    # The walk met every kind of answer it means to provoke (else it proves little).
    assert {401, 403, 413, 422, 503} <= set(met), met


async def test_a_path_no_route_has_and_a_method_a_route_does_not_take_are_problems(
    services: list[Service], issuer: DevIssuer
) -> None:
    intake = next(s for s in services if s.name == "intake")
    token = {"Authorization": f"Bearer {issuer.token(Role.CASEWORKER, 'KAZ')}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=intake.app), base_url="http://t"
    ) as client:
        nowhere = await client.get("/no-such-thing", headers=token)
        assert (nowhere.status_code, problem(nowhere)["code"]) == (404, "not_found")
        assert operation_of(intake.document, "GET", "/no-such-thing") is None
        refused = await client.request("PATCH", "/cases", headers=token)
        assert (refused.status_code, problem(refused)["code"]) == (405, "method_not_allowed")
        stranger = await client.get("/no-such-thing")  # no token: nothing learnt about the paths
        assert (stranger.status_code, problem(stranger)["code"]) == (401, "unauthenticated")
