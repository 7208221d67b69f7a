"""Operator actions over the services' HTTP APIs: what the demo does, and what tests reuse.

Each action is taken in the role that takes it in the field, with a token of the stack's issuer
(``Stack.token``): a caseworker registers and reads, the transport coordinator plans and boards,
the border officer of each checkpoint clears at that checkpoint."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from contracts.routes import Route
from contracts.status import CaseStatus
from corridor.auth import Purpose, Role
from devkit.devstack import Stack
from opstools.statusreader import StatusStream

_LETTERS = str.maketrans("0123456789abcdef", "bdfghjklmnprstvz")


def journey(route: Route) -> list[CaseStatus]:
    """A case's whole journey on ``route``, as the status stream shows it: registered, eligible,
    manifested, departed, then the clearance at each checkpoint in order (exit or entry), arrived."""
    cleared = {"exit": CaseStatus.EXIT_CLEARED, "entry": CaseStatus.ENTRY_CLEARED}
    return [
        CaseStatus.REGISTERED,
        CaseStatus.ELIGIBLE,
        CaseStatus.MANIFESTED,
        CaseStatus.DEPARTED,
        *(cleared[checkpoint.direction] for checkpoint in route.checkpoints),
        CaseStatus.ARRIVED,
    ]


def unique_token() -> str:
    """Letters only, so it survives name normalisation: keeps demo and test people distinct."""
    return uuid.uuid4().hex[:6].translate(_LETTERS).capitalize()


def unique_number(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().int % 10**7:07d}"


def person(
    role: str,
    given: str,
    surname: str,
    born: str,
    sex: str,
    doc_number: str,
    expires_on: date,
    *,
    doc_type: str = "passport",
    issued_on: date | None = None,
    nationality: str = "TJK",
    vulnerabilities: Iterable[str] = (),
) -> dict[str, Any]:
    # Each generated person is someone else: a second given name and a document number of their own,
    # or duplicate detection would rightly flag every scenario person as the same one.
    return {
        "role": role,
        "given_names": f"{given} {unique_token()}",
        "surname": surname,
        "birth_date": born,
        "sex": sex,
        "nationality": nationality,
        "document": {
            "type": doc_type,
            "number": unique_number(doc_number[:2]),
            "issuing_country": "TJK",
            "issued_on": issued_on.isoformat() if issued_on else None,
            "expires_on": expires_on.isoformat(),
        },
        "vulnerabilities": list(vulnerabilities),
    }


def registration(members: list[dict[str, Any]], travel: date, *, key: str | None = None) -> dict[str, Any]:
    return {
        "registration_key": key,
        "route_id": "kaz-uzb-tjk",
        "planned_travel_date": travel.isoformat(),
        "consent": {"given": True, "kind": "explicit", "scope": ["UZB", "TJK"]},
        "members": members,
    }


def family_of_three(travel: date, key: str | None = None) -> dict[str, Any]:
    """A returning family: two passports and a child travelling on a certificate of return."""
    far = travel + timedelta(days=900)
    return registration(
        [
            person("principal", "Farrukh", "Nazarov", "1986-03-14", "M", "401234567", far),
            person(
                "spouse",
                "Malika",
                "Nazarova",
                "1990-07-02",
                "F",
                "401234568",
                far,
                vulnerabilities=["disability"],
            ),
            person(
                "child",
                "Sitora",
                "Nazarova",
                "2016-11-20",
                "F",
                "CR0001234",
                travel + timedelta(days=25),  # a certificate of return is valid 30 days from issue
                doc_type="certificate_of_return",
                issued_on=travel - timedelta(days=5),
            ),
        ],
        travel,
        key=key,
    )


def single_traveller(
    travel: date, key: str | None = None, *, expires_on: date | None = None
) -> dict[str, Any]:
    return registration(
        [
            person(
                "principal",
                "Murod",
                "Rahimov",
                "1979-01-30",
                "M",
                "400765432",
                expires_on or travel + timedelta(days=400),
            )
        ],
        travel,
        key=key,
    )


RETRYABLE = {502, 503, 504}

# How long a POST keeps retrying a 502/503/504 or a refused connection: 0 unless the caller injects
# faults on purpose (``tolerating_faults``). Anywhere else a 5xx is the answer, and fails the test
# or the demo that got it, so a transient server error is seen rather than hidden by a retry.
_RETRY_UNAVAILABLE: contextvars.ContextVar[float] = contextvars.ContextVar("retry_unavailable", default=0.0)


@contextlib.contextmanager
def tolerating_faults(seconds: float = 60.0) -> Iterator[None]:
    """Within it (and in every task started within it), POSTs retry for up to ``seconds`` while a
    service is restarting or its database is unavailable: for tests that kill processes on purpose."""
    token = _RETRY_UNAVAILABLE.set(seconds)
    try:
        yield
    finally:
        _RETRY_UNAVAILABLE.reset(token)


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    *,
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST; within ``tolerating_faults``, retrying while the service is restarting or its
    database is unavailable (for at most ``timeout`` seconds).

    Every attempt carries the same ``Idempotency-Key`` (corridor.idempotency), so retrying after an
    unclear failure (an answer lost) is safe for every command, natural key or not.
    """
    headers = {"Idempotency-Key": str(uuid.uuid4()), **(headers or {})}
    retry_for = min(timeout, _RETRY_UNAVAILABLE.get())
    if retry_for <= 0:
        return await client.post(url, json=body, headers=headers)
    deadline = asyncio.get_running_loop().time() + retry_for
    while True:
        try:
            response = await client.post(url, json=body, headers=headers)
            if response.status_code not in RETRYABLE:
                return response
            problem = f"{response.status_code} {response.text}"
        except httpx.TransportError as exc:
            problem = repr(exc)
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"POST {url} kept failing for {retry_for:.0f}s: {problem}")
        await asyncio.sleep(0.5)


