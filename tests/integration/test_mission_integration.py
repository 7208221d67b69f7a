"""What a country mission's IT sees and does, with tools they already use: the CloudEvents SDK and
confluent-kafka (librdkafka), none of them our code, each authenticated as the mission's own
integration client (SASL/SCRAM-SHA-512).

kcat was the third-party tool here, but Debian 12's kcat 1.7.1 (librdkafka 2.0.2) cannot do
SCRAM-SHA-512 against Kafka 4.x (a nonce bug fixed in librdkafka 2.6.1): confluent-kafka's wheel
bundles a current librdkafka, the same library a newer kcat is built on."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition

from contracts import topics
from contracts.client import StatusReporter, StatusStreamReader
from contracts.envelope import CloudEvent, decode_headers
from contracts.missions import CaseStatusReported, ReportableStatus
from contracts.routes import Route
from contracts.status import CaseStatus, Place
from corridor.auth import Role
from corridor.kafkatools import read_topic
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream

RECEPTION = "/missions/TJK/reception"


def _report(case_id: uuid.UUID, status: str = "received", **extra: object) -> dict[str, object]:
    return {
        "case_id": str(case_id),
        "status": status,
        "occurred_at": datetime.now(UTC).isoformat(),
        "place": {"country": "TJK", "name": "Reception centre, Sughd"},
        **extra,
    }


def _headers(
    event_type: str = CaseStatusReported.event_type, source: str = RECEPTION, **override: str | None
):
    headers = {
        "ce_specversion": "1.0",
        "ce_id": str(uuid.uuid4()),
        "ce_source": source,
        "ce_type": event_type,
        "ce_time": datetime.now(UTC).isoformat(),
        "content-type": "application/json",
    }
    headers.update(override)
    return [(k, v.encode()) for k, v in headers.items() if v is not None]


async def _arrived_case(
    client: httpx.AsyncClient, stack: Stack, stream: StatusStream, route: Route, day: date
) -> uuid.UUID:
    case_id = await scenario.register(client, stack, scenario.family_of_three(day))
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    await scenario.run_movement(client, stack, stream, route, day, vehicles=[("BUS-M", 45)], expect=[case_id])
    await stream.wait_for([case_id], CaseStatus.ARRIVED, 60)
    return case_id


def _read_status_with_librdkafka(conf: dict[str, object], case_id: uuid.UUID) -> list[Message]:
    """What ``kcat -C -t corridor.case-status -o beginning -e`` does, with librdkafka 2.16."""
    consumer = Consumer(
        {
            **conf,
            "group.id": f"mission-tjk.librdkafka-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    mine: list[Message] = []
    try:
        metadata = consumer.list_topics(topics.STATUS, timeout=30)
        partitions = list(metadata.topics[topics.STATUS].partitions)
        consumer.assign([TopicPartition(topics.STATUS, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        deadline = time.monotonic() + 60
        while len(at_end) < len(partitions) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                    continue
                raise RuntimeError(msg.error())
            if msg.key() == str(case_id).encode():
                mine.append(msg)
    finally:
        consumer.close()
    return mine


async def test_a_librdkafka_client_reads_a_status_change_with_its_cloudevents_attributes(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    conf = stack.kafka_access("mission-tjk").librdkafka()
    mine = await asyncio.to_thread(_read_status_with_librdkafka, conf, case_id)
    assert len(mine) == 2, mine
    records = [
        {
            "payload": (m.value() or b"").decode(),
            "headers": [x for k, v in (m.headers() or []) for x in (k, (v or b"").decode())],
        }
        for m in mine
    ]
    first = records[0] if json.loads(records[0]["payload"])["status"] == "registered" else records[1]  # type: ignore[arg-type]
    headers = dict(zip(first["headers"][::2], first["headers"][1::2], strict=True))
    assert headers["ce_type"] == "org.corridor.case.status-changed.v1"
    assert headers["ce_source"] == "/missions/KAZ/intake"
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_subject"] == str(case_id)
    assert headers["content-type"] == "application/json"
    uuid.UUID(headers["ce_id"])
    datetime.fromisoformat(headers["ce_time"])
    payload = json.loads(first["payload"])
    assert payload["case_id"] == str(case_id) and payload["members"] == 1


async def test_cloudevents_sdk_reads_a_status_change(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    record = next(
        r
        for r in await read_topic(stack.kafka_access("operations"), topics.STATUS)
        if r.key == str(case_id).encode() and b'"eligible"' in r.value
    )
    event = from_binary_event(
        KafkaMessage(headers=dict(decode_headers(record.headers)), key=record.key, value=record.value)
    )
    assert event.get_type() == "org.corridor.case.status-changed.v1"
    # Transport announces decisions as it applies them to the case's seat (one writer before departure).
    assert event.get_source() == "/missions/KAZ/transport"
    assert event.get_subject() == str(case_id)
    assert event.get_specversion() == "1.0"
    assert event.get_datacontenttype() == "application/json"
    assert event.get_time() is not None
    assert event.get_extension("partitionkey") == str(case_id)
    data = event.get_data()
    assert isinstance(data, dict)
    assert data["status"] == "eligible" and data["case_id"] == str(case_id)


async def test_a_foreign_client_reports_a_status_change_that_appears_on_the_stream(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    case_id = await _arrived_case(client, stack, stream, route, travel_date)
    event_id = str(uuid.uuid4())
    producer = Producer({**stack.kafka_access("mission-tjk").librdkafka(), "enable.idempotence": True})
    delivered: list[object] = []
    producer.produce(
        topics.inbound_status("TJK"),
        key=str(case_id),
        value=json.dumps(_report(case_id)).encode(),
        headers=_headers(ce_id=event_id, ce_subject=str(case_id)),
        on_delivery=lambda err, msg: delivered.append(err),
    )
    assert await asyncio.to_thread(producer.flush, 30) == 0 and delivered == [None]
    await stream.wait_for([case_id], CaseStatus.RECEIVED, 30)
    received = stream.timelines[case_id][-1]
    assert received.source == "/missions/KAZ/intake"
    assert received.extensions == {"originsource": RECEPTION, "originid": event_id}
    assert received.data.place == Place(country="TJK", name="Reception centre, Sughd")  # type: ignore[attr-defined]

    # The same over HTTP, for systems that cannot speak Kafka: close the case, then repeat it.
    closing = CloudEvent.new(
        CaseStatusReported(case_id=case_id, status=ReportableStatus.CLOSED, occurred_at=datetime.now(UTC)),
        source=RECEPTION,
    ).structured()
    url = stack.url("intake") + "/inbound/status-changes"
    # TJK's integration client: the token says which mission reports
    headers = {
        "content-type": "application/cloudevents+json",
        **stack.headers(Role.INTEGRATION_CLIENT, mission="TJK", subject="tjk-reception-system"),
    }
    first = await client.post(url, content=json.dumps(closing), headers=headers)
    assert first.status_code == 202, first.text
    again = await client.post(url, content=json.dumps(closing), headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["status_event_id"] == first.json()["status_event_id"]
    # The report sent over Kafka, sent again over HTTP: a repeat, answered the status change the
    # Kafka delivery published (issue 17).
    by_kafka = {
        "specversion": "1.0",
        "id": event_id,
        "source": RECEPTION,
        "type": CaseStatusReported.event_type,
        "data": _report(case_id),
    }
    repeat = await client.post(url, content=json.dumps(by_kafka), headers=headers)
    assert (repeat.status_code, repeat.json()) == (
        200,
        {"duplicate": True, "id": event_id, "status_event_id": received.id},
    ), repeat.text
    await stream.wait_for([case_id], CaseStatus.CLOSED, 30)
    assert stream.statuses(case_id)[-3:] == [CaseStatus.ARRIVED, CaseStatus.RECEIVED, CaseStatus.CLOSED]


async def test_http_ingest_answers_each_kind_of_bad_input_with_a_code(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    url = stack.url("intake") + "/inbound/status-changes"

    def event(source: str = RECEPTION, **data: object) -> dict[str, object]:
        return {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": source,
            "type": CaseStatusReported.event_type,
            "data": _report(case_id, **data),
        }

    tjk = stack.headers(Role.INTEGRATION_CLIENT, mission="TJK")
    uzb = stack.headers(Role.INTEGRATION_CLIENT, mission="UZB")
    cases = [
        (b"{nope", tjk, 400, "malformed_json"),
        (json.dumps({**event(), "type": "org.example.v9"}).encode(), tjk, 400, "unknown_type"),
        (json.dumps({k: v for k, v in event().items() if k != "id"}).encode(), tjk, 400, "missing_header"),
        (json.dumps(event(status="teleported")).encode(), tjk, 422, "schema_violation"),
        # UZB reporting as UZB, a status only TJK may report
        (json.dumps(event(source="/missions/UZB/reception")).encode(), uzb, 403, "unauthorised_source"),
        # forged sources: a mission's client writing another mission's name
        (json.dumps(event(source="/missions/UZB/reception")).encode(), tjk, 403, "source_not_token_mission"),
        (json.dumps(event()).encode(), uzb, 403, "source_not_token_mission"),
        (json.dumps({**event(), "data": _report(uuid.uuid4())}).encode(), tjk, 404, "unknown_case"),
    ]
    for body, who, status, code in cases:
        response = await client.post(
            url, content=body, headers={"content-type": "application/cloudevents+json", **who}
        )
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
    # "received" for a case that has not even departed: may only be intake's view lagging the
    # stream, so not a final answer: 503 with Retry-After (a mission's client retries it).
    response = await client.post(url, json=event(), headers=tjk)
    assert response.status_code == 503 and response.json()["code"] == "illegal_transition"
    assert response.headers["Retry-After"] and response.json()["retry"] is True
    assert "case is eligible" in response.json()["detail"]


async def test_invalid_inbound_records_are_dead_lettered_and_valid_ones_behind_them_applied(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    arrived = await _arrived_case(client, stack, stream, route, travel_date)
    foreigner = scenario.single_traveller(travel_date + timedelta(days=1))
    foreigner["members"][0]["nationality"] = "KGZ"  # refused for good: a terminal status
    ineligible = await scenario.register(client, stack, foreigner)
    await stream.wait_for([ineligible], CaseStatus.INELIGIBLE, 60)
    key = str(arrived).encode()  # one key: every record lands on the same partition, in this order
    bad = {
        "malformed_json": (b'{"case_id": ', _headers()),
        "missing_header": (json.dumps(_report(arrived)).encode(), _headers(ce_source=None)),
        "unknown_type": (
            json.dumps(_report(arrived)).encode(),
            _headers(event_type="org.example.teleported.v1"),
        ),
        "schema_violation": (json.dumps(_report(arrived, status="teleported")).encode(), _headers()),
        "illegal_transition": (json.dumps(_report(ineligible)).encode(), _headers()),
        # Another mission's source on TJK's own topic: who wrote it (TJK's principal) is not who it says.
        "source_mismatch": (
            json.dumps(_report(arrived)).encode(),
            _headers(source="/missions/UZB/reception"),
        ),
    }
    ids = {}
    producer = Producer({**stack.kafka_access("mission-tjk").librdkafka(), "enable.idempotence": True})
    for code, (value, headers) in bad.items():
        ids[code] = str(uuid.uuid4())
        producer.produce(
            topics.inbound_status("TJK"),
            key=key,
            value=value,
            headers=[*headers, ("test_case", ids[code].encode())],
        )
    async with StatusReporter(
        stack.kafka_access("mission-tjk"), mission="TJK", system="reception"
    ) as reporter:
        await asyncio.to_thread(producer.flush, 30)
        valid = await reporter.report(
            CaseStatusReported(
                case_id=arrived, status=ReportableStatus.RECEIVED, occurred_at=datetime.now(UTC)
            )
        )
    await stream.wait_for([arrived], CaseStatus.RECEIVED, 30)
    assert stream.timelines[arrived][-1].extensions["originid"] == valid.id

    reasons: dict[str, bytes] = {}
    consumer = AIOKafkaConsumer(
        topics.dead_letters("intake-inbound"),
        **stack.kafka_access("operations").aiokafka(),
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            async for record in consumer:
                headers = dict(decode_headers(record.headers))
                marker = headers.get("test_case", b"").decode()
                for code, marked in ids.items():
                    if marker == marked:
                        reasons[code] = headers["dlt_reason"]
                        assert record.value == bad[code][0] and record.key == key
                        assert headers["dlt_source_topic"] == topics.inbound_status("TJK").encode()
                        assert headers["dlt_error"]
                if len(reasons) == len(bad):
                    break
    finally:
        await consumer.stop()
    assert reasons == {code: code.encode() for code in bad}


async def test_the_python_client_reads_typed_status_updates(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    seen: list[CaseStatus] = []
    async with StatusStreamReader(
        stack.kafka_access("mission-tjk"), group_id=f"mission-tjk.it-{uuid.uuid4()}"
    ) as reader:
        async with asyncio.timeout(30):
            async for update in reader:
                if update.subject == str(case_id):
                    seen.append(update.data.status)  # type: ignore[attr-defined]
                    if len(seen) == 2:
                        await reader.commit()
                        break
    assert seen == [CaseStatus.REGISTERED, CaseStatus.ELIGIBLE]


@pytest.fixture(autouse=True)
def _no_personal_data_in_reports() -> None:
    """Reports carry no personal fields: the contract has none to fill."""
    assert not {"surname", "given_names", "birth_date"} & set(CaseStatusReported.model_fields)
