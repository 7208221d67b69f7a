"""The Kafka admin step's plan: derived from deploy/deployments/shared.yaml and the code, least privilege."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts import topics
from contracts.border import BorderCrossingCleared, CrossingRequirementLifted, PersonDecision
from contracts.missions import CaseStatusReported, ReportableStatus
from contracts.routes import RouteBook
from contracts.transport import ManifestIssued
from opstools import kafkaadmin
from opstools.kafkaadmin import Deployment, IntegrationClient, Plan, PlanError

DEPLOYMENT = kafkaadmin.DEFAULT_DEPLOYMENT


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return Deployment.load(DEPLOYMENT)


@pytest.fixture(scope="module")
def plan(deployment: Deployment) -> Plan:
    return kafkaadmin.plan(deployment, kafkaadmin.needs_from_code(deployment.routes))


@pytest.fixture(scope="module")
def routes(deployment: Deployment) -> RouteBook:
    return RouteBook.load(deployment.routes)


def readable(plan: Plan, principal: str) -> set[str]:
    return {t.name for t in plan.topics if plan.allowed(principal, "read", "topic", t.name)}


def writable(plan: Plan, principal: str) -> set[str]:
    return {t.name for t in plan.topics if plan.allowed(principal, "write", "topic", t.name)}


def test_a_border_post_reads_only_its_own_manifests_and_the_crossings_of_the_post_just_before_it(
    plan: Plan, routes: RouteBook
) -> None:
    [route] = routes.routes
    for i, cp in enumerate(route.checkpoints):
        me = f"border-clearance.{cp.checkpoint_id}"
        before = {topics.crossings(c.checkpoint_id) for c in route.checkpoints[max(0, i - 1) : i]}
        assert readable(plan, me) == {topics.manifests(cp.checkpoint_id), topics.MOVEMENTS} | before
        assert writable(plan, me) == {
            topics.STATUS,
            topics.crossings(cp.checkpoint_id),
            topics.requirements(cp.checkpoint_id),
            topics.dead_letters(me),
        }
        assert plan.allowed(me, "read", "group", me)
        assert not plan.allowed(me, "read", "group", "eligibility")


def test_a_mission_client_reads_the_status_stream_and_writes_only_its_own_inbound_topic(plan: Plan) -> None:
    for mission in ("UZB", "TJK"):
        me = f"mission-{mission.lower()}"
        assert readable(plan, me) == {topics.STATUS}
        assert writable(plan, me) == {topics.inbound_status(mission)}
        assert plan.allowed(me, "read", "group", f"{me}.reception")
        assert not plan.allowed(me, "read", "group", "intake-timeline")
        # no personal data: registrations, manifests, dead letters
        assert not readable(plan, me) & {
            topics.CASES,
            topics.manifests("tjk-oybek-entry"),
            "dlt.intake-inbound",
        }


def test_dead_letters_are_written_by_their_consumer_and_read_only_by_operators_and_the_page(
    plan: Plan, deployment: Deployment
) -> None:
    owner = {d: n.principal for n in kafkaadmin.needs_from_code(deployment.routes) for d in n.dead_letters}
    dead_letter_topics = [
        t.name for t in plan.topics if t.name.startswith("dlt.") and t.name != "dlt.replays"
    ]
    assert "dlt.eligibility" in dead_letter_topics
    for dlt in dead_letter_topics:
        readers = {p for p in plan.principals if plan.allowed(p, "read", "topic", dlt)}
        writers = {p for p in plan.principals if plan.allowed(p, "write", "topic", dlt)}
        # The operations page reads them for their dlt_* headers (reasons, counts), never shows a body.
        assert readers == {"operations", "operations-page"}, dlt
        assert writers == {owner[dlt]}, dlt


def test_the_operations_page_reads_public_and_dead_letter_topics_writes_nothing_and_only_describes_groups(
    plan: Plan,
) -> None:
    me = "operations-page"
    dead_letters = {t.name for t in plan.topics if t.name.startswith("dlt.") and t.name != "dlt.replays"}
    assert readable(plan, me) == {topics.STATUS, topics.MOVEMENTS} | dead_letters
    assert writable(plan, me) == set()
    # lag: committed offsets of the services' groups and end offsets of what they read, not their data
    assert plan.allowed(me, "describe", "group", "intake-timeline")
    assert plan.allowed(me, "describe", "topic", topics.CASES)
    assert not plan.allowed(me, "read", "topic", topics.CASES)
    assert not plan.allowed(me, "read", "group", "intake-timeline")
    assert not any(a.principal == me and a.resource == "group" and a.operation == "read" for a in plan.acls)


def test_personal_data_and_dead_letters_get_a_retention_and_the_status_stream_does_not(
    plan: Plan, deployment: Deployment
) -> None:
    config = {t.name: t.config for t in plan.topics}
    assert config[topics.CASES]["retention.ms"] == str(deployment.personal_data_retention_ms)
    assert config[topics.manifests("uzb-oybek-exit")]["retention.ms"] == str(
        deployment.personal_data_retention_ms
    )
    # The rules' texts may speak of a member's health: the decisions are kept no longer.
    assert config[topics.DECISIONS]["retention.ms"] == str(deployment.personal_data_retention_ms)
    assert config["dlt.eligibility"]["retention.ms"] == str(deployment.dead_letter_retention_ms)
    assert "retention.ms" not in config[topics.STATUS]
    assert config["dlt.replays"] == {"cleanup.policy": "compact"}


def test_no_principal_gets_a_wildcard_and_prefixes_name_only_its_own_groups(plan: Plan) -> None:
    for acl in plan.acls:
        assert "*" not in acl.name and acl.name, acl
        if acl.pattern == "prefixed":
            assert acl.resource == "group" and acl.name == f"{acl.principal}.", acl
    assert "admin" not in plan.principals


def test_only_intake_writes_registrations_and_only_eligibility_and_transport_read_them(plan: Plan) -> None:
    services = [p for p in plan.principals if p not in ("operations", "operations-page")]
    assert {p for p in services if plan.allowed(p, "write", "topic", topics.CASES)} == {"intake"}
    assert {p for p in services if plan.allowed(p, "read", "topic", topics.CASES)} == {
        "eligibility",
        "transport",
    }


def test_an_integration_client_for_a_mission_no_route_reaches_is_refused(deployment: Deployment) -> None:
    stranger = deployment.model_copy(
        update={"integration_clients": [IntegrationClient(mission="AFG", principal="mission-afg")]}
    )
    with pytest.raises(PlanError, match="AFG"):
        kafkaadmin.plan(stranger, kafkaadmin.needs_from_code(deployment.routes))


# --- who wrote an event is part of its authority ----------------------------------------------------

NOW = datetime(2026, 12, 1, tzinfo=UTC)
COUNTRY = {"kaz-zhibek-zholy-exit": "KAZ", "uzb-oybek-exit": "UZB"}.get


def cleared(checkpoint_id: str, country: str) -> BorderCrossingCleared:
    return BorderCrossingCleared(
        case_id=uuid.uuid4(),
        checkpoint_id=checkpoint_id,
        country=country,
        crossing="Oybek",
        direction="exit",
        movement_id="M1",
        vehicle_id="BUS-1",
        decisions=[PersonDecision(person_id=uuid.uuid4(), cleared=True)],
        decided_at=NOW,
    )


def test_a_crossing_must_come_from_the_mission_and_checkpoint_of_its_topic() -> None:
    topic = topics.crossings("uzb-oybek-exit")
    uzb = "/missions/UZB/border_clearance"
    assert topics.origin_mismatch(topic, uzb, cleared("uzb-oybek-exit", "UZB"), COUNTRY) is None
    # another post's decision on this post's topic, another country's source, another country's claim
    assert "checkpoint" in (
        topics.origin_mismatch(topic, uzb, cleared("kaz-zhibek-zholy-exit", "UZB"), COUNTRY) or ""
    )
    assert "source" in (
        topics.origin_mismatch(
            topic, "/missions/KAZ/border_clearance", cleared("uzb-oybek-exit", "UZB"), COUNTRY
        )
        or ""
    )
    assert "country" in (topics.origin_mismatch(topic, uzb, cleared("uzb-oybek-exit", "KAZ"), COUNTRY) or "")
    # a checkpoint no route has
    assert topics.origin_mismatch(topics.crossings("nowhere"), uzb, cleared("nowhere", "UZB"), COUNTRY)
    lifted = CrossingRequirementLifted(
        requirement_id=uuid.uuid4(), checkpoint_id="uzb-oybek-exit", lifted_at=NOW
    )
    assert topics.origin_mismatch(topics.requirements("uzb-oybek-exit"), uzb, lifted, COUNTRY) is None
    assert topics.origin_mismatch(topics.requirements("kaz-zhibek-zholy-exit"), uzb, lifted, COUNTRY)


def test_a_report_must_come_from_the_mission_of_its_topic() -> None:
    report = CaseStatusReported(case_id=uuid.uuid4(), status=ReportableStatus.RECEIVED, occurred_at=NOW)
    topic = topics.inbound_status("TJK")
    assert topics.origin_mismatch(topic, "/missions/TJK/reception", report, COUNTRY) is None
    assert topics.origin_mismatch(topic, "/missions/UZB/reception", report, COUNTRY)
    assert topics.origin_mismatch(topic, "tjk", report, COUNTRY)


def test_a_manifest_must_be_for_the_checkpoint_of_its_topic_and_shared_topics_are_not_checked() -> None:
    manifest = ManifestIssued.model_construct(checkpoint_id="uzb-oybek-exit")
    kaz = "/missions/KAZ/transport"
    assert topics.origin_mismatch(topics.manifests("uzb-oybek-exit"), kaz, manifest, COUNTRY) is None
    assert topics.origin_mismatch(topics.manifests("kaz-zhibek-zholy-exit"), kaz, manifest, COUNTRY)
    assert topics.origin_mismatch(topics.STATUS, "/missions/XXX/x", manifest, COUNTRY) is None
