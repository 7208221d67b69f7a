"""The operations board's figures as staff read them: each queue per crossing, each vehicle's place
and wait, each stuck case, dead letters, the services' health and lag, under the names the page
reads, at the thresholds where a wait turns into "stuck"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged, Place
from contracts.transport import MovementDeparted, VehicleProgressRecorded
from corridor.settings import REPO_ROOT
from services.operations.domain import Board, GroupLag, ServiceHealth

ROUTES = RouteBook.load(REPO_ROOT / "deploy" / "routes" / "central-asia.json")
ROUTE = ROUTES.routes[0]
CP = [cp.checkpoint_id for cp in ROUTE.checkpoints]
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
STUCK_AFTER = 600.0
S = CaseStatus
ON_BUS = (S.REGISTERED, S.ELIGIBLE, S.MANIFESTED, S.DEPARTED)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def status(
    case: uuid.UUID,
    new: CaseStatus,
    minutes: float,
    checkpoint: str | None = None,
    *,
    members: int = 1,
    movement: str | None = "MOV-1",
    reason_code: str | None = None,
    routes: RouteBook = ROUTES,
) -> CaseStatusChanged:
    place = None
    if checkpoint is not None:
        found = routes.checkpoint(checkpoint)
        assert found is not None
        place = Place(country=found[1].country, name=found[1].post, checkpoint_id=checkpoint)
    return CaseStatusChanged(
        case_id=case,
        status=new,
        occurred_at=at(minutes),
        members=members,
        place=place,
        movement_id=movement,
        reason_code=reason_code,
    )


def aboard(board: Board, members: int = 1, minutes: float = 0, **kw: object) -> uuid.UUID:
    """A new case that has departed ``minutes`` after T0 (its earlier statuses just before)."""
    case = uuid.uuid4()
    for i, new in enumerate(ON_BUS):
        board.apply_status(status(case, new, minutes - 3 + i, members=members, **kw))  # type: ignore[arg-type]
    return case


def departed(
    board: Board, vehicle: str, cases: list[uuid.UUID], minutes: float, movement: str = "MOV-1"
) -> None:
    board.apply_vehicle(
        MovementDeparted(movement_id=movement, vehicle_id=vehicle, case_ids=cases, departed_at=at(minutes))
    )


def progress(
    board: Board,
    vehicle: str,
    cases: list[uuid.UUID],
    checkpoint: str,
    stage: str,
    minutes: float,
    movement: str = "MOV-1",
) -> None:
    board.apply_vehicle(
        VehicleProgressRecorded(
            movement_id=movement,
            vehicle_id=vehicle,
            checkpoint_id=checkpoint,
            stage=stage,  # type: ignore[arg-type]
            case_ids=cases,
            at=at(minutes),
        )
    )


# --- the snapshot the page reads --------------------------------------------------------------


def test_the_snapshot_carries_every_figure_under_the_name_the_page_reads() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    case = aboard(board, members=2)
    departed(board, "BUS-1", [case], 0)
    board.watch_dead_letters(["dlt.transport"], "dlt.")
    board.apply_dead_letter("dlt.transport", "transport", "undecodable", at(1))
    board.set_health(
        ServiceHealth(
            name="transport",
            ready=False,
            checks={"kafka": True, "database": False},
            consumers={"transport-cases": {"applied": 4.0}},
            outbox_pending=3.0,
            outbox_oldest_seconds=9.5,
            problem="metrics refused",
        )
    )
    board.set_lag([GroupLag("transport", "cases", 7, 2)], "one broker unreachable")
    now = at(20)

    snapshot = board.snapshot(now)

    assert snapshot == {
        "version": 9,  # nine changes read
        "generated_at": now.isoformat(),
        "stuck_after_seconds": STUCK_AFTER,
        "totals": {"cases": 1, "people": 2, "records": {"status": 4, "movements": 1, "dead_letters": 1}},
        "funnel": board.funnel(),
        "crossings": board.crossings(),
        "vehicles": [
            {
                "vehicle": "MOV-1/BUS-1",
                "movement_id": "MOV-1",
                "vehicle_id": "BUS-1",
                "where": "left the gathering point",
                "checkpoint_id": None,
                "stage": None,
                "since": at(0).isoformat(),
                "cases": 1,
                "people": 2,
                "stuck": True,
            }
        ],
        "stuck_count": 1,
        "stuck": [
            {
                "case_id": str(case),
                "status": "departed",
                "where": "",
                "country": None,
                "movement_id": "MOV-1",
                "since": at(0).isoformat(),
                "minutes": 20.0,
            }
        ],
        "dead_letters": [
            {
                "consumer": "transport",
                "topic": "dlt.transport",
                "count": 1,
                "reasons": {"undecodable": 1},
                "last_at": at(1).isoformat(),
            }
        ],
        "services": [
            {
                "name": "transport",
                "ready": False,
                "checks": {"kafka": True, "database": False},
                "consumers": {"transport-cases": {"applied": 4.0}},
                "outbox_pending": 3.0,
                "outbox_oldest_seconds": 9.5,
                "problem": "metrics refused",
            }
        ],
        "lag": [{"group": "transport", "topic": "cases", "lag": 7, "partitions": 2}],
        "lag_problem": "one broker unreachable",
    }
    assert [r["people"] for r in snapshot["funnel"] if r["status"] == "departed"] == [2]


def test_an_empty_board_says_nothing_is_wrong() -> None:
    snapshot = Board(ROUTES, stuck_after_seconds=STUCK_AFTER).snapshot(T0)
    assert snapshot["version"] == 0
    assert snapshot["lag_problem"] is None
    assert (snapshot["stuck_count"], snapshot["stuck"], snapshot["vehicles"]) == (0, [], [])
    assert snapshot["totals"] == {"cases": 0, "people": 0, "records": {}}
    assert (snapshot["dead_letters"], snapshot["services"], snapshot["lag"]) == ([], [], [])


def test_services_dead_letters_and_lag_are_listed_in_name_order_whatever_order_they_came_in() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    for name in ("transport", "border-clearance", "intake"):
        board.set_health(ServiceHealth(name=name, ready=True))
    for consumer in ("transport", "eligibility"):
        board.apply_dead_letter(f"dlt.{consumer}", consumer, "undecodable", None)
    board.set_lag(
        [
            GroupLag("transport", "status", 1, 1),
            GroupLag("eligibility", "cases", 0, 1),
            GroupLag("transport", "cases", 2, 1),
        ]
    )
    snapshot = board.snapshot(T0)
    assert [s["name"] for s in snapshot["services"]] == ["border-clearance", "intake", "transport"]
    assert [(d["consumer"], d["topic"]) for d in snapshot["dead_letters"]] == [
        ("eligibility", "dlt.eligibility"),
        ("transport", "dlt.transport"),
    ]
    assert [(g["group"], g["topic"]) for g in snapshot["lag"]] == [
        ("eligibility", "cases"),
        ("transport", "cases"),
        ("transport", "status"),
    ]


# --- version: the page is pushed again when, and only when, something changed --------------------


def test_every_change_moves_the_version_on_by_one_and_a_repeat_of_the_same_health_or_lag_does_not() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    seen = [board.version]

    def moved() -> bool:
        seen.append(board.version)
        return seen[-1] == seen[-2] + 1

    case = uuid.uuid4()
    board.apply_status(status(case, S.REGISTERED, 0))
    assert moved()
    departed(board, "BUS-1", [case], 1)
    assert moved()
    progress(board, "BUS-1", [case], CP[0], "arrived", 2)
    assert moved()
    board.watch_dead_letters(["dlt.transport"], "dlt.")
    assert moved()
    board.apply_dead_letter("dlt.transport", "transport", "undecodable", None)
    assert moved()
    board.set_health(ServiceHealth(name="intake", ready=True))
    assert moved()
    board.set_health(ServiceHealth(name="intake", ready=True))  # the same answer again
    assert not moved()
    board.set_health(ServiceHealth(name="intake", ready=False))
    assert moved()
    board.set_lag([GroupLag("b", "t", 1, 1), GroupLag("a", "t", 1, 1)])
    assert moved()
    board.set_lag([GroupLag("a", "t", 1, 1), GroupLag("b", "t", 1, 1)])  # the same, in another order
    assert not moved()
    board.set_lag([GroupLag("a", "t", 1, 1), GroupLag("b", "t", 1, 1)], "broker unreachable")
    assert moved()
    board.set_lag([GroupLag("a", "t", 2, 1), GroupLag("b", "t", 1, 1)], "broker unreachable")
    assert moved()
    board.set_lag([], None)
    assert moved()
    assert board.snapshot(T0)["lag"] == [] and board.snapshot(T0)["lag_problem"] is None


def test_a_fresh_board_told_there_is_no_lag_and_no_problem_has_nothing_new_to_push() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    board.set_lag([], None)
    assert board.version == 0


# --- dead letters ---------------------------------------------------------------------------------


def test_a_dead_letter_from_a_consumer_not_watched_yet_still_shows_its_consumer_and_topic() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    board.apply_dead_letter("dlt.border-clearance", "border-clearance", "schema_mismatch", at(2))
    board.apply_dead_letter("dlt.border-clearance", "border-clearance", "schema_mismatch", at(1))
    board.apply_dead_letter("dlt.border-clearance", "border-clearance", "undecodable", None)
    [row] = board.snapshot(T0)["dead_letters"]
    assert row == {
        "consumer": "border-clearance",
        "topic": "dlt.border-clearance",
        "count": 3,
        "reasons": {"schema_mismatch": 2, "undecodable": 1},  # the most frequent first
        "last_at": at(2).isoformat(),  # an older failure read later does not move it back
    }
    assert board.records["dead_letters"] == 3


def test_the_last_failure_keeps_the_first_report_of_an_instant_read_again() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    board.apply_dead_letter("dlt.transport", "transport", "undecodable", at(5))
    same_instant = at(5).astimezone(timezone(timedelta(hours=5)))
    board.apply_dead_letter("dlt.transport", "transport", "undecodable", same_instant)
    assert board.snapshot(T0)["dead_letters"][0]["last_at"] == at(5).isoformat()


# --- the queue at each crossing ----------------------------------------------------------------


def crossing_rows(board: Board) -> dict[str, dict[str, object]]:
    return {r["checkpoint_id"]: r for r in board.crossings()}


def test_each_crossing_row_names_its_post_and_counts_queue_decisions_per_case() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    cleared = [aboard(board, members=4), aboard(board)]
    held = [aboard(board), aboard(board)]
    refused = [aboard(board)]
    departed(board, "BUS-1", cleared + held + refused, 0)
    progress(board, "BUS-1", cleared + held + refused, CP[0], "arrived", 5)
    for case in cleared:
        board.apply_status(status(case, S.EXIT_CLEARED, 6, CP[0]))
    for case, code in zip(held, ("held_at_border", "document_mismatch"), strict=True):
        board.apply_status(status(case, S.REFUSED_AT_BORDER, 6, CP[0], reason_code=code))
    for case in refused:
        board.apply_status(status(case, S.REFUSED_AT_BORDER, 6, CP[0], reason_code="refused_by_officer"))
    # The cleared drive on and reach the next post; the rest stay behind.
    progress(board, "BUS-1", cleared, CP[1], "arrived", 20)

    rows = crossing_rows(board)
    assert list(rows) == CP
    first = ROUTE.checkpoints[0]
    assert rows[CP[0]] == {
        "checkpoint_id": CP[0],
        "post": first.post,
        "crossing": first.crossing,
        "country": first.country,
        "direction": first.direction,
        "expected": 0,
        "at_post": 0,
        "cleared": 2,
        "refused": 1,
        "held": 2,
    }
    # Cases, not people: the family of four counts once in each queue ahead.
    assert [(rows[cp]["expected"], rows[cp]["at_post"]) for cp in CP[1:]] == [(2, 2), (2, 0), (2, 0)]
    assert all((rows[cp]["cleared"], rows[cp]["refused"], rows[cp]["held"]) == (0, 0, 0) for cp in CP[1:])


def test_a_vehicle_that_left_a_post_before_its_cases_decisions_are_read_is_not_at_that_post() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    cases = [aboard(board), aboard(board)]
    departed(board, "BUS-1", cases, 0)
    progress(board, "BUS-1", cases, CP[0], "arrived", 5)
    assert [crossing_rows(board)[CP[0]][k] for k in ("expected", "at_post")] == [2, 2]
    progress(board, "BUS-1", cases, CP[0], "departed", 9)  # the post's decisions not on the stream yet
    assert [crossing_rows(board)[CP[0]][k] for k in ("expected", "at_post")] == [2, 0]


def test_only_cases_between_planning_and_arrival_are_expected_at_the_posts_ahead() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    done = aboard(board)
    board.apply_status(status(done, S.ARRIVED, 60))  # arrived first: the cases after it still count
    waiting = uuid.uuid4()
    for i, new in enumerate((S.REGISTERED, S.ELIGIBLE, S.MANIFESTED)):
        board.apply_status(status(waiting, new, i))
    incident = aboard(board)
    board.apply_status(status(incident, S.EXIT_CLEARED, 10, CP[0]))
    board.apply_status(status(incident, S.TRANSIT_INCIDENT, 30, reason_code="vehicle_breakdown"))
    rows = crossing_rows(board)
    assert [rows[cp]["expected"] for cp in CP] == [1, 2, 2, 2]
    assert rows[CP[0]]["cleared"] == 1


def test_a_decision_at_a_post_no_longer_on_any_route_is_not_counted_and_does_not_hide_the_others() -> None:
    # The case crossed at a post of a route since removed from the deployment, then at one still on it.
    old = RouteBook.model_validate(
        {
            "routes": [
                {
                    **ROUTE.model_dump(),
                    "route_id": "old",
                    "checkpoints": [
                        {**ROUTE.checkpoints[0].model_dump(), "checkpoint_id": "kaz-retired-exit"},
                        *[cp.model_dump() for cp in ROUTE.checkpoints[1:]],
                    ],
                }
            ]
        }
    )
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    case = aboard(board)
    board.apply_status(status(case, S.EXIT_CLEARED, 5, "kaz-retired-exit", routes=old))
    board.apply_status(status(case, S.ENTRY_CLEARED, 9, CP[1]))
    rows = crossing_rows(board)
    assert "kaz-retired-exit" not in rows
    assert [rows[cp]["cleared"] for cp in CP] == [0, 1, 0, 0]


# --- which route a case is on, in a deployment of several -----------------------------------------


def two_routes() -> RouteBook:
    """kaz-uzb ends at the first crossing; kaz-uzb-tjk goes on through Oybek."""
    short = {
        **ROUTE.model_dump(),
        "route_id": "kaz-uzb",
        "destination_country": "UZB",
        "checkpoints": [cp.model_dump() for cp in ROUTE.checkpoints[:2]],
    }
    return RouteBook.model_validate({"routes": [short, ROUTE.model_dump()]})


def test_with_several_routes_a_case_is_expected_only_where_its_crossings_so_far_fit_one_route() -> None:
    routes = two_routes()
    board = Board(routes, stuck_after_seconds=STUCK_AFTER)
    not_yet = aboard(board)  # at no post yet: either route
    both = aboard(board)
    board.apply_status(status(both, S.EXIT_CLEARED, 5, CP[0], routes=routes))
    board.apply_status(status(both, S.ENTRY_CLEARED, 9, CP[1], routes=routes))  # still either route
    long = aboard(board)
    board.apply_status(status(long, S.EXIT_CLEARED, 5, CP[0], routes=routes))
    board.apply_status(status(long, S.ENTRY_CLEARED, 9, CP[1], routes=routes))
    board.apply_status(status(long, S.EXIT_CLEARED, 20, CP[2], routes=routes))  # only the long route
    rows = crossing_rows(board)
    assert [rows[cp]["expected"] for cp in CP] == [0, 0, 0, 1]
    assert [rows[cp]["cleared"] for cp in CP] == [2, 2, 1, 0]
    assert board.route_of(board.cases[not_yet]) is None
    assert board.route_of(board.cases[both]) is None
    assert board.route_of(board.cases[long]) == routes.routes[1]


def test_with_one_route_a_case_that_crossed_every_post_is_on_it() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    case = aboard(board)
    for i, cp in enumerate(CP):
        board.apply_status(status(case, S.ENTRY_CLEARED if i % 2 else S.EXIT_CLEARED, 5 + i, cp))
    assert board.route_of(board.cases[case]) == ROUTE


# --- vehicles on the road ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checkpoint", "stage", "where"),
    [
        (None, None, "left the gathering point"),
        (CP[0], "arrived", "at Zhibek-Zholy (KAZ)"),
        (CP[0], "departed", "left Zhibek-Zholy (KAZ), towards Gisht-Kuprik (UZB)"),
        (CP[2], "departed", "left Oybek (UZB), towards Fotehobod (TJK)"),
        (CP[3], "arrived", "at Fotehobod (TJK)"),
        (CP[3], "departed", "left Fotehobod (TJK), towards Reception centre, Sughd"),
        ("kaz-retired-exit", "arrived", "at kaz-retired-exit"),
        ("kaz-retired-exit", "departed", "left kaz-retired-exit"),
    ],
)
def test_where_a_vehicle_is_reads_as_a_post_and_the_next_one(
    checkpoint: str | None, stage: str | None, where: str
) -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    case = aboard(board)
    departed(board, "BUS-1", [case], 0)
    if checkpoint is not None and stage is not None:
        progress(board, "BUS-1", [case], checkpoint, stage, 4)
    [row] = board.vehicles_on_road(at(5))
    assert (row["where"], row["checkpoint_id"], row["stage"]) == (where, checkpoint, stage)


def test_a_vehicle_whose_departure_was_never_read_is_shown_from_its_first_progress() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    cases = [aboard(board, members=2), aboard(board, members=3)]
    progress(board, "BUS-7", cases, CP[1], "arrived", 40, movement="MOV-9")
    assert board.vehicles_on_road(at(45)) == [
        {
            "vehicle": "MOV-9/BUS-7",
            "movement_id": "MOV-9",
            "vehicle_id": "BUS-7",
            "where": "at Gisht-Kuprik (UZB)",
            "checkpoint_id": CP[1],
            "stage": "arrived",
            "since": at(40).isoformat(),
            "cases": 2,
            "people": 5,
            "stuck": False,
        }
    ]
    assert board.records["movements"] == 1


def test_a_departure_read_again_does_not_reset_the_vehicle_or_its_wait() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    case = aboard(board)
    departed(board, "BUS-1", [case], 0)
    departed(board, "BUS-1", [case], 30)  # a repeat, as a consumer may read one
    [row] = board.vehicles_on_road(at(31))
    assert (row["since"], row["stuck"]) == (at(0).isoformat(), True)
    assert board.records["movements"] == 2


def test_cases_taken_off_a_vehicle_on_the_way_are_no_longer_counted_aboard() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    stays, leaves = aboard(board, members=2), aboard(board, members=3)
    departed(board, "BUS-1", [stays, leaves], 0)
    progress(board, "BUS-1", [stays, leaves], CP[0], "arrived", 5)
    assert board.vehicles_on_road(at(6))[0]["people"] == 5
    progress(board, "BUS-1", [stays], CP[0], "departed", 8)
    [row] = board.vehicles_on_road(at(9))
    assert (row["cases"], row["people"], row["since"]) == (1, 2, at(8).isoformat())


def test_only_cases_known_and_on_the_road_are_counted_aboard() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    on_road = aboard(board, members=2)
    manifested = uuid.uuid4()
    board.apply_status(status(manifested, S.MANIFESTED, 0, members=4))
    unknown = uuid.uuid4()  # its statuses not read yet
    departed(board, "BUS-0", [manifested, unknown], 1)  # nobody aboard is on the road: not shown
    departed(board, "BUS-1", [on_road, manifested, unknown], 1)
    [row] = board.vehicles_on_road(at(2))
    assert (row["vehicle"], row["cases"], row["people"]) == ("MOV-1/BUS-1", 1, 2)


def test_a_vehicle_is_stuck_only_once_its_wait_is_past_the_threshold_and_longest_waiting_come_first() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    late, early = aboard(board), aboard(board)
    departed(board, "BUS-LATE", [late], 10)
    departed(board, "BUS-EARLY", [early], 0)
    threshold = at(10) + timedelta(seconds=STUCK_AFTER)
    rows = board.vehicles_on_road(threshold)
    assert [(r["vehicle_id"], r["stuck"]) for r in rows] == [("BUS-EARLY", True), ("BUS-LATE", False)]
    rows = board.vehicles_on_road(threshold + timedelta(seconds=1))
    assert [(r["vehicle_id"], r["stuck"]) for r in rows] == [("BUS-EARLY", True), ("BUS-LATE", True)]


# --- stuck cases --------------------------------------------------------------------------------


def test_a_case_is_stuck_only_past_the_threshold_with_its_wait_in_minutes_and_its_last_place() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    case = aboard(board, members=3, movement="MOV-4")
    board.apply_status(status(case, S.EXIT_CLEARED, 0, CP[0], members=3, movement="MOV-4"))
    assert board.stuck(at(10)) == (0, [])  # exactly at the threshold
    count, [row] = board.stuck(at(12) + timedelta(seconds=20))
    assert count == 1
    assert row == {
        "case_id": str(case),
        "status": "exit_cleared",
        "where": "Zhibek-Zholy",
        "country": "KAZ",
        "movement_id": "MOV-4",
        "since": at(0).isoformat(),
        "minutes": 12.3,
    }


@pytest.mark.parametrize("last", [S.DEPARTED, S.EXIT_CLEARED, S.ENTRY_CLEARED, S.TRANSIT_INCIDENT])
def test_every_status_on_the_road_can_be_stuck(last: CaseStatus) -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    case = aboard(board)
    board.apply_status(status(case, last, 0))
    assert board.stuck(at(11))[0] == 1


@pytest.mark.parametrize(
    "last",
    [
        S.REGISTERED,
        S.ELIGIBLE,
        S.MANIFESTED,
        S.REFUSED_AT_BORDER,
        S.ARRIVED,
        S.RECEIVED,
        S.CLOSED,
        S.WITHDRAWN,
    ],
)
def test_a_case_off_the_road_is_never_stuck(last: CaseStatus) -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    board.apply_status(status(uuid.uuid4(), last, 0))
    assert board.stuck(at(60 * 24)) == (0, [])


def test_stuck_cases_are_listed_longest_waiting_first() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    later = aboard(board, minutes=20)
    earlier = aboard(board, minutes=5)
    count, rows = board.stuck(at(60))
    assert count == 2
    assert [(r["case_id"], r["minutes"]) for r in rows] == [(str(earlier), 55.0), (str(later), 40.0)]


# --- a case's timeline ------------------------------------------------------------------------


def test_a_cases_timeline_lists_each_public_step_with_its_place_and_reason() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    case = uuid.uuid4()
    assert board.timeline(case) is None
    board.apply_status(status(case, S.REGISTERED, 0, movement=None))
    board.apply_status(status(case, S.REFUSED_AT_BORDER, 7, CP[1], reason_code="document_mismatch"))
    steps = board.timeline(case)
    assert steps is not None
    assert [s.to_json() for s in steps] == [
        {
            "status": "registered",
            "at": at(0).isoformat(),
            "country": None,
            "place": None,
            "checkpoint_id": None,
            "movement_id": None,
            "reason_code": None,
            "reason": None,
        },
        {
            "status": "refused_at_border",
            "at": at(7).isoformat(),
            "country": "UZB",
            "place": "Gisht-Kuprik",
            "checkpoint_id": CP[1],
            "movement_id": "MOV-1",
            "reason_code": "document_mismatch",
            "reason": "A travel document does not match the manifest; the family is held together",
        },
    ]
    steps.clear()  # the page's copy: the board keeps its own
    assert len(board.timeline(case) or []) == 2
    assert board.records["status"] == 2


def test_the_funnel_counts_a_familys_latest_size() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    case = uuid.uuid4()
    board.apply_status(status(case, S.REGISTERED, 0, members=4))
    board.apply_status(status(case, S.ELIGIBLE, 1, members=3))  # a member withdrew
    funnel = {r["status"]: (r["cases"], r["people"]) for r in board.funnel()}
    assert (funnel["registered"], funnel["eligible"]) == ((0, 0), (1, 3))
    assert board.snapshot(at(2))["totals"]["people"] == 3


def test_an_incident_reported_at_a_post_is_not_a_decision_there() -> None:
    board = Board(ROUTES, stuck_after_seconds=STUCK_AFTER)
    case = aboard(board)
    board.apply_status(status(case, S.EXIT_CLEARED, 5, CP[0]))
    board.apply_status(status(case, S.TRANSIT_INCIDENT, 9, CP[1], reason_code="delayed_on_route"))
    rows = crossing_rows(board)
    assert [rows[cp]["cleared"] for cp in CP] == [1, 0, 0, 0]
    assert [rows[cp]["expected"] for cp in CP] == [0, 1, 1, 1]
