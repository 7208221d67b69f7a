"""Personal data stays where it belongs (issue 11, items 4 and 5), on the real platform.

Many cases with distinctive names, birth dates, document and phone numbers, medical flags and
free-text reasons (supervisors' overrides, withdrawals, hold-list entries, officers' refusals,
missions' reports) go through every flow; then every record of the public status stream, value
and headers, is searched for any of those strings, and the logs of every service process too,
after poison records (bad JSON, wrong-schema values quoting personal strings, a NUL in a name).
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from contracts import reasons, topics
from contracts.envelope import CloudEvent, decode_headers
from contracts.missions import CaseStatusReported
from contracts.routes import Route
from contracts.status import CaseStatus
from corridor.auth import Purpose
from corridor.kafkatools import read_topic
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from services.intake.domain import RegisterCase, build_case
from tests.conftest import report_figure
from tests.integration.conftest import checked_recently, near_day, settled, wait_group_caught_up

S = CaseStatus
RECEPTION = "/missions/TJK/reception"
EXIT_POST = "kaz-zhibek-zholy-exit"
ENTRY_POST = "uzb-zhibek-zholy-entry"

# Every personal string this module put into the platform: the public stream must hold none, and
# neither may any service's log.
PERSONAL: set[str] = set()

SENSITIVE_FLAGS = ("elderly", "survivor_of_trafficking_or_violence")

# Words that would be health facts or free text on the public stream, whoever wrote them.
FORBIDDEN_ON_STREAM = (
    *SENSITIVE_FLAGS,
    "pregnant",
    "serious_illness",
    "illness",
    "unfit",
    "positive",
    "fit_to_travel",
    "not fit",
    "court_order",
    "Overridden",
    "member 1",
)

_rng = random.Random()


def token(n: int = 6) -> str:
    return "".join(_rng.choice(string.ascii_uppercase) for _ in range(n))


def personal(text: str) -> str:
    PERSONAL.add(text)
    return text


def birth_date_formats(born: date) -> list[str]:
    """A date of birth as it might be written: ISO, European, American, compact."""
    return [
        born.isoformat(),
        born.strftime("%d.%m.%Y"),
        born.strftime("%d/%m/%Y"),
        born.strftime("%m/%d/%Y"),
        born.strftime("%Y%m%d"),
    ]


def member(
    role: str, travel: date, *, vulnerabilities: Iterable[str] = (), expires_on: date | None = None
) -> dict[str, Any]:
    """A person with strings nobody else has: each one is remembered as personal."""
    born = date(1951, 1, 1) + timedelta(days=_rng.randrange(0, 20 * 365))
    surname = personal(f"Zqx{token()}ova")
    given = personal(f"Qamilat {token()}")
    number = personal(f"7{_rng.randrange(10**7, 10**8)}")
    phone = personal(f"+99293{_rng.randrange(10**6, 10**7)}")
    PERSONAL.update(birth_date_formats(born))
    body = scenario.person(
        role,
        "x",
        surname,
        born.isoformat(),
        "F",
        "400000000",
        expires_on or travel + timedelta(days=700),
        vulnerabilities=vulnerabilities,
    )
    body["given_names"] = given
    body["document"]["number"] = number
    body["phone"] = phone
    return body


def case_body(travel: date, members: int = 1, **options: Any) -> dict[str, Any]:
    roles = ["principal", "spouse", "child"]
    return scenario.registration([member(roles[i], travel, **options) for i in range(members)], travel)


async def register_all(
    client: httpx.AsyncClient, stack: Stack, bodies: list[dict[str, Any]]
) -> list[uuid.UUID]:
    return list(await asyncio.gather(*(scenario.register(client, stack, b) for b in bodies)))


def text_of_record(headers: list[tuple[str, bytes]], value: bytes | None) -> str:
    """Everything a reader of the record sees: header names and values, the value as sent and as
    JSON decoded (a name could hide behind a \\u escape)."""
    parts = [f"{k}={v.decode(errors='replace')}" for k, v in headers]
    raw = (value or b"").decode(errors="replace")
    parts.append(raw)
    try:
        parts.append(json.dumps(json.loads(raw), ensure_ascii=False))
    except ValueError:
        pass
    return "\n".join(parts)


async def test_the_public_stream_carries_no_personal_string_and_no_health_fact(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    intake, eligibility = stack.url("intake"), stack.url("eligibility")
    # Health evidence cannot be from the future: the day with fit-to-travel checks is soon enough
    # for a check taken now to count (72 h before departure). Nobody plans a movement for it.
    other_day = near_day("personal data")

    # --- the day that travels: singles and families, two with sensitive flags -------------------
    travelling = [case_body(travel_date) for _ in range(24)] + [case_body(travel_date, 2) for _ in range(4)]
    flagged = [case_body(travel_date, vulnerabilities=[v]) for v in SENSITIVE_FLAGS]
    day_cases = await register_all(client, stack, travelling + flagged)
    await stream.wait_for(day_cases, S.ELIGIBLE, 90)
    people = {c: await scenario.members_of(client, stack, c, Purpose.CASE_MANAGEMENT) for c in day_cases}

    # Three documents on the exit post's hold list, with a court order and words naming the holder.
    held = day_cases[0:3]
    for case_id in held:
        p = people[case_id][0]
        entry = {
            "document_number": p["document"]["number"],
            "reason_code": "court_order",
            "reason": personal(f"Court order {token()} against {p['surname']}, born {p['birth_date']}"),
        }
        # The officer is the token's subject: a name that must not reach the stream either.
        officer = stack.headers(
            "border_officer", checkpoint=EXIT_POST, subject=personal(f"duty-{token().lower()}")
        )
        r = await client.put(stack.border_url(EXIT_POST) + "/hold-list", json=entry, headers=officer)
        assert r.status_code == 201, r.text

    movement = await scenario.plan_movement(
        client, stack, stream, route, travel_date, vehicles=[("BUS-P1", 45)], expect=day_cases
    )
    movement_id = movement["movement_id"]

    # Two withdraw after they were manifested, with a caseworker's note naming them.
    withdrawn = day_cases[3:5]
    for case_id in withdrawn:
        p = people[case_id][0]
        r = await client.post(
            f"{intake}/cases/{case_id}/withdrawal",
            json={"reason": personal(f"WDR {token()}: {p['given_names']} {p['surname']} found work")},
            headers=stack.headers("caseworker", subject=personal(f"caseworker-{token().lower()}")),
        )
        assert r.status_code == 201, r.text
    await stream.wait_for(withdrawn, S.WITHDRAWN, 60)

    # Two do not show up; at the entry post an officer refuses one person of two cases (one a
    # family), with notes naming them; the rest arrive.
    no_shows = day_cases[5:7]
    refused = [day_cases[7], day_cases[24]]
    refusals = {
        ENTRY_POST: [
            {
                "person_id": people[c][0]["person_id"],
                "reason_code": "consular_alert",
                "reason": personal(f"REF {token()}: {people[c][0]['surname']} on a consular alert list"),
            }
            for c in refused
        ]
    }
    await scenario.drive_vehicle(
        client, stack, route, movement_id, "BUS-P1", no_shows=no_shows, refusals=refusals
    )
    arrived = [c for c in day_cases if c not in {*held, *withdrawn, *no_shows, *refused}]
    await stream.wait_for(held + refused, S.REFUSED_AT_BORDER, 90)
    await stream.wait_for(no_shows, S.NO_SHOW, 60)
    await stream.wait_for(arrived, S.ARRIVED, 90)
    PERSONAL.add("consular_alert")

    # The destination mission reports receptions and closures with its own words and codes, once
    # intake has read the arrivals (before that it answers 503 "not ready yet", as documented).
    reported = arrived[:6]
    await scenario.wait_read_by_intake(client, stack, reported, S.ARRIVED, 60)
    for i, case_id in enumerate(reported):
        p = people[case_id][0]
        for status, code in (("received", "zqx_hospital_transfer"), ("closed", "case_closed_by_mission")):
            if status == "closed" and i % 2:
                continue
            report = CaseStatusReported.model_validate(
                {
                    "case_id": str(case_id),
                    "status": status,
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "reason_code": code,
                    "reason": personal(f"MIS {token()}: {p['surname']} ({p['birth_date']}) seen by Dr Zqx"),
                    # The mission types the place's name: the stream says the route's place.
                    "place": {"country": "TJK", "name": personal(f"Home of {p['surname']} {token()}")},
                }
            )
            body = CloudEvent.new(report, source=RECEPTION).structured()
            r = await scenario.post(
                client,
                f"{intake}/inbound/status-changes",
                body,
                headers={
                    "content-type": "application/cloudevents+json",
                    **stack.headers("integration_client", mission="TJK"),
                },
            )
            assert r.status_code == 202, r.text
            await stream.wait_for([case_id], S.RECEIVED if status == "received" else S.CLOSED, 30)
    PERSONAL.add("zqx_hospital_transfer")

    # --- another day: medical facts, overrides ---------------------------------------------------
    unfit = [case_body(other_day, vulnerabilities=["pregnant"]) for _ in range(2)]
    unchecked = [case_body(other_day, vulnerabilities=["serious_illness"]) for _ in range(2)]
    expired = [case_body(other_day, expires_on=other_day - timedelta(days=3)) for _ in range(4)]
    overruled = [case_body(other_day) for _ in range(2)]
    other = await register_all(client, stack, unfit + unchecked + expired + overruled)
    unfit_ids, unchecked_ids = other[0:2], other[2:4]
    expired_ids, overruled_ids = other[4:8], other[8:10]
    check = checked_recently()
    for case_id in unfit_ids:
        await scenario.record_evidence(client, stack, case_id, "fit_to_travel", "unfit", check)
        await scenario.record_evidence(client, stack, case_id, "covid19_test", "positive", check)
    await stream.wait_for(unfit_ids, S.INELIGIBLE, 60)
    await stream.wait_for(unchecked_ids + expired_ids, S.ON_HOLD, 60)
    await stream.wait_for(overruled_ids, S.ELIGIBLE, 60)
    others = {c: await scenario.members_of(client, stack, c, Purpose.CASE_MANAGEMENT) for c in other}
    for case_id, outcome in [
        *((c, "eligible") for c in expired_ids),
        *((c, "ineligible") for c in overruled_ids),
    ]:
        p = others[case_id][0]
        r = await client.post(
            f"{eligibility}/cases/{case_id}/override",
            json={
                "outcome": outcome,
                "reason": personal(f"OVR {token()}: letter about {p['surname']}, born {p['birth_date']}"),
            },
            headers=stack.headers("supervisor", subject=personal(f"Supervisor {token()} Zqxbekova")),
        )
        assert r.status_code == 201, r.text
    await stream.wait_for(expired_ids, S.ELIGIBLE, 60)
    await stream.wait_for(overruled_ids, S.INELIGIBLE, 60)

    cases = day_cases + other
    assert len(cases) >= 40
    # Everything the services committed is on the stream before it is searched.
    await settled(stack, stream, client, *stack.specs)

    # --- every record of the public stream, value and headers --------------------------------------
    records = await read_topic(stack.kafka_access("operations"), topics.STATUS)
    searched = sorted(PERSONAL) + list(FORBIDDEN_ON_STREAM)
    found: list[tuple[str, int, int]] = []
    codes: dict[str, int] = {}
    seen_cases: set[str] = set()
    for record in records:
        headers = decode_headers(record.headers)
        text = text_of_record(headers, record.value)
        seen_cases.update(str(c) for c in cases if str(c) in text)
        found += [(s, record.partition, record.offset) for s in searched if s.lower() in text.lower()]
        change = CloudEvent.from_record(headers, record.value).data
        public = getattr(change, "reason_code", None)
        if public is not None:
            codes[public] = codes.get(public, 0) + 1
            # Every reason on the stream is a public code with its own text.
            assert change.reason == reasons.text_of(public), (public, change.reason)  # type: ignore[attr-defined]
    report_figure(
        "Public stream",
        f"{len(records)} records scanned, {len(searched)} personal strings, {len(found)} found",
    )
    assert not found, f"personal strings on the public stream: {found[:10]}"
    # The search reads what is there: every case of this test is found by its id.
    assert seen_cases == {str(c) for c in cases}
    # The flows above did happen, with the codes that say so and nothing more.
    for expected in (
        "held_at_border",
        "refused_by_officer",
        "no_show",
        "withdrawn_by_applicant",
        "travel_condition_not_met",
        "evidence_pending",
        "supervisor_override_eligible",
        "supervisor_override_ineligible",
        "reported_by_mission",
        "case_closed_by_mission",
        "document_valid_on_travel_date",
    ):
        assert codes.get(expected), f"no {expected} on the stream: {codes}"

    # Caseworkers keep what the stream does not say: the mission's words on the case's timeline.
    r = await client.get(f"{intake}/cases/{reported[0]}/timeline")
    assert r.status_code == 200, r.text
    timeline = r.json()["timeline"]
    received = next(e for e in timeline if e["status"] == "received")
    assert received["reason_code"] == "zqx_hospital_transfer" and received["reason"].startswith("MIS ")


async def _produce(
    stack: Stack, topic: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]
) -> None:
    # A legitimate writer that sends garbage: nobody else gets a record onto the topic.
    producer = AIOKafkaProducer(
        **stack.kafka_access("intake").aiokafka(), enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, key=key, value=value, headers=headers)
    finally:
        await producer.stop()


def _registration(travel: date, **member_changes: Any) -> tuple[CloudEvent, dict[str, Any]]:
    body = case_body(travel)
    body["members"][0].update(member_changes)
    command = RegisterCase.model_validate({**body, "registration_key": f"poison/{uuid.uuid4()}"})
    event = CloudEvent.new(
        build_case(command, case_id=uuid.uuid4(), now=datetime.now(UTC)), source="/missions/KAZ/intake"
    )
    return event, json.loads(event.value())


async def test_no_service_log_holds_a_personal_string_after_poison_records(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    poison: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []

    # Bad JSON that quotes a person.
    event, _ = _registration(travel_date)
    surname = personal(f"Zqx{token()}ova")
    poison.append((event.subject.encode(), f'{{"surname": "{surname}", '.encode(), event.headers()))
    # Values of the wrong shape, each quoting personal strings (pydantic's messages may quote them).
    for field, bad in (
        ("sex", personal(f"Zqx{token()} born 1957-03-0{_rng.randrange(1, 9)}")),
        ("nationality", personal(f"Zqx{token()}")),
        ("birth_date", personal(f"{_rng.randrange(1, 28)}.{_rng.randrange(10, 12)}.1953 Zqx{token()}")),
    ):
        event, value = _registration(travel_date)
        value["members"][0][field] = bad
        poison.append((event.subject.encode(), json.dumps(value).encode(), event.headers()))
    # Headers that are not what they claim, quoting personal strings: a time that is no time and a
    # type that is no event (the envelope's error names the value it refuses).
    event, _ = _registration(travel_date)
    when = personal(f"born 1956-02-1{_rng.randrange(0, 9)} Zqx{token()}")
    headers = [(k, when.encode() if k == "ce_time" else v) for k, v in event.headers()]
    poison.append((event.subject.encode(), event.value(), headers))
    event, _ = _registration(travel_date)
    kind = personal(f"org.zqx{token().lower()}.v1")
    headers = [(k, kind.encode() if k == "ce_type" else v) for k, v in event.headers()]
    poison.append((event.subject.encode(), event.value(), headers))
    # A NUL in a name: valid JSON, valid schema, refused by PostgreSQL (whose message may quote it).
    nul = personal(f"Zqx{token()}")
    event, value = _registration(travel_date)
    value["members"][0]["surname"] = nul + "\x00" + personal(f"Nul{token()}")
    poison.append((event.subject.encode(), json.dumps(value).encode(), event.headers()))
    # A valid registration behind them: the partition moves on past the poison.
    valid, _ = _registration(travel_date)
    poison.append((valid.subject.encode(), valid.value(), valid.headers()))

    await _produce(stack, topics.CASES, poison)
    for group in ("eligibility", "transport"):
        await wait_group_caught_up(stack.kafka_access("operations"), group, topics.CASES, timeout=60)
    await _answered_and_logged_after(stack)

    scanned = 0
    found: list[tuple[str, str]] = []
    for name in stack.specs:
        path = stack.log_path(name)
        text = path.read_text(errors="replace")
        scanned += len(text.splitlines())
        found += [(name, s) for s in sorted(PERSONAL) if s in text]
    report_figure(
        "Service logs",
        f"{len(stack.specs)} processes, {scanned} lines scanned after {len(poison) - 1} poison records, "
        f"{len(PERSONAL)} personal strings, {len(found)} found",
    )
    assert not found, f"personal strings in service logs: {found[:10]}"


async def _answered_and_logged_after(stack: Stack, timeout: float = 30.0) -> None:
    """The positive signal that each service has written its lines about what came before: a
    request it answers now, whose own log line is in its log (a process's lines reach its log in
    the order it writes them). The line is found by the trace id the request carries."""
    trace_id = uuid.uuid4().hex
    headers = {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}
    async with httpx.AsyncClient(timeout=10.0) as http:
        for spec in stack.specs.values():
            r = await http.get(spec.url + "/openapi.json", headers=headers)
            assert r.status_code == 200, (spec.name, r.status_code)
    waiting = set(stack.specs)
    try:
        async with asyncio.timeout(timeout):
            while waiting:
                waiting = {
                    n for n in waiting if trace_id not in stack.log_path(n).read_text(errors="replace")
                }
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"no log line of the marker request from {sorted(waiting)}") from None
