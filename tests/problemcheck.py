"""What the tests check of every error answer: RFC 9457 problem details (``corridor.problems``)."""

from __future__ import annotations

import contextlib
import random
import re
import uuid
from collections.abc import Callable, Generator, Iterator
from typing import Any

import httpx

from corridor import problems
from corridor.auth import Role
from devkit.devidp import DevIssuer


def problem(response: httpx.Response) -> dict[str, Any]:
    """The answer's problem, after checking it is one: the media type, the ``Problem`` schema, its
    status the answer's, its type named by its code."""
    assert response.headers.get("content-type") == problems.MEDIA_TYPE, (response.status_code, response.text)
    body = response.json()
    problems.Problem.model_validate(body)
    assert body["status"] == response.status_code, body
    assert body["type"] == problems.TYPE_PREFIX + body["code"], body
    # An occurrence, never the request's path (which may carry a document number).
    assert body["instance"].startswith("urn:uuid:"), body
    return body


def answered(response: httpx.Response) -> tuple[int, str, str]:
    """(status, code, detail) of a problem answer."""
    body = problem(response)
    return response.status_code, body["code"], body["detail"]


def field_errors(response: httpx.Response) -> list[dict[str, Any]]:
    """The values a 422 names."""
    body = problem(response)
    assert response.status_code == 422 and isinstance(body.get("errors"), list), body
    errors: list[dict[str, Any]] = body["errors"]
    return errors


# --- every answer against the OpenAPI document of the service that gave it ------------------------


