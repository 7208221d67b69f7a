"""Every command safe to retry (issue 17), on the real platform.

The answer is lost the way a border post's link loses it: the client sends the whole request
through a relay that drops the connection as the service starts to answer, after it committed
(``tests.integration.lossy``). The test
waits until the effect is in the service's database, then sends the same request again with the
same ``Idempotency-Key`` (or, for a command with a natural key, just again) and checks that the
effect happened exactly once (rows, and events in the outbox on their way to Kafka) and that the
second answer is the first one: the ids it carries are the ones committed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from contracts.border import CrossingRequirementLifted, CrossingRequirementPublished
from contracts.envelope import CloudEvent
from contracts.intake import CaseRegistered, CaseUpdated, CaseWithdrawn
from contracts.missions import CaseStatusReported, ReportableStatus
from contracts.routes import Route
from contracts.status import CaseStatus, CaseStatusChanged
from contracts.transport import MovementDeparted, VehicleProgressRecorded
from corridor import idempotency
from corridor.auth import Purpose, Role
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.integration import faults
from tests.integration.lossy import HoldsTheAnswer, LosesTheFirstAnswer

KEY, REPLAYED = idempotency.HEADER, idempotency.REPLAYED
FAR = "2990-01-01"  # a requirement effective then holds no traveller of any test


async def _rows(stack: Stack, database_of: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(stack.postgres.dsn(stack.specs[database_of].database))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _lost(method: str, url: str, *, json: Any = None, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send the whole request through a link that drops as the service answers (it has
    committed): the client gets no answer. What the service answered (status, body)."""
    parts = urlsplit(url)
    link = LosesTheFirstAnswer(f"{parts.scheme}://{parts.netloc}")
    async with link as base:
        target = base + parts.path + (f"?{parts.query}" if parts.query else "")
        async with httpx.AsyncClient(timeout=30.0) as c:
            with pytest.raises(httpx.TransportError):
                await c.request(method, target, json=json, headers=headers)
    return link.lost_answer


async def _until(probe: Callable[[], Awaitable[Any]], want: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (got := await probe()) != want:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"still {got!r}, waiting for {want!r}")
        await asyncio.sleep(0.1)


