"""Every record accounted for, per consumer group that reads its topic: dead-lettered, applied (its
event is in the group's inbox) or ignored, each checked against the test's own oracle (oracle.py),
not the product's decoder; and the figures."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

from contracts import topics
from contracts.envelope import CloudEvent, decode_headers
from contracts.intake import CaseRegistered
from contracts.status import CaseStatus
from corridor.kafkaclient import KafkaAccess
from corridor.kafkatools import read_topic
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.conftest import report_figure
from tests.integration.bad_input import oracle
from tests.integration.bad_input.records import MARKER, Bad, decode
from tests.integration.bad_input.running import Topology, dead_letter_counts


async def dead_letters(access: KafkaAccess, ids: set[str]) -> dict[tuple[str, str], dict[str, bytes]]:
    """(fuzz_id, consumer group) -> the dead letter's headers, from every dead-letter topic."""
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if t.startswith(topics.dead_letters("")))
    finally:
        await admin.close()
    found: dict[tuple[str, str], dict[str, bytes]] = {}
    for name in names:
        for record in await read_topic(access, name):
            headers = dict(decode_headers(record.headers))
            marker = headers.get(MARKER, b"").decode(errors="replace")
            if marker in ids and "dlt_consumer" in headers:
                found[(marker, headers["dlt_consumer"].decode())] = headers
    return found


async def inbox_entries(stack: Stack, events: list[CloudEvent]) -> set[tuple[str, str, str]]:
    """(consumer group, source, id) of those events found in any service's inbox."""
    ids = sorted({e.id for e in events if e.id.isprintable() and len(e.id) < 1000})
    found: set[tuple[str, str, str]] = set()
    for database in sorted({spec.database for spec in stack.specs.values()}):
        conn = await asyncpg.connect(stack.postgres.dsn(database))
        try:
            rows = await conn.fetch(
                "SELECT consumer, event_source, event_id FROM inbox WHERE event_id = ANY($1::text[])", ids
            )
        finally:
            await conn.close()
        found.update((r["consumer"], r["event_source"], r["event_id"]) for r in rows)
    return found


async def wait_applied(stack: Stack, topology: Topology, sentinels: list[Bad], timeout: float) -> None:
    events = {b.fuzz_id: e for b in sentinels if (e := decode(b)[1]) is not None}
    wanted = {
        (group, events[b.fuzz_id].source, events[b.fuzz_id].id)
        for b in sentinels
        for group in topology.readers[b.topic]
    }
    missing = wanted
    try:
        async with asyncio.timeout(timeout):
            while missing := wanted - await inbox_entries(stack, list(events.values())):
                await asyncio.sleep(0.5)
    except TimeoutError:
        raise AssertionError(
            f"valid records behind the bad ones never applied: {sorted(missing)[:10]}"
        ) from None


def outcome_of(
    record: Bad,
    event: CloudEvent | None,
    group: str,
    dead: dict[tuple[str, str], dict[str, bytes]],
    inbox: set[tuple[str, str, str]],
) -> str:
    letter = dead.get((record.fuzz_id, group))
    if letter is not None:
        return f"dlt:{letter['dlt_reason'].decode()}"
    if event is not None and (group, event.source, event.id) in inbox:
        return "applied"
    return "ignored"


def expected(record: Bad, group: str) -> set[str]:
    """The answers ``group`` may give ``record``, from the test's own oracle (never the product's
    decoder): "applied", "dlt:<reason>", or "ignored: <why>"."""
    if record.sentinel:
        return {"applied"}
    if record.what in oracle.FIXED:
        return {oracle.FIXED[record.what]}
    if record.foreign_type is not None:
        return oracle.another_topics_event(record.foreign_type, group)
    if record.expect is not None:
        return record.expect
    if record.what.startswith("hypothesis:"):
        allowed = oracle.hypothesis(record.what)
        return allowed if allowed is not None else {"applied", "dlt:*"}
    raise AssertionError(f"no expected answer written for {record.what!r} on {record.topic}")


def acceptable(record: Bad, group: str, outcome: str) -> bool:
    """Nothing passes as "ignored" unless the oracle says why that group ignores it: a record that
    is neither dead-lettered nor applied is otherwise a silent drop."""
    allowed = expected(record, group)
    if outcome == "ignored":
        return any(a.startswith("ignored:") for a in allowed)
    return outcome in allowed or (outcome.startswith("dlt:") and "dlt:*" in allowed)


