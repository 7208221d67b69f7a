"""Bad input over HTTP: every service's API fuzzed from its own OpenAPI document.

Schemathesis reads ``/openapi.json`` from each running service and generates, per operation,
requests that fit the schema ("valid"), requests it forbids ("invalid"), and valid requests
"steered" past the rules a schema cannot express (a configured route, one principal applicant,
dates ahead) with hostile strings where the schema allows any (NUL, unpaired surrogates, 5 kB).
No answer may be a 5xx, and every answer must be one the route documents: its status listed, its
content type the one listed for that status (``application/problem+json`` for every error), its
body valid against that status's schema.

Every operation is fuzzed authenticated, with a token of the first role its rule admits (read from
the same document, ``x-corridor-roles``): without one, every request would stop at the 401 and the
fuzzing would reach nothing behind it. The same generated requests are also sent with no token and
with tokens that do not verify: every one of those must be a 401, whatever else is wrong with it.

Bounded and repeatable: a fixed number of examples per operation and mode (the four border posts
run the same code: the first gets the full budget, the others a smoke run), generated
derandomized, without shrinking: every failing request is collected, with a curl command to
reproduce it, instead of stopping at the first. What a request creates that other tests would
feel (a border requirement, a hold-list entry) is confined to the far future or to documents no
test issues, and removed afterwards.

``POST /inbound/status-changes`` reads its body raw (a structured-mode CloudEvent); its document
describes that body, which schemathesis fuzzes like any other, and a fixed corpus of bad bodies
covers what a schema cannot say (nesting, surrogates, sizes, a case not ready yet).

Drives schemathesis through ``APIOperation.as_strategy()`` and Hypothesis: ``schema.parametrize()``
needs the schema at import time (the services start in a fixture) and the lazy
``schemathesis.pytest.from_fixture`` fails under pytest 9.2 (it sets ``Node._nodeid``).
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from contracts.missions import CaseStatusReported
from corridor.auth import Role
from devkit import scenario
from devkit.devidp import DevIssuer, OperationRules
from devkit.devstack import Stack
from tests.conftest import report_figure
from tests.integration.bad_input import FAR_FUTURE, RECEPTION, ROUTES
from tests.problemcheck import problem

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = 20  # per operation and mode
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The border posts run the same code: the first one gets the full budget, the others a smoke run.
MAX_EXAMPLES_REPEATED = 5
MODES = ("valid", "invalid", "steered")
REQUEST_TIMEOUT = 10.0

SERVICES = [
    "intake",
    "eligibility",
    "transport",
    *sorted({f"border-{cp.checkpoint_id}" for r in ROUTES.routes for cp in r.checkpoints}),
]

SECTION = "bad input over HTTP"


def _counts() -> dict[str, Any]:
    return {"operations": 0, "requests": 0, "status": Counter(), "modes": Counter()}


def _report(name: str, figures: dict[str, Any]) -> None:
    classes: Counter[str] = Counter()
    for code, n in figures["status"].items():
        classes[f"{code // 100}xx"] += n
    modes = ", ".join(f"{figures['modes'][m]} {m}" for m in (*MODES, "corpus") if figures["modes"][m])
    codes = " ".join(f"{code}:{n}" for code, n in sorted(figures["status"].items()))
    report_figure(
        SECTION,
        f"{name}: {figures['requests']} requests on {figures['operations']} operations ({modes}); "
        f"answers {classes['2xx']} 2xx, {classes['4xx']} 4xx, {classes['5xx']} 5xx ({codes})",
    )


def _record(figures: dict[str, Any], mode: str, status: int) -> None:
    figures["requests"] += 1
    figures["modes"][mode] += 1
    figures["status"][status] += 1


# Strings that reach past the schema: PostgreSQL refuses NUL and unpaired surrogates, UTF-8 cannot
# carry a surrogate, and long or odd strings find truncation and escaping bugs.
HOSTILE_TEXT = [
    "\x00",
    "a\x00b",
    "x" * 5000,
    "%00",
    "../..",
    "' OR '1'='1",
    "\u202e\u0000",
    " ",
    "\U0001f600",
]
HOSTILE_JSON = [*HOSTILE_TEXT, "\ud800", "a\udfffb"]  # only JSON can carry unpaired surrogates
# In a path parameter, "../.." is resolved by the client (urllib3 removes dot segments): the request
# goes to another route, and its answer would be checked against the wrong operation's schema.
HOSTILE_SEGMENTS = [text for text in HOSTILE_TEXT if "/" not in text]
ROUTE_IDS = [r.route_id for r in ROUTES.routes]
# Dates steered into this range: no other test plans movements this far ahead.
FAR_FUTURE_DATES = st.dates(min_value=date(2900, 1, 1), max_value=date(2999, 12, 31))


def _steer(request: dict[str, Any], data: st.DataObject) -> None:
    """Take a valid request past the rules its schema cannot express (a configured route, exactly
    one principal applicant, a travel date ahead and a birth date behind), and in half of them put
    hostile strings where the schema allows any string."""
    hostile = data.draw(st.booleans())
    for key, value in list((request.get("params") or {}).items()):
        if hostile and isinstance(value, str) and data.draw(st.booleans()):
            request["params"][key] = data.draw(st.sampled_from(HOSTILE_TEXT))
    body = request.get("json")
    if not isinstance(body, dict):
        request["json"] = _contained(body)
        return
    members = body.get("members")
    if isinstance(members, list):
        for i, member in enumerate(m for m in members if isinstance(m, dict)):
            member["role"] = "principal" if i == 0 else "child"
    request["json"] = _contained(_steer_json(body, data, hostile))


def _contained(body: Any) -> Any:
    """What other tests would feel stays out of their way: a travel or departure date within the
    next years (planning takes every ready case of a day) moves to the far future, a border
    requirement takes effect only then (every case on the route is re-evaluated against it), and a
    document put on a hold list is one no other test issues."""
    if isinstance(body, list):
        return [_contained(item) for item in body]
    if not isinstance(body, dict):
        return body
    body = {k: _contained(v) for k, v in body.items()}
    for key in ("planned_travel_date", "departure_date", "effective_from"):
        if isinstance(body.get(key), str) and _soon(body[key]):
            body[key] = "2990-01-01"
    if isinstance(body.get("document_number"), str):
        body["document_number"] = "FZ" + body["document_number"][:18]
    return body


def _soon(value: str) -> bool:
    try:
        return date.fromisoformat(value) < date(2900, 1, 1)
    except ValueError:
        return False


# What a successful request created that must be removed again, as a "METHOD path".
UNDO: dict[str, Callable[[dict[str, Any]], str]] = {
    "POST /requirements": lambda body: f"DELETE /requirements/{body['requirement_id']}",
    "PUT /hold-list": lambda body: f"DELETE /hold-list/{quote(body['document_number'], safe='')}",
}


def _steer_json(value: Any, data: st.DataObject, hostile: bool, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _steer_json(v, data, hostile, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_steer_json(v, data, hostile, key) for v in value]
    if not isinstance(value, str):
        return value
    if key == "route_id":
        return data.draw(st.sampled_from(ROUTE_IDS))
    if key in ("planned_travel_date", "departure_date"):
        return data.draw(FAR_FUTURE_DATES).isoformat()
    if key == "birth_date":
        return data.draw(st.dates(date(1920, 1, 1), date(2020, 1, 1))).isoformat()
    if key != "role" and hostile and data.draw(st.integers(0, 3)) == 0:
        return data.draw(st.sampled_from(HOSTILE_JSON))
    return value


def _fuzz(
    operation: Any,
    mode: str,
    examples: int,
    url: str,
    session: requests.Session,
    figures: dict[str, Any],
    undo: list[str],
    seen: Counter[int] | None = None,
    authorization: str | None = None,
) -> list[str]:
    """Send up to ``examples`` generated requests; return the failures, each with a curl command.
    Adds to ``undo`` what must be deleted afterwards, and each answer's status to ``seen``.

    ``authorization``: the ``Authorization`` header every request carries, in place of whatever
    schemathesis generates for the bearer scheme (a random token); "" for none at all."""

    def authorise(headers: dict[str, Any] | None) -> dict[str, Any]:
        kept = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        return {**kept, "Authorization": authorization} if authorization else kept

    failures: list[str] = []
    generation = (
        schemathesis.GenerationMode.NEGATIVE if mode == "invalid" else schemathesis.GenerationMode.POSITIVE
    )

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=generation), data=st.data())
    def send(case: Any, data: st.DataObject) -> None:
        if mode == "steered":
            # Sent as prepared: schemathesis would re-validate the edited case, and its validator
            # cannot take the unpaired surrogates that JSON (and so this request) can carry.
            for key, value in list((case.path_parameters or {}).items()):
                if isinstance(value, str) and data.draw(st.booleans()):
                    case.path_parameters[key] = data.draw(st.sampled_from(HOSTILE_SEGMENTS))
            request = case.as_transport_kwargs(base_url=url)
            if authorization is not None:
                request["headers"] = authorise(request.get("headers"))
            _steer(request, data)
            response = session.request(**request, timeout=REQUEST_TIMEOUT)
        else:
            if isinstance(case.body, dict | list):
                case.body = _contained(case.body)
            if authorization is not None:
                case.headers = authorise(case.headers)
            response = case.call(base_url=url, session=session, timeout=REQUEST_TIMEOUT)
        _record(figures, mode, response.status_code)
        if seen is not None:
            seen[response.status_code] += 1
        if response.status_code < 300 and operation.label in UNDO:
            undo.append(UNDO[operation.label](response.json()))
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:
            failures.append(f"{mode} {operation.label}: {exc}")

    try:
        send()
    except Unsatisfiable:
        pass  # nothing invalid can be sent to an operation without parameters or body
    return failures


def _token_for(stack: Stack, rules: OperationRules, operation: Any) -> str | None:
    """A token of the first role the operation's rule admits, where the service's roles hold."""
    roles = rules.roles_for(operation.method.upper(), operation.path)
    if not roles:
        return None  # public (the health checks)
    checkpoint = rules.checkpoint if roles[0] == Role.BORDER_OFFICER else None
    return stack.issuer.token(roles[0], rules.mission, checkpoint, subject="fuzzer")


@pytest.mark.parametrize("name", SERVICES)
def test_fuzzed_requests_get_no_5xx(name: str, stack: Stack) -> None:
    url = stack.url(name)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    rules = OperationRules(httpx.get(f"{url}/openapi.json").json())
    figures = _counts()
    failures: list[str] = []
    undo: list[str] = []
    repeated = name.startswith("border-") and name != SERVICES[3]
    examples = MAX_EXAMPLES_REPEATED if repeated else MAX_EXAMPLES
    try:
        with requests.Session() as session:
            for result in schema.get_all_operations():
                operation = result.ok()
                figures["operations"] += 1
                token = _token_for(stack, rules, operation)
                authorization = f"Bearer {token}" if token else ""
                for mode in MODES:
                    failures += _fuzz(
                        operation, mode, examples, url, session, figures, undo, authorization=authorization
                    )
        assert figures["status"][401] == 0, f"{figures['status'][401]} authenticated requests answered 401"
    finally:
        _report(name, figures)
        with httpx.Client(timeout=REQUEST_TIMEOUT, auth=stack.role_auth()) as client:
            for action in undo:
                method, path = action.split(" ", 1)
                assert client.request(method, url + path).status_code in (200, 404), action
    assert figures["requests"] > 0
    assert not failures, f"{len(failures)} failing request(s) on {name}:\n" + "\n".join(failures[:8])


UNAUTHENTICATED_EXAMPLES = 4  # per operation and mode, per kind of caller


@pytest.mark.parametrize("name", SERVICES)
def test_fuzzed_requests_without_a_valid_token_are_all_401(name: str, stack: Stack, tmp_path: Path) -> None:
    """The fuzzer's requests (valid and invalid alike) from callers who cannot prove who they are:
    every one a 401, nothing read before it, so nothing generated reaches a route."""
    url = stack.url(name)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    rules = OperationRules(httpx.get(f"{url}/openapi.json").json())
    stranger = DevIssuer(tmp_path / "stranger")
    callers = {
        "no token": None,
        "expired": stack.issuer.token(None, rules.mission, roles=[r.value for r in Role], lifetime=-120),
        "another issuer's": stranger.token(None, rules.mission, roles=[r.value for r in Role]),
    }
    figures = _counts()
    answers: Counter[int] = Counter()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            if not rules.roles_for(operation.method.upper(), operation.path):
                continue  # the public health checks
            figures["operations"] += 1
            for token in callers.values():
                authorization = f"Bearer {token}" if token else ""
                for mode in ("valid", "invalid"):
                    seen = Counter[int]()
                    _fuzz(
                        operation,
                        mode,
                        UNAUTHENTICATED_EXAMPLES,
                        url,
                        session,
                        figures,
                        [],
                        seen,
                        authorization=authorization,
                    )
                    answers.update(seen)
    report_figure(
        "HTTP authorisation",
        f"  unauthenticated fuzzing, {name}: {sum(answers.values())} requests on {figures['operations']} "
        f"operations ({', '.join(callers)}): {dict(answers)}",
    )
    assert sum(answers.values()) > 0
    assert set(answers) == {401}, dict(answers)


def _inbound_corpus(case_id: str) -> list[tuple[str, bytes]]:
    """Bodies for the raw structured-mode ingest, each bad in its own way; ``case_id`` is a case
    that exists (just registered), so that the checks behind the envelope's are reached too."""

    def _structured(**override: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": RECEPTION,
            "type": CaseStatusReported.event_type,
            "data": {"case_id": case_id, "status": "received", "occurred_at": datetime.now(UTC).isoformat()},
        }
        event.update(override)
        return event

    data = _structured()["data"]

    def enc(value: Any) -> bytes:
        return json.dumps(value).encode()

    return [
        ("empty body", b""),
        ("malformed JSON", b'{"specversion": "1.0", '),
        ("not UTF-8", b'{"id": "\xff\xfe"}'),
        ("JSON array", enc([_structured()])),
        ("JSON number", b"42"),
        ("JSON null", b"null"),
        ("NaN in data", enc(_structured()).replace(b'"received"', b"NaN")),
        ("deeply nested JSON", b"[" * 100_000 + b"]" * 100_000),
        ("deeply nested data", enc(_structured(data=None)).replace(b"null", b"[" * 50_000 + b"]" * 50_000)),
        ("no data member", enc({k: v for k, v in _structured().items() if k != "data"})),
        ("data is a string", enc(_structured(data="received"))),
        ("missing id", enc({k: v for k, v in _structured().items() if k != "id"})),
        ("empty source", enc(_structured(source=""))),
        ("specversion 0.3", enc(_structured(specversion="0.3"))),
        ("specversion as number", enc(_structured(specversion=1.0))),
        ("unknown type", enc(_structured(type="org.example.teleported.v1"))),
        ("type of another event", enc(_structured(type="org.corridor.case.status-changed.v1"))),
        ("type with a surrogate", enc(_structured(type="org.corridor.\ud800"))),
        ("NUL in id", enc(_structured(id="a\x00b"))),
        ("surrogate in id", enc(_structured(id="\udfff"))),
        ("NUL in source", enc(_structured(source="/missions/TJK/\x00"))),
        ("id of 100 kB, compressible", enc(_structured(id="i" * 100_000))),
        ("id of 10 kB, random", enc(_structured(id=random.Random(7).randbytes(5_000).hex()))),
        ("time not RFC 3339", enc(_structured(time="yesterday"))),
        ("time out of range", enc(_structured(time="0001-01-01T00:00:00+14:00"))),
        ("status not reportable", enc(_structured(data={**data, "status": "teleported"}))),
        ("case_id not a UUID", enc(_structured(data={**data, "case_id": "case-1"}))),
        ("occurred_at without offset", enc(_structured(data={**data, "occurred_at": "2030-01-01T00:00:00"}))),
        (
            "occurred_at out of range",
            enc(_structured(data={**data, "occurred_at": "0001-01-01T00:00:00+14:00"})),
        ),
        ("reason of 100 kB", enc(_structured(data={**data, "reason": "r" * 100_000}))),
        ("NUL in reason", enc(_structured(data={**data, "reason": "a\x00b"}))),
        ("unknown case", enc(_structured(data={**data, "case_id": str(uuid.uuid4())}))),
        ("received before arrival", enc(_structured())),
        ("unauthorised source", enc(_structured(source="/missions/UZB/reception"))),
        ("oversized body (900 kB)", enc(_structured(padding="p" * 900_000))),
        ("body over the limit (2 MB)", enc(_structured(padding="p" * 2_000_000))),
    ]


