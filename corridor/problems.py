"""Every error a Corridor service answers, in one shape: RFC 9457 problem details
(``application/problem+json``), with a machine-readable ``code`` a caller acts on.

One model (``Problem``) for every refusal and failure, whichever part of the service answers it:
the authentication middleware (401, 503 when the issuer's keys cannot be fetched), a route's rule
(403), the body limit (413), FastAPI's validation and ours (422, the fields at fault in
``errors``), the ``Idempotency-Key`` checks (409, 422), a use case's refusal (404, 409, 410, 422:
``corridor.errors``), a database that is away (503) and the unexpected (500). ``code`` is the
contract: a client branches on it, never on ``detail`` (words for a person) or ``title``.

The OpenAPI document says so route by route (``install``): every operation lists every status it
can answer, each with this schema, derived from what the route is made of (a rule: 401, 403 and
503; parameters or a body: 422; a body: 400; the body limit: 413; an ``Idempotency-Key``: 409;
any route: 500), plus the refusals the route declares where it calls the use cases that raise them
(``responses={404: {"description": ...}}``). ``tests/unit/test_problem_answers.py`` and
``tests/integration/test_problem_answers.py`` walk every route and fail on an answer it does not
list.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "tag:corridor,2026:problem:"
"""A problem's ``type`` is this and its code: a URI that names the problem and is not fetched
(RFC 9457 §3.1.1 allows a tag URI, RFC 4151); ``docs/integration.md`` lists the codes."""

VALIDATION = "invalid_request"
"""The code of FastAPI's own validation errors: a parameter or a body that breaks its schema."""


class FieldError(BaseModel):
    """One value at fault: where (``["body", "members", 0, "sex"]``), why, and the constraint it
    broke. Never the value itself: an error is logged and shown where personal data must not go."""

    loc: list[str | int]
    msg: str
    type: str
    ctx: dict[str, Any] | None = Field(
        default=None, description="The constraint checked (a length, a pattern)"
    )


class Problem(BaseModel):
    """RFC 9457 problem details, with Corridor's extensions: ``code`` always, ``errors`` for a 422
    naming fields, and what a particular refusal adds for a caller to act on (``waiting``,
    ``departure``, ``retry``)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    type: str = Field(description=f"A URI naming the problem: {TYPE_PREFIX}<code>")
    title: str = Field(description="A short summary of the problem's type (the HTTP status's phrase)")
    status: int = Field(description="The HTTP status code")
    detail: str = Field(description="This occurrence, in words for a person")
    instance: str = Field(
        description="This occurrence (urn:uuid:...): a service logs it with a 5xx, for a caller to quote"
    )
    code: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Machine-readable: what a client branches on (e.g. unauthenticated, role_not_allowed, "
        "invalid_request, idempotency_key_reused, unavailable, too_large, case_not_found)",
    )
    errors: list[FieldError] | None = Field(default=None, description="422: every value at fault")


def body(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[Any] | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """A problem as a JSON object."""
    out: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": _title(status),
        "status": status,
        "detail": detail,
        # Not the request's path: a path may carry personal data (a document number), and problems
        # are logged and shown where that must not go.
        "instance": instance or occurrence(),
        "code": code,
    }
    if errors is not None:
        out["errors"] = errors
    out.update({k: v for k, v in extensions.items() if k not in out})
    return out


def occurrence() -> str:
    """A new occurrence's ``instance``."""
    return f"urn:uuid:{uuid.uuid4()}"


def render(problem: dict[str, Any]) -> bytes:
    # ASCII and finite: an error text may carry an unpaired surrogate or a NaN it was sent, and
    # rendering the answer must not fail on them (it answered 500 once).
    return json.dumps(_finite(jsonable_encoder(problem)), ensure_ascii=True, allow_nan=False).encode()


def response(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: list[Any] | None = None,
    **extensions: Any,
) -> Response:
    """A problem as an answer (``instance``: the occurrence, when it was logged; else a new one)."""
    problem = body(status, code, detail, instance=instance, errors=errors, **extensions)
    return Response(render(problem), status_code=status, media_type=MEDIA_TYPE, headers=headers)


Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def send(
    scope: MutableMapping[str, Any],
    send: Send,
    status: int,
    code: str,
    detail: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
    *,
    instance: str | None = None,
) -> None:
    """A problem answered by ASGI middleware (authentication, the body limit), before any route."""
    payload = render(body(status, code, detail, instance=instance))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def code_of_status(status: int) -> str:
    """The code of an answer nothing more specific names (Starlette's 404 and 405)."""
    return _title(status).lower().replace(" ", "_").replace("-", "_")


