"""Kafka's own tools, from the assembled Kafka, against the secured broker as an operator runs
them: the services' consumer groups with their lag, and a topic tailed with the console consumer."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from contracts import topics
from contracts.status import CaseStatus
from corridor.kafkatools import partitions_of, read_topic
from devkit import kafkatool, scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream


async def broker_lag(stack: Stack, group: str, topic: str) -> dict[int, tuple[int, int]]:
    """(committed offset, log end) per partition of ``topic`` for ``group``, asked directly."""
    access = stack.kafka_access("operations")
    partitions = await partitions_of(access, topic)
    admin = AIOKafkaAdminClient(**access.aiokafka())
    probe = AIOKafkaConsumer(**access.aiokafka())
    await admin.start()
    await probe.start()
    try:
        ends = await probe.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        return {tp.partition: (committed[tp].offset, ends[tp]) for tp in partitions}
    finally:
        await probe.stop()
        await admin.close()


def describe_rows(output: str) -> dict[tuple[str, str, int], tuple[str, str, str]]:
    """``kafka-consumer-groups --describe`` rows: (group, topic, partition) -> (current, end, lag)."""
    rows: dict[tuple[str, str, int], tuple[str, str, str]] = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) >= 6 and cells[2].isdigit():
            rows[(cells[0], cells[1], int(cells[2]))] = (cells[3], cells[4], cells[5])
    return rows


async def test_an_operator_sees_every_services_group_and_its_lag(
    stack: Stack, stream: StatusStream, travel_date: date, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(timeout=15.0) as client:
        case = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await stream.wait_for([case], CaseStatus.ELIGIBLE, 60)
    access = stack.kafka_access("operations")
    config = tmp_path / "operations.properties"

    ran = await asyncio.to_thread(
        kafkatool.run, "consumer-groups", access, config, ["--describe", "--all-groups"]
    )
    assert ran.returncode == 0, ran.stderr
    assert config.stat().st_mode & 0o777 == 0o600
    rows = describe_rows(ran.stdout)
    groups = {g for g, _, _ in rows}
    services = {"intake-timeline", "intake-inbound", "eligibility", "transport"}
    services |= {s.principal for s in stack.specs.values() if s.principal.startswith("border-clearance.")}
    assert services <= groups, groups

    # What the tool says of a group is what the broker holds (eligibility has read every case).
    held = await broker_lag(stack, "eligibility", topics.CASES)
    for partition, (committed, end) in held.items():
        current, log_end, lag = rows[("eligibility", topics.CASES, partition)]
        assert (int(current), int(log_end)) == (committed, end)
        assert int(lag) == end - committed

    # With a wrong password the broker refuses the tool.
    wrong = access.model_copy(update={"password": SecretStr("not-the-password")})
    refused = await asyncio.to_thread(
        kafkatool.run,
        "consumer-groups",
        wrong,
        tmp_path / "wrong.properties",
        ["--list", "--timeout", "5000"],
    )
    # (the tool reports it and lists nothing; its exit code stays 0)
    assert "eligibility" not in refused.stdout
    assert "Authentication failed" in refused.stderr + refused.stdout


async def test_an_operator_tails_the_status_stream_with_the_console_consumer(
    stack: Stack, stream: StatusStream, travel_date: date, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(timeout=15.0) as client:
        case = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await stream.wait_for([case], CaseStatus.ELIGIBLE, 60)
    # Where the case's two changes are (its key's partition), so the tool stops after them.
    mine = [
        r
        for r in await read_topic(stack.kafka_access("operations"), topics.STATUS)
        if r.key == str(case).encode()
    ]
    partition, first, last = mine[0].partition, mine[0].offset, mine[-1].offset
    ran = await asyncio.to_thread(
        kafkatool.run,
        "console-consumer",
        stack.kafka_access("operations"),
        tmp_path / "operations.properties",
        [
            "--topic",
            topics.STATUS,
            "--partition",
            str(partition),
            "--offset",
            str(first),
            "--max-messages",
            str(last - first + 1),
            "--property",
            "print.key=true",
            "--timeout-ms",
            "30000",
        ],
    )
    assert ran.returncode == 0, ran.stderr
    keyed = [line for line in ran.stdout.splitlines() if line.startswith(str(case))]
    assert [line.split("\t", 1)[1].count('"status"') for line in keyed] == [1, 1], ran.stderr
    assert '"registered"' in keyed[0] and '"eligible"' in keyed[1]
