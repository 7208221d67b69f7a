"""Kafka with SASL/SCRAM, the StandardAuthorizer and the admin step's ACLs, tried as an attacker
holding some principal (or none) would: every attempt is refused by the broker, or dead-lettered by
the consumer that checks who wrote it, and changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, date, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError
from aiokafka.protocol.fetch import FetchRequest
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from pydantic import SecretStr

from contracts import topics
from contracts.border import BorderCrossingCleared, PersonDecision
from contracts.envelope import CloudEvent, decode_headers
from contracts.missions import CaseStatusReported, ReportableStatus
from contracts.routes import Route
from contracts.status import CaseStatus, CaseStatusChanged
from corridor.kafkaclient import KafkaAccess
from corridor.kafkatools import read_topic
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream
from tests.conftest import report_figure
from tests.integration.conftest import settled, wait_group_caught_up

SECTION = "Kafka security"
TRIED: Counter[str] = Counter()
GOT_THROUGH: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _figures() -> object:
    yield
    for kind, count in sorted(TRIED.items()):
        report_figure(SECTION, f"{kind}: {count} tried, {GOT_THROUGH[kind]} got through")


async def _can_connect(access: KafkaAccess) -> bool:
    admin = AIOKafkaAdminClient(**access.aiokafka(), request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.describe_cluster()
        return True
    except KafkaConnectionError:
        return False
    finally:
        await admin.close()


TOPIC_AUTHORIZATION_FAILED = 29


async def _can_fetch(access: KafkaAccess, topic: str) -> bool:
    """Whether the broker answers a Fetch of ``topic`` (partition 0) for ``access`` with anything
    but TOPIC_AUTHORIZATION_FAILED. A plain Fetch request, because consumers only log an
    authorisation failure on a topic they were assigned, and keep retrying."""
    client = AIOKafkaClient(**access.aiokafka())
    await client.bootstrap()
    try:
        node = next(iter(client.cluster.brokers())).nodeId
        request = FetchRequest(100, 0, 1 << 20, 0, [(topic, [(0, 0, 1 << 20)])])
        response = await client.send(node, request)
        [(_, partitions)] = response.topics
        error_code = partitions[0][1]
        return bool(error_code != TOPIC_AUTHORIZATION_FAILED)
    finally:
        await client.close()


async def _can_use_group(access: KafkaAccess, group: str) -> bool:
    """Whether ``access`` may describe consumer group ``group`` (Read on a group implies it): a
    probe that changes nothing, where a commit would move a live group's position."""
    admin = AIOKafkaAdminClient(**access.aiokafka())
    await admin.start()
    try:
        await admin.list_consumer_group_offsets(group)
        return True
    except GroupAuthorizationFailedError:
        return False
    finally:
        await admin.close()


async def _can_read(access: KafkaAccess, topic: str, group: str | None = None) -> bool:
    if group is None:
        return await _can_fetch(access, topic)
    return await _can_fetch(access, topic) and await _can_use_group(access, group)


async def _can_write(access: KafkaAccess, topic: str, event: CloudEvent, key: str) -> bool:
    # Not idempotent: an idempotent producer with no Write ACL at all is refused one step earlier
    # (ClusterAuthorizationFailed at InitProducerId); this way the refusal names the topic.
    producer = AIOKafkaProducer(**access.aiokafka(), acks="all", request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, key=key.encode(), value=event.value(), headers=event.headers())
        return True
    except TopicAuthorizationFailedError:
        return False
    finally:
        await producer.stop()


async def _dead_letter_reasons(stack: Stack, consumer: str, ce_id: str, timeout: float = 30.0) -> list[str]:
    async with asyncio.timeout(timeout):
        while True:
            found = [
                headers["dlt_reason"].decode()
                for r in await read_topic(stack.kafka_access("operations"), topics.dead_letters(consumer))
                if (headers := dict(decode_headers(r.headers))).get("ce_id") == ce_id.encode()
            ]
            if found:
                return found
            await asyncio.sleep(0.3)


async def test_a_wrong_password_and_no_credentials_are_refused(stack: Stack) -> None:
    assert await _can_connect(stack.kafka_access("mission-tjk"))
    attempts = [
        stack.kafka_access("mission-tjk").model_copy(update={"password": SecretStr("guessed")}),
        stack.kafka_access("admin").model_copy(update={"password": SecretStr("admin")}),
        KafkaAccess(bootstrap=stack.bootstrap, username="nobody", password=SecretStr("nothing")),
    ]
    for access in attempts:
        TRIED["wrong credentials"] += 1
        GOT_THROUGH["wrong credentials"] += await _can_connect(access)
    # A client without SASL (as before this change) does not get past the handshake.
    TRIED["no credentials (PLAINTEXT)"] += 1
    plain = KafkaAccess(bootstrap=stack.bootstrap, security_protocol="PLAINTEXT")
    try:
        connected = await asyncio.wait_for(_can_connect(plain), 20)
    except (TimeoutError, Exception):
        connected = False
    GOT_THROUGH["no credentials (PLAINTEXT)"] += connected
    assert sum(GOT_THROUGH.values()) == 0


