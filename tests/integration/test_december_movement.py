"""A small 1 December: about fifty people from three cities, families among them, two buses.

One person withdraws the day before, one child's certificate of return expires before the travel
date, one person does not show up on the day, and the Uzbek entry post demands a negative COVID-19
test after the manifests were sent. Everyone expected arrives; exactly the affected people are
held, with the right reason; no family is split; no bus is over capacity; every timeline is
complete and in order.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections import Counter, defaultdict
from datetime import date, timedelta

import httpx
from pypdf import PdfReader

from contracts import reasons, topics
from contracts.envelope import CloudEvent, decode_headers
from contracts.routes import Route
from contracts.status import CaseStatus
from contracts.transport import ManifestIssued
from corridor.auth import Purpose, Role
from corridor.kafkatools import read_topic
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.integration.conftest import JOURNEY, checked_recently, near_day

CITIES = ("Karaganda", "Pavlodar", "Petropavlovsk")
CAPACITY = 25


def _with_city(body: dict, i: int) -> dict:
    for m in body["members"]:
        m["current_city"] = CITIES[i % 3]
    return body


def _people(travel: date) -> dict[str, dict]:
    """8 families of three and 26 single travellers: 50 people."""
    bodies: dict[str, dict] = {}
    for i in range(8):
        family = scenario.family_of_three(travel, key=f"dec/{uuid.uuid4()}")
        for m in family["members"]:
            m["document"]["number"] = f"4{i:02d}{m['document']['number'][-6:]}"
        bodies[f"family-{i}"] = _with_city(family, i)
    for i in range(26):
        single = scenario.single_traveller(travel, key=f"dec/{uuid.uuid4()}")
        single["members"][0]["document"]["number"] = f"5{i:02d}{i:06d}"
        bodies[f"single-{i}"] = _with_city(single, i)
    # The certificate of return of family 0's child lapses two days before travel.
    bodies["family-0"]["members"][2]["document"]["issued_on"] = (travel - timedelta(days=32)).isoformat()
    bodies["family-0"]["members"][2]["document"]["expires_on"] = (travel - timedelta(days=2)).isoformat()
    # An elderly man who travels with an escort.
    bodies["single-3"]["members"][0]["vulnerabilities"] = ["elderly"]
    bodies["single-3"]["members"][0]["needs_escort"] = True
    return bodies


async def test_the_first_of_december_in_miniature(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient
) -> None:
    # Close enough that tests taken now count for the crossing (72 h), and a day no other test uses.
    travel = near_day("december")
    bodies = _people(travel)
    assert sum(len(b["members"]) for b in bodies.values()) == 50
    ids = dict(
        zip(
            bodies,
            await asyncio.gather(*(scenario.register(client, stack, b) for b in bodies.values())),
            strict=True,
        )
    )
    cor_family, untested_family, untested_single = ids["family-0"], ids["family-1"], ids["single-0"]
    withdrawer = ids["single-1"]

    await stream.wait_for([cor_family], CaseStatus.ON_HOLD, 60)
    eligible = [c for c in ids.values() if c != cor_family]
    await stream.wait_for(eligible, CaseStatus.ELIGIBLE, 60)
    # Tests taken before travel; two cases have none.
    tested_at = checked_recently()
    await asyncio.gather(
        *(
            scenario.record_evidence(client, stack, c, "covid19_test", "negative", tested_at)
            for c in eligible
            if c not in (untested_family, untested_single)
        )
    )

    movement = await scenario.plan_movement(
        client,
        stack,
        stream,
        route,
        travel,
        vehicles=[("BUS-1", CAPACITY), ("BUS-2", CAPACITY)],
        expect=eligible,
    )
    movement_id = movement["movement_id"]
    placed = {uuid.UUID(c["case_id"]) for v in movement["vehicles"] for c in v["cases"]}
    assert placed == set(eligible)
    assert sum(v["escort_seat"] for v in movement["vehicles"]) == 1

    # The day before: one withdraws.
    r = await client.post(
        f"{stack.url('intake')}/cases/{withdrawer}/withdrawal",
        json={"reason": "Found work again in Karaganda"},
        headers=stack.headers(Role.CASEWORKER, subject="caseworker-3"),
    )
    assert r.status_code == 201, r.text
    await stream.wait_for([withdrawer], CaseStatus.WITHDRAWN, 30)

    # Uzbekistan demands negative COVID-19 tests, after the manifests were sent.
    r = await client.post(
        stack.border_url("uzb-zhibek-zholy-entry") + "/requirements",
        json={
            "code": "negative_covid19_test",
            "description": "a negative COVID-19 test taken within 72 hours",
            "evidence_kind": "covid19_test",
            "valid_hours": 72,
            # This test's day only: no other test's travellers fall under it, lifted or not.
            "effective_from": travel.isoformat(),
            "effective_until": travel.isoformat(),
        },
        headers=stack.headers(
            Role.BORDER_OFFICER, checkpoint="uzb-zhibek-zholy-entry", subject="uzb-duty-officer"
        ),
    )
    assert r.status_code == 201, r.text
    try:
        await _with_the_requirement_in_force(
            stack, stream, route, client, movement_id, travel, bodies, ids, eligible
        )
    finally:
        # Lifted as a post would once its day is over; no other test waits for it (it ends on this
        # test's own day).
        lifted = await client.delete(
            stack.border_url("uzb-zhibek-zholy-entry") + f"/requirements/{r.json()['requirement_id']}"
        )
        assert lifted.status_code == 200


async def _with_the_requirement_in_force(
    stack: Stack,
    stream: StatusStream,
    route: Route,
    client: httpx.AsyncClient,
    movement_id: str,
    travel: date,
    bodies: dict[str, dict],
    ids: dict[str, uuid.UUID],
    eligible: list[uuid.UUID],
) -> None:
    cor_family, untested_family, untested_single = ids["family-0"], ids["family-1"], ids["single-0"]
    withdrawer, no_show, escorted = ids["single-1"], ids["single-2"], ids["single-3"]
    await stream.wait_for([untested_family, untested_single], CaseStatus.ON_HOLD, 60)

    # Transport takes the withdrawn and the held off their buses before boarding.
    gone = {withdrawer, untested_family, untested_single}
    async with asyncio.timeout(60):
        while True:
            found = (await client.get(f"{stack.url('transport')}/movements/{movement_id}")).json()
            aboard = {
                uuid.UUID(c["case_id"])
                for v in found["vehicles"]
                for c in v["cases"]
                if c["state"] == "manifested"
            }
            if not aboard & gone:
                break
            await asyncio.sleep(0.2)
    vehicle_of = {uuid.UUID(c["case_id"]): v["vehicle_id"] for v in found["vehicles"] for c in v["cases"]}

    # The day of departure: one no-show; everyone else through both crossings.
    await asyncio.gather(
        *(
            scenario.drive_vehicle(
                client,
                stack,
                route,
                movement_id,
                v["vehicle_id"],
                no_shows=[no_show] if vehicle_of[no_show] == v["vehicle_id"] else [],
            )
            for v in found["vehicles"]
        )
    )
    expected_arrivals = set(eligible) - gone - {no_show}
    await stream.wait_for(expected_arrivals, CaseStatus.ARRIVED, 90)

    # Exactly the expected people arrived, each with the whole journey in order.
    arrived = {c for c in ids.values() if CaseStatus.ARRIVED in stream.statuses(c)}
    assert arrived == expected_arrivals
    for case_id in arrived:
        assert stream.statuses(case_id) == JOURNEY, case_id
    for case_id in ids.values():
        times = [e.data.occurred_at for e in stream.timelines[case_id]]  # type: ignore[attr-defined]
        assert times == sorted(times)
    assert escorted in arrived

    # Exactly the affected are held, each with the reason they can act on.
    prefix = [CaseStatus.REGISTERED, CaseStatus.ELIGIBLE, CaseStatus.MANIFESTED]
    for held in (untested_family, untested_single):
        assert stream.statuses(held) == [*prefix, CaseStatus.ON_HOLD]
        last = stream.timelines[held][-1].data
        # Which test, for whom, is for the caseworker (eligibility's decision), not the stream.
        assert last.reason_code == "evidence_pending"  # type: ignore[attr-defined]
        assert last.reason == reasons.text_of("evidence_pending")  # type: ignore[attr-defined]
    assert stream.statuses(withdrawer) == [*prefix, CaseStatus.WITHDRAWN]
    assert stream.statuses(no_show) == [*prefix, CaseStatus.NO_SHOW]
    assert stream.statuses(cor_family) == [CaseStatus.REGISTERED, CaseStatus.ON_HOLD]
    cor_reason = stream.timelines[cor_family][-1].data
    assert cor_reason.reason_code == "document_valid_on_travel_date"  # type: ignore[attr-defined]
    assert cor_reason.reason == reasons.text_of("document_valid_on_travel_date")  # type: ignore[attr-defined]

    # Every manifest revision every post received: no family split, no bus over capacity, and the
    # last one at the destination's post lists exactly the people who arrived.
    members = {ids[k]: len(b["members"]) for k, b in bodies.items()}
    latest: dict[tuple[str, str], ManifestIssued] = {}
    for record in await read_topic(
        stack.kafka_access("operations"), topics.manifests("tjk-oybek-entry")
    ) + await read_topic(stack.kafka_access("operations"), topics.manifests("uzb-zhibek-zholy-entry")):
        manifest = CloudEvent.from_record(decode_headers(record.headers), record.value).data
        assert isinstance(manifest, ManifestIssued)
        if manifest.movement_id != movement_id:
            continue
        per_case = Counter(p.case_id for p in manifest.passengers)
        assert all(n == members[c] for c, n in per_case.items()), "a family was split"
        assert len(manifest.passengers) <= CAPACITY
        key = (manifest.checkpoint_id, manifest.vehicle_id)
        if key not in latest or latest[key].revision < manifest.revision:
            latest[key] = manifest
    final = defaultdict(set)
    for (checkpoint, _), manifest in latest.items():
        final[checkpoint] |= {p.case_id for p in manifest.passengers}
    assert final["tjk-oybek-entry"] == expected_arrivals
    assert final["uzb-zhibek-zholy-entry"] == expected_arrivals

    # The printable and CSV manifests, and the record of who took them.
    headers = {
        **stack.headers(Role.TRANSPORT_COORDINATOR, subject="escort-lead"),
        "X-Purpose": Purpose.TRAVEL_PREPARATION,
    }
    bus = found["vehicles"][0]["vehicle_id"]
    csv_export = await client.get(
        f"{stack.url('transport')}/movements/{movement_id}/vehicles/{bus}/manifest.csv", headers=headers
    )
    rows = list(csv.DictReader(io.StringIO(csv_export.text)))
    assert {uuid.UUID(r["case_id"]) for r in rows} == {c for c in expected_arrivals if vehicle_of[c] == bus}
    pdf = await client.get(
        f"{stack.url('transport')}/movements/{movement_id}/vehicles/{bus}/manifest.pdf", headers=headers
    )
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    printed = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages).split()
    for row in rows:
        for word in (*row["surname"].split(), *row["given_names"].split(), row["document_number"]):
            assert word in printed, f"the printed manifest lacks {word!r}"
    unrecorded = await client.get(
        f"{stack.url('transport')}/movements/{movement_id}/vehicles/{bus}/manifest.csv"
    )
    assert unrecorded.status_code == 422
    log = (await client.get(f"{stack.url('transport')}/movements/{movement_id}/access-log")).json()["exports"]
    assert [(e["actor"], e["format"]) for e in log] == [("escort-lead", "csv"), ("escort-lead", "pdf")]
