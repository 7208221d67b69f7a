"""A read model nobody waits on (reporting's statistics) lets the broker gather its records, so a
trickle of status changes is applied in a few transactions instead of one each (issue 13: at 50
cases/s reporting's CPU a case fell from 3.5 to 1.3 ms). Intake's reading of the same stream does
not gather: what intake knows of a case's status judges missions' reports, withdrawals and
erasures, and must follow the stream closely (test_mission_integration answers a report right after
the status it follows reached the stream)."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx

from contracts import topics
from devkit import scenario
from devkit.devstack import Stack
from tests.integration.conftest import wait_group_caught_up

CASES = 20


async def _reporting(client: httpx.AsyncClient, stack: Stack) -> dict[str, int]:
    """Reporting's consumer: records applied, duplicates, transactions."""
    response = await client.get(stack.url("reporting") + "/stats")
    response.raise_for_status()
    return dict(response.json()["consumers"]["reporting"])


async def test_a_trickle_reaches_the_statistics_in_few_transactions(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    operations = stack.kafka_access("operations")
    # Something on the stream, so that the group has an offset to catch up to; then from quiet.
    await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await wait_group_caught_up(operations, "reporting", topics.STATUS, timeout=60)
    before = await _reporting(client, stack)
    for _ in range(CASES):  # one registration at a time, as a caseworker's form sends them
        await scenario.register(client, stack, scenario.single_traveller(travel_date))
        await asyncio.sleep(0.02)
    await wait_group_caught_up(operations, "reporting", topics.STATUS, timeout=60)
    after = await _reporting(client, stack)

    records = sum(after[k] - before[k] for k in ("applied", "duplicates"))
    transactions = after["transactions"] - before["transactions"]
    # Each registration's two status changes (registered, eligible) and its profile.
    assert records >= 3 * CASES, records
    # Answered at once, a fetch brings each registration's records on their own (60 records in
    # 42 transactions without gathering); gathered for 250 ms, a few fetches bring them all.
    assert records / transactions >= 4, (records, transactions)