def caseworker(stack: Stack) -> dict[str, str]:
    return stack.headers(Role.CASEWORKER, subject="caseworker@scenario")


def coordinator(stack: Stack) -> dict[str, str]:
    return stack.headers(Role.TRANSPORT_COORDINATOR, subject="coordinator@scenario")


def officer(stack: Stack, checkpoint_id: str) -> dict[str, str]:
    return stack.headers(Role.BORDER_OFFICER, checkpoint=checkpoint_id, subject=f"officer@{checkpoint_id}")


async def register(client: httpx.AsyncClient, stack: Stack, body: dict[str, Any]) -> uuid.UUID:
    if body.get("registration_key") is None:
        body = {**body, "registration_key": f"scenario/{uuid.uuid4()}"}
    response = await post(client, stack.url("intake") + "/cases", body, headers=caseworker(stack))
    if response.status_code not in (200, 201):
        raise RuntimeError(f"registration refused: {response.status_code} {response.text}")
    return uuid.UUID(response.json()["case_id"])


async def _retry_until(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    done: Any,
    *,
    timeout: float,
    what: str,
    headers: dict[str, str],
) -> list[dict[str, Any]]:
    """POST until ``done(results)``: other services' events reach a post asynchronously."""
    results: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    last = ""
    while True:
        response = await post(client, url, body, timeout=timeout, headers=headers)
        if response.status_code == 200:
            results.append(response.json())
            if done(results):
                return results
        elif response.status_code == 409 and response.json().get("code") == "nothing_to_decide":
            # Nobody decidable now: some may have been decided by an attempt whose answer was lost.
            results.append({"cleared": [], "refused": [], "waiting": response.json()["waiting"]})
            if done(results):
                return results
        elif response.status_code not in (404, 409):
            raise RuntimeError(f"{what}: {response.status_code} {response.text}")
        last = f"{response.status_code} {response.text}"
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{what} did not complete within {timeout:.0f}s; last answer {last}")
        await asyncio.sleep(0.3)


async def _progress(
    client: httpx.AsyncClient,
    url: str,
    checkpoint_id: str,
    stage: str,
    timeout: float,
    headers: dict[str, str],
) -> None:
    body = {"checkpoint_id": checkpoint_id, "stage": stage}
    r = await post(client, url, body, timeout=timeout, headers=headers)
    if r.status_code != 201:
        raise RuntimeError(f"progress {stage} at {checkpoint_id}: {r.status_code} {r.text}")


