"""A case's life end to end on the real platform."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts import reasons, topics
from contracts.envelope import decode_headers
from contracts.routes import Route
from contracts.status import CaseStatus
from corridor.auth import Purpose, Role
from corridor.kafkaclient import KafkaAccess
from corridor.kafkatools import read_topic
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.conftest import report_figure
from tests.integration.conftest import JOURNEY, settled, wait_group_caught_up


async def test_family_reaches_arrived_with_its_full_ordered_timeline(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    family = await scenario.register(client, stack, scenario.family_of_three(travel_date))
    await stream.wait_for([family], CaseStatus.ELIGIBLE, 60)
    await scenario.run_movement(
        client, stack, stream, route, travel_date, vehicles=[("BUS-01", 45)], expect=[family]
    )
    await stream.wait_for([family], CaseStatus.ARRIVED, 60)

    events = stream.timelines[family]
    assert [e.data.status for e in events] == JOURNEY  # type: ignore[attr-defined]
    places = [e.data.place.checkpoint_id for e in events if e.data.place and e.data.place.checkpoint_id]  # type: ignore[attr-defined]
    assert places == [cp.checkpoint_id for cp in route.checkpoints]
    assert all(e.data.members == 3 for e in events)  # type: ignore[attr-defined]
    times = [e.data.occurred_at for e in events]  # type: ignore[attr-defined]
    assert times == sorted(times)
    # The stream has one home, the host mission: transport announced each post's decision, at the
    # post's place (its country, its checkpoint).
    assert {e.source for e in events} == {"/missions/KAZ/intake", "/missions/KAZ/transport"}
    crossings = [e.data.place for e in events if e.data.place and e.data.place.checkpoint_id]  # type: ignore[attr-defined]
    assert [(p.country, p.name) for p in crossings] == [(cp.country, cp.post) for cp in route.checkpoints]
    # The cost of the single home: the officer's decision reaches transport's transaction one hop
    # later (the post's outbox, Kafka, transport's consumer).
    hops = [
        (e.time - e.data.occurred_at).total_seconds()  # type: ignore[attr-defined]
        for e in events
        if e.data.place and e.data.place.checkpoint_id  # type: ignore[attr-defined]
    ]
    assert all(h >= 0 for h in hops), hops
    report_figure(
        "status stream",
        f"a post's decision announced by transport {min(hops) * 1000:.0f}-{max(hops) * 1000:.0f} ms after "
        f"the officer's decision ({len(hops)} crossings of one family, one cluster)",
    )

    # Intake's timeline API is the same stream, read back in the same order.
    async with asyncio.timeout(30):
        while True:
            body = (await client.get(f"{stack.url('intake')}/cases/{family}/timeline")).json()
            if len(body["timeline"]) == len(JOURNEY):
                break
            await asyncio.sleep(0.2)
    assert [t["status"] for t in body["timeline"]] == [s.value for s in JOURNEY]


async def test_status_stream_carries_no_personal_data(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    body = scenario.family_of_three(travel_date)
    case_id = await scenario.register(client, stack, body)
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    raw = b"".join(
        r.value + b"".join(v for _, v in r.headers)
        for r in await read_topic(stack.kafka_access("operations"), topics.STATUS)
    )
    assert str(case_id).encode() in raw
    secrets = [b"disability"]
    for m in body["members"]:
        secrets += [m["surname"].encode(), m["given_names"].encode(), m["document"]["number"].encode()]
        secrets.append(m["birth_date"].encode())
    for secret in secrets:
        assert secret not in raw, secret


async def test_expired_document_stops_the_case_at_eligibility_with_its_reason(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    body = scenario.single_traveller(travel_date, expires_on=travel_date - timedelta(days=1))
    case_id = await scenario.register(client, stack, body)
    await stream.wait_for([case_id], {CaseStatus.INELIGIBLE, CaseStatus.ELIGIBLE, CaseStatus.ON_HOLD}, 60)
    last = stream.timelines[case_id][-1].data
    # On hold, not refused: a new passport would put the case back on track.
    assert last.status is CaseStatus.ON_HOLD  # type: ignore[attr-defined]
    assert last.reason_code == "document_valid_on_travel_date"  # type: ignore[attr-defined]
    # The stream has the code's fixed text; the date and the member are for the caseworker.
    assert last.reason == reasons.text_of("document_valid_on_travel_date")  # type: ignore[attr-defined]

    decisions = (await client.get(f"{stack.url('eligibility')}/cases/{case_id}/decisions")).json()[
        "decisions"
    ]
    assert [d["outcome"] for d in decisions] == ["pending"]
    assert {r["rule"]: r["outcome"] for r in decisions[0]["rules"]} == {
        "not_withdrawn": "pass",
        "consent_recorded": "pass",
        "nationality_matches_destination": "pass",
        "document_valid_on_travel_date": "pending",
        "certificate_of_return_usable": "pass",
        "fit_to_travel": "pass",
        "crossing_requirements_met": "pass",
    }

    # Transport does not place it: the movement for that day stays empty.
    planned = await client.post(
        f"{stack.url('transport')}/movements",
        json={
            "route_id": route.route_id,
            "departure_date": travel_date.isoformat(),
            "vehicles": [{"vehicle_id": "BUS-X", "capacity": 45}],
        },
    )
    assert planned.status_code == 201
    assert planned.json()["vehicles"][0]["cases"] == []
    await settled(stack, stream, client, "transport", "eligibility")
    assert stream.statuses(case_id) == [CaseStatus.REGISTERED, CaseStatus.ON_HOLD]


async def test_invalid_registration_gets_a_422_naming_the_field(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    body = scenario.single_traveller(travel_date)
    body["members"][0]["nationality"] = "Tajik"
    response = await client.post(stack.url("intake") + "/cases", json=body)
    assert response.status_code == 422
    assert any(err["loc"][-1] == "nationality" for err in response.json()["errors"])
    body = scenario.single_traveller(travel_date)
    body["route_id"] = "nowhere"
    response = await client.post(stack.url("intake") + "/cases", json=body)
    assert response.status_code == 422 and "unknown route" in response.text


async def test_registration_key_makes_registration_idempotent(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    key = f"field-office-7/{uuid.uuid4()}"
    first = await client.post(
        stack.url("intake") + "/cases", json=scenario.single_traveller(travel_date, key=key)
    )
    again = await client.post(
        stack.url("intake") + "/cases", json=scenario.single_traveller(travel_date, key=key)
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["case_id"] == again.json()["case_id"]


async def test_reading_personal_data_is_recorded(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    case_id = await scenario.register(client, stack, scenario.family_of_three(travel_date))
    caseworker = stack.headers(Role.CASEWORKER, subject="caseworker-1")
    missing_purpose = await client.get(f"{stack.url('intake')}/cases/{case_id}", headers=caseworker)
    assert missing_purpose.status_code == 422
    free_text = {**caseworker, "X-Purpose": "travel check"}  # not one of the fixed purposes
    assert (await client.get(f"{stack.url('intake')}/cases/{case_id}", headers=free_text)).status_code == 422
    # X-Actor names nobody any more: the actor recorded is the token's subject
    headers = {**caseworker, "X-Actor": "somebody-else", "X-Purpose": Purpose.TRAVEL_PREPARATION}
    read = await client.get(f"{stack.url('intake')}/cases/{case_id}", headers=headers)
    assert read.status_code == 200 and read.json()["members"][0]["surname"] == "Nazarov"
    log = (await client.get(f"{stack.url('intake')}/cases/{case_id}/access-log")).json()["reads"]
    assert [(r["actor"], r["purpose"]) for r in log] == [("caseworker-1", "travel_preparation")]


async def _records_for(
    access: KafkaAccess, topic: str, subject: str
) -> list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]:
    found = []
    for r in await read_topic(access, topic):
        headers = decode_headers(r.headers)
        if dict(headers).get("ce_subject") == subject.encode():
            found.append((r.key, r.value, headers))
    return found


async def test_a_record_delivered_twice_changes_nothing_the_second_time(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    [registered] = await _records_for(stack.kafka_access("operations"), topics.CASES, str(case_id))
    status_records = await _records_for(stack.kafka_access("operations"), topics.STATUS, str(case_id))
    assert len(status_records) == 2

    # Redelivered as intake, the one writer of both topics.
    producer = AIOKafkaProducer(**stack.kafka_access("intake").aiokafka(), enable_idempotence=True)
    await producer.start()
    try:
        for _ in range(2):
            await producer.send_and_wait(
                topics.CASES, key=registered[0], value=registered[1], headers=registered[2]
            )
            for key, value, headers in status_records:
                await producer.send_and_wait(topics.STATUS, key=key, value=value, headers=headers)
    finally:
        await producer.stop()

    for group, topic in (
        ("eligibility", topics.CASES),
        ("transport", topics.CASES),
        ("intake-timeline", topics.STATUS),
    ):
        await wait_group_caught_up(stack.kafka_access("operations"), group, topic)
    decisions = (await client.get(f"{stack.url('eligibility')}/cases/{case_id}/decisions")).json()[
        "decisions"
    ]
    assert len(decisions) == 1
    timeline = (await client.get(f"{stack.url('intake')}/cases/{case_id}/timeline")).json()["timeline"]
    assert [t["status"] for t in timeline] == ["registered", "eligible"]
    # The stream itself got no new status event from the duplicate deliveries.
    again = await _records_for(stack.kafka_access("operations"), topics.STATUS, str(case_id))
    assert {dict(h)["ce_id"] for _, _, h in again} == {dict(h)["ce_id"] for _, _, h in status_records}
    stats = (await client.get(f"{stack.url('eligibility')}/stats")).json()
    assert stats["consumers"]["eligibility"]["duplicates"] >= 2


async def test_poison_records_are_dead_lettered_and_the_consumer_moves_on(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    producer = AIOKafkaProducer(**stack.kafka_access("intake").aiokafka(), enable_idempotence=True)
    await producer.start()
    bad_key = uuid.uuid4().hex.encode()
    try:
        await producer.send_and_wait(
            topics.CASES,
            key=bad_key,
            value=b"{not json",
            headers=[
                ("ce_id", b"poison-1"),
                ("ce_source", b"/test"),
                ("ce_specversion", b"1.0"),
                (
                    "ce_type",
                    b"org.corridor.intake.case-registered.v1",
                ),
            ],
        )
    finally:
        await producer.stop()
    # A valid registration behind the poison record is still processed.
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)

    consumer = AIOKafkaConsumer(
        topics.dead_letters("eligibility"),
        **stack.kafka_access("operations").aiokafka(),
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            async for record in consumer:
                if record.key == bad_key:
                    headers = dict(decode_headers(record.headers))
                    break
    finally:
        await consumer.stop()
    assert record.value == b"{not json"
    assert headers["dlt_reason"] == b"malformed_json"
    assert headers["dlt_source_topic"] == topics.CASES.encode()
    assert headers["ce_id"] == b"poison-1"
    assert int(headers["dlt_source_offset"]) >= 0
