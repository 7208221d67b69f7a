"""Sending commands to Corridor's HTTP APIs over links that drop, for missions' and border posts'
systems and for Corridor's own command-line tools.

Every command gets one ``Idempotency-Key`` (a UUID) for all its attempts, so an attempt whose
answer was lost can be sent again without doing the command twice (``corridor.idempotency`` on the
service's side: a repeat is answered the first attempt's status and body). Attempts are retried on
a lost connection or answer (any transport error, a timeout included), on 502/503/504 and 429, and
on 409 ``idempotency_key_in_use`` (the first attempt still running), with exponential backoff and
jitter (``stamina``), a ``Retry-After`` the service sends honoured, bounded in attempts and time.
Any other answer is final and returned as it is.

    async with CommandClient("https://intake.corridor.example", token=token) as corridor:
        r = await corridor.send("POST", f"/cases/{case_id}/health-evidence", json=evidence)
        r.raise_for_status()
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import stamina

KEY_HEADER = "Idempotency-Key"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
KEY_IN_USE = "idempotency_key_in_use"
PROBLEM = "application/problem+json"
"""Every refusal of a Corridor service (RFC 9457, with a machine-readable ``code``)."""


class RetryableAnswer(Exception):
    """An answer that says "not now": the same request (same key) is sent again."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} from {response.request.method} {response.request.url}")
        self.response = response


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying one command: at most ``attempts`` attempts within ``timeout``
    seconds, waiting ``wait_initial`` doubling up to ``wait_max``, plus up to ``wait_jitter`` at
    random (so that posts that lost their link together do not all come back at once)."""

    attempts: int = 8
    timeout: float = 120.0
    wait_initial: float = 0.5
    wait_max: float = 15.0
    wait_jitter: float = 1.0

    def attempts_of(self) -> Any:
        """``for``/``async for attempt in policy.attempts_of(): with attempt: ...``"""
        return stamina.retry_context(
            on=self.backoff,
            attempts=self.attempts,
            timeout=self.timeout,
            wait_initial=self.wait_initial,
            wait_max=self.wait_max,
            wait_jitter=self.wait_jitter,
        )

    def backoff(self, exc: Exception) -> bool | float:
        """Whether to retry after ``exc``, or after how long (the service's ``Retry-After``)."""
        if isinstance(exc, httpx.TransportError):
            return True  # no answer (or not all of it): whether it took effect is unknown
        if isinstance(exc, RetryableAnswer):
            after = exc.response.headers.get("Retry-After", "")
            return min(float(after), self.wait_max) if after.isdigit() else True
        return False


def retryable(response: httpx.Response) -> bool:
    if response.status_code in RETRY_STATUSES:
        return True
    # Corridor's refusals are problem details (application/problem+json) with a machine-readable code.
    if response.status_code == 409 and response.headers.get("content-type", "").split(";")[0].endswith(
        "json"
    ):
        body = response.json()
        return isinstance(body, dict) and body.get("code") == KEY_IN_USE
    return False


def described(response: httpx.Response) -> str:
    """An answer in one line for a person: ``403 role_not_allowed: this operation is for: ...`` for
    a Corridor refusal (a problem with a code), else the status and the start of the body."""
    media = response.headers.get("content-type", "").split(";")[0].strip()
    if media == PROBLEM:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            return f"{response.status_code} {body['code']}: {body.get('detail', '')}"
    return f"{response.status_code} {response.text[:300]}"


def new_key() -> str:
    return str(uuid.uuid4())


class CommandClient(AbstractAsyncContextManager["CommandClient"]):
    """An async client of one Corridor service that retries every command with its key."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | Callable[[], str],
        policy: RetryPolicy = RetryPolicy(),
        request_timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self._token = token
        self._http = httpx.AsyncClient(base_url=base_url, timeout=request_timeout, transport=transport)
        self.attempts = 0
        """Attempts sent so far (every retry counted): for the caller's figures."""

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    def _headers(self, key: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        token = self._token() if callable(self._token) else self._token
        headers = {"Authorization": f"Bearer {token}", **(extra or {})}
        if key is not None:
            headers[KEY_HEADER] = key
        return headers

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send a command until it is answered for good; every attempt carries the same key
        (``key``, or a new one). Returns the final answer (the last one when the policy gives
        up on "not now" answers); raises the last transport error when none came."""
        key = key or new_key()
        try:
            async for attempt in self.policy.attempts_of():
                with attempt:
                    self.attempts += 1
                    response = await self._http.request(
                        method, path, json=json, headers=self._headers(key, headers)
                    )
                    if retryable(response):
                        raise RetryableAnswer(response)
        except RetryableAnswer as exc:
            return exc.response
        return response

    async def read(
        self, path: str, *, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """A GET, retried like a command (a read is safe to repeat)."""
        try:
            async for attempt in self.policy.attempts_of():
                with attempt:
                    self.attempts += 1
                    response = await self._http.get(path, params=params, headers=self._headers(None, headers))
                    if retryable(response):
                        raise RetryableAnswer(response)
        except RetryableAnswer as exc:
            return exc.response
        return response