async def check(
    stack: Stack,
    stream: StatusStream,
    client: httpx.AsyncClient,
    topology: Topology,
    bad: list[Bad],
    sentinels: list[Bad],
    before: dict[str, int],
    arrived: list[uuid.UUID],
) -> None:
    everything = [*bad, *sentinels]
    dead = await dead_letters(stack.kafka_access("operations"), {b.fuzz_id for b in everything})
    events = {b.fuzz_id: e for b in everything if (e := decode(b)[1]) is not None}
    inbox = await inbox_entries(stack, list(events.values()))
    after = await dead_letter_counts(client, stack)

    # Every record, for every group that reads its topic: dead-lettered, applied or ignored, as due.
    by_topic: dict[str, Counter[str]] = defaultdict(Counter)
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    wrong: list[str] = []
    for record in everything:
        for group in topology.readers[record.topic]:
            outcome = outcome_of(record, events.get(record.fuzz_id), group, dead, inbox)
            by_topic[record.topic][outcome] += 1
            by_kind[record.what][outcome] += 1
            if not acceptable(record, group, outcome):
                wrong.append(
                    f"{record.topic} {record.what!r} at {group}: {outcome}, expected one of "
                    f"{sorted(expected(record, group))}"
                )
    known = {(b.fuzz_id, g) for b in everything for g in topology.readers[b.topic]}
    stray = sorted(f"{fuzz_id} at {group}" for fuzz_id, group in set(dead) - known)

    # No consumer stopped: every process runs and is ready, and /stats counts the dead letters found.
    alive = {name: proc.poll() is None for name, proc in stack.processes.items()}
    ready = {name: (await client.get(stack.url(name) + "/health/ready")).status_code for name in stack.specs}
    found = Counter(group for _, group in dead)
    counted = {group: after.get(group, 0) - before.get(group, 0) for group in after}
    # The record at the size limit: parked without its value rather than redelivered for ever.
    at_limit = [
        letter
        for (fuzz_id, _), letter in dead.items()
        if any(b.fuzz_id == fuzz_id and b.what == "value at the broker's size limit" for b in bad)
    ]

    report(bad, sentinels, by_topic, by_kind, found, counted, alive)
    assert not wrong, f"{len(wrong)} answer(s) not as due:\n" + "\n".join(wrong[:30])
    assert not stray, f"dead letters from groups not reading the topic: {stray[:10]}"
    assert all(alive.values()), alive
    assert all(code == 200 for code in ready.values()), ready
    assert counted == {group: found.get(group, 0) for group in counted}, (counted, dict(found))
    assert at_limit and all("dlt_value_omitted" in letter for letter in at_limit), at_limit
    # The valid records' effects are visible downstream: decisions taken, receptions published.
    registered = [
        e.data.case_id
        for b in sentinels
        if b.topic == topics.CASES and (e := decode(b)[1]) is not None and isinstance(e.data, CaseRegistered)
    ]
    await stream.wait_for(registered, {CaseStatus.ELIGIBLE, CaseStatus.INELIGIBLE, CaseStatus.ON_HOLD}, 60)
    await stream.wait_for(arrived, CaseStatus.RECEIVED, 60)


def report(
    bad: list[Bad],
    sentinels: list[Bad],
    by_topic: dict[str, Counter[str]],
    by_kind: dict[str, Counter[str]],
    found: Counter[str],
    counted: dict[str, int],
    alive: dict[str, bool],
) -> None:
    section = "bad input on Kafka"
    tried = Counter(b.topic for b in bad)
    generated = sum(1 for b in bad if b.what.startswith("hypothesis"))
    report_figure(
        section,
        f"{len(bad)} bad records tried ({len(bad) - generated} fixed corpus, {generated} from Hypothesis) "
        f"on {len(tried)} topics, {len(sentinels)} valid records behind them",
    )
    for topic, n in tried.items():
        line = ", ".join(f"{k} {v}" for k, v in sorted(by_topic[topic].items()))
        report_figure(section, f"{topic}: {n} tried; answers per reading group: {line}")
    for kind, answers in by_kind.items():
        report_figure(section, f"  {kind}: " + ", ".join(f"{k} {v}" for k, v in sorted(answers.items())))
    report_figure(
        section,
        "dead letters found / counted by /stats: "
        + ", ".join(f"{g} {found.get(g, 0)}/{counted.get(g, 0)}" for g in sorted(set(found) | set(counted))),
    )
    report_figure(section, f"services still running and ready: {sum(alive.values())}/{len(alive)}")