async def wait_ready_for_planning(
    client: httpx.AsyncClient,
    stack: Stack,
    route: Route,
    departure: date,
    case_ids: Iterable[uuid.UUID],
    timeout: float,
) -> None:
    wanted = {str(c) for c in case_ids}
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            response = await client.get(
                stack.url("transport") + "/ready-cases",
                params={"route_id": route.route_id, "departure_date": departure.isoformat()},
                headers=coordinator(stack),
            )
            if response.status_code == 200 and wanted <= {c["case_id"] for c in response.json()["cases"]}:
                return
            if response.status_code >= 500 and not _RETRY_UNAVAILABLE.get():
                raise RuntimeError(f"ready cases: {response.status_code} {response.text}")
        except httpx.TransportError:
            if not _RETRY_UNAVAILABLE.get():
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"cases not ready for planning at transport within {timeout:.0f}s")
        await asyncio.sleep(0.2)


async def wait_read_by_intake(
    client: httpx.AsyncClient,
    stack: Stack,
    case_ids: Iterable[uuid.UUID],
    status: CaseStatus,
    timeout: float,
) -> None:
    """Wait until intake has read ``status`` back from the stream for every case. Its commands
    decide on the status it has read (in the transaction that adds it to the case's timeline), a
    moment after another reader of the stream has seen it."""
    deadline = asyncio.get_running_loop().time() + timeout
    for case_id in case_ids:
        url = f"{stack.url('intake')}/cases/{case_id}/timeline"
        while True:
            response = await client.get(url, headers=caseworker(stack))
            response.raise_for_status()
            timeline = response.json()["timeline"]
            if timeline and timeline[-1]["status"] == status.value:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(
                    f"intake did not read {status.value} for case {case_id} within {timeout:.0f}s"
                )
            await asyncio.sleep(0.2)


