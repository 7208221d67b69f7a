"""Intake's HTTP API on the in-memory store: each route answers the status and the JSON it always
answered (field names, nulls, times as ``+00:00``), and the runtime answers the use cases' errors.
No server: the runtime is never started, its units of work are the in-memory ones."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from contracts.envelope import CloudEvent
from contracts.missions import ReportableStatus
from contracts.status import CaseStatus, CaseStatusChanged, Place
from corridor.auth import Role
from corridor.runtime import ServiceRuntime
from devkit.devidp import DevIssuer
from services.intake import domain, usecases
from services.intake.app import IntakeSettings, create_service
from tests.problemcheck import answered, field_errors
from tests.unit.conftest import role_auth
from tests.unit.intake_doubles import FAMILY, NOW, TRAVEL, FakeIntakeStore, person, report, unit, units_for

READER = {"X-Purpose": "eligibility_review"}


@pytest.fixture
def store() -> FakeIntakeStore:
    return FakeIntakeStore()


@pytest.fixture
def units(store: FakeIntakeStore) -> Any:
    return units_for(store)


@pytest.fixture
async def client(
    units: Any, monkeypatch: pytest.MonkeyPatch, issuer: DevIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setattr(ServiceRuntime, "units", lambda self, _store: units)
    rt = create_service(IntakeSettings(withdrawal_wait_seconds=0))
    # No lifespan: the runtime (database, Kafka) never starts. Each request acts in a role its
    # route admits, unless it names its own token.
    transport = httpx.ASGITransport(app=rt.http)
    auth = role_auth(issuer, rt.http)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake", auth=auth) as client:
        yield client


def as_(issuer: DevIssuer, role: Role, subject: str, mission: str = "KAZ") -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(role, mission, subject=subject)}"}


def body(*members: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "route_id": "kaz-uzb-tjk",
        "planned_travel_date": TRAVEL.isoformat(),
        "consent": {"given": True, "scope": ["UZB", "TJK"]},
        "members": list(members) or [person("principal", "Murod", "Rahimov", "1979-01-30", "400765432")],
        **extra,
    }


async def register(client: httpx.AsyncClient, **extra: Any) -> str:
    response = await client.post("/cases", json=body(**extra))
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    return case_id


async def test_a_registration_answers_its_case_and_a_repeat_the_same_case(client: httpx.AsyncClient) -> None:
    created = await client.post("/cases", json=body(registration_key="k-1"))
    assert created.status_code == 201
    case_id = created.json()["case_id"]
    assert created.json() == {
        "case_id": case_id,
        "created": True,
        "status": "registered",
        "duplicate_flags": [],
    }
    again = await client.post("/cases", json=body(registration_key="k-1"))
    assert (again.status_code, again.json()) == (200, {**created.json(), "created": False})


async def test_a_registration_repeated_under_its_key_is_answered_its_flags(
    client: httpx.AsyncClient, store: FakeIntakeStore, issuer: DevIssuer
) -> None:
    """Issue 17: the repeat answers what the lost answer said (the same flags, even once resolved),
    apart from what marks it a repeat; a caller who may not see flags sees none either time."""
    await register(client, registration_key="k-1")
    twin = body(registration_key="k-2")
    first = await client.post("/cases", json=twin)
    assert first.status_code == 201 and len(first.json()["duplicate_flags"]) == 1
    [flag] = first.json()["duplicate_flags"]
    resolution = {"decision": "not_duplicate", "note": "two people"}
    assert (await client.post(f"/duplicate-flags/{flag['flag_id']}/resolution", json=resolution)).is_success
    again = await client.post("/cases", json=twin)
    assert (again.status_code, again.json()) == (200, {**first.json(), "created": False})
    assert len(store.cases) == 2 and len(store.flags) == 1

    system = as_(issuer, Role.INTEGRATION_CLIENT, "kaz-registry")
    first = await client.post("/cases", json=body(registration_key="k-3"), headers=system)
    again = await client.post("/cases", json=body(registration_key="k-3"), headers=system)
    assert "duplicate_flags" not in first.json() and (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "created": False}

    # A key registered before first answers were kept: the case, and nothing it cannot know.
    del store.answers[uuid.UUID(first.json()["case_id"])]
    again = await client.post("/cases", json=body(registration_key="k-3"))
    assert (again.status_code, again.json()) == (200, {"case_id": first.json()["case_id"], "created": False})


async def test_a_registrations_request_line_names_the_case_it_created(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corridor.requests")
    created = await client.post("/cases", json=body(registration_key="k-log"))
    again = await client.post("/cases", json=body(registration_key="k-log"))
    lines = [r for r in caplog.records if r.name == "corridor.requests"]
    assert [(r.__dict__["route"], r.__dict__["status"]) for r in lines] == [("/cases", 201), ("/cases", 200)]
    assert {r.__dict__["case_id"] for r in lines} == {created.json()["case_id"], again.json()["case_id"]}


async def test_a_possible_duplicate_is_named_in_the_answer(
    client: httpx.AsyncClient, store: FakeIntakeStore, issuer: DevIssuer
) -> None:
    first = await register(client)
    second = await client.post(
        "/cases", json=body(person("principal", "Bakhodur", "Saidov", "1990-02-02", "400765432"))
    )
    (flag,) = second.json()["duplicate_flags"]
    person_id = str(next(iter(store.flags)).person_id)
    assert flag == {"flag_id": 1, "person_id": person_id, "other_case_id": first, "basis": "document"}
    listed = (await client.get("/duplicate-flags")).json()["flags"]
    assert listed == [
        {
            "flag_id": 1,
            "case_id": second.json()["case_id"],
            "person_id": person_id,
            "other_case_id": first,
            "other_person_id": listed[0]["other_person_id"],
            "basis": "document",
            "status": "open",
            "flagged_at": "2026-11-30T09:00:00+00:00",
            "resolved_by": None,
            "resolution_note": None,
        }
    ]
    resolution = {"decision": "duplicate", "note": "same man"}
    aida = as_(issuer, Role.CASEWORKER, "aida")
    resolved = await client.post("/duplicate-flags/1/resolution", json=resolution, headers=aida)
    assert (resolved.status_code, resolved.json()) == (200, {"flag_id": 1, "status": "duplicate"})
    assert store.flags[0].resolved_by == "aida"  # the token's subject, nothing the caller typed
    typed = await client.post("/duplicate-flags/1/resolution", json={**resolution, "resolved_by": "x"})
    assert typed.status_code == 422
    again = await client.post("/duplicate-flags/1/resolution", json=resolution)
    assert answered(again) == (404, "flag_not_open", "no open flag 1")


async def test_every_problem_of_a_registration_is_one_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/cases",
        json=body(
            person("principal", "Murod", "Rahimov", "2027-01-30", "400765432"),
            route_id="kaz-nowhere",
            planned_travel_date="2026-11-01",
        ),
    )
    assert response.json()["code"] == "registration_rejected"
    assert field_errors(response) == [
        {"loc": ["body", "route_id"], "msg": "unknown route 'kaz-nowhere'", "type": "value_error"},
        {"loc": ["body", "members", "0", "birth_date"], "msg": "is in the future", "type": "value_error"},
        {"loc": ["body", "planned_travel_date"], "msg": "is in the past", "type": "value_error"},
    ]


async def test_an_update_answers_when_and_how_many(client: httpx.AsyncClient) -> None:
    case_id = await register(client)
    response = await client.put(f"/cases/{case_id}", json=body(*FAMILY))
    assert (response.status_code, response.json()) == (
        200,
        {"case_id": case_id, "updated_at": "2026-11-30T09:00:00+00:00", "members": 3},
    )
    missing = await client.put(f"/cases/{uuid.uuid4()}", json=body())
    status, code, detail = answered(missing)
    assert (status, code) == (404, "case_not_found") and detail.startswith("no case ")


async def test_a_case_is_read_with_its_personal_data_and_the_read_is_logged(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    case_id = await register(client)
    response = await client.get(
        f"/cases/{case_id}", headers={**READER, **as_(issuer, Role.CASEWORKER, "aida")}
    )
    assert response.status_code == 200
    (member,) = response.json()["members"]
    assert response.json() == {
        "case_id": case_id,
        "route_id": "kaz-uzb-tjk",
        "planned_travel_date": "2026-12-01",
        "status": "registered",
        "consent": {
            "given": True,
            "kind": "explicit",
            "proxy_name": None,
            "proxy_reason": None,
            "scope": ["UZB", "TJK"],
        },
        "members": [
            {
                "person_id": member["person_id"],
                "role": "principal",
                "given_names": "Murod",
                "surname": "Rahimov",
                "birth_date": "1979-01-30",
                "sex": "M",
                "nationality": "TJK",
                "document": {
                    "type": "passport",
                    "number": "400765432",
                    "issuing_country": "TJK",
                    "issued_on": None,
                    "expires_on": (TRAVEL + timedelta(days=400)).isoformat(),
                },
                "vulnerabilities": [],
                "needs_escort": False,
                "current_city": None,
                "given_names_cyrillic": None,
                "surname_cyrillic": None,
                "phone": None,
                "proof_of_citizenship": None,
            }
        ],
    }
    # In the order the read has always answered (not the contract's Person order).
    assert list(response.json()) == [
        "case_id",
        "route_id",
        "planned_travel_date",
        "status",
        "consent",
        "members",
    ]
    assert list(member)[7:10] == ["document", "vulnerabilities", "needs_escort"]
    assert list(member)[-5:] == [
        "current_city",
        "given_names_cyrillic",
        "surname_cyrillic",
        "phone",
        "proof_of_citizenship",
    ]
    log = (await client.get(f"/cases/{case_id}/access-log")).json()
    assert log == {
        "case_id": case_id,
        "reads": [
            {"accessed_at": "2026-11-30T09:00:00+00:00", "actor": "aida", "purpose": "eligibility_review"}
        ],
    }
    everything = (await client.get("/access-log", params={"actor": "aida"})).json()
    assert everything == {"reads": [{**log["reads"][0], "case_id": case_id}]}
    assert (await client.get(f"/cases/{uuid.uuid4()}", headers=READER)).status_code == 404


async def test_the_timeline_keeps_its_nulls(client: httpx.AsyncClient, store: FakeIntakeStore) -> None:
    case_id = await register(client)
    assert (await client.get(f"/cases/{case_id}/timeline")).json() == {"case_id": case_id, "timeline": []}
    change = CaseStatusChanged(
        case_id=uuid.UUID(case_id),
        status=CaseStatus.EXIT_CLEARED,
        occurred_at=NOW,
        members=1,
        place=Place(country="KAZ", name="Zhibek-Zholy"),
    )
    await store.record_statuses([("/missions/KAZ/border", "ev-1", change)])
    assert (await client.get(f"/cases/{case_id}/timeline")).json()["timeline"] == [
        {
            "status": "exit_cleared",
            "occurred_at": "2026-11-30T09:00:00+00:00",
            "place": {"country": "KAZ", "name": "Zhibek-Zholy", "checkpoint_id": None},
            "movement_id": None,
            "reason_code": None,
            "reason": None,
            "event": {"source": "/missions/KAZ/border", "id": "ev-1"},
        }
    ]
    assert (await client.get(f"/cases/{uuid.uuid4()}/timeline")).status_code == 404


async def test_health_evidence_answers_its_event(client: httpx.AsyncClient, store: FakeIntakeStore) -> None:
    case_id = await register(client)
    (person_id,) = [str(p) for p in store.persons]
    evidence = {"person_id": person_id, "kind": "covid19_test", "result": "negative"}
    taken = {**evidence, "taken_at": "2026-11-30T04:00:00+00:00"}
    response = await client.post(f"/cases/{case_id}/health-evidence", json=taken)
    assert response.status_code == 201 and set(response.json()) == {"case_id", "event_id"}
    future = {**evidence, "taken_at": "2026-11-30T10:00:00+00:00"}
    refused = await client.post(f"/cases/{case_id}/health-evidence", json=future)
    assert field_errors(refused) == [
        {"loc": ["body", "taken_at"], "msg": "is in the future", "type": "value_error"}
    ]
    stranger = await client.post(
        f"/cases/{case_id}/health-evidence",
        json={**taken, "person_id": str(uuid.uuid4())},
    )
    assert stranger.status_code == 404


async def test_a_withdrawal_not_settled_in_time_answers_202_and_where_to_look(
    client: httpx.AsyncClient,
) -> None:
    case_id = await register(client)
    response = await client.post(
        f"/cases/{case_id}/withdrawal", json={"reason": "changed plans"}, headers={"X-Actor": "aida"}
    )
    assert (response.status_code, response.json()) == (
        202,
        {
            "case_id": case_id,
            "status": "withdrawal_requested",
            "created": True,
            "timeline": f"/cases/{case_id}/timeline",
        },
    )


async def test_a_withdrawal_applied_answers_201_without_a_timeline(
    client: httpx.AsyncClient, store: FakeIntakeStore
) -> None:
    case_id = uuid.UUID(await register(client))
    # Recorded before, and transport's "withdrawn" read from the stream since: a repeat answers it.
    await usecases.request_withdrawal(domain.RequestWithdrawal(case_id, "plans", "aida"), unit(store))
    store.cases[case_id].status = CaseStatus.WITHDRAWN
    response = await client.post(
        f"/cases/{case_id}/withdrawal", json={"reason": "changed plans"}, headers={"X-Actor": "aida"}
    )
    assert (response.status_code, response.json()) == (
        201,
        {"case_id": str(case_id), "status": "withdrawn", "created": False},
    )


async def test_a_withdrawal_after_departure_is_a_409(
    client: httpx.AsyncClient, store: FakeIntakeStore
) -> None:
    case_id = await register(client)
    store.cases[uuid.UUID(case_id)].status = CaseStatus.DEPARTED
    response = await client.post(
        f"/cases/{case_id}/withdrawal", json={"reason": "changed plans"}, headers={"X-Actor": "aida"}
    )
    assert answered(response) == (
        409,
        "not_before_departure",
        "case is departed: withdrawal is possible only before departure",
    )


def structured(data: Any, source: str = "/missions/TJK/reception") -> bytes:
    return json.dumps(CloudEvent.new(data, source=source).structured(), default=str).encode()


async def test_a_missions_report_over_http(
    client: httpx.AsyncClient, store: FakeIntakeStore, units: Any, issuer: DevIssuer
) -> None:
    case_id = await register(client)
    headers = {
        "Content-Type": "application/cloudevents+json",
        **as_(issuer, Role.INTEGRATION_CLIENT, "tjk-reception-system", "TJK"),
    }
    received = structured(report(uuid.UUID(case_id), ReportableStatus.RECEIVED))
    deferred = await client.post("/inbound/status-changes", content=received, headers=headers)
    assert deferred.status_code == 503 and deferred.headers["Retry-After"] == "2"
    assert answered(deferred)[1] == "illegal_transition" and deferred.json()["retry"] is True

    # Intake read "arrived" from the stream; the guard too, or "received" is not yet legal.
    store.cases[uuid.UUID(case_id)].status = CaseStatus.ARRIVED
    assert (
        await client.post("/inbound/status-changes", content=received, headers=headers)
    ).status_code == 503
    units.statuses[uuid.UUID(case_id)] = CaseStatus.ARRIVED
    accepted = await client.post("/inbound/status-changes", content=received, headers=headers)
    assert accepted.status_code == 202
    assert accepted.json() == {"accepted": True, "status_event_id": accepted.json()["status_event_id"]}
    repeat = await client.post("/inbound/status-changes", content=received, headers=headers)
    event_id = json.loads(received)["id"]
    assert (repeat.status_code, repeat.json()) == (
        200,
        {"duplicate": True, "id": event_id, "status_event_id": accepted.json()["status_event_id"]},
    )

    unknown = await client.post(
        "/inbound/status-changes",
        content=structured(report(uuid.uuid4(), ReportableStatus.RECEIVED)),
        headers=headers,
    )
    assert answered(unknown)[:2] == (404, "unknown_case")
    closed = report(uuid.UUID(case_id), ReportableStatus.CLOSED)
    uzb = {**headers, **as_(issuer, Role.INTEGRATION_CLIENT, "uzb-desk", "UZB")}
    not_theirs = await client.post(
        "/inbound/status-changes", content=structured(closed, "/missions/UZB/desk"), headers=uzb
    )
    assert answered(not_theirs)[:2] == (403, "unauthorised_source")
    # UZB's client writing TJK's name as the source: the token says who reports, not the event.
    before = store.cases[uuid.UUID(case_id)].status
    forged = await client.post(
        "/inbound/status-changes", content=structured(closed, "/missions/TJK/reception"), headers=uzb
    )
    assert answered(forged)[:2] == (403, "source_not_token_mission")
    assert store.cases[uuid.UUID(case_id)].status == before
    # Only an integration client reports; a caseworker of the host mission is no mission system.
    caseworker = {**headers, **as_(issuer, Role.CASEWORKER, "aida")}
    refused = await client.post(
        "/inbound/status-changes", content=structured(closed, "/missions/KAZ/x"), headers=caseworker
    )
    assert answered(refused)[:2] == (403, "role_not_allowed")
    nul = report(uuid.UUID(case_id), ReportableStatus.CLOSED).model_copy(update={"reason": "a\x00b"})
    refused = await client.post("/inbound/status-changes", content=structured(nul), headers=headers)
    assert answered(refused)[:2] == (422, "invalid_value")
    wrong = await client.post("/inbound/status-changes", content=b"{", headers=headers)
    assert answered(wrong)[:2] == (400, "malformed_json")


async def test_the_purpose_of_a_read_is_one_of_the_fixed_list(client: httpx.AsyncClient) -> None:
    case_id = await register(client)
    free = await client.get(f"/cases/{case_id}", headers={"X-Purpose": "just curious"})
    assert field_errors(free)[0]["loc"] == ["header", "x-purpose"]
    assert (await client.get(f"/cases/{case_id}")).status_code == 422  # no purpose at all
    assert (
        await client.get(f"/cases/{case_id}", headers={"X-Purpose": "case_management"})
    ).status_code == 200


async def test_duplicate_flags_are_answered_to_caseworkers_only(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    """A registering system that is not a caseworker learns nothing of who else is registered."""
    await register(client)
    again = person("principal", "Bakhodur", "Saidov", "1990-02-02", "400765432")
    system = as_(issuer, Role.INTEGRATION_CLIENT, "kaz-registry")
    answered = await client.post("/cases", json=body(again), headers=system)
    assert answered.status_code == 201 and "duplicate_flags" not in answered.json()
    flags = (await client.get("/duplicate-flags")).json()["flags"]
    assert [f["case_id"] for f in flags] == [answered.json()["case_id"]]  # flagged all the same


async def test_access_logs_are_for_auditors_only(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    case_id = await register(client)
    for role in (Role.CASEWORKER, Role.SUPERVISOR, Role.OPERATIONS_VIEWER):
        for url in ("/access-log", f"/cases/{case_id}/access-log"):
            refused = await client.get(url, headers=as_(issuer, role, "someone"))
            assert (refused.status_code, refused.json()["code"]) == (403, "role_not_allowed")
    assert (await client.get("/access-log", headers=as_(issuer, Role.AUDITOR, "a"))).status_code == 200


async def test_a_body_over_the_limit_is_413_and_an_import_has_its_larger_limit(
    client: httpx.AsyncClient,
) -> None:
    big = b'{"members": "' + b"x" * (1 << 20) + b'"}'
    refused = await client.post("/cases", content=big, headers={"Content-Type": "application/json"})
    assert answered(refused) == (413, "too_large", "a request body here is at most 1 MB")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b"x" * 65536

    streamed = await client.post("/cases", content=chunked(), headers={"Content-Type": "application/json"})
    assert answered(streamed)[:2] == (413, "too_large")
    # 2 MB is a small import: it passes the limit and is read (and refused as a file, 400).
    csv = b"row_key\n" + b"x" * (2 << 20)
    imported = await client.post(
        "/imports", params={"namespace": "office-1"}, content=csv, headers={"Content-Type": "text/csv"}
    )
    assert imported.status_code == 400, imported.text