async def _lost_until_done(
    method: str,
    url: str,
    probe: Callable[[], Awaitable[Any]],
    *,
    json: Any = None,
    headers: dict[str, str],
    timeout: float = 60.0,
) -> tuple[int, bytes]:
    """Lose answers until the command has taken effect: what it depends on reaches the service
    asynchronously, and until then it is refused, which stores nothing (so the same key may be
    sent again). The answer lost last, the one of the attempt that took effect."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        lost = await _lost(method, url, json=json, headers=headers)
        try:
            await _until(probe, 1, 3)
            return lost
        except TimeoutError:
            assert asyncio.get_running_loop().time() < deadline, f"{method} {url} never took effect"


async def _again(method: str, url: str, *, json: Any = None, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30.0) as c:
        return await c.request(method, url, json=json, headers=headers)


def _keyed(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, KEY: str(uuid.uuid4())}


# --- intake --------------------------------------------------------------------------------------


async def test_health_evidence_whose_answer_was_lost_is_recorded_once_and_answered_again(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    [member] = await scenario.members_of(client, stack, case_id, Purpose.HEALTH_FOLLOW_UP)
    url = f"{stack.url('intake')}/cases/{case_id}/health-evidence"
    body = {
        "person_id": member["person_id"],
        "kind": "covid19_test",
        "result": "negative",
        "taken_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
    }
    nurse = _keyed(stack.headers(Role.CASEWORKER, subject="nurse-1"))

    def recorded() -> Awaitable[Any]:
        return _rows(stack, "intake", "SELECT count(*) FROM health_evidence WHERE case_id = $1", case_id)

    await _lost("POST", url, json=body, headers=nurse)
    await _until(recorded, 1)
    r = await _again("POST", url, json=body, headers=nurse)
    assert (r.status_code, r.headers.get(REPLAYED)) == (201, "true"), r.text
    event_id = await _rows(
        stack, "intake", "SELECT event_id FROM health_evidence WHERE case_id = $1", case_id
    )
    assert r.json() == {"case_id": str(case_id), "event_id": event_id}
    assert await recorded() == 1
    assert await _rows(stack, "intake", "SELECT count(*) FROM outbox WHERE event_id = $1", event_id) == 1

    # What was recorded can be read back (medical data: by a caseworker, with a purpose, logged).
    read = await _again(
        "GET",
        url,
        headers={**stack.headers(Role.CASEWORKER, subject="nurse-1"), "X-Purpose": "health_follow_up"},
    )
    assert read.status_code == 200, read.text
    [entry] = read.json()["evidence"]
    assert (entry["event_id"], entry["result"], entry["recorded_by"]) == (event_id, "negative", "nurse-1")
    viewer = await _again("GET", url, headers={**stack.headers(Role.OPERATIONS_VIEWER), "X-Purpose": "audit"})
    assert viewer.status_code == 403

    # The same key for something else is refused, and records nothing.
    other = await _again("POST", url, json={**body, "result": "positive"}, headers=nurse)
    assert (other.status_code, other.json()["code"]) == (422, idempotency.KEY_REUSED)
    assert await recorded() == 1
    # Keys are the caller's own: another caller's same key is another request.
    colleague = {**stack.headers(Role.CASEWORKER, subject="nurse-2"), KEY: nurse[KEY]}
    r2 = await _again("POST", url, json=body, headers=colleague)
    assert r2.status_code == 201 and REPLAYED not in r2.headers and r2.json()["event_id"] != event_id
    assert await recorded() == 2

    # Expired (24 hours on), the key is a new one; the sweep deletes what expired.
    await _rows(
        stack,
        "intake",
        "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = $1",
        nurse[KEY],
    )
    r3 = await _again("POST", url, json=body, headers=nurse)
    assert r3.status_code == 201 and REPLAYED not in r3.headers and await recorded() == 3
    pool = await asyncpg.create_pool(
        stack.postgres.dsn(stack.specs["intake"].database), min_size=1, max_size=1
    )
    try:
        swept = await idempotency.sweep(pool, datetime.now(UTC) + idempotency.EXPIRY + timedelta(minutes=1))
    finally:
        await pool.close()
    assert swept >= 2
    assert (
        await _rows(stack, "intake", "SELECT count(*) FROM idempotency_keys WHERE key = $1", nurse[KEY]) == 0
    )


async def test_the_same_keyed_command_sent_at_once_takes_effect_once(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    """Eight copies at the same moment: the first takes the key (its row, in its transaction);
    the others wait for it and are answered what it answered."""
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    [member] = await scenario.members_of(client, stack, case_id, Purpose.HEALTH_FOLLOW_UP)
    url = f"{stack.url('intake')}/cases/{case_id}/health-evidence"
    body = {
        "person_id": member["person_id"],
        "kind": "fit_to_travel",
        "result": "fit",
        "taken_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    }
    headers = _keyed(stack.headers(Role.CASEWORKER, subject="nurse-3"))
    async with httpx.AsyncClient(timeout=30.0) as c:
        answers = await asyncio.gather(*(c.post(url, json=body, headers=headers) for _ in range(8)))
    assert {(a.status_code, a.text) for a in answers} == {(201, answers[0].text)}
    assert sum(REPLAYED not in a.headers for a in answers) == 1
    assert (
        await _rows(stack, "intake", "SELECT count(*) FROM health_evidence WHERE case_id = $1", case_id) == 1
    )


async def test_a_registration_without_a_key_of_its_own_is_made_safe_by_the_header(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    body = scenario.single_traveller(travel_date)  # no registration_key
    given = body["members"][0]["given_names"]
    headers = _keyed(stack.headers(Role.CASEWORKER, subject="caseworker-idem"))
    url = f"{stack.url('intake')}/cases"

    def people() -> Awaitable[Any]:
        return _rows(stack, "intake", "SELECT count(*) FROM persons WHERE given_names = $1", given)

    await _lost("POST", url, json=body, headers=headers)
    await _until(people, 1)
    r = await _again("POST", url, json=body, headers=headers)
    assert (r.status_code, r.headers.get(REPLAYED)) == (201, "true"), r.text
    case_id = await _rows(stack, "intake", "SELECT case_id FROM persons WHERE given_names = $1", given)
    assert r.json()["case_id"] == str(case_id) and r.json()["created"] is True
    assert await people() == 1

    # Changing the case: the update is published once, and the repeat answered the same.
    update = {**body, "planned_travel_date": (travel_date + timedelta(days=1)).isoformat()}
    change = _keyed(stack.headers(Role.CASEWORKER, subject="caseworker-idem"))

    def updates() -> Awaitable[Any]:
        return _rows(
            stack,
            "intake",
            "SELECT count(*) FROM outbox WHERE key = $1 AND event_type = $2",
            str(case_id),
            CaseUpdated.event_type,
        )

    await _lost("PUT", f"{url}/{case_id}", json=update, headers=change)
    await _until(updates, 1)
    again = await _again("PUT", f"{url}/{case_id}", json=update, headers=change)
    assert (again.status_code, again.headers.get(REPLAYED)) == (200, "true"), again.text
    assert await updates() == 1


async def test_a_registration_repeated_under_its_key_after_a_lost_answer_is_answered_the_first_answer(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    """Idempotent by nature (the registration_key, no Idempotency-Key): the repeat registers
    nothing and answers what the lost answer said, the same case, status and duplicate flags,
    apart from what marks it a repeat (200, created false)."""
    earlier = scenario.single_traveller(travel_date)
    await scenario.register(client, stack, earlier)  # the same person: the registration is flagged
    key = f"lost-answer/{uuid.uuid4()}"
    body = {**earlier, "registration_key": key}
    url = f"{stack.url('intake')}/cases"
    headers = stack.headers(Role.CASEWORKER, subject="caseworker-lost-key")

    def cases() -> Awaitable[Any]:
        return _rows(stack, "intake", "SELECT count(*) FROM cases WHERE registration_key = $1", key)

    status, lost = await _lost("POST", url, json=body, headers=headers)
    assert status == 201, lost
    first = json.loads(lost)
    assert first["created"] is True and first["duplicate_flags"], first
    r = await _again("POST", url, json=body, headers=headers)
    assert (r.status_code, r.headers.get(REPLAYED)) == (200, None), r.text
    assert r.json() == {**first, "created": False}
    assert await cases() == 1
    assert (
        await _rows(
            stack,
            "intake",
            "SELECT count(*) FROM outbox WHERE key = $1 AND event_type = $2",
            first["case_id"],
            CaseRegistered.event_type,
        )
        == 1
    )


async def test_a_duplicate_flag_resolved_with_a_lost_answer_is_answered_the_resolution(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    first = scenario.single_traveller(travel_date)
    twice = {**first, "members": [dict(first["members"][0])]}  # the same person, registered again
    await scenario.register(client, stack, first)
    second = await scenario.register(client, stack, twice)
    caseworker = stack.headers(Role.CASEWORKER, subject="caseworker-dup")
    flags = await _again("GET", f"{stack.url('intake')}/duplicate-flags?case_id={second}", headers=caseworker)
    [flag] = flags.json()["flags"]
    url = f"{stack.url('intake')}/duplicate-flags/{flag['flag_id']}/resolution"
    body = {"decision": "duplicate", "note": "registered twice at two desks"}
    headers = _keyed(caseworker)

    def status() -> Awaitable[Any]:
        return _rows(
            stack, "intake", "SELECT status FROM duplicate_flags WHERE flag_id = $1", flag["flag_id"]
        )

    await _lost("POST", url, json=body, headers=headers)
    await _until(status, "duplicate")
    r = await _again("POST", url, json=body, headers=headers)
    assert (r.status_code, r.headers.get(REPLAYED), r.json()) == (
        200,
        "true",
        {"flag_id": flag["flag_id"], "status": "duplicate"},
    )
    unkeyed = await _again("POST", url, json=body, headers=caseworker)
    # Without the key a repeat cannot be told from a second decision: the flag is no longer open.
    assert unkeyed.status_code == 404, unkeyed.text


async def test_a_withdrawal_and_an_erasure_with_lost_answers_happen_once(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    """Idempotent by nature (a case withdraws once, is erased once): the repeat, with no key,
    records nothing more and answers the withdrawal and the erasure as they stand."""
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    caseworker = stack.headers(Role.CASEWORKER, subject="caseworker-idem")
    url = f"{stack.url('intake')}/cases/{case_id}"

    def withdrawn() -> Awaitable[Any]:
        return _rows(
            stack,
            "intake",
            "SELECT count(*) FROM outbox WHERE key = $1 AND event_type = $2",
            str(case_id),
            CaseWithdrawn.event_type,
        )

    await _lost("POST", f"{url}/withdrawal", json={"reason": "found work here"}, headers=caseworker)
    await _until(withdrawn, 1)
    r = await _again("POST", f"{url}/withdrawal", json={"reason": "found work here"}, headers=caseworker)
    assert r.status_code in (201, 202) and r.json()["created"] is False, r.text
    assert await withdrawn() == 1
    await stream.wait_for([case_id], CaseStatus.WITHDRAWN, 30)

    supervisor = stack.headers(Role.SUPERVISOR, subject="sup-idem")

    def erased() -> Awaitable[Any]:
        return _rows(stack, "intake", "SELECT count(*) FROM erasures WHERE case_id = $1", case_id)

    await _lost_until_done("POST", f"{url}/erasure", erased, headers=supervisor)
    r = await _again("POST", f"{url}/erasure", headers=supervisor)
    erased_at = await _rows(stack, "intake", "SELECT erased_at FROM erasures WHERE case_id = $1", case_id)
    assert (r.status_code, r.json()["created"]) == (200, False), r.text
    assert datetime.fromisoformat(r.json()["erased_at"]) == erased_at
    assert await erased() == 1


# --- eligibility ---------------------------------------------------------------------------------


async def test_an_override_and_its_revocation_with_lost_answers_happen_once(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    body = scenario.single_traveller(travel_date)
    body["members"][0]["nationality"] = "UZB"  # ineligible by the rules
    case_id = await scenario.register(client, stack, body)
    await stream.wait_for([case_id], CaseStatus.INELIGIBLE, 60)
    url = f"{stack.url('eligibility')}/cases/{case_id}/override"
    supervisor = stack.headers(Role.SUPERVISOR, subject="sup-idem")

    def versions() -> Awaitable[Any]:
        return _rows(stack, "eligibility", "SELECT max(version) FROM decisions WHERE case_id = $1", case_id)

    await _until(versions, 1, 60)
    override = {"outcome": "eligible", "reason": "Embassy confirmed citizenship by letter"}
    headers = _keyed(supervisor)
    await _lost("POST", url, json=override, headers=headers)
    await _until(versions, 2)
    r = await _again("POST", url, json=override, headers=headers)
    assert (r.status_code, r.headers.get(REPLAYED), r.json()) == (
        201,
        "true",
        {"case_id": str(case_id), "version": 2, "outcome": "eligible"},
    )
    assert await versions() == 2
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 30)

    revoke = _keyed(supervisor)
    await _lost("DELETE", url, headers=revoke)
    await _until(versions, 3)
    r = await _again("DELETE", url, headers=revoke)
    assert (r.status_code, r.headers.get(REPLAYED), r.json()) == (
        200,
        "true",
        {"case_id": str(case_id), "version": 3, "outcome": "ineligible"},
    )
    assert await versions() == 3
    assert (
        await _rows(
            stack,
            "eligibility",
            "SELECT count(*) FROM overrides WHERE case_id = $1 AND revoked_at IS NOT NULL",
            case_id,
        )
        == 1
    )


# --- a border post ---------------------------------------------------------------------------------


async def test_requirements_and_the_hold_list_with_lost_answers(stack: Stack, route: Route) -> None:
    post = route.checkpoints[-1].checkpoint_id
    base = stack.border_url(post)
    db = f"border-{post}"
    officer = stack.headers(Role.BORDER_OFFICER, checkpoint=post, subject="officer-idem")
    code = f"idem_{uuid.uuid4().hex[:8]}"
    body = {
        "code": code,
        "description": "a test the post asks for (idempotency test)",
        "evidence_kind": "covid19_test",
        "valid_hours": 72,
        "effective_from": FAR,
    }

    def published(c: str) -> Callable[[], Awaitable[Any]]:
        return lambda: _rows(stack, db, "SELECT count(*) FROM requirements WHERE code = $1", c)

    # No reference: the header makes the retry safe.
    headers = _keyed(officer)
    await _lost("POST", f"{base}/requirements", json=body, headers=headers)
    await _until(published(code), 1)
    r = await _again("POST", f"{base}/requirements", json=body, headers=headers)
    assert (r.status_code, r.headers.get(REPLAYED)) == (201, "true"), r.text
    requirement_id = await _rows(stack, db, "SELECT requirement_id FROM requirements WHERE code = $1", code)
    assert r.json()["requirement_id"] == str(requirement_id)
    assert await published(code)() == 1

    # A reference of the post's own: the same requirement again is answered the first (200).
    coded = {**body, "code": code + "_r", "reference": f"circular-{code}"}
    first = await _again("POST", f"{base}/requirements", json=coded, headers=officer)
    again = await _again("POST", f"{base}/requirements", json=coded, headers=officer)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "created": False}
    assert await published(code + "_r")() == 1
    clash = await _again("POST", f"{base}/requirements", json={**coded, "valid_hours": 48}, headers=officer)
    assert (clash.status_code, clash.json()["code"]) == (409, "reference_reused")
    listed = await _again("GET", f"{base}/requirements", headers=officer)
    by_reference = await _again("GET", f"{base}/requirements?reference=circular-{code}", headers=officer)
    [found] = by_reference.json()["requirements"]
    assert (
        found["requirement_id"] == first.json()["requirement_id"] and len(listed.json()["requirements"]) > 1
    )

    # Lifting, answer lost: lifted once (one event), the repeat answered the lifting.
    for rid in (str(requirement_id), first.json()["requirement_id"]):
        lift = _keyed(officer)

        def lifted(rid: str = rid) -> Awaitable[Any]:
            return _rows(
                stack,
                db,
                "SELECT count(*) FROM outbox WHERE event_type = $1 AND position(convert_to($2, 'UTF8') in payload) > 0",
                CrossingRequirementLifted.event_type,
                rid,
            )

        await _lost("DELETE", f"{base}/requirements/{rid}", headers=lift)
        await _until(lifted, 1)
        r = await _again("DELETE", f"{base}/requirements/{rid}", headers=lift)
        assert (r.status_code, r.headers.get(REPLAYED), r.json()["requirement_id"]) == (200, "true", rid)
        assert await lifted() == 1

    # The hold list: putting is idempotent by nature (the document number: a repeat, answer lost
    # or not, puts the same entry and answers the same); taking off, with the header.
    document = f"ID{uuid.uuid4().int % 10**9:09d}"
    entry = {"document_number": document, "reason_code": "court_order", "reason": "idempotency test"}

    def held() -> Awaitable[Any]:
        return _rows(stack, db, "SELECT count(*) FROM hold_list WHERE document_number = $1", document)

    await _lost("PUT", f"{base}/hold-list", json=entry, headers=officer)
    await _until(held, 1)
    r = await _again("PUT", f"{base}/hold-list", json=entry, headers=officer)
    assert (r.status_code, r.json()) == (201, {"document_number": document, "held": True}), r.text
    assert await held() == 1
    assert (
        await _rows(
            stack,
            db,
            "SELECT reason_code || ' ' || added_by FROM hold_list WHERE document_number = $1",
            document,
        )
        == "court_order officer-idem"
    )
    release = _keyed(officer)
    await _lost("DELETE", f"{base}/hold-list/{document}", headers=release)
    await _until(held, 0)
    r = await _again("DELETE", f"{base}/hold-list/{document}", headers=release)
    assert (r.status_code, r.headers.get(REPLAYED), r.json()) == (
        200,
        "true",
        {"document_number": document, "held": False},
    )


# --- transport and a post's clearance --------------------------------------------------------------


async def test_planning_departure_and_clearance_with_lost_answers(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    cases = [await scenario.register(client, stack, scenario.single_traveller(travel_date)) for _ in range(3)]
    await stream.wait_for(cases, CaseStatus.ELIGIBLE, 90)
    await scenario.wait_ready_for_planning(client, stack, route, travel_date, cases, 60)
    transport = stack.url("transport")
    coordinator = stack.headers(Role.TRANSPORT_COORDINATOR, subject="coordinator-idem")

    def movements() -> Awaitable[Any]:
        return _rows(
            stack,
            "transport",
            "SELECT count(*) FROM movements WHERE route_id = $1 AND departure_date = $2",
            route.route_id,
            travel_date,
        )

    # Planned without a movement id of the client's: the header makes the retry safe.
    plan = {
        "route_id": route.route_id,
        "departure_date": travel_date.isoformat(),
        "vehicles": [{"vehicle_id": "BUS-A", "capacity": 2}],
    }
    headers = _keyed(coordinator)
    await _lost("POST", f"{transport}/movements", json=plan, headers=headers)
    await _until(movements, 1)
    planned = await _again("POST", f"{transport}/movements", json=plan, headers=headers)
    assert (planned.status_code, planned.headers.get(REPLAYED)) == (201, "true"), planned.text
    assert await movements() == 1
    movement_id = planned.json()["movement_id"]
    [bus] = planned.json()["vehicles"]
    on_bus = {uuid.UUID(c["case_id"]) for c in bus["cases"]}
    assert len(on_bus) == 2 and len(planned.json()["not_placed"]) == 1

    # With a movement id of the client's: the plan again (no header) answers the movement.
    own_id = f"MOV-IDEM-{uuid.uuid4().hex[:6]}"
    again = await _again(
        "POST",
        f"{transport}/movements",
        json={**plan, "movement_id": own_id, "vehicles": [{"vehicle_id": "BUS-B", "capacity": 2}]},
        headers=coordinator,
    )
    assert again.status_code == 201, again.text
    repeat = await _again(
        "POST",
        f"{transport}/movements",
        json={**plan, "movement_id": own_id, "vehicles": [{"vehicle_id": "BUS-B", "capacity": 2}]},
        headers=coordinator,
    )
    assert (repeat.status_code, repeat.json()["created"]) == (200, False)
    assert repeat.json()["vehicles"] == again.json()["vehicles"]
    assert await movements() == 2

    # The departure, answer lost: departed once (one MovementDeparted), the repeat answered it.
    await stream.wait_for(list(on_bus), CaseStatus.MANIFESTED, 30)
    no_show = sorted(on_bus)[0]
    departure = f"{transport}/movements/{movement_id}/vehicles/BUS-A/departure"
    boarding = {"no_shows": [str(no_show)], "fill_freed_seats": False}

    def departed() -> Awaitable[Any]:
        return _rows(
            stack,
            "transport",
            "SELECT count(*) FROM outbox WHERE key LIKE $1 || '%' AND event_type = $2",
            movement_id,
            MovementDeparted.event_type,
        )

    await _lost("POST", departure, json=boarding, headers=coordinator)
    await _until(departed, 1)
    r = await _again("POST", departure, json=boarding, headers=coordinator)
    assert (r.status_code, r.headers.get(REPLAYED)) == (200, "true"), r.text
    outcome = r.json()
    assert outcome["no_shows"] == [str(no_show)] and outcome["departed"] == [
        str(c) for c in on_bus - {no_show}
    ]
    read = await _again("GET", departure, headers=coordinator)
    assert (read.status_code, read.json()) == (200, outcome)
    other = await _again("POST", departure, json={"no_shows": []}, headers=coordinator)
    assert other.status_code == 409 and other.json()["departure"] == outcome
    assert await departed() == 1

    # Clearance at the first post, answer lost: each case decided once, the repeat answered it.
    first_post = route.checkpoints[0].checkpoint_id
    progress = f"{transport}/movements/{movement_id}/vehicles/BUS-A/progress"
    report = {"checkpoint_id": first_post, "stage": "arrived"}

    def reported() -> Awaitable[Any]:
        return _rows(
            stack,
            "transport",
            "SELECT count(*) FROM outbox WHERE key LIKE $1 || '%' AND event_type = $2",
            movement_id,
            VehicleProgressRecorded.event_type,
        )

    await _lost("POST", progress, json=report, headers=coordinator)
    await _until(reported, 1)
    arrived = await _again("POST", progress, json=report, headers=coordinator)
    assert (arrived.status_code, arrived.json()) == (
        201,
        {"movement_id": movement_id, "vehicle_id": "BUS-A", **report},
    )
    assert await reported() == 1
    clearance = f"{stack.border_url(first_post)}/movements/{movement_id}/vehicles/BUS-A/clearance"
    officer = stack.headers(Role.BORDER_OFFICER, checkpoint=first_post, subject="officer-idem")
    db = f"border-{first_post}"

    def decided() -> Awaitable[Any]:
        return _rows(stack, db, "SELECT count(*) FROM decisions WHERE movement_id = $1", movement_id)

    # The manifest and the vehicle's arrival reach the post asynchronously: until they have, a
    # clearance is refused, which stores nothing under its key.
    headers = _keyed(officer)
    await _lost_until_done("POST", clearance, decided, json={}, headers=headers)
    r = await _again("POST", clearance, json={}, headers=headers)
    assert (r.status_code, r.headers.get(REPLAYED)) == (200, "true"), r.text
    [cleared] = r.json()["cleared"]
    assert uuid.UUID(cleared) in on_bus - {no_show}
    assert await decided() == 1

    # The origin mission reports an incident over HTTP, answer lost: applied once (its CloudEvent's
    # source and id), the repeat answered a duplicate with the status change the lost answer named.
    # Until intake has read the departure from the stream the report is "not yet" (503), which
    # records nothing.
    incident = CloudEvent.new(
        CaseStatusReported(
            case_id=uuid.UUID(cleared),
            status=ReportableStatus.TRANSIT_INCIDENT,
            occurred_at=datetime.now(UTC),
        ),
        source=f"/missions/{route.origin_country}/escort",
    ).structured()
    mission = {
        "content-type": "application/cloudevents+json",
        **stack.headers(Role.INTEGRATION_CLIENT, mission=route.origin_country, subject="escort-idem"),
    }
    inbound = f"{stack.url('intake')}/inbound/status-changes"

    def applied() -> Awaitable[Any]:
        return _rows(stack, "intake", "SELECT count(*) FROM inbox WHERE event_id = $1", incident["id"])

    status, lost = await _lost_until_done("POST", inbound, applied, json=incident, headers=mission)
    assert status == 202, lost
    first = json.loads(lost)
    r = await _again("POST", inbound, json=incident, headers=mission)
    assert (r.status_code, r.json()) == (
        200,
        {"duplicate": True, "id": incident["id"], "status_event_id": first["status_event_id"]},
    ), r.text
    published = "SELECT count(*) FROM outbox WHERE event_id = $1 AND event_type = $2"
    assert (
        await _rows(stack, "intake", published, first["status_event_id"], CaseStatusChanged.event_type) == 1
    )
    await stream.wait_for([uuid.UUID(cleared)], CaseStatus.TRANSIT_INCIDENT, 30)
    assert await applied() == 1
    assert stream.statuses(uuid.UUID(cleared)).count(CaseStatus.TRANSIT_INCIDENT) == 1


async def test_a_situation_report_regenerated_with_a_lost_answer_is_stored_once(stack: Stack) -> None:
    """Idempotent by nature (the day): the repeat generates the day's report again, replacing it."""
    day = datetime.now(UTC).date() - timedelta(days=1)  # begun in every time zone
    url = f"{stack.url('reporting')}/reports/situation/{day.isoformat()}"
    viewer = stack.headers(Role.OPERATIONS_VIEWER, subject="ops-idem")
    status, lost = await _lost("POST", url, headers=viewer)
    assert status == 201, lost
    r = await _again("POST", url, headers=viewer)
    assert r.status_code == 201, r.text
    first, again = json.loads(lost), r.json()
    assert {**again, "generated_at": None} == {**first, "generated_at": None}
    assert again["generated_at"] >= first["generated_at"]
    stored = await _rows(stack, "reporting", "SELECT generated_at FROM situation_reports WHERE day = $1", day)
    assert abs(stored - datetime.fromisoformat(again["generated_at"])) < timedelta(seconds=1)