async def plan_movement(
    client: httpx.AsyncClient,
    stack: Stack,
    stream: StatusStream,
    route: Route,
    departure: date,
    *,
    vehicles: list[tuple[str, int]],
    expect: Iterable[uuid.UUID] = (),
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Plan a movement once ``expect`` are ready at transport; wait until the placed are manifested.

    Decisions reach transport asynchronously, after the status change that announced them.
    """
    await wait_ready_for_planning(client, stack, route, departure, expect, timeout)
    movement_id = f"MOV-{departure:%Y%m%d}-{uuid.uuid4().hex[:6]}"
    response = await post(
        client,
        stack.url("transport") + "/movements",
        {
            "movement_id": movement_id,
            "route_id": route.route_id,
            "departure_date": departure.isoformat(),
            "vehicles": [{"vehicle_id": v, "capacity": c} for v, c in vehicles],
        },
        timeout=timeout,
        headers=coordinator(stack),
    )
    if response.status_code not in (200, 201):  # 200: planned by an attempt whose answer was lost
        raise RuntimeError(f"planning failed: {response.status_code} {response.text}")
    movement: dict[str, Any] = response.json()
    placed = [uuid.UUID(c["case_id"]) for v in movement["vehicles"] for c in v["cases"]]
    await stream.wait_for(placed, CaseStatus.MANIFESTED, timeout)
    return movement


async def drive_vehicle(
    client: httpx.AsyncClient,
    stack: Stack,
    route: Route,
    movement_id: str,
    vehicle_id: str,
    *,
    no_shows: Iterable[uuid.UUID] = (),
    refusals: dict[str, list[dict[str, Any]]] | None = None,
    scans: dict[str, list[dict[str, Any]]] | None = None,
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Board and depart a vehicle, then take it through every checkpoint of its route in order:
    arrive, clear (with the officer's refusals and document scans), leave."""
    transport = coordinator(stack)
    r = await post(
        client,
        f"{stack.url('transport')}/movements/{movement_id}/vehicles/{vehicle_id}/departure",
        {"no_shows": [str(c) for c in no_shows]},
        timeout=timeout,
        headers=transport,
    )
    if r.status_code not in (200, 409):  # 409: it had departed, the answer was lost
        raise RuntimeError(f"departure failed: {r.status_code} {r.text}")
    departure = r.json() if r.status_code == 200 else {"departed": []}
    remaining = set(departure["departed"])
    if r.status_code == 409:
        found = (
            await client.get(f"{stack.url('transport')}/movements/{movement_id}", headers=transport)
        ).json()
        vehicle = next(v for v in found["vehicles"] if v["vehicle_id"] == vehicle_id)
        remaining = {c["case_id"] for c in vehicle["cases"] if c["state"] in ("departed", "arrived")}
    progress = f"{stack.url('transport')}/movements/{movement_id}/vehicles/{vehicle_id}/progress"
    for cp in route.checkpoints:
        if not remaining:
            break
        await _progress(client, progress, cp.checkpoint_id, "arrived", timeout, transport)
        url = f"{stack.border_url(cp.checkpoint_id)}/movements/{movement_id}/vehicles/{vehicle_id}/clearance"
        body = {
            "refusals": (refusals or {}).get(cp.checkpoint_id, []),
            "scans": (scans or {}).get(cp.checkpoint_id, []),
        }
        decided: set[str] = set()
        refused: set[str] = set()

        def done(
            results: list[dict[str, Any]],
            decided: set[str] = decided,
            refused: set[str] = refused,
            remaining: set[str] = remaining,
        ) -> bool:
            for res in results[-1:]:
                decided.update(res["cleared"], res["refused"])
                decided.update(c for c, why in res["waiting"].items() if why == "already decided")
                refused.update(res["refused"])
            return remaining <= decided

        await _retry_until(
            client,
            url,
            body,
            done,
            timeout=timeout,
            what=f"clearance at {cp.checkpoint_id}",
            headers=officer(stack, cp.checkpoint_id),
        )
        remaining -= refused
        if remaining:
            await _progress(client, progress, cp.checkpoint_id, "departed", timeout, transport)
    return departure


async def run_movement(
    client: httpx.AsyncClient,
    stack: Stack,
    stream: StatusStream,
    route: Route,
    departure: date,
    *,
    vehicles: list[tuple[str, int]],
    expect: Iterable[uuid.UUID] = (),
    refusals: dict[str, list[dict[str, Any]]] | None = None,
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Plan a movement and drive all its vehicles, concurrently, to the end of the route."""
    movement = await plan_movement(
        client, stack, stream, route, departure, vehicles=vehicles, expect=expect, timeout=timeout
    )
    await asyncio.gather(
        *(
            drive_vehicle(
                client,
                stack,
                route,
                movement["movement_id"],
                v["vehicle_id"],
                refusals=refusals,
                timeout=timeout,
            )
            for v in movement["vehicles"]
            if v["cases"]
        )
    )
    return movement


async def members_of(
    client: httpx.AsyncClient, stack: Stack, case_id: uuid.UUID, purpose: Purpose
) -> list[dict[str, Any]]:
    """Read a case's members (a recorded read of personal data, by the scenario's caseworker)."""
    r = await client.get(
        f"{stack.url('intake')}/cases/{case_id}",
        headers={**caseworker(stack), "X-Purpose": purpose},
    )
    r.raise_for_status()
    members: list[dict[str, Any]] = r.json()["members"]
    return members


async def record_evidence(
    client: httpx.AsyncClient, stack: Stack, case_id: uuid.UUID, kind: str, result: str, taken_at: datetime
) -> None:
    """Record the same health result for every member of a case."""
    for member in await members_of(client, stack, case_id, Purpose.HEALTH_FOLLOW_UP):
        r = await post(
            client,
            f"{stack.url('intake')}/cases/{case_id}/health-evidence",
            {
                "person_id": member["person_id"],
                "kind": kind,
                "result": result,
                "taken_at": taken_at.isoformat(),
            },
            headers=stack.headers(Role.CASEWORKER, subject="nurse@scenario"),
        )
        if r.status_code != 201:
            raise RuntimeError(f"evidence refused: {r.status_code} {r.text}")
