"""Commands on the same cases at the same moment, as on the day of a movement: caseworkers record
withdrawals, supervisors hold cases, a crossing point publishes a requirement, the coordinator plans
and boards the buses, border officers clear them and missions report, all at once, in random
interleavings, many times over. The invariants are read from the status stream, transport's
movements and the manifests the border posts receive: whatever the order, a withdrawn, held or
ineligible person never leaves on a bus, seats never exceed capacity, every case's stream is legal,
and every accepted command's effect is visible.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from contracts import topics
from contracts.envelope import CloudEvent, decode_headers
from contracts.routes import Route
from contracts.status import CaseStatus, illegal_steps
from contracts.transport import ManifestIssued
from corridor.auth import Purpose, Role
from corridor.kafkatools import read_topic
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import PLATFORM_SOURCE, StatusStream
from tests.conftest import report_figure
from tests.integration.conftest import wait_group_caught_up

ROUNDS = int(os.environ.get("CORRIDOR_RACE_ROUNDS", "4"))
CASES_PER_ROUND = int(os.environ.get("CORRIDOR_RACE_CASES", "36"))
SEED = int(os.environ.get("CORRIDOR_RACE_SEED", str(random.SystemRandom().randrange(10**6))))
# Dates of their own, far beyond the other tests' (a requirement published here affects only them).
FIRST_DAY = date.today() + timedelta(days=700)

S = CaseStatus
AFTER_DEPARTURE = {S.DEPARTED, S.EXIT_CLEARED, S.ENTRY_CLEARED, S.REFUSED_AT_BORDER, S.ARRIVED}


@dataclass
class Round:
    """What one round sent and what it was answered."""

    day: date
    cases: dict[uuid.UUID, int] = field(default_factory=dict)  # case -> people
    bodies: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    updates: dict[uuid.UUID, int] = field(default_factory=dict)  # case -> HTTP status
    withdrawals: dict[uuid.UUID, int] = field(default_factory=dict)  # case -> HTTP status
    holds: dict[uuid.UUID, tuple[str, int]] = field(default_factory=dict)  # case -> (outcome, status)
    movements: list[dict[str, Any]] = field(default_factory=list)
    departures: list[dict[str, Any]] = field(default_factory=list)
    no_shows: set[uuid.UUID] = field(default_factory=set)
    commands: int = 0


async def _after(delay: float, call: Any) -> Any:
    await asyncio.sleep(delay)
    return await call


async def _withdraw(client: httpx.AsyncClient, stack: Stack, case_id: uuid.UUID) -> int:
    r = await scenario.post(
        client,
        f"{stack.url('intake')}/cases/{case_id}/withdrawal",
        {"reason": "Decided to stay"},
    )
    assert r.status_code in (201, 202, 409), r.text
    if r.status_code == 409:
        assert "left before the withdrawal" in r.text or "only before departure" in r.text, r.text
    return r.status_code


async def _hold(client: httpx.AsyncClient, stack: Stack, case_id: uuid.UUID, outcome: str) -> tuple[str, int]:
    r = await scenario.post(
        client,
        f"{stack.url('eligibility')}/cases/{case_id}/override",
        {
            "outcome": outcome,
            "reason": "Held by a supervisor pending a medical check",
        },
        headers=stack.headers(Role.SUPERVISOR, subject="sup@race"),
    )
    assert r.status_code == 201, r.text
    return outcome, r.status_code


async def _move_to_another_day(
    client: httpx.AsyncClient, stack: Stack, case_id: uuid.UUID, body: dict[str, Any]
) -> int:
    """The family asks to travel on another day: the case leaves this day's planning and buses."""
    later = date.fromisoformat(body["planned_travel_date"]) + timedelta(days=200)
    r = await client.put(
        f"{stack.url('intake')}/cases/{case_id}",
        json={**body, "planned_travel_date": later.isoformat()},
        timeout=30,
    )
    # 409: intake already knows it left (or was withdrawn), and a case on the road is not changed.
    assert r.status_code in (200, 409), r.text
    return r.status_code