async def test_each_principal_reads_only_what_its_purpose_needs(stack: Stack) -> None:
    tjk = stack.kafka_access("mission-tjk")
    assert await _can_read(tjk, topics.STATUS, group="mission-tjk.security-test")
    post = stack.kafka_access("border-clearance.uzb-oybek-exit")
    assert await _can_read(post, topics.manifests("uzb-oybek-exit"))
    assert await _can_read(stack.kafka_access("reporting"), topics.PROFILES)
    refused = [
        (tjk, topics.CASES, None),
        (tjk, topics.manifests("tjk-oybek-entry"), None),
        (tjk, topics.dead_letters("eligibility"), None),
        (tjk, topics.dead_letters("intake-inbound"), None),
        (tjk, topics.STATUS, "intake-timeline"),  # another's consumer group
        (post, topics.manifests("tjk-oybek-entry"), None),
        (post, topics.manifests("kaz-zhibek-zholy-exit"), None),
        (post, topics.CASES, None),
        (post, topics.dead_letters("transport"), None),
        (stack.kafka_access("transport"), topics.dead_letters("eligibility"), None),
        # Reporting counts from the status stream and the profiles: never a registration.
        (stack.kafka_access("reporting"), topics.CASES, None),
        (stack.kafka_access("reporting"), topics.HEALTH_EVIDENCE, None),
        (stack.kafka_access("reporting"), topics.DECISIONS, None),
        (stack.kafka_access("mission-tjk"), topics.PROFILES, None),
    ]
    for access, topic, group in refused:
        TRIED["read beyond purpose"] += 1
        allowed = await _can_read(access, topic, group)
        GOT_THROUGH["read beyond purpose"] += allowed
        assert not allowed, (access.username, topic, group)


def _clearance(case_id: uuid.UUID, route: Route, checkpoint_id: str, source_mission: str) -> CloudEvent:
    cp = next(c for c in route.checkpoints if c.checkpoint_id == checkpoint_id)
    return CloudEvent.new(
        BorderCrossingCleared(
            case_id=case_id,
            checkpoint_id=cp.checkpoint_id,
            country=cp.country,
            crossing=cp.crossing,
            direction=cp.direction,
            movement_id="FORGED",
            vehicle_id="FORGED",
            decisions=[PersonDecision(person_id=uuid.uuid4(), cleared=True)],
            decided_at=datetime.now(UTC),
        ),
        source=f"/missions/{source_mission}/border_clearance",
    )