def test_structured_ingest_answers_every_bad_body_with_a_4xx_and_an_early_one_with_503(stack: Stack) -> None:
    url = stack.url("intake") + "/inbound/status-changes"
    figures = _counts()
    figures["operations"] = 1
    answers: dict[str, int] = {}
    # TJK's integration client: RECEPTION is TJK's, so the source is its own
    tjk = stack.headers(Role.INTEGRATION_CLIENT, mission="TJK", subject="tjk-fuzzer")
    with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
        registered = client.post(
            stack.url("intake") + "/cases",
            json=scenario.single_traveller(FAR_FUTURE),
            headers=scenario.caseworker(stack),
        )
        assert registered.status_code == 201, registered.text
        for what, body in _inbound_corpus(registered.json()["case_id"]):
            response = client.post(
                url, content=body, headers={"content-type": "application/cloudevents+json", **tjk}
            )
            _record(figures, "corpus", response.status_code)
            answers[what] = response.status_code
            code = problem(response)["code"] if response.status_code >= 400 else "-"
            report_figure(SECTION, f"  POST /inbound/status-changes, {what}: {response.status_code} {code}")
    _report("intake POST /inbound/status-changes (fixed corpus)", figures)
    # A report the case is not ready for yet is not refused: "try again later" (503, Retry-After).
    # So are the bodies whose oddity Corridor can carry (a long but indexable id, a CloudEvents
    # time it does not use, a large extension): only the case's state holds them back.
    early = (
        "received before arrival",
        "id of 100 kB, compressible",
        "time out of range",
        "oversized body (900 kB)",
    )
    assert {what: answers.pop(what) for what in early} == dict.fromkeys(early, 503)
    assert answers.pop("body over the limit (2 MB)") == 413
    assert answers.pop("unauthorised source") == 403  # UZB's name in TJK's token
    assert all(400 <= status < 500 for status in answers.values()), answers
