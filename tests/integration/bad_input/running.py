"""The platform as it runs: which consumer groups read which topic (asked of Kafka, so that a
consumer added later is fuzzed too), how far they have read, what ``/stats`` counts, and the cases
the domain corpus needs."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from confluent_kafka.admin import AdminClient

from contracts import topics
from contracts.routes import Route
from contracts.status import CaseStatus
from corridor.kafkaclient import KafkaAccess
from corridor.kafkatools import partitions_of
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.integration.bad_input import FAR_FUTURE


@dataclass
class Topology:
    readers: dict[str, list[str]]  # topic -> consumer groups that read it


async def read_topology(stack: Stack, client: httpx.AsyncClient) -> Topology:
    """The consumer groups every service reports, and the topics Kafka has assigned to each."""
    groups = sorted(await dead_letter_counts(client, stack))
    admin = AdminClient(stack.kafka_access("operations").librdkafka())

    def assigned() -> dict[str, set[str]]:
        described = admin.describe_consumer_groups(groups)
        return {
            group: {tp.topic for m in future.result().members for tp in m.assignment.topic_partitions}
            for group, future in described.items()
        }

    async with asyncio.timeout(60):
        while not all((topics_of := await asyncio.to_thread(assigned)).values()):
            await asyncio.sleep(0.5)  # a group still rebalancing
    readers: dict[str, list[str]] = defaultdict(list)
    for group, names in sorted(topics_of.items()):
        for topic in sorted(names):
            readers[topic].append(group)
    return Topology(dict(readers))


async def end_offsets(access: KafkaAccess, names: list[str]) -> dict[TopicPartition, int]:
    probe = AIOKafkaConsumer(**access.aiokafka())
    await probe.start()
    try:
        ends: dict[TopicPartition, int] = {}
        for topic in names:
            ends.update(await probe.end_offsets(await partitions_of(access, topic)))
        return ends
    finally:
        await probe.stop()


async def caught_up(access: KafkaAccess, topology: Topology, timeout: float) -> None:
    """Wait until every group has committed every record now on the topics it reads."""
    ends = await end_offsets(access, sorted(topology.readers))
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        async with asyncio.timeout(timeout):
            for topic, groups in topology.readers.items():
                wanted = {tp: end for tp, end in ends.items() if tp.topic == topic and end > 0}
                for group in groups:
                    while True:
                        done = await admin.list_consumer_group_offsets(group, partitions=list(wanted))
                        if all(tp in done and done[tp].offset >= end for tp, end in wanted.items()):
                            break
                        await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def delete_records(access: KafkaAccess, names: list[str]) -> None:
    ends = await end_offsets(access, names)
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(end) for tp, end in ends.items() if end > 0})
    finally:
        await admin.close()


def writer_of(topic: str, principals: set[str]) -> str:
    """The principal that may write ``topic`` in the deployment (opstools.kafkaadmin's plan): a bad
    record comes from a legitimate writer that sends garbage, since nobody else gets it onto the
    topic. A mission's inbound topic without an integration client: the operators' (replays)."""
    member = topics.family_member(topic)
    if member is not None:
        family, owner = member
        if family.name == topics.crossings("") or family.name == topics.requirements(""):
            return f"border-clearance.{owner}"
        if family.name == topics.manifests(""):
            return "transport"
        client = f"mission-{owner.lower()}"
        return client if client in principals else "operations"
    return {
        topics.CASES: "intake",
        topics.PROFILES: "intake",
        topics.HEALTH_EVIDENCE: "intake",
        topics.STATUS: "intake",
        topics.DECISIONS: "eligibility",
        topics.MOVEMENTS: "transport",
    }[topic]


async def dead_letter_counts(client: httpx.AsyncClient, stack: Stack) -> dict[str, int]:
    """consumer group -> dead letters it has sent, from every service's /stats."""
    counts: dict[str, int] = {}
    for name in stack.specs:
        for consumer, figures in (await client.get(stack.url(name) + "/stats")).json()["consumers"].items():
            counts[consumer] = figures["dead_lettered"]
    return counts


async def prepare_cases(
    client: httpx.AsyncClient, stack: Stack, stream: StatusStream, route: Route, day: date, count: int
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A withdrawn case (a terminal status) and ``count`` arrived ones (a reception may follow)."""
    # The withdrawn case travels on a day of its own: no movement is planned for it.
    terminal = await scenario.register(client, stack, scenario.single_traveller(FAR_FUTURE))
    arrived = [await scenario.register(client, stack, scenario.single_traveller(day)) for _ in range(count)]
    await stream.wait_for([terminal, *arrived], CaseStatus.ELIGIBLE, 60)
    withdrawn = await client.post(
        f"{stack.url('intake')}/cases/{terminal}/withdrawal",
        json={"reason": "Withdrawn for the bad-input test"},
    )
    assert withdrawn.status_code == 201, withdrawn.text
    await scenario.run_movement(client, stack, stream, route, day, vehicles=[("BUS-FZ", 45)], expect=arrived)
    await stream.wait_for([terminal], CaseStatus.WITHDRAWN, 60)
    await stream.wait_for(arrived, CaseStatus.ARRIVED, 60)
    # The inbound consumer judges a report against intake's projection of the stream: wait for it.
    for case_id, status in [(terminal, "withdrawn"), *((c, "arrived") for c in arrived)]:
        async with asyncio.timeout(30):
            while True:
                timeline = (await client.get(f"{stack.url('intake')}/cases/{case_id}/timeline")).json()
                if status in [t["status"] for t in timeline["timeline"]]:
                    break
                await asyncio.sleep(0.2)
    return terminal, arrived
