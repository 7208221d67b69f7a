"""Safe retries of HTTP commands: the ``Idempotency-Key`` header (IETF httpapi draft
"The Idempotency-Key HTTP Header Field"), the same way in every service.

A client that sends a command and gets no answer (a dropped link, a timeout, a restart) sends it
again with the same key. The first request with a key is executed; its answer (status and body)
is stored in the service's database in the command's own transaction, so the key is recorded if
and only if the command's effect is. Then:

- the same key with the same request (method, path, query, canonical JSON body) is answered the
  stored status and body, with ``Idempotent-Replayed: true``, and changes nothing;
- the same key with a different request is refused: a 422 problem with ``code``
  ``idempotency_key_reused`` (its ``errors`` naming the header);
- a repeat sent while the first is still running waits for it (up to ``WAIT_SECONDS``) and is then
  answered as above; the unique key row is the lock (PostgreSQL makes the second insert wait for the
  first transaction). Past the wait: 409 ``idempotency_key_in_use`` with ``Retry-After``;
- a refused command (4xx from the domain) or a failure stores nothing: its transaction rolled back,
  it had no effect, and a retry is executed afresh.

Keys belong to the caller (mission and token subject): two callers never share one. They expire
``EXPIRY`` after the first request; a periodic sweep deletes them, and an expired key may be used
again as a new one.

Commands with a natural key (a registration key, a movement id, a CloudEvent id) are idempotent
without the header; their routes say so in the OpenAPI document (``natural``), and the test
``tests/unit/test_idempotency_coverage.py`` fails for a command that has neither.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from corridor import problems
from corridor.auth import Principal
from corridor.uow import UnitOfWork

EXPIRY = timedelta(hours=24)
"""How long a key is remembered after its first request."""
WAIT_SECONDS = 10.0
"""How long a repeat waits for the first request with its key to finish."""
SWEEP_SECONDS = 3600.0
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEY_REUSED = "idempotency_key_reused"
KEY_IN_USE = "idempotency_key_in_use"

_DOC = (
    "Makes the command safe to retry: send a unique value (a UUID) and, if no answer came back, the "
    "same request again with the same key. A repeat is answered the first request's status and body "
    f"(with `{REPLAYED}: true`) and changes nothing; the same key with a different request is refused "
    f"(422 `{KEY_REUSED}`); a repeat sent while the first is still running waits for it, up to "
    f"{WAIT_SECONDS:.0f} s (then 409 `{KEY_IN_USE}`, retry after `Retry-After`). Keys are the "
    f"caller's own and expire {EXPIRY.total_seconds() / 3600:.0f} hours after the first request."
)

Key = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=255,
        # Visible ASCII (a UUID fits): the draft's sf-string, without quotes or spaces.
        pattern=r"^[\x21-\x7e]+$",
        description=_DOC,
    ),
]
"""The header as a route parameter; documents it (and its expiry) in the OpenAPI document."""


def keyed(natural: str = "") -> dict[str, Any]:
    """``openapi_extra`` of a command that honours the header (beside the ``Key`` parameter);
    ``natural``: what makes a repeat safe without it, when the request may carry a natural key."""
    return {
        "x-idempotency": {
            "kind": "key",
            "header": HEADER,
            "expires_after_seconds": int(EXPIRY.total_seconds()),
            **({"natural": natural} if natural else {}),
        }
    }


def natural(how: str) -> dict[str, Any]:
    """``openapi_extra`` of a command idempotent by nature: ``how`` says what makes a repeat safe
    and what a repeat answers."""
    return {"x-idempotency": {"kind": "natural", "description": how}}


def merged(*extras: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for extra in extras:
        out.update(extra)
    return out


@dataclass(frozen=True)
class Answer:
    """What a command answers: stored as rendered, so a replay is byte for byte the first answer."""

    body: BaseModel | dict[str, Any] | list[Any]
    status_code: int = 200
    exclude_none: bool = False

    def render(self) -> bytes:
        data: Any = self.body
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json", exclude_none=self.exclude_none)
        return bytes(JSONResponse(data).body)


U = TypeVar("U")


def owner_of(caller: Principal) -> str:
    return f"{caller.mission}:{caller.subject}"


async def fingerprint(request: Request) -> str:
    """The request as far as a repeat must match it: method, path (with its ids), query, and the
    JSON body with its keys sorted (spacing and key order are not a different request)."""
    raw = await request.body()  # Starlette keeps it: the route's own parsing reads it again
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        canonical = body.encode()
    except (ValueError, RecursionError):
        canonical = raw
    query = "&".join(sorted(request.url.query.split("&"))) if request.url.query else ""
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def run(
    request: Request,
    key: str | None,
    caller: Principal,
    units: Callable[[], AbstractAsyncContextManager[U]],
    command: Callable[[U], Awaitable[Answer]],
    *,
    wait_seconds: float = WAIT_SECONDS,
) -> Response:
    """Run ``command`` in a unit of work; with a key, once per key (see the module's doc).

    A transaction PostgreSQL chose as a deadlock's victim (or a serialisation failure) was rolled
    back whole, so it runs again, a few times, before the caller is told 503: a command that locks
    many cases (planning, departure, a vehicle's clearance) meets the consumers' batches, which
    lock in record order."""
    return await retrying_conflicts(lambda: _run_once(request, key, caller, units, command, wait_seconds))


CONFLICT_ATTEMPTS = 4
T = TypeVar("T")


async def retrying_conflicts(attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt`` (one whole transaction) again when PostgreSQL rolled it back as a deadlock's
    victim or a serialisation failure, a few times, before the error reaches the caller (503)."""
    for n in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return await attempt()
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
            if n == CONFLICT_ATTEMPTS:
                raise
            await asyncio.sleep(random.uniform(0.01, 0.05) * n)
    raise AssertionError("unreachable")


async def _run_once(
    request: Request,
    key: str | None,
    caller: Principal,
    units: Callable[[], AbstractAsyncContextManager[U]],
    command: Callable[[U], Awaitable[Answer]],
    wait_seconds: float,
) -> Response:
    if key is None:
        async with units() as uow:
            answer = await command(uow)
        return Response(answer.render(), status_code=answer.status_code, media_type="application/json")
    owner, digest = owner_of(caller), await fingerprint(request)
    try:
        async with units() as uow:
            if not isinstance(uow, UnitOfWork):
                raise TypeError(
                    "an Idempotency-Key is kept in the database: it needs a database unit of work"
                )
            conn = uow.conn
            earlier = await claim(conn, owner, key, digest, wait_seconds)
            if earlier is not None:
                raise _AnsweredBefore(earlier)  # ends the unit: a claim that waited too long aborted it
            answer = await command(uow)
            body = answer.render()
            await conn.execute(
                """UPDATE idempotency_keys SET status = $3, media_type = $4, body = $5
                   WHERE owner = $1 AND key = $2""",
                owner,
                key,
                answer.status_code,
                "application/json",
                body,
            )
    except _AnsweredBefore as before:
        return before.response
    return Response(body, status_code=answer.status_code, media_type="application/json")


class _AnsweredBefore(Exception):
    """The claim's answer in place of the command's (a replay, a key reused, a key in use)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def claim(
    conn: asyncpg.Connection,
    owner: str,
    key: str,
    digest: str,
    wait_seconds: float,
) -> Response | None:
    """Take the key for this transaction (None), or the answer to give instead of running it.

    The first statement of its transaction, in one round trip: it runs before every keyed request.
    A wait for the key past ``wait_seconds`` is cancelled (asyncpg cancels the statement on the
    server), which aborts the transaction, so the 409 it answers leaves the caller nothing to do but
    end it; nothing had been done in it yet."""
    try:
        # Waits while another transaction holds the key; an expired key is taken over.
        taken = await conn.fetchval(
            """INSERT INTO idempotency_keys (owner, key, fingerprint, created_at, expires_at)
               VALUES ($1, $2, $3, now(), now() + $4::interval)
               ON CONFLICT (owner, key) DO UPDATE
                   SET fingerprint = EXCLUDED.fingerprint, status = NULL, media_type = NULL,
                       body = NULL, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
                   WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
               RETURNING true""",
            owner,
            key,
            digest,
            EXPIRY,
            timeout=wait_seconds,
        )
    except TimeoutError:
        return problems.response(
            409,
            KEY_IN_USE,
            "a request with this Idempotency-Key is still running: retry",
            headers={"Retry-After": "1"},
        )
    if taken:
        return None
    row = await conn.fetchrow(
        "SELECT fingerprint, status, media_type, body FROM idempotency_keys WHERE owner = $1 AND key = $2",
        owner,
        key,
    )
    assert row is not None and row["status"] is not None  # committed with its answer, never without
    if row["fingerprint"] != digest:
        # A 422 as every other one here: the field at fault (the header) in errors.
        msg = "this Idempotency-Key was used for a different request: use a new key"
        return problems.response(
            422,
            KEY_REUSED,
            msg,
            errors=[{"loc": ["header", HEADER], "msg": msg, "type": KEY_REUSED}],
        )
    return Response(
        bytes(row["body"]),
        status_code=row["status"],
        media_type=row["media_type"],
        headers={REPLAYED: "true"},
    )


async def sweep(pool: asyncpg.Pool, now: datetime | None = None) -> int:
    """Delete the expired keys; how many."""
    async with pool.acquire() as conn:
        done = await conn.execute("DELETE FROM idempotency_keys WHERE expires_at <= coalesce($1, now())", now)
    return int(done.split()[-1])
