"""The operations page without servers: the board's projection, and who may see it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged, Place
from contracts.transport import MovementDeparted, VehicleProgressRecorded
from corridor.auth import Role
from corridor.settings import REPO_ROOT
from devkit.devidp import DevIssuer
from services.operations.app import OperationsSettings, create_app
from services.operations.domain import Board
from services.operations.feeds import read_metrics

ROUTES = RouteBook.load(REPO_ROOT / "deploy" / "routes" / "central-asia.json")
ROUTE = ROUTES.routes[0]
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
MOVEMENT = "MOV-1"


def change(
    case: uuid.UUID, status: CaseStatus, minutes: float, checkpoint: int | None = None, **kw: object
) -> CaseStatusChanged:
    place = None
    if checkpoint is not None:
        cp = ROUTE.checkpoints[checkpoint]
        place = Place(country=cp.country, name=cp.post, checkpoint_id=cp.checkpoint_id)
    return CaseStatusChanged(
        case_id=case,
        status=status,
        occurred_at=T0 + timedelta(minutes=minutes),
        members=kw.pop("members", 1),  # type: ignore[arg-type]
        place=place,
        movement_id=MOVEMENT,
        **kw,  # type: ignore[arg-type]
    )


def board_with_a_movement() -> tuple[Board, list[uuid.UUID]]:
    """Three cases on one bus: one cleared the first post, one was held there, one refused."""
    board = Board(ROUTES, stuck_after_seconds=600)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for case, members in ((a, 3), (b, 1), (c, 2)):
        for i, status in enumerate(
            (CaseStatus.REGISTERED, CaseStatus.ELIGIBLE, CaseStatus.MANIFESTED, CaseStatus.DEPARTED)
        ):
            board.apply_status(change(case, status, i, members=members))
    board.apply_vehicle(
        MovementDeparted(
            movement_id=MOVEMENT,
            vehicle_id="BUS-1",
            case_ids=[a, b, c],
            departed_at=T0 + timedelta(minutes=3),
        )
    )
    first = ROUTE.checkpoints[0].checkpoint_id
    board.apply_vehicle(
        VehicleProgressRecorded(
            movement_id=MOVEMENT,
            vehicle_id="BUS-1",
            checkpoint_id=first,
            stage="arrived",
            case_ids=[a, b, c],
            at=T0 + timedelta(minutes=5),
        )
    )
    board.apply_status(change(a, CaseStatus.EXIT_CLEARED, 6, 0, members=3))
    board.apply_status(change(b, CaseStatus.REFUSED_AT_BORDER, 6, 0, reason_code="held_at_border"))
    board.apply_status(
        change(c, CaseStatus.REFUSED_AT_BORDER, 6, 0, members=2, reason_code="refused_by_officer")
    )
    return board, [a, b, c]


def test_the_funnel_counts_cases_and_people_at_their_current_status() -> None:
    board, _ = board_with_a_movement()
    funnel = {row["status"]: (row["cases"], row["people"]) for row in board.funnel()}
    assert funnel["exit_cleared"] == (1, 3)
    assert funnel["refused_at_border"] == (2, 3)
    assert funnel["departed"] == (0, 0)
    assert [row["status"] for row in board.funnel()] == [s.value for s in CaseStatus]


def test_each_crossing_shows_expected_at_the_post_cleared_refused_and_held() -> None:
    board, _ = board_with_a_movement()
    rows = {r["checkpoint_id"]: r for r in board.crossings()}
    first, second, *_ = (cp.checkpoint_id for cp in ROUTE.checkpoints)
    assert (rows[first]["cleared"], rows[first]["refused"], rows[first]["held"]) == (1, 1, 1)
    assert rows[first]["expected"] == 0
    # The cleared case is expected at every post ahead, and its bus is not at any of them yet.
    assert all(rows[cp.checkpoint_id]["expected"] == 1 for cp in ROUTE.checkpoints[1:])
    assert rows[second]["at_post"] == 0


def test_a_vehicle_is_shown_where_it_was_last_and_stuck_after_the_threshold() -> None:
    board, (a, _, _) = board_with_a_movement()
    [bus] = board.vehicles_on_road(T0 + timedelta(minutes=7))
    assert bus["where"] == f"at {ROUTE.checkpoints[0].post} ({ROUTE.checkpoints[0].country})"
    assert (bus["cases"], bus["people"], bus["stuck"]) == (1, 3, False)  # the refused stay behind
    [bus] = board.vehicles_on_road(T0 + timedelta(minutes=30))
    assert bus["stuck"]
    count, stuck = board.stuck(T0 + timedelta(minutes=30))
    assert count == 1 and stuck[0]["case_id"] == str(a)  # refused and held cases are not on the road
    board.apply_status(change(a, CaseStatus.ARRIVED, 31, members=3))
    assert board.vehicles_on_road(T0 + timedelta(minutes=40)) == []
    assert board.stuck(T0 + timedelta(minutes=60)) == (0, [])
    # A case manifested for a later day waits for its departure: not stuck.
    later = uuid.uuid4()
    for i, status in enumerate((CaseStatus.REGISTERED, CaseStatus.ELIGIBLE, CaseStatus.MANIFESTED)):
        board.apply_status(change(later, status, i))
    assert board.stuck(T0 + timedelta(days=3)) == (0, [])


def test_dead_letters_are_counted_by_consumer_and_reason_and_quiet_consumers_show_zero() -> None:
    board = Board(ROUTES, stuck_after_seconds=600)
    board.watch_dead_letters(["dlt.intake-inbound", "dlt.eligibility"], "dlt.")
    board.apply_dead_letter("dlt.intake-inbound", "intake-inbound", "undecodable", T0)
    board.apply_dead_letter("dlt.intake-inbound", "intake-inbound", "undecodable", T0 + timedelta(minutes=1))
    board.apply_dead_letter("dlt.intake-inbound", "intake-inbound", "", None)
    rows = {r["consumer"]: r for r in board.snapshot(T0)["dead_letters"]}
    assert rows["intake-inbound"]["count"] == 3
    assert rows["intake-inbound"]["reasons"] == {"undecodable": 2, "unknown": 1}
    assert rows["intake-inbound"]["last_at"] == (T0 + timedelta(minutes=1)).isoformat()
    assert rows["eligibility"]["count"] == 0


def test_the_consumers_counters_and_the_outbox_are_read_from_a_services_metrics() -> None:
    text = (
        "# TYPE corridor_consumer_records counter\n"
        'corridor_consumer_records_total{consumer="intake-inbound",outcome="applied"} 7.0\n'
        'corridor_consumer_records_total{consumer="intake-inbound",outcome="dead_lettered"} 2.0\n'
        "# TYPE corridor_outbox_pending_events gauge\ncorridor_outbox_pending_events 4.0\n"
        "# TYPE corridor_outbox_oldest_pending_age_seconds gauge\n"
        "corridor_outbox_oldest_pending_age_seconds 12.5\n"
    )
    consumers, pending, oldest = read_metrics(text)
    assert consumers == {"intake-inbound": {"applied": 7.0, "dead_lettered": 2.0}}
    assert (pending, oldest) == (4.0, 12.5)


@pytest.fixture
def page(issuer: DevIssuer) -> TestClient:
    # Not started (no lifespan): the routes and the authentication, without Kafka.
    return TestClient(create_app(OperationsSettings(mission="KAZ")))


def test_the_page_loads_for_anyone_and_its_data_only_for_a_viewer_signed_in(
    page: TestClient, issuer: DevIssuer
) -> None:
    assert page.get("/").status_code == 200 and "Corridor operations" in page.get("/").text
    assert page.get("/static/app.js").status_code == 200
    assert page.get("/api/board").status_code == 401
    assert page.get("/api/events").status_code == 401

    caseworker = page.post("/session", json={"token": issuer.token(Role.CASEWORKER, "KAZ")})
    assert caseworker.status_code == 403
    other_mission = page.post("/session", json={"token": issuer.token(Role.OPERATIONS_VIEWER, "UZB")})
    assert other_mission.status_code == 403
    expired = page.post(
        "/session", json={"token": issuer.token(Role.OPERATIONS_VIEWER, "KAZ", lifetime=-120)}
    )
    assert expired.status_code == 401
    assert "corridor_ops_session" not in page.cookies

    signed = page.post("/session", json={"token": issuer.token(Role.OPERATIONS_VIEWER, "KAZ")})
    assert signed.status_code == 200, signed.text
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=" in cookie
    board = page.get("/api/board")
    assert board.status_code == 200 and board.json()["funnel"]
    assert page.get(f"/api/cases/{uuid.uuid4()}").status_code == 404

    assert page.delete("/session").status_code == 204
    assert page.get("/api/board").status_code == 401


def test_a_bearer_header_works_as_for_any_service(page: TestClient, issuer: DevIssuer) -> None:
    token = issuer.token(Role.OPERATIONS_VIEWER, "KAZ")
    assert page.get("/api/board", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page.cookies.set("corridor_ops_session", token[:-4] + "AAAA")
    assert page.get("/api/board").status_code == 401


class _Client:
    """A request whose client goes away after ``polls`` looks."""

    def __init__(self, polls: int) -> None:
        self.polls = polls

    async def is_disconnected(self) -> bool:
        self.polls -= 1
        return self.polls < 0


async def test_the_event_stream_pushes_the_board_when_it_changes_and_ends_with_the_token() -> None:
    import json
    import time

    from services.operations.api import _board_events

    board, (a, _, _) = board_with_a_movement()
    events: list[str] = []
    stream = _board_events(_Client(6), board, 0.01, 60.0, time.time() + 60)  # type: ignore[arg-type]
    async for chunk in stream:
        events.append(chunk)
        if len(events) == 2:
            board.apply_status(change(a, CaseStatus.ARRIVED, 40, members=3))
    assert events[0].startswith("retry: ")
    boards = [json.loads(e.split("data: ", 1)[1]) for e in events[1:]]
    assert len(boards) == 2, "one push per change, none while nothing changes"
    assert {r["status"]: r["cases"] for r in boards[1]["funnel"]}["arrived"] == 1

    expired = [c async for c in _board_events(_Client(100), board, 0.01, 60.0, time.time() - 1)]  # type: ignore[arg-type]
    assert expired == [expired[0]] and expired[0].startswith("retry: ")
