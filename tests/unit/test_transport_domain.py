"""Transport's rules without I/O: the seat states and their transitions, and what a decision, a
withdrawal, a change of the case and a border crossing do to a seat, and which posts' decisions the
public stream shows when (transport announces them, in route order, whatever order it reads them in)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from itertools import permutations

import pytest

from contracts.eligibility import Outcome
from contracts.routes import RouteBook
from contracts.status import LEGAL_TRANSITIONS, CaseStatus, illegal_steps
from corridor.errors import Invalid
from services.transport import domain
from services.transport.domain import (
    SEAT_TRANSITIONS,
    TAKEN_OFF,
    DecisionEffect,
    RecordedCrossing,
    Seat,
    SeatState,
    may_move,
    reached_from,
)
from tests.paths import CENTRAL_ASIA_ROUTES

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
    ("state", "cleared", "after"),
    [
        (D, True, None),  # on the way, or the last post: the arrival waits for the stream
        (D, False, R),
        (M, False, None),
        (R, False, None),
        (A, False, None),
        (None, False, None),
    ],
)
def test_a_refusal_moves_only_a_seat_on_the_road(
    state: SeatState | None, cleared: bool, after: SeatState | None
) -> None:
    assert domain.seat_after_refusal(state, cleared) is after
    if after is not None:
        assert may_move(state, after)


def test_the_status_of_a_posts_decision() -> None:
    assert domain.crossing_status("exit", True) is CaseStatus.EXIT_CLEARED
    assert domain.crossing_status("entry", True) is CaseStatus.ENTRY_CLEARED
    assert domain.crossing_status("entry", False) is CaseStatus.REFUSED_AT_BORDER
    assert domain.crossing_status("exit", False) is CaseStatus.REFUSED_AT_BORDER


# --- which crossings the stream shows, and when ---------------------------------------------------

ROUTE = RouteBook.load(CENTRAL_ASIA_ROUTES).routes[0]
CP = [c.checkpoint_id for c in ROUTE.checkpoints]
T = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def crossed(*decisions: tuple[int, bool], announced: tuple[int, ...] = ()) -> dict[str, RecordedCrossing]:
    """Recorded decisions by (checkpoint index, cleared); those in ``announced`` on the stream."""
    return {
        CP[i]: RecordedCrossing(CP[i], ok, T, None if ok else "refused_by_officer", announced=i in announced)
        for i, ok in decisions
    }


def news_of(recorded: dict[str, RecordedCrossing], seat: SeatState | None = D) -> tuple[list[str], bool]:
    news = domain.crossing_news(ROUTE, seat, recorded)
    assert all(cp.checkpoint_id == c.checkpoint_id for cp, c in news.crossings)
    return [c.checkpoint_id for _, c in news.crossings], news.arrives


def test_a_crossing_read_in_route_order_is_announced_at_once() -> None:
    assert news_of(crossed((0, True))) == ([CP[0]], False)
    assert news_of(crossed((0, True), (1, True), announced=(0,))) == ([CP[1]], False)


def test_a_later_posts_decision_read_first_waits_for_the_one_before() -> None:
    # One topic per post: the third post's clearance may be read before the second's.
    assert news_of(crossed((0, True), (2, True), announced=(0,))) == ([], False)
    assert news_of(crossed((0, True), (2, True), (1, True), announced=(0,))) == ([CP[1], CP[2]], False)
    assert news_of(crossed((1, True), (2, True))) == ([], False)  # not even the first one yet


def test_the_arrival_follows_the_last_crossing_once_every_one_before_is_shown() -> None:
    everything = [(i, True) for i in range(len(CP))]
    assert news_of(crossed(*everything, announced=tuple(range(len(CP) - 1)))) == ([CP[-1]], True)
    # The last post read before the one before it: both at once, then the arrival.
    early = crossed(*everything, announced=tuple(range(len(CP) - 2)))
    assert news_of(early) == (CP[-2:], True)
    assert news_of(crossed(*everything[:-1])) == (CP[:-1], False)


def test_each_crossing_is_announced_once() -> None:
    everything = [(i, True) for i in range(len(CP))]
    assert news_of(crossed(*everything, announced=tuple(range(len(CP))))) == ([], False)
    assert news_of(crossed((0, True), (1, True), announced=(0, 1))) == ([], False)


def test_a_refusal_is_the_last_crossing_the_stream_shows() -> None:
    assert news_of(crossed((0, True), (1, False), announced=(0,))) == ([CP[1]], False)
    # Nothing after a refusal, even a decision recorded for a post further on.
    assert news_of(crossed((0, False), (1, True))) == ([CP[0]], False)
    assert news_of(crossed((0, False), (1, True), announced=(0,))) == ([], False)
    # A refusal at the last post is no arrival.
    last = [(i, True) for i in range(len(CP) - 1)] + [(len(CP) - 1, False)]
    assert news_of(crossed(*last, announced=tuple(range(len(CP) - 1)))) == ([CP[-1]], False)


def test_a_refusal_read_before_the_clearance_before_it_is_shown_after_it() -> None:
    # The seat moved to refused when the refusal was read; the clearance before it comes later.
    assert news_of(crossed((1, False)), seat=R) == ([], False)
    assert news_of(crossed((1, False), (0, True)), seat=R) == ([CP[0], CP[1]], False)


@pytest.mark.parametrize("seat", [None, M, N])
def test_a_case_that_has_not_left_has_no_crossing_to_show(seat: SeatState | None) -> None:
    assert news_of(crossed((0, True)), seat=seat) == ([], False)


def test_a_case_without_a_route_has_no_crossing_to_show() -> None:
    assert domain.crossing_news(None, D, crossed((0, True))) == domain.CrossingNews([])


def test_a_decision_of_a_post_off_the_route_says_nothing() -> None:
    elsewhere = RecordedCrossing("tjk-elsewhere", True, T, None, announced=False)
    assert news_of({"tjk-elsewhere": elsewhere}) == ([], False)
    assert news_of({**crossed((0, True)), "tjk-elsewhere": elsewhere}) == ([CP[0]], False)


def test_every_sequence_the_stream_shows_is_legal() -> None:
    """Whatever order the decisions of a whole route are read in, the statuses announced after the
    departure follow the legal transitions."""
    for refused_at in [None, *range(len(CP))]:
        decisions = [(i, i != refused_at) for i in range(len(CP) if refused_at is None else refused_at + 1)]
        for order in permutations(decisions):
            recorded: dict[str, RecordedCrossing] = {}
            stream = [CaseStatus.REGISTERED, CaseStatus.ELIGIBLE, CaseStatus.MANIFESTED, CaseStatus.DEPARTED]
            seat: SeatState = D
            for i, ok in order:
                recorded[CP[i]] = RecordedCrossing(CP[i], ok, T, None, announced=False)
                news = domain.crossing_news(ROUTE, seat, recorded)
                for cp, c in news.crossings:
                    stream.append(domain.crossing_status(cp.direction, c.cleared))
                    recorded[cp.checkpoint_id] = RecordedCrossing(cp.checkpoint_id, c.cleared, T, None, True)
                if news.arrives:
                    stream.append(CaseStatus.ARRIVED)
                seat = domain.seat_after_refusal(seat, ok) or seat
            assert illegal_steps(stream) == [], (order, stream)
            assert len(stream) == 4 + len(decisions) + (refused_at is None)


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
