"""Dead letters listed and replayed on the real platform (``opstools.deadletters``)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime

import httpx
from aiokafka import AIOKafkaProducer

from contracts import topics
from contracts.envelope import CloudEvent, Headers
from contracts.status import CaseStatus
from corridor.kafkaclient import KafkaAccess
from devkit import scenario
from devkit.devstack import Stack
from opstools import deadletters
from opstools.deadletters import DeadLetter
from opstools.kafkaadmin import password_file
from opstools.statusreader import StatusStream
from services.intake.domain import RegisterCase, build_case
from tests.integration.conftest import repo_root, wait_group_caught_up

INTAKE_SOURCE = "/missions/KAZ/intake"


def registration(travel_date: date) -> CloudEvent:
    """A valid CaseRegistered event, as intake would publish it."""
    command = RegisterCase.model_validate(scenario.single_traveller(travel_date))
    case = build_case(command, case_id=uuid.uuid4(), now=datetime.now(UTC))
    return CloudEvent.new(case, source=INTAKE_SOURCE)


async def produce(access: KafkaAccess, topic: str, key: bytes, value: bytes, headers: Headers) -> None:
    producer = AIOKafkaProducer(**access.aiokafka(), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, key=key, value=value, headers=headers)
    finally:
        await producer.stop()


async def wait_dead_letter(
    access: KafkaAccess, consumer: str, found: Callable[[DeadLetter], bool], timeout: float = 20.0
) -> DeadLetter:
    async with asyncio.timeout(timeout):
        while True:
            matches = [d for d in await deadletters.list_dead_letters(access, consumer) if found(d)]
            if matches:
                return matches[-1]
            await asyncio.sleep(0.3)


async def dead_letters_of(access: KafkaAccess, consumer: str, ce_id: str) -> list[DeadLetter]:
    return [d for d in await deadletters.list_dead_letters(access, consumer) if d.ce_id == ce_id]


async def park_as_dead_letter(stack: Stack, event: CloudEvent, reason: str, error: str) -> DeadLetter:
    """Put a valid registration on dlt.eligibility as if eligibility had dead-lettered it earlier
    for a cause since fixed (written as eligibility, the topic's one writer). Its source offset is one
    no real record has, so it is its own."""
    headers = [
        *event.headers(),
        ("dlt_reason", reason.encode()),
        ("dlt_error", error.encode()),
        ("dlt_consumer", b"eligibility"),
        ("dlt_source_topic", topics.CASES.encode()),
        ("dlt_source_partition", b"0"),
        ("dlt_source_offset", str(10**9 + uuid.uuid4().int % 10**9).encode()),
        ("dlt_failed_at", datetime.now(UTC).isoformat().encode()),
    ]
    await produce(
        stack.kafka_access("eligibility"),
        topics.dead_letters("eligibility"),
        event.subject.encode(),
        event.value(),
        headers,
    )
    return await wait_dead_letter(
        stack.kafka_access("operations"), "eligibility", lambda d: d.ce_id == event.id, 10
    )


async def decisions(client: httpx.AsyncClient, stack: Stack, case_id: uuid.UUID) -> list[dict[str, object]]:
    response = await client.get(f"{stack.url('eligibility')}/cases/{case_id}/decisions")
    response.raise_for_status()
    return response.json()["decisions"]  # type: ignore[no-any-return]


async def duplicates_seen(client: httpx.AsyncClient, stack: Stack) -> int:
    stats = (await client.get(f"{stack.url('eligibility')}/stats")).json()
    return int(stats["consumers"]["eligibility"]["duplicates"])


async def cli(stack: Stack, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRIDOR_")}
    env["CORRIDOR_KAFKA_BOOTSTRAP"] = stack.bootstrap
    # The operator's principal: the password stays in its file.
    env["CORRIDOR_KAFKA_USERNAME"] = "operations"
    env["CORRIDOR_KAFKA_PASSWORD_FILE"] = str(password_file(stack.secrets_dir, "operations"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "opstools.deadletters",
        *args,
        cwd=repo_root(),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{err.decode()}\n{out.decode()}"
    return out.decode()


async def test_a_replayed_schema_violation_reenters_the_pipeline_and_is_dead_lettered_again(
    stack: Stack, travel_date: date
) -> None:
    event = registration(travel_date)
    value = json.loads(event.value())
    value["members"][0]["nationality"] = "tjk"
    poison = json.dumps(value).encode()
    key = event.subject.encode()
    await produce(stack.kafka_access("intake"), topics.CASES, key, poison, event.headers())

    first = await wait_dead_letter(
        stack.kafka_access("operations"), "eligibility", lambda d: d.ce_id == event.id
    )
    assert first.reason == "schema_violation"
    assert "nationality" in first.error
    assert (first.consumer, first.source_topic) == ("eligibility", topics.CASES)
    assert first.source_offset is not None and first.failed_at is not None
    assert first.ce_type == event.type and first.replayed_from is None and not first.replayed
    assert (first.key, first.value, first.headers) == (key, poison, event.headers())

    [outcome] = await deadletters.replay(stack.kafka_access("operations"), [first])
    assert outcome.action == "replayed" and outcome.replay_count == 1
    assert outcome.replayed_to is not None and outcome.replayed_to.startswith(topics.CASES + ":")
    _, partition, offset = outcome.replayed_to.rsplit(":", 2)

    # Back on intake.cases as it was, it fails the same way and is parked again, saying whence.
    second = await wait_dead_letter(
        stack.kafka_access("operations"),
        "eligibility",
        lambda d: d.ce_id == event.id and d.replayed_from is not None,
    )
    assert second.replayed_from == first.position and second.replay_count == 1
    assert (second.source_topic, second.source_partition, second.source_offset) == (
        topics.CASES,
        int(partition),
        int(offset),
    )
    assert second.reason == "schema_violation"
    assert (second.key, second.value, second.headers) == (key, poison, event.headers())

    parked = await dead_letters_of(stack.kafka_access("operations"), "eligibility", event.id)
    assert {d.position: d.replayed_from for d in parked} == {
        first.position: None,
        second.position: first.position,
    }
    by_position = {d.position: d for d in parked}
    [marker] = by_position[first.position].replays
    assert (marker.replayed_to, marker.replay_count, marker.ce_id) == (outcome.replayed_to, 1, event.id)
    assert not by_position[second.position].replayed


async def test_b_c_a_fixed_dead_letter_replays_into_a_decision_taken_once(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    event = registration(travel_date)
    case_id = event.data.case_id  # type: ignore[attr-defined]
    parked = await park_as_dead_letter(
        stack, event, "handler_error", "KeyError: 'kaz-uzb-tjk' (route book not loaded)"
    )
    assert parked.reason == "handler_error" and parked.source_topic == topics.CASES

    # (b) the cause is gone: replayed, eligibility decides the case.
    [outcome] = await deadletters.replay(stack.kafka_access("operations"), [parked])
    assert outcome.action == "replayed" and outcome.replay_count == 1
    await stream.wait_for([case_id], {CaseStatus.ELIGIBLE, CaseStatus.INELIGIBLE}, 30)
    assert stream.statuses(case_id) == [CaseStatus.ELIGIBLE]
    assert [d["outcome"] for d in await decisions(client, stack, case_id)] == ["eligible"]

    # (c) not a second time by accident ...
    [skipped] = await deadletters.replay(stack.kafka_access("operations"), [parked])
    assert skipped.action == "skipped" and "already replayed" in skipped.detail
    [dry] = await deadletters.replay(stack.kafka_access("operations"), [parked], again=True, dry_run=True)
    assert dry.action == "would replay" and dry.replayed_to is None

    # ... and on purpose, it is delivered and deduplicated on ce_source + ce_id.
    await wait_group_caught_up(stack.kafka_access("operations"), "eligibility", topics.CASES)
    duplicates_before = await duplicates_seen(client, stack)
    [again] = await deadletters.replay(stack.kafka_access("operations"), [parked], again=True)
    assert again.action == "replayed" and again.replay_count == 2
    await wait_group_caught_up(stack.kafka_access("operations"), "eligibility", topics.CASES)
    assert await duplicates_seen(client, stack) > duplicates_before
    assert len(await decisions(client, stack, case_id)) == 1
    assert stream.statuses(case_id) == [CaseStatus.ELIGIBLE]

    [listed] = await dead_letters_of(stack.kafka_access("operations"), "eligibility", event.id)
    assert [m.replay_count for m in listed.replays] == [1, 2]


async def test_d_the_cli_lists_shows_and_replays(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    event = registration(travel_date)
    case_id = event.data.case_id  # type: ignore[attr-defined]
    parked = await park_as_dead_letter(stack, event, "handler_error", "RuntimeError: boom")

    listing, shown = await asyncio.gather(
        cli(stack, "list", "--consumer", "eligibility", "--json"),
        cli(stack, "show", parked.position),  # the address `list` prints, the one format everywhere
    )
    [mine] = [d for d in json.loads(listing) if d["ce_id"] == event.id]
    assert mine["dead_letter"] == parked.position and mine["reason"] == "handler_error"
    assert mine["error"] == "RuntimeError: boom" and mine["source_topic"] == topics.CASES
    assert mine["ce_type"] == event.type and mine["replayed"] is False
    assert "value" not in mine  # personal data only on request (--values) or with `show`

    assert "RuntimeError: boom" in shown and "Rahimov" in shown and "value (utf-8)" in shown

    replayed = await cli(stack, "replay", mine["dead_letter"])
    assert parked.position in replayed and "1 replayed, 0 skipped" in replayed
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 30)
    assert len(await decisions(client, stack, case_id)) == 1
    [after] = await dead_letters_of(stack.kafka_access("operations"), "eligibility", event.id)
    assert [m.replay_count for m in after.replays] == [1]
    assert after.replays[0].replayed_to.startswith(topics.CASES + ":")
