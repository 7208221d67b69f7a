"""A registration's duplicate lookup reads at most ``CANDIDATES_PER_KEY`` holders of each key, however
many people hold it: a common name, or the same person registered again and again, must not make
each registration sharing it slower than the last. Measured on a real PostgreSQL with the plan's
own row counts (EXPLAIN ANALYZE of the lookup the store runs)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import asyncpg

from contracts.routes import RouteBook
from devkit import scenario
from devkit.devstack import DEFAULT_ROUTES
from services.intake import domain, usecases
from services.intake.duplicates import CANDIDATES_PER_KEY
from services.intake.store import _HOLDERS
from tests.integration.conftest import rows_read_from

REGISTRATIONS = 3 * CANDIDATES_PER_KEY


async def test_a_key_held_by_many_is_read_only_as_far_as_the_candidates_it_gives(
    intake_units: tuple[asyncpg.Pool, Any], travel_date: date
) -> None:
    pool, units = intake_units
    ctx = usecases.Context(RouteBook.load(DEFAULT_ROUTES))
    person = scenario.single_traveller(travel_date)
    cases = []
    for i in range(REGISTRATIONS):  # the same person each time: every key has as many holders
        async with units() as uow:
            command = domain.RegisterCase.model_validate({**person, "registration_key": f"again/{i}"})
            done = await usecases.register_case(command, uow, ctx)
        cases.append(done.case_id)

    async with pool.acquire() as conn:
        keys = await conn.fetch("SELECT kind, key FROM person_keys WHERE case_id = $1", cases[-1])
        held = await conn.fetchval(
            "SELECT count(*) FROM person_keys WHERE (kind, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
            [k["kind"] for k in keys],
            [k["key"] for k in keys],
        )
        assert len(keys) >= 2 and held == REGISTRATIONS * len(keys)

        # What the store answers: CANDIDATES_PER_KEY holders of each key, none of the excluded case.
        async with units() as uow:
            holders = await uow.store.key_holders(
                {(k["kind"], k["key"]) for k in keys}, exclude_case=cases[0]
            )
        assert {pair: len(h) for pair, h in holders.items()} == {
            (k["kind"], k["key"]): CANDIDATES_PER_KEY for k in keys
        }
        assert all(h.case_id != cases[0] for found in holders.values() for h in found)

        # And what it reads to answer: no more holders than it gives, not all of them.
        explained = await conn.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {_HOLDERS}",
            [k["kind"] for k in keys],
            [k["key"] for k in keys],
            CANDIDATES_PER_KEY,
            None,
        )
        plan = json.loads(explained)[0]["Plan"]
        read = rows_read_from(plan, "person_keys")
        assert read == CANDIDATES_PER_KEY * len(keys), (read, held)
