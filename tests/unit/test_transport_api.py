"""Transport's HTTP API in memory: the routes on the in-memory store, answered by the runtime's error
handlers. The bodies keep the shape they had before the routes declared their models (the same
keys, nulls present, timestamps as Python writes them), and domain errors answer as before."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from corridor.auth import Role
from corridor.runtime import ServiceRuntime
from corridor.settings import ServiceSettings
from devkit.devidp import DevIssuer
from services.transport import api
from tests.problemcheck import answered, field_errors
from tests.unit.conftest import role_auth
from tests.unit.test_transport_usecases import CTX, DAY, ROUTE, World

NOW = "2026-11-30T09:00:00+00:00"  # FakeUnitOfWork's clock


@pytest.fixture(scope="module", autouse=True)
def _quiet_tracing() -> Iterator[None]:
    otel = logging.getLogger("opentelemetry.trace")
    level = otel.level
    otel.setLevel(logging.ERROR)
    yield
    otel.setLevel(level)


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    assert w.uow.illegal == [], w.uow.illegal


@pytest.fixture
async def client(world: World, issuer: DevIssuer) -> AsyncIterator[httpx.AsyncClient]:
    # The runtime is built, never started: its error handlers answer the routes' domain errors.
    rt = ServiceRuntime("transport", ServiceSettings(), migrations=Path("."), title="transport (test)")

    @asynccontextmanager
    async def units() -> AsyncIterator[object]:
        yield world.uow

    rt.http.include_router(api.router(units, CTX))  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rt.http),
        base_url="http://transport",
        auth=role_auth(issuer, rt.http),
    ) as c:
        yield c


def plan_body(*vehicles: tuple[str, int], movement_id: str = "MOV-1") -> dict[str, object]:
    return {
        "movement_id": movement_id,
        "route_id": ROUTE.route_id,
        "departure_date": DAY.isoformat(),
        "vehicles": [{"vehicle_id": v, "capacity": c} for v, c in vehicles],
    }


async def test_a_planned_movement_answers_in_its_documented_shape(
    world: World, client: httpx.AsyncClient
) -> None:
    placed = await world.ready(2)
    left_out = await world.ready(3)
    r = await client.post("/movements", json=plan_body(("BUS-1", 2), ("BUS-2", 1)))
    assert r.status_code == 201, r.text
    body = r.json()
    assert list(body) == [
        "movement_id",
        "route_id",
        "departure_date",
        "status",
        "vehicles",
        "not_placed",
        "created",
    ]
    assert body["created"] is True
    assert (body["movement_id"], body["route_id"], body["departure_date"], body["status"]) == (
        "MOV-1",
        ROUTE.route_id,
        DAY.isoformat(),
        "planned",
    )
    bus1, bus2 = body["vehicles"]
    assert list(bus1) == [
        "vehicle_id",
        "capacity",
        "escort_seat",
        "manifest_revision",
        "departed_at",
        "cases",
        "seats_taken",
    ]
    assert bus1["departed_at"] is None and bus1["manifest_revision"] == 1 and bus1["seats_taken"] == 2
    assert bus1["cases"] == [
        {
            "case_id": str(placed),
            "seats": 2,
            "state": "manifested",
            "explanation": world.store.seats[placed].explanation,
        }
    ]
    assert bus2["cases"] == [] and bus2["seats_taken"] == 0
    assert [c["case_id"] for c in body["not_placed"]] == [str(left_out)]
    assert list(body["not_placed"][0]) == ["case_id", "explanation"]


async def test_a_departure_answers_what_happened_and_the_movement_shows_it(
    world: World, client: httpx.AsyncClient
) -> None:
    absent, present = await world.ready(), await world.ready()
    await client.post("/movements", json=plan_body(("BUS-1", 4)))
    waiting = await world.ready()
    url = "/movements/MOV-1/vehicles/BUS-1/departure"
    r = await client.post(url, json={"no_shows": [str(absent)]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["movement_id", "vehicle_id", "departed", "no_shows", "seats_offered"]
    assert sorted(body["departed"]) == sorted([str(present), str(waiting)])
    assert body["no_shows"] == [str(absent)]
    assert [o["case_id"] for o in body["seats_offered"]] == [str(waiting)]
    # A repeat (the answer was lost) is answered what the departure decided, and changes nothing.
    again = await client.post(url, json={"no_shows": [str(absent)]})
    assert (again.status_code, again.json(), again.headers["Idempotent-Replayed"]) == (200, body, "true")
    read = await client.get(f"{url}")
    assert (read.status_code, read.json()) == (200, body)
    other = await client.post(url, json={})
    assert answered(other) == (409, "departed", f"BUS-1 departed at {NOW}")
    assert other.json()["departure"] == body
    movement = (await client.get("/movements/MOV-1")).json()
    assert movement["status"] == "departed"
    (bus,) = movement["vehicles"]
    assert bus["departed_at"] == NOW and bus["manifest_revision"] == 2 and bus["seats_taken"] == 2
    assert {c["state"] for c in bus["cases"]} == {"no_show", "departed"}


async def test_domain_errors_answer_as_problems_with_their_codes(
    world: World, client: httpx.AsyncClient
) -> None:
    unknown_route = {"loc": ["body", "route_id"], "msg": "unknown route 'nowhere'", "type": "value_error"}
    r = await client.post("/movements", json={**plan_body(("B", 1)), "route_id": "nowhere"})
    assert (field_errors(r), r.json()["code"]) == ([unknown_route], "unknown_route")
    r = await client.get("/ready-cases", params={"route_id": "nowhere", "departure_date": DAY.isoformat()})
    assert (field_errors(r), r.json()["code"]) == ([unknown_route], "unknown_route")
    r = await client.get("/movements/MOV-9")
    assert answered(r) == (404, "no_such_movement", "no movement MOV-9")
    first = await client.post("/movements", json=plan_body(("BUS-1", 4)))
    r = await client.post("/movements", json=plan_body(("BUS-1", 4)))
    assert (r.status_code, r.json()["created"]) == (200, False)
    assert r.json()["vehicles"] == first.json()["vehicles"]
    r = await client.post("/movements", json=plan_body(("BUS-1", 5)))
    assert answered(r) == (409, "movement_exists", "movement MOV-1 exists")
    r = await client.post("/movements", json=plan_body(("B", 1), ("B", 2), movement_id="MOV-2"))
    assert field_errors(r) == [
        {"loc": ["body", "vehicles"], "msg": "vehicle ids must be unique", "type": "value_error"}
    ]
    stranger = uuid.uuid4()
    r = await client.post("/movements/MOV-1/vehicles/BUS-1/departure", json={"no_shows": [str(stranger)]})
    assert field_errors(r)[0]["loc"] == ["body", "no_shows"]
    r = await client.post("/movements/MOV-1/vehicles/BUS-9/departure", json={})
    assert answered(r) == (404, "no_such_vehicle", "no vehicle BUS-9 on MOV-1")
    r = await client.post(
        "/movements/MOV-1/vehicles/BUS-1/progress",
        json={"checkpoint_id": ROUTE.checkpoints[0].checkpoint_id, "stage": "arrived"},
    )
    assert answered(r) == (409, "not_departed", "BUS-1 has not left the gathering point")


async def test_ready_cases_and_progress(world: World, client: httpx.AsyncClient) -> None:
    case_id = await world.ready(2, priority=40)
    r = await client.get(
        "/ready-cases", params={"route_id": ROUTE.route_id, "departure_date": DAY.isoformat()}
    )
    assert r.json() == {
        "route_id": ROUTE.route_id,
        "departure_date": DAY.isoformat(),
        "cases": [{"case_id": str(case_id), "members": 2, "priority": 40}],
    }
    await client.post("/movements", json=plan_body(("BUS-1", 4)))
    await client.post("/movements/MOV-1/vehicles/BUS-1/departure", json={})
    checkpoint = ROUTE.checkpoints[0].checkpoint_id
    r = await client.post(
        "/movements/MOV-1/vehicles/BUS-1/progress", json={"checkpoint_id": checkpoint, "stage": "departed"}
    )
    assert (r.status_code, r.json()) == (
        201,
        {"movement_id": "MOV-1", "vehicle_id": "BUS-1", "checkpoint_id": checkpoint, "stage": "departed"},
    )


async def test_manifest_exports_record_who_and_why(
    world: World, client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    await world.ready()
    await client.post("/movements", json=plan_body(("BUS-1", 4)))
    url = "/movements/MOV-1/vehicles/BUS-1/manifest"
    missing = await client.get(f"{url}.csv")
    assert missing.status_code == 422

    def who(subject: str) -> dict[str, str]:
        token = issuer.token(Role.TRANSPORT_COORDINATOR, "KAZ", subject=subject)
        return {"Authorization": f"Bearer {token}", "X-Purpose": "travel_preparation"}

    typed = await client.get(f"{url}.csv", headers={"X-Purpose": "whatever I like"})
    assert typed.status_code == 422
    csv = await client.get(f"{url}.csv", headers=who("coordinator@kaz"))
    assert csv.status_code == 200 and csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv.headers["content-disposition"] == 'attachment; filename="MOV-1-BUS-1.csv"'
    assert csv.text.startswith("case_id,person_id,surname,given_names")
    pdf = await client.get(f"{url}.pdf", headers={**who("escort@kaz"), "X-Actor": "someone else"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    log = (await client.get("/movements/MOV-1/access-log")).json()
    assert list(log) == ["movement_id", "exports"] and log["movement_id"] == "MOV-1"
    assert [(e["actor"], e["purpose"], e["vehicle_id"], e["format"]) for e in log["exports"]] == [
        ("coordinator@kaz", "travel_preparation", "BUS-1", "csv"),
        ("escort@kaz", "travel_preparation", "BUS-1", "pdf"),  # X-Actor means nothing any more
    ]
    assert list(log["exports"][0]) == ["accessed_at", "actor", "purpose", "vehicle_id", "format"]
