"""Erasure of personal data, on the person's request and when the retention period has passed.

The oracle does not ask the services what they erased: it reads every row of every table of every
service's database (outbox payloads decoded) and looks for the people's names, document numbers
and contacts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from contracts.intake import ErasureBasis
from contracts.routes import Route, RouteBook
from contracts.status import CaseStatus
from devkit import scenario
from devkit.devstack import DEFAULT_ROUTES, Stack
from opstools.statusreader import StatusStream
from services.intake import domain, usecases


def distinctive(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The registration with names, contacts and a city no other test uses; and those strings,
    with the document numbers, as the oracle looks for them."""
    strings: list[str] = []
    for member in body["members"]:
        member["surname"] = f"Erasov{scenario.unique_token()}"
        member["phone"] = f"+7701{uuid.uuid4().int % 10**7:07d}"
        member["current_city"] = f"Aul{scenario.unique_token()}"
        strings += [
            member["surname"],
            member["given_names"].split()[-1],  # the unique part of the given names
            member["phone"],
            member["current_city"],
            member["document"]["number"],
        ]
    return body, strings


async def every_value(dsn: str) -> list[tuple[str, str]]:
    """(table, text) of every value of every table in the database's public schema."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = [
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ]
        found: list[tuple[str, str]] = []
        for table in tables:
            for row in await conn.fetch(f'SELECT * FROM "{table}"'):
                for value in row.values():
                    if isinstance(value, bytes | bytearray | memoryview):
                        found.append((table, bytes(value).decode("utf-8", errors="replace")))
                    elif value is not None:
                        found.append((table, str(value)))
        return found
    finally:
        await conn.close()


async def personal_data_left(stack: Stack, strings: list[str]) -> dict[str, set[str]]:
    """Per service, the tables where any of ``strings`` still appears."""
    left: dict[str, set[str]] = {}
    for spec in stack.specs.values():
        for table, text in await every_value(stack.postgres.dsn(spec.database)):
            if any(s in text for s in strings):
                left.setdefault(spec.name, set()).add(table)
    return left


async def erased_everywhere(stack: Stack, case_id: uuid.UUID, posts: list[str], timeout: float = 60) -> None:
    checks = [
        ("eligibility", "SELECT erased_at IS NOT NULL FROM cases WHERE case_id = $1"),
        ("transport", "SELECT erased_at IS NOT NULL FROM cases WHERE case_id = $1"),
        *((f"border-{cp}", "SELECT true FROM erasures WHERE case_id = $1") for cp in posts),
    ]
    async with asyncio.timeout(timeout):
        for service, query in checks:
            conn = await asyncpg.connect(stack.postgres.dsn(stack.specs[service].database))
            try:
                while not await conn.fetchval(query, case_id):
                    await asyncio.sleep(0.2)
            finally:
                await conn.close()


SUPERVISOR = "supervisor@erasure-test"


async def erase(client: httpx.AsyncClient, stack: Stack, case_id: uuid.UUID) -> httpx.Response:
    """The request as a supervisor of the host mission makes it (an erasure is theirs to decide)."""
    return await client.post(
        f"{stack.url('intake')}/cases/{case_id}/erasure",
        headers=stack.headers("supervisor", subject=SUPERVISOR),
    )


async def test_an_arrived_familys_personal_data_is_erased_in_every_service_and_statistics_stay(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    body, strings = distinctive(scenario.family_of_three(travel_date))
    case_id = await scenario.register(client, stack, body)
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    taken = datetime.now(UTC) - timedelta(hours=2)  # medical data the erasure must reach too
    await scenario.record_evidence(client, stack, case_id, "covid19_test", "negative", taken)
    await scenario.run_movement(
        client, stack, stream, route, travel_date, vehicles=[("BUS-ERASE", 10)], expect=[case_id]
    )
    await stream.wait_for([case_id], CaseStatus.ARRIVED, 90)
    await scenario.wait_read_by_intake(client, stack, [case_id], CaseStatus.ARRIVED, 30)
    assert await personal_data_left(stack, strings), "the oracle must see the data before the erasure"

    answer = await erase(client, stack, case_id)
    assert answer.status_code == 201, answer.text
    assert answer.json()["basis"] == ErasureBasis.DATA_SUBJECT_REQUEST
    await erased_everywhere(stack, case_id, [cp.checkpoint_id for cp in route.checkpoints])

    assert await personal_data_left(stack, strings) == {}
    # A repeat changes nothing; the case can no longer be read or changed.
    again = await erase(client, stack, case_id)
    assert (again.status_code, again.json()["created"]) == (200, False)
    read = await client.get(
        f"{stack.url('intake')}/cases/{case_id}", headers={"X-Purpose": "case_management"}
    )
    assert read.status_code == 410 and not any(s in read.text for s in strings)
    # What statistics count stays: the case, its journey, its people's sex, nationality, birth year.
    conn = await asyncpg.connect(stack.postgres.dsn(stack.specs["intake"].database))
    try:
        assert await conn.fetchval("SELECT status FROM cases WHERE case_id = $1", case_id) == "arrived"
        people = await conn.fetch(
            "SELECT sex, nationality, birth_date FROM persons WHERE case_id = $1", case_id
        )
        assert len(people) == 3 and all(p["birth_date"].timetuple()[1:3] == (1, 1) for p in people)
        assert {p["nationality"] for p in people} == {"TJK"}
        assert await conn.fetchval("SELECT count(*) FROM health_evidence WHERE case_id = $1", case_id) == 0
        who = await conn.fetchval("SELECT requested_by FROM erasures WHERE case_id = $1", case_id)
        assert who == SUPERVISOR  # the token's subject, not a name the caller typed
    finally:
        await conn.close()
    assert stream.statuses(case_id)[-1] is CaseStatus.ARRIVED  # nothing on the stream for it


async def test_a_case_still_in_the_process_is_not_erased_and_an_ineligible_one_is_withdrawn(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    waiting = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    foreign, strings = distinctive(scenario.single_traveller(travel_date))
    foreign["members"][0]["nationality"] = "UZB"  # not the route's destination: ineligible
    refused = await scenario.register(client, stack, foreign)
    await stream.wait_for([waiting], CaseStatus.ELIGIBLE, 60)
    await stream.wait_for([refused], CaseStatus.INELIGIBLE, 60)
    # Intake decides on the status it has read from the stream, a moment after the test's reader.
    await scenario.wait_read_by_intake(client, stack, [waiting], CaseStatus.ELIGIBLE, 30)
    await scenario.wait_read_by_intake(client, stack, [refused], CaseStatus.INELIGIBLE, 30)

    answer = await erase(client, stack, waiting)
    assert answer.status_code == 409 and "withdraw it first" in answer.text
    # Irreversible: not a caseworker's to decide.
    refused_to_caseworker = await client.post(
        f"{stack.url('intake')}/cases/{refused}/erasure", headers=stack.headers("caseworker")
    )
    assert refused_to_caseworker.status_code == 403

    assert (await erase(client, stack, refused)).status_code == 201
    # Transport withdraws it: a later decision can never seat a case whose data is gone.
    await stream.wait_for([refused], CaseStatus.WITHDRAWN, 60)
    last = stream.timelines[refused][-1].data
    assert last.reason_code == "personal_data_erased"
    await erased_everywhere(stack, refused, posts=[])
    assert await personal_data_left(stack, strings) == {}


# --- the retention period, on a database of its own ------------------------------------------------


async def test_two_retention_sweeps_at_once_erase_each_expired_case_exactly_once(
    intake_units: Any, travel_date: date
) -> None:
    pool, units = intake_units
    ctx = usecases.Context(RouteBook.load(DEFAULT_ROUTES), retention=timedelta(days=90))
    cases = []
    for _ in range(30):
        body = scenario.single_traveller(travel_date)
        async with units() as uow:
            done = await usecases.register_case(domain.RegisterCase.model_validate(body), uow, ctx)
        cases.append(done.case_id)
    expired, recent, active = cases[:20], cases[20:25], cases[25:]
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE cases SET status = 'arrived', updated_at = now() - interval '91 days' WHERE case_id = ANY($1)",
            expired,
        )
        await conn.execute(
            "UPDATE cases SET status = 'withdrawn', updated_at = now() - interval '89 days' WHERE case_id = ANY($1)",
            recent,
        )
        await conn.execute(
            "UPDATE cases SET status = 'eligible', updated_at = now() - interval '200 days' WHERE case_id = ANY($1)",
            active,
        )

    counts = await asyncio.gather(*(usecases.sweep_retention(units, ctx, batch=3) for _ in range(2)))
    assert sum(counts) == len(expired)
    async with pool.acquire() as conn:
        erased = await conn.fetch("SELECT case_id, basis, requested_by FROM erasures")
        assert sorted(r["case_id"] for r in erased) == sorted(expired)
        assert {(r["basis"], r["requested_by"]) for r in erased} == {("retention_expired", "retention")}
        sent = await conn.fetch(
            "SELECT key FROM outbox WHERE event_type = 'org.corridor.intake.personal-data-erased.v1'"
        )
        assert sorted(r["key"] for r in sent) == sorted(str(c) for c in expired)
        names = await conn.fetch("SELECT case_id, surname FROM persons")
        assert {r["case_id"] for r in names if r["surname"] == ""} == set(expired)
