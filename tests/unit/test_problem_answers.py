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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from corridor import problems
from corridor.auth import Role, allow
from corridor.errors import DomainError
from corridor.runtime import ServiceRuntime
from corridor.settings import ServiceSettings
from devkit.devidp import DevIssuer
from services import deployment
from services.border_clearance.domain import NothingToDecide
from services.operations.app import OperationsSettings, create_app
from services.transport.domain import AlreadyDeparted
from tests.problemcheck import operation_of, probes, problem, undocumented


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


async def test_every_answer_of_every_route_is_one_its_document_lists(
    services: list[Service], issuer: DevIssuer
) -> None:
    wrong: list[str] = []
    met: dict[int, int] = {}
    for service in services:
        transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for path, method, operation in _operations(service.document):
                limit = None
                if service.runtime is not None:
                    settings = service.runtime.settings
                    limit = service.runtime.body_limits.get(path, settings.http_body_limit_bytes)
                for what, request in probes(
                    service.document, path, method, operation, issuer, body_limit=limit
                ):
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


# --- the codes of the use cases' refusals ------------------------------------------------------------


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_refusal_of_a_use_case_has_a_machine_readable_code(services: list[Service]) -> None:
    refusals = {cls.__name__: cls.code for cls in _subclasses(DomainError)}
    assert len(refusals) >= 25  # every service's domain errors are loaded with the services
    assert {k: refusals[k] for k in ("CaseNotFound", "NoManifest", "MovementExists", "OverrideRefused")} == {
        "CaseNotFound": "case_not_found",
        "NoManifest": "no_manifest",
        "MovementExists": "movement_exists",
        "OverrideRefused": "override_refused",
    }
    for name, code in refusals.items():
        problems.Problem.model_validate(problems.body(409, code, name))  # the pattern of a code


async def test_a_refusal_that_says_more_says_it_as_members_of_its_problem(issuer: DevIssuer) -> None:
    rt = ServiceRuntime("t", ServiceSettings(mission="KAZ"), migrations=Path("."), title="t")
    case_id = uuid.uuid4()

    async def waiting() -> None:
        raise NothingToDecide({case_id: "not cleared at the previous post yet"})

    async def departed() -> None:
        raise AlreadyDeparted("BUS-1", datetime(2026, 12, 1, 8, tzinfo=UTC), departure={"departed": []})

    for path, route in (("/waiting", waiting), ("/departed", departed)):
        rt.http.add_api_route(path, route, methods=["POST"], dependencies=[Depends(allow(Role.CASEWORKER))])
    token = {"Authorization": f"Bearer {issuer.token(Role.CASEWORKER, 'KAZ')}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rt.http), base_url="http://t") as client:
        nobody = problem(await client.post("/waiting", headers=token))
        gone = problem(await client.post("/departed", headers=token))
    assert (nobody["code"], nobody["detail"]) == (
        "nothing_to_decide",
        "nobody on this vehicle can be decided now",
    )
    assert nobody["waiting"] == {str(case_id): "not cleared at the previous post yet"}
    assert (gone["status"], gone["code"], gone["departure"]) == (409, "departed", {"departed": []})
    assert gone["detail"] == "BUS-1 departed at 2026-12-01T08:00:00+00:00"