async def test_a_key_is_claimed_in_one_statement(stack: Stack) -> None:
    """The claim runs before every keyed request: one round trip, the key's row, and no savepoint or
    lock setting around it (its wait is bounded by cancelling the statement)."""
    dsn = stack.postgres.dsn(stack.specs["eligibility"].database)
    conn = await asyncpg.connect(dsn)
    owner, key = "KAZ:one-statement-test", str(uuid.uuid4())
    sent: list[str] = []
    try:
        conn.add_query_logger(lambda record: sent.append(record.query))
        async with conn.transaction():
            assert await idempotency.claim(conn, owner, key, "e" * 64, 1.0) is None
        await asyncio.sleep(0.1)  # the logger is called soon after each statement, not during it
        assert [q.split()[0] for q in sent] == ["BEGIN;", "INSERT", "COMMIT;"], sent
        assert "idempotency_keys" in sent[1]
    finally:
        await conn.execute("DELETE FROM idempotency_keys WHERE owner = $1", owner)
        await conn.close()


async def test_a_repeat_waits_for_the_first_request_and_past_the_wait_is_told_to_retry(stack: Stack) -> None:
    """The mechanism on the real database: while a first request holds its key (its transaction
    has not ended), a repeat waits; answered the first's answer when it commits, or 409
    ``idempotency_key_in_use`` (Retry-After) once the wait is over."""
    dsn = stack.postgres.dsn(stack.specs["eligibility"].database)
    first, repeat = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    owner, key, digest = "KAZ:waiting-test", str(uuid.uuid4()), "f" * 64
    try:
        held = first.transaction()
        await held.start()
        assert await idempotency.claim(first, owner, key, digest, 1.0) is None
        async with repeat.transaction():
            refused = await idempotency.claim(repeat, owner, key, digest, 0.3)
        assert refused is not None and refused.status_code == 409
        assert refused.headers["Retry-After"] == "1" and idempotency.KEY_IN_USE.encode() in refused.body

        async def waits() -> Any:
            async with repeat.transaction():
                return await idempotency.claim(repeat, owner, key, digest, 10.0)

        waiting = asyncio.create_task(waits())
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await first.execute(
            "UPDATE idempotency_keys SET status = 201, media_type = 'application/json', body = $3 "
            "WHERE owner = $1 AND key = $2",
            owner,
            key,
            b'{"done":true}',
        )
        await held.commit()
        answered = await asyncio.wait_for(waiting, 10)
        assert answered is not None
        assert (answered.status_code, answered.body, answered.headers[REPLAYED]) == (
            201,
            b'{"done":true}',
            "true",
        )
    finally:
        await first.execute("DELETE FROM idempotency_keys WHERE owner = $1", owner)
        await first.close()
        await repeat.close()


