"""A border post's own checks: the hold list, the document scan against the manifest, a refusal
that holds the whole family and keeps it off the manifests of the posts ahead."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import httpx

from contracts import reasons, topics
from contracts.envelope import CloudEvent, decode_headers
from contracts.routes import Route
from contracts.status import CaseStatus
from contracts.transport import ManifestIssued
from corridor.auth import Purpose
from corridor.kafkatools import read_topic
from corridor.mrz import check_digit
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream


def td3(surname: str, given: str, number: str, nationality: str, born: date, sex: str, expires: date) -> str:
    """A valid passport zone for test data, check digits computed as ICAO Doc 9303 says."""
    name = f"{surname}<<{given}".replace(" ", "<")
    line1 = f"P<{nationality}{name}".ljust(44, "<")[:44]
    num = number.ljust(9, "<")
    b, e = born.strftime("%y%m%d"), expires.strftime("%y%m%d")
    opt = "<" * 14
    body = f"{num}{check_digit(num)}{nationality}{b}{check_digit(b)}{sex}{e}{check_digit(e)}{opt}{check_digit(opt)}"
    composite = check_digit(body[0:10] + body[13:20] + body[21:43])
    return f"{line1}\n{body}{composite}"


async def test_hold_list_and_document_scans_at_the_exit_post(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    def single() -> dict:
        body = scenario.single_traveller(travel_date)
        body["members"][0]["document"]["number"] = f"6{uuid.uuid4().int % 10**8:08d}"
        return body

    family = await scenario.register(client, stack, scenario.family_of_three(travel_date))
    held_single = await scenario.register(client, stack, single())
    scanned = await scenario.register(client, stack, single())
    mismatched = await scenario.register(client, stack, single())
    cases = [family, held_single, scanned, mismatched]
    await stream.wait_for(cases, CaseStatus.ELIGIBLE, 60)
    people = {c: await scenario.members_of(client, stack, c, Purpose.BORDER_CHECK) for c in cases}

    exit_post = stack.border_url("kaz-zhibek-zholy-exit")
    hold = {
        "document_number": people[held_single][0]["document"]["number"],
        "reason_code": "court_order",
        "reason": "Travel ban pending a hearing",
    }
    assert (await client.put(exit_post + "/hold-list", json=hold)).status_code == 201

    movement = await scenario.plan_movement(
        client, stack, stream, route, travel_date, vehicles=[("BUS-B", 45)], expect=cases
    )
    movement_id = movement["movement_id"]
    good, bad = people[scanned][0], people[mismatched][0]
    born = date.fromisoformat(good["birth_date"])
    expires = date.fromisoformat(good["document"]["expires_on"])
    scans = {
        "kaz-zhibek-zholy-exit": [
            {
                "person_id": good["person_id"],
                "mrz": td3(
                    good["surname"],
                    good["given_names"],
                    good["document"]["number"],
                    "TJK",
                    born,
                    "M",
                    expires,
                ),
            },
            {  # the passport in hand is not the one on the manifest
                "person_id": bad["person_id"],
                "mrz": td3(bad["surname"], bad["given_names"], "409999999", "TJK", born, "M", expires),
            },
        ]
    }
    # An unreadable scan is the scanner's problem: 422 naming the field, and nobody is decided.
    async with asyncio.timeout(30):
        while not (await client.get(exit_post + "/expected-arrivals")).json()["vehicles"]:
            await asyncio.sleep(0.2)
    good_zone = scans["kaz-zhibek-zholy-exit"][0]["mrz"]
    unreadable = good_zone[:-1] + str((int(good_zone[-1]) + 1) % 10)
    r = await client.post(
        f"{exit_post}/movements/{movement_id}/vehicles/BUS-B/clearance",
        json={"scans": [{"person_id": good["person_id"], "mrz": unreadable}]},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "composite", r.text

    # The child of the family is refused at the Uzbek entry: the family is held together there.
    child = next(m for m in people[family] if m["role"] == "child")
    refusals = {
        "uzb-zhibek-zholy-entry": [
            {"person_id": child["person_id"], "reason_code": "document_damaged", "reason": "Certificate torn"}
        ]
    }
    await scenario.drive_vehicle(client, stack, route, movement_id, "BUS-B", refusals=refusals, scans=scans)
    await stream.wait_for([scanned], CaseStatus.ARRIVED, 60)
    await stream.wait_for([held_single, mismatched, family], CaseStatus.REFUSED_AT_BORDER, 60)

    def last(case_id: uuid.UUID):  # type: ignore[no-untyped-def]
        return stream.timelines[case_id][-1].data

    # A court order or an alert on the hold list, and the officer's code and words, stay at the post.
    assert last(held_single).reason_code == "held_at_border"
    assert last(held_single).place.checkpoint_id == "kaz-zhibek-zholy-exit"
    assert last(held_single).reason == reasons.text_of("held_at_border")
    assert last(mismatched).reason_code == "document_mismatch"
    assert last(family).reason_code == "refused_by_officer"
    assert last(family).place.checkpoint_id == "uzb-zhibek-zholy-entry"
    assert stream.statuses(family).count(CaseStatus.EXIT_CLEARED) == 1

    # The posts ahead of a refusal get a manifest without the refused family.
    async with asyncio.timeout(30):
        while True:
            latest: ManifestIssued | None = None
            for record in await read_topic(
                stack.kafka_access("operations"), topics.manifests("tjk-oybek-entry")
            ):
                m = CloudEvent.from_record(decode_headers(record.headers), record.value).data
                if not isinstance(m, ManifestIssued):
                    continue  # an erasure's notice for this post (another test's case)
                if m.movement_id == movement_id and (latest is None or m.revision > latest.revision):
                    latest = m
            if latest is not None and {p.case_id for p in latest.passengers} == {scanned}:
                break
            await asyncio.sleep(0.3)
