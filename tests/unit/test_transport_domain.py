"""Transport's rules without I/O: the seat states and their transitions, and what a decision, a
withdrawal, a change of the case and a border crossing do to a seat."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from contracts.eligibility import Outcome
from contracts.status import LEGAL_TRANSITIONS, CaseStatus
from corridor.errors import Invalid
from services.transport import domain
from services.transport.domain import (
    SEAT_TRANSITIONS,
    TAKEN_OFF,
    DecisionEffect,
    Seat,
    SeatState,
    may_move,
    reached_from,
)

M, N, D, R, A = (
    SeatState.MANIFESTED,
    SeatState.NO_SHOW,
    SeatState.DEPARTED,
    SeatState.REFUSED,
    SeatState.ARRIVED,
)


def test_every_seat_state_has_its_transitions_and_is_reachable_from_no_seat() -> None:
    assert set(SEAT_TRANSITIONS) == {TAKEN_OFF, *SeatState}
    reachable, frontier = set(), [TAKEN_OFF]
    while frontier:
        for after in SEAT_TRANSITIONS[frontier.pop()]:
            if after is not None and after not in reachable:
                reachable.add(after)
                frontier.append(after)
    assert reachable == set(SeatState)


@pytest.mark.parametrize(
    ("after", "before"),
    [(M, ()), (N, (M,)), (D, (M,)), (R, (D,)), (A, (D,)), (TAKEN_OFF, (M,))],
)
def test_each_conditional_update_starts_only_from_the_states_the_transitions_allow(
    after: SeatState | None, before: tuple[SeatState, ...]
) -> None:
    assert reached_from(after) == before
    if after is not None:
        assert after.reached_from == before


def test_a_case_on_the_road_is_never_taken_off_and_a_settled_seat_never_moves() -> None:
    assert not may_move(D, TAKEN_OFF)
    assert not may_move(D, N)
    for settled in (N, R, A):
        assert SEAT_TRANSITIONS[settled] == frozenset()
    assert may_move(TAKEN_OFF, M) and may_move(M, TAKEN_OFF)


def test_seat_moves_agree_with_the_public_stream() -> None:
    # Each seat state a case can reach is announced (or, at a border, noted) with a public status
    # that may follow the status of the seat state before it.
    public = {M: CaseStatus.MANIFESTED, N: CaseStatus.NO_SHOW, D: CaseStatus.DEPARTED}
    for before, afters in SEAT_TRANSITIONS.items():
        for after in afters:
            if before in public and after in public:
                assert public[after] in LEGAL_TRANSITIONS[public[before]], (before, after)


def test_the_groups_of_states_the_queries_use() -> None:
    assert {s for s in SeatState if s.before_departure} == {M, N}
    assert domain.ON_MANIFEST == {M, D, A}
    assert domain.HOLDS_SEAT == {M, D}
    assert domain.SETTLED == {A, N, R}


@pytest.mark.parametrize(
    ("outcome", "seat", "known", "effect"),
    [
        (Outcome.ELIGIBLE, None, CaseStatus.REGISTERED, DecisionEffect(announce=CaseStatus.ELIGIBLE)),
        (Outcome.ELIGIBLE, None, CaseStatus.ELIGIBLE, DecisionEffect()),
        (Outcome.PENDING, None, CaseStatus.ELIGIBLE, DecisionEffect(announce=CaseStatus.ON_HOLD)),
        (Outcome.INELIGIBLE, None, CaseStatus.ON_HOLD, DecisionEffect(announce=CaseStatus.INELIGIBLE)),
        (Outcome.ELIGIBLE, M, CaseStatus.MANIFESTED, DecisionEffect()),
        (
            Outcome.PENDING,
            M,
            CaseStatus.MANIFESTED,
            DecisionEffect(announce=CaseStatus.ON_HOLD, take_off=True),
        ),
        (
            Outcome.INELIGIBLE,
            M,
            CaseStatus.MANIFESTED,
            DecisionEffect(announce=CaseStatus.INELIGIBLE, take_off=True),
        ),
        (Outcome.PENDING, N, CaseStatus.NO_SHOW, DecisionEffect()),
        (Outcome.PENDING, D, CaseStatus.DEPARTED, DecisionEffect()),
        (Outcome.INELIGIBLE, A, CaseStatus.ARRIVED, DecisionEffect()),
    ],
)
def test_a_decision_moves_a_case_only_before_it_boards(
    outcome: Outcome, seat: SeatState | None, known: CaseStatus, effect: DecisionEffect
) -> None:
    assert domain.decision_effect(outcome, seat, known) == effect


def seat(state: SeatState) -> Seat:
    return Seat(uuid.uuid4(), "MOV-1", "BUS-1", 2, state, "placed")


def test_a_withdrawal_takes_effect_until_the_case_leaves() -> None:
    assert domain.withdrawal_too_late(None) is None
    assert domain.withdrawal_too_late(seat(M)) is None
    assert domain.withdrawal_too_late(seat(N)) is None
    assert domain.withdrawal_too_late(seat(D)) == "withdrawal received after the case departed on MOV-1"
    assert domain.withdrawal_too_late(seat(A)) == "withdrawal received after the case arrived on MOV-1"


def test_a_changed_case_leaves_its_vehicle_for_another_day_route_or_party_size() -> None:
    day = date(2026, 12, 1)
    assert domain.reason_to_take_off(("r", day), ("r", day), 2, 2) is None
    assert domain.reason_to_take_off(None, ("r", day), 2, 2) is None
    assert (
        domain.reason_to_take_off(("r", day), ("r", date(2026, 12, 2)), 2, 2)
        == "the route or travel date changed"
    )
    assert domain.reason_to_take_off(("r", day), ("s", day), 2, 3) == "the route or travel date changed"
    assert domain.reason_to_take_off(("r", day), ("r", day), 2, 3) == "the number of travellers changed"


@pytest.mark.parametrize(
    ("state", "cleared", "last", "after"),
    [
        (D, True, False, None),
        (D, True, True, A),
        (D, False, False, R),
        (D, False, True, R),
        (M, True, True, None),
        (R, True, True, None),
        (None, True, True, None),
    ],
)
def test_a_border_decision_moves_only_a_seat_on_the_road(
    state: SeatState | None, cleared: bool, last: bool, after: SeatState | None
) -> None:
    assert domain.seat_after_crossing(state, cleared, last) is after
    if after is not None:
        assert may_move(state, after)


def test_the_status_a_post_announced() -> None:
    assert domain.crossing_status("exit", True) is CaseStatus.EXIT_CLEARED
    assert domain.crossing_status("entry", True) is CaseStatus.ENTRY_CLEARED
    assert domain.crossing_status("entry", False) is CaseStatus.REFUSED_AT_BORDER


def test_no_shows_must_be_on_the_manifest() -> None:
    on = [uuid.UUID(int=1), uuid.UUID(int=2)]
    domain.check_no_shows("BUS-1", on, on[:1])
    stranger = uuid.UUID(int=9)
    with pytest.raises(domain.NotOnManifest) as bad:
        domain.check_no_shows("BUS-1", on, [stranger, on[0]])
    assert isinstance(bad.value, Invalid) and bad.value.loc == ("body", "no_shows")
    assert bad.value.msg == f"not on BUS-1's manifest: {stranger}"


def test_domain_errors_carry_the_answers_the_api_gives() -> None:
    at = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)
    assert (domain.AlreadyDeparted("BUS-1", at).status_code, domain.AlreadyDeparted("BUS-1", at).detail) == (
        409,
        "BUS-1 departed at 2026-12-01T07:30:00+00:00",
    )
    assert (
        domain.NoSuchMovement("M").status_code == 404 and domain.NoSuchMovement("M").detail == "no movement M"
    )
    assert domain.MovementExists("M").detail == "movement M exists"
    unknown = domain.UnknownRoute("x")
    assert (unknown.loc, unknown.msg) == (("body", "route_id"), "unknown route 'x'")
    # The planner's refusal stays a ValueError for its callers, and answers 422 naming the field.
    duplicate = domain.DuplicateVehicles()
    assert isinstance(duplicate, ValueError) and duplicate.loc == ("body", "vehicles")
    assert str(duplicate) == "vehicle ids must be unique"