async def test_a_forged_crossing_for_another_countrys_post_is_refused_or_dead_lettered(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    """The UZB exit post's principal forges "cleared at the TJK entry post" (the last checkpoint:
    transport would mark the case arrived). It may not write TJK's topic; on its own topic the
    forgery's source and checkpoint do not match the topic, so every reader dead-letters it."""
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    movement = await scenario.plan_movement(
        client, stack, stream, route, travel_date, vehicles=[("BUS-SEC", 10)], expect=[case_id]
    )
    r = await client.post(
        f"{stack.url('transport')}/movements/{movement['movement_id']}/vehicles/BUS-SEC/departure",
        json={"no_shows": []},
    )
    assert r.status_code == 200, r.text
    await stream.wait_for([case_id], CaseStatus.DEPARTED, 60)
    before = stream.statuses(case_id)

    uzb_post = stack.kafka_access("border-clearance.uzb-oybek-exit")
    last = route.checkpoints[-1].checkpoint_id
    forged = _clearance(case_id, route, last, "TJK")
    TRIED["write to a foreign topic"] += 1
    wrote = await _can_write(uzb_post, topics.crossings(last), forged, str(case_id))
    GOT_THROUGH["write to a foreign topic"] += wrote
    assert not wrote
    # Nor may a post write the public stream, whose one home is the host mission: "arrived" forged
    # by UZB's post is refused by the broker (transport announces every post's decision).
    arrived = CaseStatusChanged(
        case_id=case_id, status=CaseStatus.ARRIVED, occurred_at=datetime.now(UTC), members=1
    )
    TRIED["write to the status stream"] += 1
    wrote = await _can_write(
        uzb_post,
        topics.STATUS,
        CloudEvent.new(arrived, source="/missions/UZB/border_clearance"),
        str(case_id),
    )
    GOT_THROUGH["write to the status stream"] += wrote
    assert not wrote

    own = topics.crossings("uzb-oybek-exit")
    forgeries = [
        _clearance(case_id, route, last, "TJK"),  # claims TJK's post and TJK as the source
        _clearance(case_id, route, last, "UZB"),  # its own source, another post's checkpoint
    ]
    for event in forgeries:
        TRIED["forged origin on the writer's own topic"] += 1
        assert await _can_write(uzb_post, own, event, str(case_id))
    for event in forgeries:
        # Every reader of the topic refuses it: transport, and the posts after UZB's exit.
        for consumer in ("transport", f"border-clearance.{last}"):
            reasons = await _dead_letter_reasons(stack, consumer, event.id)
            GOT_THROUGH["forged origin on the writer's own topic"] += reasons != ["source_mismatch"]
            assert reasons == ["source_mismatch"], (consumer, reasons)
    await wait_group_caught_up(stack.kafka_access("operations"), "transport", own)
    await settled(
        stack, stream, client, "transport", *(f"border-{cp.checkpoint_id}" for cp in route.checkpoints)
    )
    assert stream.statuses(case_id) == before, "a forged crossing changed the case"
    movement_now = (await client.get(f"{stack.url('transport')}/movements/{movement['movement_id']}")).json()
    [vehicle] = movement_now["vehicles"]
    assert {c["state"] for c in vehicle["cases"]} == {"departed"}


async def test_a_mission_reports_only_on_its_own_topic_and_only_what_its_role_on_the_route_allows(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    before = stream.statuses(case_id)
    uzb = stack.kafka_access("mission-uzb")
    report = CaseStatusReported(
        case_id=case_id, status=ReportableStatus.RECEIVED, occurred_at=datetime.now(UTC)
    )

    # UZB writing onto TJK's inbound topic, as TJK: the broker refuses it.
    as_tjk = CloudEvent.new(report, source="/missions/TJK/reception")
    TRIED["report on another mission's topic"] += 1
    wrote = await _can_write(uzb, topics.inbound_status("TJK"), as_tjk, str(case_id))
    GOT_THROUGH["report on another mission's topic"] += wrote
    assert not wrote

    # On its own topic: claiming to be TJK is a source mismatch; as itself, UZB (a transit country
    # on this route) may not report the destination's "received".
    attempts = {
        "source_mismatch": CloudEvent.new(report, source="/missions/TJK/reception"),
        "unauthorised_source": CloudEvent.new(report, source="/missions/UZB/reception"),
    }
    for event in attempts.values():
        TRIED["report beyond the mission's role"] += 1
        assert await _can_write(uzb, topics.inbound_status("UZB"), event, str(case_id))
    for expected, event in attempts.items():
        reasons = await _dead_letter_reasons(stack, "intake-inbound", event.id)
        GOT_THROUGH["report beyond the mission's role"] += reasons != [expected]
        assert reasons == [expected]
    await wait_group_caught_up(
        stack.kafka_access("operations"), "intake-inbound", topics.inbound_status("UZB")
    )
    await settled(stack, stream, client, "intake")
    assert stream.statuses(case_id) == before


async def test_the_tls_listener_serves_a_client_that_trusts_the_clusters_ca_and_no_other(
    stack: Stack, stream: StatusStream, client: httpx.AsyncClient, travel_date: date
) -> None:
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    tls = stack.kafka_access("mission-tjk", tls=True)
    assert tls.security_protocol == "SASL_SSL" and tls.ssl_cafile is not None
    # aiokafka (the Python client for missions) and librdkafka, each verifying the certificate
    records = await read_topic(tls, topics.STATUS)
    assert {r.key for r in records} >= {str(case_id).encode()}
    metadata = await asyncio.to_thread(lambda: AdminClient(tls.librdkafka()).list_topics(timeout=30))
    assert topics.STATUS in metadata.topics and topics.CASES not in metadata.topics

    untrusting = [
        tls.model_copy(update={"ssl_cafile": None}),  # the system's CAs: not the cluster's
        tls.model_copy(update={"security_protocol": "SASL_PLAINTEXT"}),  # no TLS on a TLS port
    ]
    for access in untrusting:
        TRIED["TLS listener without the cluster's CA or without TLS"] += 1
        try:
            connected = await asyncio.wait_for(_can_connect(access), 20)
        except Exception:  # a failed handshake is refused in more than one way
            connected = False
        GOT_THROUGH["TLS listener without the cluster's CA or without TLS"] += connected
        assert not connected, access.security_protocol


async def test_the_admin_step_removes_an_acl_the_deployment_does_not_need(stack: Stack) -> None:
    """A grant added by hand (here: a mission client reading registrations) does not survive the
    next admin step: only what the deployment description and the code derive stays."""
    tjk = stack.kafka_access("mission-tjk")
    grant = AclBinding(
        ResourceType.TOPIC,
        topics.CASES,
        ResourcePatternType.LITERAL,
        "User:mission-tjk",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    admin = AdminClient(stack.kafka_access("admin").librdkafka())
    for future in (await asyncio.to_thread(admin.create_acls, [grant])).values():
        await asyncio.to_thread(future.result)
    async with asyncio.timeout(30):
        while not await _can_fetch(tjk, topics.CASES):
            await asyncio.sleep(0.5)  # the grant reached the broker: the probe can tell
    await asyncio.to_thread(stack.kafka_admin)
    async with asyncio.timeout(30):
        while await _can_fetch(tjk, topics.CASES):
            await asyncio.sleep(0.5)
    # The admin step logs per cluster (devstack: kafka-admin-<cluster>); the shared shape has one.
    host = stack.description.missions[stack.description.host_mission].cluster
    admin_log = stack.log_path(f"kafka-admin-{host}").read_text()
    assert "removed: User:mission-tjk READ TOPIC:intake.cases" in admin_log
    assert await _can_fetch(tjk, topics.STATUS)
