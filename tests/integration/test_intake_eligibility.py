"""What caseworkers do every day, on the real platform: documents checked at registration,
duplicates flagged across scripts, changes re-evaluated, decisions overridden with a reason."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx

from contracts.envelope import CloudEvent
from contracts.routes import Route
from contracts.status import CaseStatus
from corridor.auth import Purpose, Role
from corridor.mrz import check_digit
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.integration.conftest import wait_group_caught_up


def passport_mrz(surname: str, given: str, number: str, born: date, sex: str, expires: date) -> str:
    line1 = f"P<TJK{surname}<<{given}".upper().ljust(44, "<")
    b, e, opt = born.strftime("%y%m%d"), expires.strftime("%y%m%d"), "<" * 14
    num = number.ljust(9, "<")
    body = f"{num}{check_digit(num)}TJK{b}{check_digit(b)}{sex}{e}{check_digit(e)}{opt}{check_digit(opt)}"
    return f"{line1}\n{body}{check_digit(body[0:10] + body[13:20] + body[21:43])}"


async def decisions(client: httpx.AsyncClient, stack: Stack, case_id: uuid.UUID) -> dict:
    return (await client.get(f"{stack.url('eligibility')}/cases/{case_id}/decisions")).json()


async def wait_versions(client: httpx.AsyncClient, stack: Stack, case_id: uuid.UUID, n: int) -> list[dict]:
    async with asyncio.timeout(30):
        while True:
            r = await client.get(f"{stack.url('eligibility')}/cases/{case_id}/decisions")
            if r.status_code == 200 and len(r.json()["decisions"]) >= n:
                return r.json()["decisions"]
            await asyncio.sleep(0.2)


async def test_passport_mrz_is_verified_at_registration(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    body = scenario.single_traveller(travel_date)
    member = body["members"][0]
    expires = date.fromisoformat(member["document"]["expires_on"])
    good = passport_mrz("Rahimov", "Murod", member["document"]["number"], date(1979, 1, 30), "M", expires)
    member["document"]["mrz"] = good
    assert (await client.post(stack.url("intake") + "/cases", json=body)).status_code == 201

    # A 422 names the field in its location and shows nothing of the person it was sent.
    mrz_loc = ["body", "members", 0, "document", "mrz"]
    personal = [
        member["given_names"],
        member["surname"],
        member["birth_date"],
        "790130",
        "790131",
        member["document"]["number"],
        *good.split("\n"),
    ]

    def shows_no_personal_data(text: str) -> bool:
        return not [value for value in personal if value.lower() in text.lower()]

    misread = good[:-1] + str((int(good[-1]) + 1) % 10)
    member["document"]["mrz"] = misread
    r = await client.post(stack.url("intake") + "/cases", json=body)
    assert r.status_code == 422 and "composite: check digit is" in r.text
    assert [e["loc"] for e in r.json()["errors"]] == [mrz_loc]
    assert shows_no_personal_data(r.text) and misread.split("\n")[1] not in r.text

    other_birthday = passport_mrz(
        "Rahimov", "Murod", member["document"]["number"], date(1979, 1, 31), "M", expires
    )
    member["document"]["mrz"] = other_birthday
    r = await client.post(stack.url("intake") + "/cases", json=body)
    assert r.status_code == 422 and "does not match birth_date" in r.text
    assert [e["loc"] for e in r.json()["errors"]] == [mrz_loc]
    assert shows_no_personal_data(r.text) and other_birthday.split("\n")[1] not in r.text

    # FastAPI's own 422 for a missing field echoed the whole person; every service's does not.
    del member["sex"]
    r = await client.post(stack.url("intake") + "/cases", json=body)
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "members", 0, "sex"]]
    assert "input" not in r.json()["errors"][0]
    assert shows_no_personal_data(r.text) and other_birthday.split("\n")[1] not in r.text


async def test_proxy_consent_needs_who_and_why(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    body = scenario.single_traveller(travel_date)
    body["consent"] = {"given": True, "kind": "proxy", "scope": ["UZB", "TJK"]}
    r = await client.post(stack.url("intake") + "/cases", json=body)
    assert r.status_code == 422 and "proxy_name and proxy_reason" in r.text
    body["consent"] |= {
        "proxy_name": "Gulnora Rahimova (mother)",
        "proxy_reason": "The applicant is in hospital",
    }
    assert (await client.post(stack.url("intake") + "/cases", json=body)).status_code == 201


async def test_the_same_person_in_latin_and_cyrillic_is_flagged_and_resolved(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    surname = (
        f"Jurayev{uuid.uuid4().hex[:4].translate(str.maketrans('0123456789abcdef', 'bcdfghjklmnprstv'))}"
    )
    first = scenario.single_traveller(travel_date)
    first["members"][0] |= {"surname": surname, "given_names": "Bahodur", "birth_date": "1991-05-17"}
    first["members"][0]["document"]["number"] = f"7{uuid.uuid4().int % 10**8:08d}"
    r1 = await client.post(stack.url("intake") + "/cases", json=first)
    assert r1.status_code == 201 and r1.json()["duplicate_flags"] == []

    # A second office types the same man from his Cyrillic papers, with another document number.
    cyrillic = surname.replace("Jurayev", "Джураев")
    second = scenario.single_traveller(travel_date)
    second["members"][0] |= {
        "surname": surname.replace("Jurayev", "Dzhuraev"),
        "given_names": "Bakhodur",
        "surname_cyrillic": cyrillic,
        "given_names_cyrillic": "Баходур",
        "birth_date": "1991-05-17",
    }
    second["members"][0]["document"]["number"] = f"8{uuid.uuid4().int % 10**8:08d}"
    r2 = await client.post(stack.url("intake") + "/cases", json=second)
    assert r2.status_code == 201
    flags = r2.json()["duplicate_flags"]
    assert (
        len(flags) == 1 and flags[0]["other_case_id"] == r1.json()["case_id"] and flags[0]["basis"] == "name"
    )

    listed = (
        await client.get(stack.url("intake") + "/duplicate-flags", params={"case_id": r2.json()["case_id"]})
    ).json()
    assert [f["flag_id"] for f in listed["flags"]] == [flags[0]["flag_id"]]
    resolved = await client.post(
        f"{stack.url('intake')}/duplicate-flags/{flags[0]['flag_id']}/resolution",
        json={
            "decision": "duplicate",
            "note": "Same man, registered in Pavlodar and in Karaganda",
        },
        headers=stack.headers(Role.CASEWORKER, subject="cw-2"),
    )
    assert resolved.status_code == 200
    still_open = (
        await client.get(stack.url("intake") + "/duplicate-flags", params={"case_id": r2.json()["case_id"]})
    ).json()
    assert still_open["flags"] == []
    again = await client.post(
        f"{stack.url('intake')}/duplicate-flags/{flags[0]['flag_id']}/resolution",
        json={"decision": "not_duplicate", "note": "changed my mind"},
    )
    assert again.status_code == 404


async def test_a_new_document_re_evaluates_and_an_unchanged_outcome_publishes_nothing(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    body = scenario.single_traveller(travel_date, expires_on=travel_date - timedelta(days=3))
    case_id = await scenario.register(client, stack, body)
    await stream.wait_for([case_id], CaseStatus.ON_HOLD, 60)
    first = await wait_versions(client, stack, case_id, 1)
    assert (
        "valid only until"
        in next(r for r in first[0]["rules"] if r["rule"] == "document_valid_on_travel_date")["reason"]
    )

    # A health result no rule asks for changes no reason: no new decision version.
    taken = datetime.now(UTC) - timedelta(hours=1)
    await scenario.record_evidence(client, stack, case_id, "covid19_test", "negative", taken)
    # The renewed passport: the case is re-evaluated and becomes eligible.
    body["members"][0]["document"] |= {
        "number": "409876543",
        "expires_on": (travel_date + timedelta(days=3650)).isoformat(),
    }
    r = await client.put(f"{stack.url('intake')}/cases/{case_id}", json=body)
    assert r.status_code == 200, r.text
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    versions = await wait_versions(client, stack, case_id, 2)
    assert [d["outcome"] for d in versions] == ["pending", "eligible"]
    assert stream.statuses(case_id) == [CaseStatus.REGISTERED, CaseStatus.ON_HOLD, CaseStatus.ELIGIBLE]


async def test_a_supervisor_override_is_reasoned_visible_and_revocable(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    body = scenario.single_traveller(travel_date)
    body["members"][0]["nationality"] = "UZB"  # not the destination, and no proof of citizenship
    case_id = await scenario.register(client, stack, body)
    await stream.wait_for([case_id], CaseStatus.INELIGIBLE, 60)
    await wait_versions(client, stack, case_id, 1)

    too_short = await client.post(
        f"{stack.url('eligibility')}/cases/{case_id}/override",
        json={"outcome": "eligible", "reason": "ok"},
    )
    assert too_short.status_code == 422
    r = await client.post(
        f"{stack.url('eligibility')}/cases/{case_id}/override",
        json={
            "outcome": "eligible",
            "reason": "Tajik embassy confirmed citizenship by letter of 2 December",
        },
        headers=stack.headers(Role.SUPERVISOR, subject="sup-1"),
    )
    assert r.status_code == 201 and r.json()["outcome"] == "eligible"
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 30)
    found = await decisions(client, stack, case_id)
    latest = found["decisions"][-1]
    assert latest["rules"][-1]["rule"] == "supervisor_override"
    assert (
        "sup-1" in latest["rules"][-1]["reason"] and "rules said ineligible" in latest["rules"][-1]["reason"]
    )
    nationality = next(x for x in latest["rules"] if x["rule"] == "nationality_matches_destination")
    assert nationality["outcome"] == "fail"  # the rule's own verdict stays visible
    assert [o["supervisor"] for o in found["overrides"]] == ["sup-1"]

    revoked = await client.delete(
        f"{stack.url('eligibility')}/cases/{case_id}/override",
        headers=stack.headers(Role.SUPERVISOR, subject="sup-2"),
    )
    assert revoked.status_code == 200 and revoked.json()["outcome"] == "ineligible"
    found = await decisions(client, stack, case_id)
    assert found["overrides"][0]["revoked_by"] == "sup-2"
    assert [d["outcome"] for d in found["decisions"]] == ["ineligible", "eligible", "ineligible"]


async def test_proof_of_citizenship_and_a_certificate_of_return_used_once(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    certificate = f"CR{uuid.uuid4().int % 10**7:07d}"

    def with_certificate(day: date) -> dict:
        body = scenario.single_traveller(day)
        m = body["members"][0]
        m["nationality"] = "KAZ"  # born abroad; a Tajik internal passport proves citizenship
        m["proof_of_citizenship"] = {
            "type": "internal_passport",
            "number": "TJ-778899",
            "issuing_country": "TJK",
        }
        m["document"] = {
            "type": "certificate_of_return",
            "number": certificate,
            "issuing_country": "TJK",
            "issued_on": (day - timedelta(days=3)).isoformat(),
            "expires_on": (day + timedelta(days=27)).isoformat(),
        }
        return body

    first = await scenario.register(client, stack, with_certificate(travel_date))
    await stream.wait_for([first], CaseStatus.ELIGIBLE, 60)
    rules = (await wait_versions(client, stack, first, 1))[0]["rules"]
    assert (
        "by proof of citizenship"
        in next(r for r in rules if r["rule"] == "nationality_matches_destination")["reason"]
    )
    await scenario.run_movement(
        client, stack, stream, route, travel_date, vehicles=[("BUS-C", 45)], expect=[first]
    )
    await stream.wait_for([first], CaseStatus.ARRIVED, 60)

    # The same certificate presented again for another journey.
    reused = await scenario.register(client, stack, with_certificate(travel_date + timedelta(days=1)))
    await stream.wait_for([reused], CaseStatus.INELIGIBLE, 60)
    rules = (await wait_versions(client, stack, reused, 1))[-1]["rules"]
    assert "already used" in next(r for r in rules if r["rule"] == "certificate_of_return_usable")["reason"]


async def test_every_read_of_personal_data_can_be_queried(
    stack: Stack, client: httpx.AsyncClient, travel_date: date
) -> None:
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    actor = f"auditor-test-{uuid.uuid4().hex[:6]}"
    for purpose in (Purpose.ELIGIBILITY_REVIEW, Purpose.CASE_MANAGEMENT):
        r = await client.get(
            f"{stack.url('intake')}/cases/{case_id}",
            headers={**stack.headers(Role.CASEWORKER, subject=actor), "X-Purpose": purpose},
        )
        assert r.status_code == 200
    reads = (await client.get(stack.url("intake") + "/access-log", params={"actor": actor})).json()["reads"]
    assert [(r["case_id"], r["purpose"]) for r in reads] == [
        (str(case_id), "case_management"),
        (str(case_id), "eligibility_review"),
    ]


async def test_no_override_makes_a_case_travel_without_consent(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    body = scenario.single_traveller(travel_date)
    body["consent"]["scope"] = ["UZB"]  # not the destination's mission
    case_id = await scenario.register(client, stack, body)
    await stream.wait_for([case_id], CaseStatus.INELIGIBLE, 60)
    await wait_versions(client, stack, case_id, 1)
    r = await client.post(
        f"{stack.url('eligibility')}/cases/{case_id}/override",
        json={"outcome": "eligible", "reason": "The family asked us to hurry"},
    )
    assert r.status_code == 409 and "consent cannot be overridden" in r.text


async def test_transport_sends_no_manifest_abroad_without_consent_whatever_it_is_told(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    """Defence in depth: even an 'eligible' decision (here forged on the topic) does not put a case
    without consent for the countries on the route onto a manifest."""
    from aiokafka import AIOKafkaProducer

    from contracts import topics
    from contracts.eligibility import EligibilityDecided, Outcome, RuleOutcome, RuleResult

    body = scenario.single_traveller(travel_date)
    body["consent"]["scope"] = ["TJK"]
    case_id = await scenario.register(client, stack, body)
    await stream.wait_for([case_id], CaseStatus.INELIGIBLE, 60)
    forged = CloudEvent.new(
        EligibilityDecided(
            case_id=case_id,
            version=99,
            outcome=Outcome.ELIGIBLE,
            priority=0,
            rules=[RuleResult(rule="forged", outcome=RuleOutcome.PASS, reason="not from eligibility")],
            decided_at=datetime.now(UTC),
        ),
        source="/missions/KAZ/eligibility",
    )
    # Written with eligibility's own credentials: the forger here holds the one writer's principal.
    producer = AIOKafkaProducer(**stack.kafka_access("eligibility").aiokafka(), enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.DECISIONS, key=str(case_id).encode(), value=forged.value(), headers=forged.headers()
        )
    finally:
        await producer.stop()
    await wait_group_caught_up(
        stack.kafka_access("operations"), "transport", topics.DECISIONS
    )  # it has seen the forgery
    ready = await client.get(
        stack.url("transport") + "/ready-cases",
        params={"route_id": route.route_id, "departure_date": travel_date.isoformat()},
    )
    assert str(case_id) not in {c["case_id"] for c in ready.json()["cases"]}