def operation_of(document: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The documented operation a request reached: (its path template, the operation); a literal
    path before a template (``/movements/ready`` before ``/movements/{movement_id}``)."""
    found: list[tuple[int, str, dict[str, Any]]] = []
    for template, item in document.get("paths", {}).items():
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        operation = item.get(method.lower())
        if isinstance(operation, dict) and re.match(pattern, path):
            found.append((template.count("{"), template, operation))
    if not found:
        return None
    _, template, operation = min(found, key=lambda f: f[0])
    return template, operation


def undocumented(document: dict[str, Any], method: str, path: str, response: httpx.Response) -> str | None:
    """Why ``response`` is not an answer the document lists for the operation (None: it is). An
    error must be listed with its status and be a problem, documented as one."""
    reached = operation_of(document, method, path)
    if reached is None:
        if response.status_code >= 400:
            problem(response)  # a path no route has: still a problem
        return None
    template, operation = reached
    status = str(response.status_code)
    listed = operation.get("responses", {})
    if status not in listed:
        return f"{method} {template} answered {status}, its OpenAPI lists {sorted(listed)}: {response.text[:200]}"
    if response.status_code >= 400:
        content = listed[status].get("content", {})
        media = response.headers.get("content-type", "").split(";")[0]
        if media not in content:
            return f"{method} {template} answered {status} as {media}, documented as {sorted(content)}"
        if media == problems.MEDIA_TYPE:
            problem(response)
    return None


class DocumentedAnswers(httpx.Auth):
    """An ``httpx.Auth`` around another (``RoleAuth``) that checks every answer against the OpenAPI
    document of the service that gave it (``document``: by the request's URL): a test that meets
    an undocumented status or an error that is not a problem fails where it met it."""

    requires_response_body = True

    def __init__(self, inner: httpx.Auth, document: Callable[[httpx.URL], dict[str, Any] | None]) -> None:
        self.inner = inner
        self.document = document

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self.inner.auth_flow(request)
        prepared = next(flow)
        response = yield prepared
        with contextlib.suppress(StopIteration):
            flow.send(response)
        document = self.document(request.url)
        if document is not None:  # a service of the platform, not another server a test asks
            why = undocumented(document, request.method, request.url.path, response)
            assert why is None, why


# --- what a caller gets wrong, for every operation ----------------------------------------------

BODY_METHODS = {"post", "put", "patch"}


def example(parameter: dict[str, Any]) -> str:
    schema = parameter.get("schema", {})
    kinds = {schema.get("type"), *(s.get("type") for s in schema.get("anyOf", []))}
    formats = {schema.get("format"), *(s.get("format") for s in schema.get("anyOf", []))}
    if "uuid" in formats:
        return str(uuid.uuid4())  # nobody's
    if "date" in formats:
        return "2999-01-01"  # a day that has not begun: nothing is made of it
    if "integer" in kinds:
        return str(random.randint(10**8, 10**9))
    if "enum" in schema:
        return str(schema["enum"][0])
    return f"zz-{uuid.uuid4().hex[:12]}"


def bad_value(parameter: dict[str, Any]) -> str | None:
    """A value of the wrong kind for ``parameter`` (None: it takes any text)."""
    schema = parameter.get("schema", {})
    formats = {schema.get("format"), *(s.get("format") for s in schema.get("anyOf", []))}
    kinds = {schema.get("type"), *(s.get("type") for s in schema.get("anyOf", []))}
    if formats & {"uuid", "date"} or "integer" in kinds or "enum" in schema or "pattern" in schema:
        return "not~valid"
    return None


def probes(
    document: dict[str, Any],
    path: str,
    method: str,
    operation: dict[str, Any],
    issuer: DevIssuer,
    *,
    body_limit: int | None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what, request) for each thing a caller can get wrong on an operation: no token, a forged
    one, a role or a mission not admitted, a body that is not JSON or of the wrong kind or over
    ``body_limit``, a parameter of the wrong kind or missing; and the request as admitted, with ids
    nobody has (each call makes new ones) and an empty body."""
    params = [p for p in operation.get("parameters", []) if p["in"] in ("path", "query", "header")]
    path_values = {p["name"]: example(p) for p in params if p["in"] == "path"}
    url = path.format(**path_values)
    scope = document["info"].get("x-corridor-scope", {})
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
    required = {p["name"]: example(p) for p in params if p["in"] in ("query", "header") and p.get("required")}
    queries = {
        k: v for k, v in required.items() if any(p["name"] == k and p["in"] == "query" for p in params)
    }
    headers = {k: v for k, v in required.items() if k not in queries}
    if "x-purpose" in {k.lower() for k in headers}:
        headers = {k: ("case_management" if k.lower() == "x-purpose" else v) for k, v in headers.items()}
    base = {"url": url, "params": queries, "headers": {**admitted, **headers}}
    streams = "text/event-stream" in operation["responses"].get("200", {}).get("content", {})
    if not streams:  # a stream admitted never ends: its refusals are all it has to check here
        yield "as admitted, ids nobody has", {**base, "json": {}} if method in BODY_METHODS else base
    if method in BODY_METHODS or "requestBody" in operation:
        json_headers = {**base["headers"], "Content-Type": "application/json"}
        yield "a body that is not JSON", {**base, "headers": json_headers, "content": b"{not json"}
        yield "a body of the wrong kind", {**base, "json": ["a", "list"]}
    if body_limit is not None and body_limit <= 2**20:
        big = b'{"x": "' + b"x" * body_limit + b'"}'
        yield (
            "a body over the limit",
            {**base, "headers": {**base["headers"], "Content-Type": "application/json"}, "content": big},
        )
    for p in params:
        bad = bad_value(p)
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


def documents_by_port(services: dict[int, str]) -> Callable[[httpx.URL], dict[str, Any] | None]:
    """The OpenAPI document of the service at a URL (``services``: port -> base URL), each read
    once, when first asked for."""
    read: dict[int, dict[str, Any]] = {}

    def document(url: httpx.URL) -> dict[str, Any] | None:
        port = url.port
        if port is None or port not in services:
            return None
        if port not in read:
            read[port] = httpx.get(services[port] + "/openapi.json", timeout=10.0).raise_for_status().json()
        return read[port]

    return document