def snake(name: str) -> str:
    """``CaseNotFound`` -> ``case_not_found``: a domain error's code is its class's name."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# --- validation errors, without what was sent ---------------------------------------------------

# Context a validation error may keep: the constraint it checked, never the value it was given.
_CONSTRAINTS = frozenset(
    {
        "min_length",
        "max_length",
        "pattern",
        "ge",
        "gt",
        "le",
        "lt",
        "multiple_of",
        "max_digits",
        "decimal_places",
        "whole_digits",
        "expected",
        "field_type",
    }
)


def field_errors(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """FastAPI's (pydantic's) errors as ``FieldError``s: location, message, type and the
    constraint named; never the input (for a missing field, the default body echoes the whole
    person: names, birth date, passport zone)."""
    return [_without_input(e) for e in errors]


def _without_input(error: Any) -> dict[str, Any]:
    if not isinstance(error, dict):
        return {"loc": ["body"], "msg": str(error), "type": "value_error"}
    kept: dict[str, Any] = {
        "loc": [p if isinstance(p, int) else str(p) for p in error.get("loc", ())],
        "msg": str(error.get("msg", "")),
        "type": str(error.get("type", "value_error")),
    }
    ctx = error.get("ctx")
    if isinstance(ctx, dict):
        constraints = {k: _constraint(v) for k, v in ctx.items() if k in _CONSTRAINTS}
        if constraints:
            kept["ctx"] = constraints
    return kept


def _constraint(value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def invalid_request(errors: list[Any], *, code: str = VALIDATION) -> Response:
    """A 422 naming every value at fault."""
    n = len(errors)
    detail = f"{n} value{'s' if n != 1 else ''} at fault: see errors"
    return response(422, code, detail, errors=errors)


class Refused(HTTPException):
    """A refusal a route raises itself, with its code (for an application without use cases;
    a service's use cases raise ``corridor.errors``)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(status, detail)
        self.code = code


# --- the handlers every Corridor application installs --------------------------------------------


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return invalid_request(field_errors(exc.errors()))


async def _http_error(_: Request, exc: Exception) -> Response:
    """Starlette's own answers (a path no route has, a method the route does not take) and any
    ``HTTPException`` a route raises, as problems."""
    assert isinstance(exc, HTTPException)
    phrase = _title(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    code = getattr(exc, "code", None) or code_of_status(exc.status_code)
    return response(exc.status_code, code, detail, headers=exc.headers)


def install(app: FastAPI, *, body_limit: bool = False) -> None:
    """Problems for FastAPI's and Starlette's own errors, and every error response of ``app``'s
    OpenAPI document documented with the ``Problem`` schema. ``body_limit``: every request's body
    has a limit (``corridor.runtime.BodyLimit``), so every operation can answer 413."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    build = app.openapi
    done: list[dict[str, Any]] = []  # FastAPI keeps the document it built: completed once

    def openapi() -> dict[str, Any]:
        document = build()
        if not any(d is document for d in done):
            _document(document, body_limit=body_limit)
            done.append(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


# --- the OpenAPI document ------------------------------------------------------------------------

_WHY: dict[int, str] = {
    400: "The body cannot be read (bad_request: e.g. not UTF-8), or is not what the route reads",
    401: "No bearer token, or one that does not verify (WWW-Authenticate says why)",
    403: "The token's roles, mission or checkpoint are not admitted here",
    404: "What the request names does not exist here",
    409: "The request does not fit the state it would change, or a request with this "
    "Idempotency-Key is still running (idempotency_key_in_use: retry after Retry-After)",
    410: "Gone for good (personal data erased)",
    413: "The request body is larger than this route takes",
    415: "A content type this route does not take",
    422: "A value breaks its schema or a rule (errors names each), or an Idempotency-Key used for "
    "a different request (idempotency_key_reused)",
    500: "An unexpected failure (internal_error); nothing about it is told",
    503: "Temporarily unavailable (a database or the identity provider away): retry after Retry-After",
}


def _document(document: dict[str, Any], *, body_limit: bool) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas["Problem"] = schema
    for schema_name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(schema_name, None)  # FastAPI's 422 shape: replaced by Problem everywhere
    content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in _derived(operation, body_limit=body_limit):
                responses.setdefault(str(status), {})
            for status, answer in responses.items():
                if not status.isdigit() or int(status) < 400:
                    continue
                answer.setdefault("description", _WHY.get(int(status), _title(int(status))))
                kept = answer.get("content") or {}
                if not kept or _is_fastapis_validation(kept):
                    answer["content"] = content
            operation["responses"] = dict(sorted(responses.items()))


def _derived(operation: dict[str, Any], *, body_limit: bool) -> list[int]:
    """The statuses an operation can answer by what it is made of."""
    statuses: list[int] = [500]
    guarded = "x-corridor-roles" in operation
    if guarded:
        statuses += [401, 403, 503]  # the token is checked (503: the issuer's keys away)
    if operation.get("parameters") or "requestBody" in operation:
        statuses.append(422)
    if "requestBody" in operation:
        statuses.append(400)  # FastAPI's answer to a body it cannot decode (not UTF-8)
    if body_limit:
        # Checked before any route, whatever the method: a GET sent with a body is measured too.
        statuses.append(413)
    if (operation.get("x-idempotency") or {}).get("kind") == "key":
        statuses += [409, 422]
    return statuses


def _is_fastapis_validation(content: dict[str, Any]) -> bool:
    schema = (content.get("application/json") or {}).get("schema") or {}
    return schema.get("$ref", "").endswith("/HTTPValidationError")
