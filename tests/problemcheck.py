"""What the tests check of every error answer: RFC 9457 problem details (``corridor.problems``)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Generator
from typing import Any

import httpx

from corridor import problems


def problem(response: httpx.Response) -> dict[str, Any]:
    """The answer's problem, after checking it is one: the media type, the ``Problem`` schema, its
    status the answer's, its type named by its code."""
    assert response.headers.get("content-type") == problems.MEDIA_TYPE, (response.status_code, response.text)
    body = response.json()
    problems.Problem.model_validate(body)
    assert body["status"] == response.status_code, body
    assert body["type"] == problems.TYPE_PREFIX + body["code"], body
    assert isinstance(body, dict)
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
    """An ``httpx.Auth`` around another (``RoleAuth``) that checks every answer against the
    service's OpenAPI document: a test that meets an undocumented status or an error that is not
    a problem fails where it met it."""

    requires_response_body = True

    def __init__(self, inner: httpx.Auth, document: Callable[[], dict[str, Any]]) -> None:
        self.inner = inner
        self.document = document

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self.inner.auth_flow(request)
        prepared = next(flow)
        response = yield prepared
        with contextlib.suppress(StopIteration):
            flow.send(response)
        why = undocumented(self.document(), request.method, request.url.path, response)
        assert why is None, why
