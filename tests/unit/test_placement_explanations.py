"""What a coordinator reads about each case after a planning run, word for word: where it sits or why
it does not, its place in the queue and why (vulnerability or registration order), an escort seat
kept for it, and the most seats one vehicle still had. The planner's queue is the same whatever order
the store hands the cases in, so planning twice gives the same plan. And the errors a coordinator
gets back name the cases and the post at fault."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest

from corridor.errors import Invalid
from services.transport import domain
from services.transport.domain import ReadyCase, Vehicle, plan

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def ready(members: int, priority: int = 0, minute: int = 0, escort: bool = False, n: int = 1) -> ReadyCase:
    return ReadyCase(uuid.UUID(int=n), members, priority, T0 + timedelta(minutes=minute), needs_escort=escort)


@pytest.mark.parametrize(
    ("cases", "vehicles", "explanations"),
    [
        pytest.param(
            [ready(2)],
            [Vehicle("BUS-1", 4)],
            ["Placed on BUS-1 with 2 seat(s) together (queue position 1 by registration order, priority 0)"],
            id="no-priority-first-in-queue",
        ),
        pytest.param(
            [ready(1, priority=1)],
            [Vehicle("BUS-1", 4)],
            [
                "Placed on BUS-1 with 1 seat(s) together (queue position 1 by vulnerability priority, priority 1)"
            ],
            id="lowest-vulnerability-priority",
        ),
        pytest.param(
            [ready(1, minute=0, n=1), ready(2, minute=5, n=2), ready(1, priority=30, minute=9, n=3)],
            [Vehicle("BUS-1", 3)],
            [
                "Placed on BUS-1 with 1 seat(s) together (queue position 2 by registration order, priority 0)",
                "Not placed: 2 seats needed together, the most free in one vehicle is 1 "
                "(queue position 3 by registration order, priority 0)",
                "Placed on BUS-1 with 1 seat(s) together (queue position 1 by vulnerability priority, priority 30)",
            ],
            id="queue-positions-follow-priority-then-registration",
        ),
        pytest.param(
            [ready(3, priority=50, escort=True, n=1), ready(1, priority=40, escort=True, n=2)],
            [Vehicle("BUS-1", 6)],
            [
                "Placed on BUS-1 with 3 seat(s) together (queue position 1 by vulnerability priority, "
                "priority 50); an escort seat is reserved on it",
                # The escort already on board serves this family too: nothing is reserved for it.
                "Placed on BUS-1 with 1 seat(s) together (queue position 2 by vulnerability priority, priority 40)",
            ],
            id="escort-seat-reserved-once",
        ),
        pytest.param(
            [ready(2, escort=True)],
            [Vehicle("BUS-1", 4, escort_seat=True)],
            ["Placed on BUS-1 with 2 seat(s) together (queue position 1 by registration order, priority 0)"],
            id="escort-already-on-board",
        ),
        pytest.param(
            [ready(3, priority=20, escort=True)],
            [Vehicle("BUS-1", 3), Vehicle("BUS-2", 2)],
            [
                "Not placed: 3 seats needed together plus an escort seat, the most free in one vehicle is 3 "
                "(queue position 1 by vulnerability priority, priority 20)"
            ],
            id="escort-does-not-fit",
        ),
        pytest.param(
            # Free seats: 5 - 4 = 1, 6 - 2 - the escort's = 3, 4 - 2 = 2. The largest is not the first.
            [ready(4)],
            [
                Vehicle("BUS-1", 5, taken=4),
                Vehicle("BUS-2", 6, taken=2, escort_seat=True),
                Vehicle("VAN-1", 4, 2),
            ],
            [
                "Not placed: 4 seats needed together, the most free in one vehicle is 3 "
                "(queue position 1 by registration order, priority 0)"
            ],
            id="most-free-counts-the-escort-seat",
        ),
        pytest.param(
            [ready(2)],
            [],
            [
                "Not placed: 2 seats needed together, the most free in one vehicle is 0 "
                "(queue position 1 by registration order, priority 0)"
            ],
            id="no-vehicles",
        ),
        pytest.param(
            [ready(2)],
            [Vehicle("BUS-1", 1)],
            [
                "Not placed: 2 seats needed together, the most free in one vehicle is 1 "
                "(queue position 1 by registration order, priority 0)"
            ],
            id="one-seat-short",
        ),
    ],
)
def test_every_case_is_told_where_it_sits_or_why_not(
    cases: list[ReadyCase], vehicles: list[Vehicle], explanations: list[str]
) -> None:
    placements = {p.case_id: p.explanation for p in plan(cases, vehicles).placements}
    assert [placements[c.case_id] for c in cases] == explanations


def test_a_tie_in_priority_and_registration_time_is_broken_by_case_id_whatever_the_input_order() -> None:
    # Three single travellers registered in the same second, two seats: the plan must not depend on
    # the order the store returned them in, or planning twice could seat a different family.
    tied = [ready(1, n=n) for n in (3, 1, 2)]
    plans = set()
    for order in permutations(tied):
        result = plan(list(order), [Vehicle("BUS-1", 2)])
        plans.add(
            tuple(sorted((str(p.case_id), p.vehicle_id or "", p.explanation) for p in result.placements))
        )
    assert len(plans) == 1
    [only] = plans
    assert [(case_id[-1], vehicle) for case_id, vehicle, _ in only] == [
        ("1", "BUS-1"),
        ("2", "BUS-1"),
        ("3", ""),
    ]
    assert "queue position 3 by registration order" in only[2][2]


def test_a_no_show_list_names_every_case_not_on_the_manifest_in_order() -> None:
    on = [uuid.UUID(int=1)]
    strangers = [uuid.UUID(int=9), uuid.UUID(int=7)]
    with pytest.raises(domain.NotOnManifest) as caught:
        domain.check_no_shows("BUS-2", on, [*strangers, on[0]])
    assert caught.value.loc == ("body", "no_shows")
    assert caught.value.msg == f"not on BUS-2's manifest: {strangers[1]}, {strangers[0]}"


def test_a_crossing_at_a_post_off_the_route_names_the_post_and_the_route() -> None:
    error = domain.NotOnRoute("tjk-dushanbe", "kaz-uzb")
    assert isinstance(error, Invalid) and error.status_code == 422
    assert (error.loc, error.msg) == (("body", "checkpoint_id"), "tjk-dushanbe is not on route kaz-uzb")
