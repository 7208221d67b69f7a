"""Planning's listing of a day's ready cases reads the cases still to place, not every case of the
day: on a day of thousands already seated, each plan must not read them all again. Measured on a
real PostgreSQL with the plan's own row counts (EXPLAIN ANALYZE of the statement the store runs),
with the placement mark kept by the database as seats are given and taken back."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg
import pytest

from contracts.eligibility import Outcome
from contracts.intake import CaseRegistered, Consent, Person, TravelDocument
from contracts.routes import RouteBook
from devkit.devstack import DEFAULT_ROUTES, Stack
from services.transport import app as transport_app
from services.transport.domain import Decision
from services.transport.store import READY_CASES, TransportStore
from tests.integration.conftest import fresh_database, rows_read_from

ROUTE = RouteBook.load(DEFAULT_ROUTES).routes[0]
DAY_CASES = 60
SEATED = 54


@pytest.fixture
async def transport_db(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with fresh_database(stack, "transport", transport_app.MIGRATIONS) as pool:
        yield pool


def registration(day: date) -> CaseRegistered:
    return CaseRegistered(
        case_id=uuid.uuid4(),
        registered_at=datetime.now(UTC),
        route_id=ROUTE.route_id,
        planned_travel_date=day,
        consent=Consent(given=True, kind="explicit", scope=["UZB", "TJK"]),
        members=[
            Person(
                person_id=uuid.uuid4(),
                role="principal",
                given_names="Murod",
                surname="Rahimov",
                birth_date=date(1979, 1, 30),
                sex="M",
                nationality="TJK",
                document=TravelDocument(
                    type="passport", number="400765431", issuing_country="TJK", expires_on=date(2030, 1, 1)
                ),
            )
        ],
    )


async def test_a_plan_lists_only_the_cases_still_to_place(
    transport_db: asyncpg.Pool, travel_date: date
) -> None:
    cases = [registration(travel_date) for _ in range(DAY_CASES)]
    ids = [c.case_id for c in cases]
    eligible = Decision(1, Outcome.ELIGIBLE, 0, None, None, False, datetime.now(UTC))
    abroad = ["UZB", "TJK"]
    async with transport_db.acquire() as conn, conn.transaction():
        store = TransportStore(conn)
        await store.save_registrations(cases)
        await store.save_decisions([(i, eligible) for i in ids])
        assert await store.create_movement(
            "MOV-1", ROUTE.route_id, travel_date, [("BUS-1", 100, uuid.uuid4())]
        )
        await store.assign_many("MOV-1", [(i, "BUS-1", 1, "placed") for i in ids[:SEATED]])
        # Taken back off before departure: ready again.
        assert await store.remove_assignment(ids[0]) is not None

    still_to_place = {ids[0], *ids[SEATED:]}
    async with transport_db.acquire() as conn:
        store = TransportStore(conn)
        listed = await store.ready_cases(ROUTE.route_id, travel_date, abroad)
        assert {r.case_id for r in listed} == still_to_place
        locked = await store.ready_cases(ROUTE.route_id, travel_date, abroad, among=[ids[0], ids[1]])
        assert [r.case_id for r in locked] == [ids[0]]
        # The mark follows the seats, whichever statement gave or took them.
        marks = {r["case_id"]: r["placed"] for r in await conn.fetch("SELECT case_id, placed FROM cases")}
        seated = {r["case_id"] for r in await conn.fetch("SELECT case_id FROM assignments")}
        assert {i for i, placed in marks.items() if placed} == seated == set(ids[1:SEATED])

        # What the listing reads: the cases still to place, not the day's.
        await conn.execute("ANALYZE cases")
        explained = await conn.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {READY_CASES}",
            ROUTE.route_id,
            travel_date,
            abroad,
            Outcome.ELIGIBLE.value,
        )
        plan = (explained if isinstance(explained, list) else json.loads(explained))[0]["Plan"]
        assert rows_read_from(plan, "cases") == len(still_to_place), plan