async def _plan(
    client: httpx.AsyncClient, stack: Stack, route: Route, day: date, vehicles: list[tuple[str, int]]
) -> dict[str, Any]:
    r = await scenario.post(
        client,
        f"{stack.url('transport')}/movements",
        {
            "movement_id": f"RACE-{day:%Y%m%d}-{uuid.uuid4().hex[:6]}",
            "route_id": route.route_id,
            "departure_date": day.isoformat(),
            "vehicles": [{"vehicle_id": v, "capacity": c} for v, c in vehicles],
        },
        timeout=60,
    )
    assert r.status_code == 201, r.text
    movement: dict[str, Any] = r.json()
    return movement


async def _depart(
    client: httpx.AsyncClient,
    stack: Stack,
    movement_id: str,
    vehicle_id: str,
    no_shows: list[uuid.UUID],
    *,
    again: bool = False,
) -> dict[str, Any]:
    """Board and depart; ``again``: the same departure is also sent by someone else at once, and
    one of the two is answered what the other's departure decided (``Idempotent-Replayed``), or
    told the vehicle has departed when it asked other no-shows (an empty answer here)."""
    r = await scenario.post(
        client,
        f"{stack.url('transport')}/movements/{movement_id}/vehicles/{vehicle_id}/departure",
        {"no_shows": [str(c) for c in no_shows]},
        timeout=60,
    )
    if r.status_code == 422:
        # A no-show picked from the plan may have been taken off in the meantime (withdrawn, held):
        # the coordinator boards again with the manifest as it stands.
        assert "not on" in r.text, r.text
        found = (await client.get(f"{stack.url('transport')}/movements/{movement_id}")).json()
        vehicle = next(v for v in found["vehicles"] if v["vehicle_id"] == vehicle_id)
        still = {uuid.UUID(c["case_id"]) for c in vehicle["cases"] if c["state"] == "manifested"}
        return await _depart(
            client, stack, movement_id, vehicle_id, [c for c in no_shows if c in still], again=again
        )
    if again and r.status_code == 409:
        assert "departed at" in r.text, r.text
        return {"departed": []}
    if again and r.headers.get("Idempotent-Replayed") == "true":
        assert r.status_code == 200, r.text
        return {"departed": []}
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def _settle(stack: Stack, stream: StatusStream, cases: list[uuid.UUID]) -> None:
    """Wait until the services have read everything and the stream stops changing for ``cases``."""
    for group, topic in (
        ("eligibility", topics.CASES),
        ("transport", topics.CASES),
        ("transport", topics.DECISIONS),
        ("intake-timeline", topics.STATUS),
    ):
        await wait_group_caught_up(stack.kafka_access("operations"), group, topic, timeout=60)
    seen = -1
    while True:
        now = sum(len(stream.timelines[c]) for c in cases)
        if now == seen:
            return
        seen = now
        await asyncio.sleep(2.0)


def _platform_statuses(stream: StatusStream, case_id: uuid.UUID) -> list[CaseStatus]:
    return [e.data.status for e in stream.timelines[case_id] if PLATFORM_SOURCE.match(e.source)]  # type: ignore[attr-defined]


async def _latest_manifests(
    stack: Stack, checkpoint_id: str, movement_ids: set[str]
) -> dict[str, set[uuid.UUID]]:
    """The newest manifest revision each vehicle of these movements sent to a post: who it lists."""
    newest: dict[str, ManifestIssued] = {}
    for record in await read_topic(stack.kafka_access("operations"), topics.manifests(checkpoint_id)):
        event = CloudEvent.from_record(decode_headers(record.headers), record.value)
        m = event.data
        assert isinstance(m, ManifestIssued)
        if m.movement_id in movement_ids:
            key = f"{m.movement_id}/{m.vehicle_id}"
            if key not in newest or newest[key].revision < m.revision:
                newest[key] = m
    return {k: {p.case_id for p in m.passengers} for k, m in newest.items()}


async def _register_round(client: httpx.AsyncClient, stack: Stack, day: date, rng: random.Random) -> Round:
    game = Round(day)
    bodies = [
        scenario.family_of_three(day) if rng.random() < 0.3 else scenario.single_traveller(day)
        for _ in range(CASES_PER_ROUND)
    ]
    ids = await asyncio.gather(*(scenario.register(client, stack, b) for b in bodies))
    game.cases = {case_id: len(b["members"]) for case_id, b in zip(ids, bodies, strict=True)}
    game.bodies = dict(zip(ids, bodies, strict=True))
    return game


