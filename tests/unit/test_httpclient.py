"""The missions' and the tools' HTTP client: one key for every attempt of a command, retried on a
lost answer and on "not now", never on a final answer, and never for ever."""

from __future__ import annotations

import json

import httpx
import pytest

from contracts.httpclient import CommandClient, RetryPolicy, described

FAST = RetryPolicy(attempts=5, timeout=10.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)


def client(answers: list[httpx.Response | Exception], seen: list[httpx.Request]) -> CommandClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return CommandClient("http://intake", token="t", policy=FAST, transport=httpx.MockTransport(handle))


async def test_a_lost_answer_and_a_busy_service_are_retried_with_the_same_key() -> None:
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.ReadTimeout("answer lost"),
        httpx.Response(503, headers={"Retry-After": "0"}, json={"code": "unavailable"}),
        httpx.Response(
            409,
            content=json.dumps({"code": "idempotency_key_in_use", "detail": "still running"}).encode(),
            headers={"Content-Type": "application/problem+json"},
        ),
        httpx.Response(201, json={"event_id": "e-1"}, headers={"Idempotent-Replayed": "true"}),
    ]
    async with client(answers, seen) as corridor:
        r = await corridor.send("POST", "/cases/c/health-evidence", json={"result": "negative"})
    assert (r.status_code, r.json()) == (201, {"event_id": "e-1"})
    keys = {q.headers["Idempotency-Key"] for q in seen}
    assert len(seen) == 4 and len(keys) == 1 and corridor.attempts == 4
    assert {q.headers["Authorization"] for q in seen} == {"Bearer t"}
    # The next command is another key.
    answers.append(httpx.Response(201, json={}))
    async with client(answers, seen) as corridor:
        await corridor.send("POST", "/cases/c/health-evidence", json={"result": "positive"})
    assert seen[-1].headers["Idempotency-Key"] not in keys


@pytest.mark.parametrize("status", [400, 404, 409, 422])
async def test_a_final_answer_is_not_retried(status: int) -> None:
    seen: list[httpx.Request] = []
    async with client([httpx.Response(status, json={"code": "idempotency_key_reused"})], seen) as corridor:
        r = await corridor.send("POST", "/requirements", json={})
    assert r.status_code == status and len(seen) == 1


async def test_retries_are_bounded() -> None:
    seen: list[httpx.Request] = []
    async with client([httpx.Response(503) for _ in range(10)], seen) as corridor:
        r = await corridor.send("DELETE", "/hold-list/X1")
    assert r.status_code == 503 and len(seen) == FAST.attempts
    seen.clear()
    with pytest.raises(httpx.ConnectError):
        async with client([httpx.ConnectError("down") for _ in range(10)], seen) as corridor:
            await corridor.send("DELETE", "/hold-list/X1", key="mine")
    assert len(seen) == FAST.attempts and {q.headers["Idempotency-Key"] for q in seen} == {"mine"}


def test_a_refusal_is_described_by_its_code_and_detail() -> None:
    refused = httpx.Response(
        403,
        content=json.dumps({"status": 403, "code": "role_not_allowed", "detail": "for: caseworker"}).encode(),
        headers={"Content-Type": "application/problem+json"},
    )
    assert described(refused) == "403 role_not_allowed: for: caseworker"
    assert described(httpx.Response(502, text="<html>bad gateway</html>")) == "502 <html>bad gateway</html>"