async def test_the_same_plan_and_the_same_departure_sent_at_once_take_effect_once(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    """Natural keys under concurrency: four coordinators' copies of one plan (one movement id),
    then of one departure. Each is decided under the locks of what it changes; the copies that
    come second are answered what the first did."""
    cases = [await scenario.register(client, stack, scenario.single_traveller(travel_date)) for _ in range(2)]
    await stream.wait_for(cases, CaseStatus.ELIGIBLE, 90)
    await scenario.wait_ready_for_planning(client, stack, route, travel_date, cases, 60)
    transport = stack.url("transport")
    movement_id = f"MOV-RACE-{uuid.uuid4().hex[:6]}"
    plan = {
        "movement_id": movement_id,
        "route_id": route.route_id,
        "departure_date": travel_date.isoformat(),
        "vehicles": [{"vehicle_id": "BUS-R", "capacity": 4}],
    }
    coordinators = [stack.headers(Role.TRANSPORT_COORDINATOR, subject=f"coordinator-{n}") for n in range(4)]
    async with httpx.AsyncClient(timeout=60.0) as c:
        plans = await asyncio.gather(
            *(c.post(f"{transport}/movements", json=plan, headers=h) for h in coordinators)
        )
        assert sorted(p.status_code for p in plans) == [200, 200, 200, 201], [p.text for p in plans]
        assert len({json_of(p.json()["vehicles"]) for p in plans}) == 1
        placed = {c["case_id"] for c in plans[0].json()["vehicles"][0]["cases"]}
        assert placed == {str(x) for x in cases}
        await stream.wait_for(cases, CaseStatus.MANIFESTED, 30)

        url = f"{transport}/movements/{movement_id}/vehicles/BUS-R/departure"
        departures = await asyncio.gather(*(c.post(url, json={}, headers=h) for h in coordinators))
    assert {d.status_code for d in departures} == {200}, [d.text for d in departures]
    assert sum(d.headers.get(REPLAYED) == "true" for d in departures) == 3
    assert len({d.text for d in departures}) == 1
    assert (
        await _rows(
            stack,
            "transport",
            "SELECT count(*) FROM outbox WHERE key LIKE $1 || '%' AND event_type = $2",
            movement_id,
            MovementDeparted.event_type,
        )
        == 1
    )
    assert (
        await _rows(stack, "transport", "SELECT count(*) FROM movements WHERE movement_id = $1", movement_id)
        == 1
    )


def json_of(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# --- a bulk import -----------------------------------------------------------------------------------


async def test_a_bulk_import_whose_answer_was_lost_registers_each_row_once(
    stack: Stack, travel_date: date
) -> None:
    """Idempotent by nature (each row's namespace and row_key): the file sent again after a lost
    answer registers nothing more and answers every row what the lost answer said (created or
    flagged, the same case, the same flags), marked ``repeated``; a row rejected the first time is
    checked afresh (rejected again)."""
    namespace = f"lost-{uuid.uuid4().hex[:8]}"
    url = f"{stack.url('intake')}/imports?namespace={namespace}"
    rows = [scenario.single_traveller(travel_date) for _ in range(3)] + [
        scenario.family_of_three(travel_date)
    ]
    rows += [rows[0], {**rows[1], "route_id": "kaz-nowhere"}]  # R-0's traveller again; a rejected row
    items = [
        {**{k: v for k, v in row.items() if k != "registration_key"}, "row_key": f"R-{n}"}
        for n, row in enumerate(rows)
    ]
    registered = len(items) - 1
    # Any caller's retrying client sends a key; the import's own rows keys are what make it safe.
    clerk = _keyed(stack.headers(Role.CASEWORKER, subject="clerk-lost"))

    async def committed() -> dict[str, str]:
        conn = await asyncpg.connect(stack.postgres.dsn(stack.specs["intake"].database))
        try:
            found = await conn.fetch(
                "SELECT registration_key, case_id FROM cases WHERE registration_key LIKE $1",
                f"bulk:{namespace}:%",
            )
        finally:
            await conn.close()
        return {r["registration_key"].rsplit(":", 1)[1]: str(r["case_id"]) for r in found}

    async def imported() -> int:
        return len(await committed())

    status, lost = await _lost("POST", url, json=items, headers=clerk)
    assert status == 200, lost
    first = json.loads(lost)
    await _until(imported, registered)
    r = await _again("POST", url, json=items, headers=clerk)
    assert r.status_code == 200, r.text
    again = r.json()
    cases = await committed()
    assert [(e["row_key"], e["outcome"], e["case_id"]) for e in first["entries"]] == [
        *((f"R-{n}", "created", cases[f"R-{n}"]) for n in range(4)),
        ("R-4", "flagged", cases["R-4"]),
        ("R-5", "rejected", None),
    ]
    assert [f["other_case_id"] for f in first["entries"][4]["flags"]] == [cases["R-0"]]
    # Row for row the first answer, each registered row marked a repeat.
    assert [e["repeated"] for e in first["entries"]] == [False] * len(items)
    assert [e["repeated"] for e in again["entries"]] == [True] * registered + [False]
    assert [{**e, "repeated": False} for e in again["entries"]] == first["entries"]
    assert again["counts"] == first["counts"] and again["repeated"] == registered
    assert await imported() == registered
    # Each case registered once: one CaseRegistered on its way to Kafka per case.
    assert (
        await _rows(
            stack,
            "intake",
            "SELECT count(*) FROM outbox WHERE key = ANY($1::text[]) AND event_type = $2",
            list(cases.values()),
            CaseRegistered.event_type,
        )
        == registered
    )


# --- a service killed after the commit, before its answer reached the client ----------------------


async def test_a_command_whose_service_died_after_committing_is_answered_the_same_after_restart(
    stack: Stack, route: Route
) -> None:
    """The answer is kept with the effect, in the database, not in the process: a border post
    commits a new requirement (a server-generated id) and is frozen the moment the row is visible,
    then killed; the client, whose link never passed the answer, has lost its connection. After a
    restart, the same request with the same key is answered the first answer, with that id."""
    post = route.checkpoints[-1].checkpoint_id
    name = db = f"border-{post}"
    code = f"crash_{uuid.uuid4().hex[:8]}"
    body = {
        "code": code,
        "description": "a test the post asks for (crash test)",
        "evidence_kind": "covid19_test",
        "valid_hours": 24,
        "effective_from": FAR,
    }
    headers = _keyed(stack.headers(Role.BORDER_OFFICER, checkpoint=post, subject="officer-crash"))

    def published() -> Awaitable[Any]:
        return _rows(stack, db, "SELECT count(*) FROM requirements WHERE code = $1", code)

    async with HoldsTheAnswer(stack.border_url(post)) as link:
        async with httpx.AsyncClient(timeout=60.0) as c:
            sending = asyncio.create_task(c.post(f"{link}/requirements", json=body, headers=headers))
            try:
                await _until(published, 1, 30)  # committed
                faults.freeze(stack, name)
                stack.kill_service(name)
                with pytest.raises(httpx.TransportError):
                    await sending
            finally:
                if not sending.done():
                    sending.cancel()
    await asyncio.to_thread(stack.start_service, name)
    r = await _again("POST", f"{stack.border_url(post)}/requirements", json=body, headers=headers)
    assert (r.status_code, r.headers.get(REPLAYED)) == (201, "true"), r.text
    requirement_id = await _rows(stack, db, "SELECT requirement_id FROM requirements WHERE code = $1", code)
    assert r.json()["requirement_id"] == str(requirement_id)
    assert await published() == 1
    assert (
        await _rows(
            stack,
            db,
            "SELECT count(*) FROM outbox WHERE event_type = $1 AND position(convert_to($2, 'UTF8') in payload) > 0",
            CrossingRequirementPublished.event_type,
            str(requirement_id),
        )
        == 1
    )
