"""Services killed with SIGKILL mid-flow and restarted lose nothing and duplicate nothing."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from datetime import date

import asyncpg
import httpx

from contracts import topics
from contracts.routes import Route
from contracts.status import CaseStatus
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.conftest import report_figure
from tests.integration import faults


async def test_services_killed_mid_flow_lose_nothing(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    """Each kill comes when the status stream shows the victim in the middle of its work, and the
    work it left behind is measured once it is dead, where it is durable: a kill with nothing
    pending would prove nothing, and fails the test."""
    operations = stack.kafka_access("operations")
    bodies = [
        scenario.family_of_three(travel_date) if i % 4 == 0 else scenario.single_traveller(travel_date)
        for i in range(40)
    ]
    with scenario.tolerating_faults():
        # Registrations one after another, so eligibility (which takes records in batches) always
        # has more coming: it dies once it has decided some and while the rest are still arriving.
        registered: list[uuid.UUID] = []

        async def one_by_one() -> list[uuid.UUID]:
            for body in bodies[:20]:
                registered.append(await scenario.register(client, stack, body))
            return list(registered)

        registering_first = asyncio.create_task(one_by_one())
        await faults.when(
            lambda: (
                0 < sum(CaseStatus.ELIGIBLE in stream.statuses(c) for c in registered)
                and not registering_first.done()
            ),
            "eligibility between its first and its last decision",
            every=0.005,
        )
        faults.freeze(stack, "eligibility")
        first = await registering_first
        there = await faults.end_offsets(operations, [topics.CASES])
        eligibility_left = await faults.group_lag(operations, "eligibility", there)
        eligibility_left += await faults.outbox_unpublished(stack, "eligibility")
        stack.kill_service("eligibility")
        # Intake dies while registrations come in: some answered, some still to be answered.
        in_flight = 0

        async def register(body: dict) -> uuid.UUID:
            nonlocal in_flight
            in_flight += 1
            try:
                return await scenario.register(client, stack, body)
            finally:
                in_flight -= 1

        registering = asyncio.gather(*(register(b) for b in bodies[20:]))
        await faults.when(
            lambda: 0 < in_flight < len(bodies) - 20, "intake answering registrations", every=0.005
        )
        faults.freeze(stack, "intake")
        unanswered = in_flight
        intake_left = unanswered + await faults.outbox_unpublished(stack, "intake")
        stack.kill_service("intake")
        await asyncio.to_thread(stack.start_service, "intake")
        await asyncio.to_thread(stack.start_service, "eligibility")
        second = await registering
        cases = [*first, *second]
        await stream.wait_for(cases, CaseStatus.ELIGIBLE, 90)

        movement = asyncio.create_task(
            scenario.run_movement(
                client,
                stack,
                stream,
                route,
                travel_date,
                vehicles=[("BUS-A", 45), ("BUS-B", 45)],
                expect=cases,
            )
        )
        # Transport dies while posts' decisions wait for it. The stream cannot show that moment:
        # transport announces a post's decision (and the arrival after the last) in one transaction,
        # and the posts write no status. So the moment is taken from the posts' own databases (a
        # post answered a clearance: more decisions there than crossings on the stream), and what
        # transport left behind is read where it is durable: the crossing records its group had not
        # committed, and its outbox. Transport may apply a clearance before the freeze; then it is
        # thawed and waits for the next post's (four posts, two buses: eight chances).
        crossing_topics = [topics.crossings(cp.checkpoint_id) for cp in route.checkpoints]
        shown_statuses = (CaseStatus.EXIT_CLEARED, CaseStatus.ENTRY_CLEARED, CaseStatus.REFUSED_AT_BORDER)

        def shown() -> int:
            return sum(s in shown_statuses for c in cases for s in stream.statuses(c))

        posts = [
            await asyncpg.connect(stack.postgres.dsn(stack.specs[f"border-{cp.checkpoint_id}"].database))
            for cp in route.checkpoints
        ]

        async def decided() -> int:
            n = 0
            for post in posts:
                n += await post.fetchval(
                    "SELECT count(DISTINCT case_id) FROM decisions WHERE case_id = ANY($1::uuid[])", cases
                )
            return n

        async def waiting_for_transport() -> bool:
            return await decided() > shown()

        async def caught_up() -> bool:
            return not await waiting_for_transport()

        transport_left = 0
        try:
            while not transport_left:
                await faults.when(
                    waiting_for_transport, "a post's decisions not yet on the stream", every=0.005
                )
                faults.freeze(stack, "transport")
                there = await faults.end_offsets(operations, crossing_topics)
                transport_left = await faults.group_lag(operations, "transport", there)
                transport_left += await faults.outbox_unpublished(stack, "transport")
                if not transport_left:
                    faults.thaw(stack, "transport")
                    await faults.when(caught_up, "transport announcing the post's decisions")
        finally:
            for post in posts:
                await post.close()
        stack.kill_service("transport")
        await asyncio.to_thread(stack.start_service, "transport")
        await movement
        await stream.wait_for(cases, CaseStatus.ARRIVED, 90)

    # The premise: each process died with work in flight (checked once the platform is whole again).
    assert eligibility_left > 0, "premise: eligibility had nothing unread or unpublished when it was killed"
    assert intake_left > 0, "premise: intake had answered and published everything when it was killed"
    assert transport_left > 0, "premise: transport had nothing left to do when it was killed"
    report_figure(
        "crash recovery",
        f"left behind by SIGKILL: eligibility {eligibility_left} unread registration records or unpublished decisions, intake "
        f"{intake_left} registrations unanswered ({unanswered}) or unpublished, transport {transport_left} posts' decisions unread or events unpublished",
    )
    expected = Counter(scenario.journey(route))
    for case_id in cases:
        counts = Counter(stream.statuses(case_id))
        # Each status change exactly once (exit/entry clearances once per crossing).
        assert counts == expected, f"{case_id}: {stream.statuses(case_id)}"
    for name in ("intake", "eligibility", "transport"):
        async with asyncio.timeout(30):
            while (await client.get(stack.url(name) + "/stats")).json()["outbox_pending"]:
                await asyncio.sleep(0.2)


async def test_a_graceful_stop_mid_flow_commits_nothing_unprocessed(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    """SIGTERM (a deploy, a node drain): in-flight records finish, the relay drains, exit 0."""
    cases = await asyncio.gather(
        *(scenario.register(client, stack, scenario.single_traveller(travel_date)) for _ in range(30))
    )
    log = stack.log_path("eligibility")
    before = log.read_text(errors="replace").count("eligibility stopped")
    code = await asyncio.to_thread(stack.stop_service, "eligibility")
    # uvicorn re-raises the signal after its graceful shutdown: -15 means it stopped by itself
    # within the grace period (SIGKILL after the grace period would be -9).
    assert code == -signal.SIGTERM, f"eligibility exited with {code} on SIGTERM"
    assert log.read_text(errors="replace").count("eligibility stopped") == before + 1
    more = await asyncio.gather(
        *(scenario.register(client, stack, scenario.single_traveller(travel_date)) for _ in range(10))
    )
    await asyncio.to_thread(stack.start_service, "eligibility")
    everyone = [*cases, *more]
    await stream.wait_for(everyone, CaseStatus.ELIGIBLE, 90)
    for case_id in everyone:
        assert stream.statuses(case_id) == [CaseStatus.REGISTERED, CaseStatus.ELIGIBLE], case_id
