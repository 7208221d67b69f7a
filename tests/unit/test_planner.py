import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.transport.domain import ReadyCase, Vehicle, plan

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def case(members: int, priority: int = 0, minute: int = 0) -> ReadyCase:
    return ReadyCase(uuid.uuid4(), members, priority, T0 + timedelta(minutes=minute))


def test_vulnerable_cases_are_placed_before_earlier_registrations() -> None:
    early, vulnerable = case(2, 0, minute=0), case(2, 40, minute=5)
    placements = plan([early, vulnerable], [Vehicle("BUS-1", 2)]).placements
    placed = {p.case_id: p.vehicle_id for p in placements}
    assert placed[vulnerable.case_id] == "BUS-1"
    assert placed[early.case_id] is None


def test_families_are_never_split_and_no_vehicle_is_over_capacity() -> None:
    cases = [case(3, minute=i) for i in range(5)] + [case(1, minute=10 + i) for i in range(4)]
    vehicles = [Vehicle("BUS-1", 7), Vehicle("BUS-2", 5)]
    placements = plan(cases, vehicles).placements
    load = {"BUS-1": 0, "BUS-2": 0}
    size = {c.case_id: c.members for c in cases}
    for p in placements:
        if p.vehicle_id:
            load[p.vehicle_id] += size[p.case_id]
    assert load["BUS-1"] <= 7 and load["BUS-2"] <= 5
    assert sum(load.values()) == 12  # 3+3 and 1 on BUS-1, 3 and 1+1 on BUS-2
    unplaced = [p for p in placements if p.vehicle_id is None]
    assert all("seats needed together" in p.explanation for p in unplaced)
    assert len(placements) == len(cases)


def test_every_placement_is_explained() -> None:
    placements = plan([case(2, 30)], [Vehicle("BUS-1", 45)]).placements
    assert "BUS-1" in placements[0].explanation and "vulnerability priority" in placements[0].explanation


def test_duplicate_vehicle_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        plan([], [Vehicle("A", 1), Vehicle("A", 2)])


def test_an_escort_takes_one_seat_on_each_vehicle_that_needs_one() -> None:
    escorted = ReadyCase(uuid.uuid4(), 3, 50, T0, needs_escort=True)
    second = ReadyCase(uuid.uuid4(), 1, 40, T0, needs_escort=True)
    filler = case(1, minute=5)
    result = plan([escorted, second, filler], [Vehicle("BUS-1", 5)])
    placed = {p.case_id: p for p in result.placements}
    assert (
        placed[escorted.case_id].escort_seat_reserved
        and "escort seat" in placed[escorted.case_id].explanation
    )
    assert placed[second.case_id].vehicle_id == "BUS-1" and not placed[second.case_id].escort_seat_reserved
    assert placed[filler.case_id].vehicle_id is None  # 3 + 1 + the escort fill the five seats
    assert result.vehicles["BUS-1"].free == 0


def test_freed_seats_are_filled_from_what_is_already_on_board() -> None:
    on_board = Vehicle("BUS-1", 45, taken=43)
    family, single = case(3, 10), case(1, 0)
    result = plan([family, single], [on_board])
    placed = {p.case_id: p.vehicle_id for p in result.placements}
    assert placed == {family.case_id: None, single.case_id: "BUS-1"}
    assert on_board.taken == 43  # the caller's vehicles are not changed