async def _race(
    client: httpx.AsyncClient,
    stack: Stack,
    stream: StatusStream,
    route: Route,
    game: Round,
    rng: random.Random,
) -> None:
    ids = list(game.cases)
    people = sum(game.cases.values())
    # Fewer seats than people: some wait for a seat freed at boarding.
    seats = max(8, int(people * 0.8))
    vehicles = [(f"BUS-{i}", seats // 3 + (1 if i < seats % 3 else 0)) for i in range(3)]
    shuffled = rng.sample(ids, len(ids))
    sixth, twelfth = len(ids) // 6, len(ids) // 12
    withdraw_early, shuffled = shuffled[:sixth], shuffled[sixth:]
    hold_early, shuffled = shuffled[:twelfth], shuffled[twelfth:]
    update_early, shuffled = shuffled[:twelfth], shuffled[twelfth:]
    withdraw_late, shuffled = shuffled[:sixth], shuffled[sixth:]
    hold_late, shuffled = shuffled[:twelfth], shuffled[twelfth:]
    update_late = shuffled[:twelfth]

    # Wave 1: planning (two coordinators at once, splitting the buses) against withdrawals and holds.
    def jitter() -> float:
        return rng.uniform(0, 0.25)

    def hold(c: uuid.UUID) -> Any:
        return _after(jitter(), _hold(client, stack, c, rng.choice(["pending", "ineligible"])))

    def move(c: uuid.UUID) -> Any:
        return _after(jitter(), _move_to_another_day(client, stack, c, game.bodies[c]))

    first: list[Any] = [
        _after(jitter(), _plan(client, stack, route, game.day, vehicles[:2])),
        _after(jitter(), _plan(client, stack, route, game.day, vehicles[2:])),
        *(_after(jitter(), _withdraw(client, stack, c)) for c in withdraw_early),
        *(hold(c) for c in hold_early),
        *(move(c) for c in update_early),
    ]
    answers = await asyncio.gather(*first)
    game.commands += len(first)
    game.movements = answers[:2]
    rest = iter(answers[2:])
    game.withdrawals.update((c, next(rest)) for c in withdraw_early)
    game.holds.update((c, next(rest)) for c in hold_early)
    game.updates.update((c, next(rest)) for c in update_early)

    # Two coordinators' plans never seat one case twice.
    placed = [uuid.UUID(c["case_id"]) for m in game.movements for v in m["vehicles"] for c in v["cases"]]
    assert len(placed) == len(set(placed)), "a case was placed by both planning runs"

    # Wave 2: boarding and departure of every bus (with no-shows, and freed seats offered to the
    # waiting), one of them sent twice, against more withdrawals, holds and changes of day, some of
    # them of people on those buses.
    twice = game.movements[0]["movement_id"], game.movements[0]["vehicles"][0]["vehicle_id"]
    departures = []
    for m in game.movements:
        for v in m["vehicles"]:
            on_it = [uuid.UUID(c["case_id"]) for c in v["cases"]]
            no_shows = [
                c for c in on_it if rng.random() < 0.1 and c not in withdraw_late and c not in hold_late
            ]
            game.no_shows.update(no_shows)
            # The same boarding sent twice at once for one bus (a retry, a second coordinator).
            for _ in range(2 if (m["movement_id"], v["vehicle_id"]) == twice else 1):
                departures.append(
                    _after(
                        jitter(),
                        _depart(
                            client,
                            stack,
                            m["movement_id"],
                            v["vehicle_id"],
                            no_shows,
                            again=(m["movement_id"], v["vehicle_id"]) == twice,
                        ),
                    )
                )
    second: list[Any] = [
        *departures,
        *(_after(jitter(), _withdraw(client, stack, c)) for c in withdraw_late),
        *(hold(c) for c in hold_late),
        *(move(c) for c in update_late),
    ]
    answers = await asyncio.gather(*second)
    game.commands += len(second)
    recorded = [d for d in answers[: len(departures)] if "movement_id" in d]
    # The doubled departure was recorded once, by exactly one of its two requests.
    same = [d for d in recorded if (d["movement_id"], d["vehicle_id"]) == twice]
    assert len(same) == 1, f"the departure of {twice} was recorded {len(same)} times"
    game.departures = recorded
    rest = iter(answers[len(departures) :])
    game.withdrawals.update((c, next(rest)) for c in withdraw_late)
    game.holds.update((c, next(rest)) for c in hold_late)
    game.updates.update((c, next(rest)) for c in update_late)


async def _check(
    client: httpx.AsyncClient, stack: Stack, stream: StatusStream, route: Route, game: Round
) -> dict[str, int]:
    ids = list(game.cases)
    await _settle(stack, stream, ids)
    statuses = {c: _platform_statuses(stream, c) for c in ids}

    # Every case's stream is a legal sequence, and ends where a settled case can end.
    for c, seq in statuses.items():
        assert not illegal_steps(seq), f"case {c}: illegal stream {[s.value for s in seq]}"
        assert seq and seq[-1] in {S.DEPARTED, S.NO_SHOW, S.WITHDRAWN, S.INELIGIBLE, S.ON_HOLD, S.ELIGIBLE}, (
            f"case {c} settled on {[s.value for s in seq]}"
        )

    # A withdrawal answered 201 took effect before departure; one answered 409 came after it.
    for c, answer in game.withdrawals.items():
        seq = statuses[c]
        if answer == 202:  # the outcome was not known in time: by now it is one or the other
            answer = 201 if S.WITHDRAWN in seq else 409
        if answer == 201:
            assert S.WITHDRAWN in seq and S.DEPARTED not in seq, (c, seq)
        else:
            assert S.DEPARTED in seq and S.WITHDRAWN not in seq, (c, seq)

    # Nobody withdrawn, held or ineligible is on a bus that left: on the stream a departure follows
    # only "manifested" (the legal transitions), and transport's records agree with the stream.
    departed_on_stream = {c for c, seq in statuses.items() if S.DEPARTED in seq}
    for c in departed_on_stream:
        seq = statuses[c]
        assert seq[seq.index(S.DEPARTED) - 1] is S.MANIFESTED, (c, seq)
    departed_by_transport: dict[str, set[uuid.UUID]] = defaultdict(set)
    for m in game.movements:
        found = (await client.get(f"{stack.url('transport')}/movements/{m['movement_id']}")).json()
        for v in found["vehicles"]:
            assert v["departed_at"] is not None
            taken = sum(c["seats"] for c in v["cases"] if c["state"] == "departed")
            assert taken + (1 if v["escort_seat"] else 0) <= v["capacity"], f"over capacity: {v}"
            for c in v["cases"]:
                case_id = uuid.UUID(c["case_id"])
                assert c["state"] in ("departed", "no_show"), c
                if c["state"] == "departed":
                    departed_by_transport[f"{m['movement_id']}/{v['vehicle_id']}"].add(case_id)
                    assert statuses[case_id][-1] is S.DEPARTED, (case_id, statuses[case_id])
                else:
                    assert S.NO_SHOW in statuses[case_id], (case_id, statuses[case_id])
    assert departed_on_stream == set().union(*departed_by_transport.values())

    # Every departure's answer is what happened, and the border posts expect exactly who is aboard.
    answered = {c for d in game.departures for c in map(uuid.UUID, d["departed"])}
    assert answered == departed_on_stream
    movement_ids = {m["movement_id"] for m in game.movements}
    manifests = await _latest_manifests(stack, route.checkpoints[0].checkpoint_id, movement_ids)
    for vehicle, aboard in departed_by_transport.items():
        assert manifests.get(vehicle, set()) == aboard, (
            f"{vehicle}: manifest {manifests.get(vehicle)} vs {aboard}"
        )

    # Every placement answered to a coordinator was announced; every no-show too.
    for m in game.movements:
        for v in m["vehicles"]:
            for c in v["cases"]:
                assert S.MANIFESTED in statuses[uuid.UUID(c["case_id"])]
    for c in game.no_shows:  # a no-show (or whoever left the bus before boarding) never departs
        assert S.DEPARTED not in statuses[c], (c, statuses[c])

    # A hold accepted before its case left keeps it off the bus; one that came after changes nothing.
    for c, (outcome, _) in game.holds.items():
        seq = statuses[c]
        held = S.ON_HOLD if outcome == "pending" else S.INELIGIBLE
        if S.DEPARTED not in seq and S.WITHDRAWN not in seq and S.NO_SHOW not in seq:
            assert seq[-1] is held, (c, outcome, seq)

    # A case moved to another day before it left is off this day's buses; one moved after it left
    # (intake had not read the departure yet) travelled, and its seat says so.
    for c, answer in game.updates.items():
        seq = statuses[c]
        if answer == 200 and S.DEPARTED not in seq:
            assert seq[-1] is not S.MANIFESTED and not any(
                c in aboard for aboard in departed_by_transport.values()
            )

    return {
        "withdrawn_in_time": sum(1 for c in game.withdrawals if S.WITHDRAWN in statuses[c]),
        "withdrawn_too_late": sum(1 for c in game.withdrawals if S.DEPARTED in statuses[c]),
        "taken_off_a_bus": sum(
            1
            for seq in statuses.values()
            if S.MANIFESTED in seq and seq[-1] in {S.WITHDRAWN, S.ON_HOLD, S.INELIGIBLE, S.ELIGIBLE}
        ),
        "departed": len(departed_on_stream),
        "moved_to_another_day": sum(1 for a in game.updates.values() if a == 200),
    }


async def test_withdrawals_and_holds_race_planning_and_departure_and_the_stream_stays_true(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient
) -> None:
    rng = random.Random(SEED)
    started = asyncio.get_running_loop().time()
    totals: dict[str, int] = defaultdict(int)
    commands = 0
    requirement: str | None = None
    for n in range(ROUNDS):
        day = FIRST_DAY + timedelta(days=n)
        game = await _register_round(client, stack, day, rng)
        await stream.wait_for(game.cases, S.ELIGIBLE, 90)
        await scenario.wait_ready_for_planning(client, stack, route, day, game.cases, 60)
        if n == ROUNDS - 1:
            # A crossing point publishes a requirement at short notice, in the middle of planning.
            publish = scenario.post(
                client,
                f"{stack.border_url(route.checkpoints[1].checkpoint_id)}/requirements",
                {
                    "code": "negative_covid19_test",
                    "description": "a negative COVID-19 test taken within 72 hours",
                    "evidence_kind": "covid19_test",
                    "valid_hours": 72,
                    "effective_from": day.isoformat(),
                },
            )
            race = _race(client, stack, stream, route, game, rng)
            published, _ = await asyncio.gather(_after(rng.uniform(0, 0.2), publish), race)
            assert published.status_code == 201, published.text
            requirement = published.json()["requirement_id"]
            game.commands += 1
        else:
            await _race(client, stack, stream, route, game, rng)
        try:
            found = await _check(client, stack, stream, route, game)
        except AssertionError as exc:
            raise AssertionError(f"round {n} (seed {SEED}): {exc}") from exc
        for k, v in found.items():
            totals[k] += v
        commands += game.commands
    if requirement is not None:
        lifted = await client.delete(
            f"{stack.border_url(route.checkpoints[1].checkpoint_id)}/requirements/{requirement}"
        )
        assert lifted.status_code == 200, lifted.text
    elapsed = asyncio.get_running_loop().time() - started
    report_figure(
        "Concurrency",
        f"{ROUNDS} rounds x {CASES_PER_ROUND} cases (seed {SEED}): {commands} concurrent commands; "
        f"withdrawn in time {totals['withdrawn_in_time']}, too late {totals['withdrawn_too_late']}; "
        f"taken off a bus {totals['taken_off_a_bus']}; moved to another day {totals['moved_to_another_day']}; "
        f"departed {totals['departed']}; {elapsed:.0f} s",
    )


async def test_mission_reports_and_border_decisions_race_the_journey(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    """Missions report incidents and receptions while the buses cross; a post refuses a family
    while the next post tries to clear the whole bus. Reports that come before the case is ready
    for them are answered 503 (try again), never a final-looking refusal."""
    ids = list(
        await asyncio.gather(
            *(scenario.register(client, stack, scenario.single_traveller(travel_date)) for _ in range(8))
        )
    )
    await stream.wait_for(ids, S.ELIGIBLE, 90)
    movement = await scenario.plan_movement(
        client, stack, stream, route, travel_date, vehicles=[("BUS-A", 20)], expect=ids
    )
    refused = ids[0]
    refused_person = (await scenario.members_of(client, stack, refused, Purpose.BORDER_CHECK))[0]["person_id"]
    second = route.checkpoints[1].checkpoint_id
    third = route.checkpoints[2].checkpoint_id
    origin = "/missions/TJK/reception"
    answers: dict[uuid.UUID, list[int]] = defaultdict(list)
    stop = asyncio.Event()

    async def report(case_id: uuid.UUID, status: str, source: str) -> None:
        while not stop.is_set():
            event = {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": source,
                "type": "org.corridor.mission.case-status-reported.v1",
                "datacontenttype": "application/json",
                "data": {
                    "case_id": str(case_id),
                    "status": status,
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "place": {"country": "TJK", "name": "Khujand reception centre"},
                },
            }
            r = await client.post(
                f"{stack.url('intake')}/inbound/status-changes",
                json=event,
                headers={
                    "Content-Type": "application/cloudevents+json",
                    # the reporting mission's own integration client: the source names its mission
                    **stack.headers(Role.INTEGRATION_CLIENT, mission=source.split("/")[2]),
                },
            )
            answers[case_id].append(r.status_code)
            assert r.status_code in (202, 503, 409), r.text
            if r.status_code == 503:
                assert r.headers["Retry-After"], r.headers
            if r.status_code == 202 and status == "received":
                return
            await asyncio.sleep(0.05)

    async def hammer_clearance(checkpoint_id: str) -> None:
        url = (
            f"{stack.border_url(checkpoint_id)}/movements/{movement['movement_id']}/vehicles/BUS-A/clearance"
        )
        while not stop.is_set():
            r = await client.post(url, json={})
            assert r.status_code in (200, 404, 409), r.text
            await asyncio.sleep(0.05)

    reporters = [asyncio.create_task(report(c, "received", origin)) for c in ids[1:4]]
    incidents = [
        asyncio.create_task(report(c, "transit_incident", "/missions/UZB/operations")) for c in ids[4:6]
    ]
    hammers = [
        asyncio.create_task(hammer_clearance(cp)) for cp in (third, route.checkpoints[3].checkpoint_id)
    ]
    try:
        await scenario.drive_vehicle(
            client,
            stack,
            route,
            movement["movement_id"],
            "BUS-A",
            refusals={
                second: [
                    {
                        "person_id": refused_person,
                        "reason_code": "document_mismatch",
                        "reason": "Photo differs",
                    }
                ]
            },
        )
        await stream.wait_for(ids[1:], S.ARRIVED, 60)
        async with asyncio.timeout(60):
            await asyncio.gather(*reporters)
    finally:
        stop.set()
        for task in [*reporters, *incidents, *hammers]:
            task.cancel()
        await asyncio.gather(*reporters, *incidents, *hammers, return_exceptions=True)
    await _settle(stack, stream, ids)

    for c in ids:
        seq = [e.data.status for e in stream.timelines[c]]  # type: ignore[attr-defined]
        assert not illegal_steps(seq), (c, [s.value for s in seq])
    # The family refused at the second post was never cleared further on, whatever the hammering.
    assert _platform_statuses(stream, refused)[-1] is S.REFUSED_AT_BORDER, stream.statuses(refused)
    # Reports sent before the arrival was known were told to try again; the last one was accepted.
    for c in ids[1:4]:
        assert answers[c][-1] == 202 and S.RECEIVED in stream.statuses(c), (c, answers[c])
        assert 409 not in answers[c], answers[c]
    report_figure(
        "Concurrency",
        "mission reports racing the journey: "
        f"{sum(len(a) for a in answers.values())} reports ({sum(a.count(503) for a in answers.values())} answered 503 "
        "before the case was ready for them)",
    )
