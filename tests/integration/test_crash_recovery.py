"""Services killed with SIGKILL mid-flow and restarted lose nothing and duplicate nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date

import httpx

from contracts.routes import Route
from contracts.status import CaseStatus
from corridor import scenario
from corridor.devstack import Stack
from corridor.statusreader import StatusStream


async def test_services_killed_mid_flow_lose_nothing(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    bodies = [
        scenario.family_of_three(travel_date) if i % 4 == 0 else scenario.single_traveller(travel_date)
        for i in range(40)
    ]
    first = await asyncio.gather(*(scenario.register(client, stack, b) for b in bodies[:20]))
    # Eligibility dies while it is working through the first registrations.
    stack.kill_service("eligibility")
    second = await asyncio.gather(*(scenario.register(client, stack, b) for b in bodies[20:]))
    # Intake dies right after acknowledging registrations: its outbox may still hold them.
    stack.kill_service("intake")
    stack.start_service("intake")
    stack.start_service("eligibility")
    cases = [*first, *second]
    await stream.wait_for(cases, CaseStatus.ELIGIBLE, 90)

    await scenario.run_movement(
        client, stack, stream, route, travel_date, vehicles=[("BUS-A", 45), ("BUS-B", 45)], expect=cases
    )
    # Transport dies while border decisions are turning into arrivals.
    stack.kill_service("transport")
    stack.start_service("transport")
    await stream.wait_for(cases, CaseStatus.ARRIVED, 90)

    for case_id in cases:
        counts = Counter(stream.statuses(case_id))
        # Each status change exactly once (exit/entry clearances once per crossing).
        assert counts == {
            CaseStatus.REGISTERED: 1,
            CaseStatus.ELIGIBLE: 1,
            CaseStatus.MANIFESTED: 1,
            CaseStatus.DEPARTED: 1,
            CaseStatus.EXIT_CLEARED: 2,
            CaseStatus.ENTRY_CLEARED: 2,
            CaseStatus.ARRIVED: 1,
        }, f"{case_id}: {stream.statuses(case_id)}"
    for name in ("intake", "eligibility", "transport"):
        async with asyncio.timeout(30):
            while (await client.get(stack.url(name) + "/stats")).json()["outbox_pending"]:
                await asyncio.sleep(0.2)
