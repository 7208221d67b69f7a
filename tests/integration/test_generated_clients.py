"""Real records from a run, read by models a mission generated from our committed schemas with
``datamodel-code-generator`` (issue 15, item 5): what the platform writes is what its published
contract says, on every topic a case's journey touches."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import httpx

from contracts import topics
from contracts.envelope import decode_headers
from contracts.routes import Route
from contracts.status import CaseStatus
from corridor.kafkatools import read_topic
from devkit import scenario
from devkit.contracts_gate import compat
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.unit.generated_clients import reader_for


async def test_every_record_of_a_journey_reads_with_models_generated_from_the_committed_schemas(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    family = await scenario.register(client, stack, scenario.family_of_three(travel_date))
    await stream.wait_for([family], CaseStatus.ELIGIBLE, 60)
    await scenario.run_movement(
        client, stack, stream, route, travel_date, vehicles=[("BUS-01", 45)], expect=[family]
    )
    await stream.wait_for([family], CaseStatus.ARRIVED, 60)

    names = [t.name for t in topics.table() if not t.family]
    names += [topics.manifests(cp.checkpoint_id) for cp in route.checkpoints]
    names += [topics.crossings(cp.checkpoint_id) for cp in route.checkpoints]
    read: Counter[str] = Counter()
    access = stack.kafka_access("operations")  # break-glass: the one principal that reads every topic
    mine = str(family).encode()
    for name in names:
        for record in await read_topic(access, name):
            # This journey's records (the platform is shared: bad-input tests write junk on purpose).
            if record.value is None or mine not in record.value:
                continue
            event_type = dict(decode_headers(record.headers))["ce_type"].decode()
            schema = compat.schema_file(compat.SCHEMA_DIR, event_type).read_text(encoding="utf-8")
            reader_for(schema).model_validate(json.loads(record.value))
            read[event_type] += 1
    # The journey wrote each of these at least once: a topic read as empty would prove nothing.
    for event_type in (
        "org.corridor.intake.case-registered.v1",
        "org.corridor.eligibility.decided.v1",
        "org.corridor.transport.manifest-issued.v1",
        "org.corridor.border.crossing-cleared.v1",
        "org.corridor.transport.vehicle-progress-recorded.v1",
        "org.corridor.case.status-changed.v1",
    ):
        assert read[event_type] > 0, f"no {event_type} record was read"
