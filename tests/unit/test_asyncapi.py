"""The AsyncAPI documents: generated from the code, committed, and valid for the official parser.

Every service instance (intake, eligibility, transport, reporting, one border clearance per
checkpoint) has a committed ``docs/asyncapi/<instance>.json``. They must equal what
``python -m services.deployment asyncapi export`` generates now, and the official AsyncAPI parser (``@asyncapi/parser``, pinned in
``tools/asyncapi/package-lock.json`` and installed by ``make setup``) must report no error on any
of them. No Kafka is needed: services are built, never started.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from contracts.base import all_event_types
from contracts.routes import RouteBook
from contracts.status import CaseStatusChanged
from corridor import asyncapi
from corridor.auth import Role
from corridor.runtime import ServiceRuntime
from corridor.settings import REPO_ROOT, ServiceSettings
from devkit.devidp import DevIssuer
from services import deployment

DOCS = deployment.DOCS_DIR
TOOLS = REPO_ROOT / "tools" / "asyncapi"
VALIDATE = TOOLS / "validate.mjs"
PARSER_PACKAGE = TOOLS / "node_modules" / "@asyncapi" / "parser" / "package.json"
ROUTES = ServiceSettings.model_fields["routes_file"].default

CE_HEADERS = ("ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time", "ce_subject", "content-type")


@pytest.fixture(scope="module", autouse=True)
def _quiet_tracing() -> Iterator[None]:
    # Every runtime built here installs its tracer provider; OpenTelemetry keeps the first.
    otel = logging.getLogger("opentelemetry.trace")
    level = otel.level
    otel.setLevel(logging.ERROR)
    yield
    otel.setLevel(level)


@pytest.fixture(scope="module")
def runtimes() -> dict[str, ServiceRuntime]:
    return {rt.instance: rt for rt in deployment.service_runtimes()}


@pytest.fixture(scope="module")
def documents(runtimes: dict[str, ServiceRuntime]) -> dict[str, dict[str, Any]]:
    return {name: asyncapi.asyncapi_document(rt) for name, rt in runtimes.items()}


def committed(instance: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((DOCS / f"{instance}.json").read_text(encoding="utf-8"))
    return result


def validate(*files: Path) -> subprocess.CompletedProcess[str]:
    """Run the official parser on ``files``; fail the test clearly when it is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the AsyncAPI documents are checked with Node.js (20 or later)")
    if not PARSER_PACKAGE.exists():
        pytest.fail(
            "the official AsyncAPI parser is not installed: run `make setup` "
            "(or `npm ci --prefix tools/asyncapi --ignore-scripts`)"
        )
    lock = json.loads((TOOLS / "package-lock.json").read_text(encoding="utf-8"))
    locked = lock["packages"]["node_modules/@asyncapi/parser"]["version"]
    installed = json.loads(PARSER_PACKAGE.read_text(encoding="utf-8"))["version"]
    if installed != locked:
        pytest.fail(
            f"tools/asyncapi has @asyncapi/parser {installed}, the lock file pins {locked}: "
            "run `npm ci --prefix tools/asyncapi --ignore-scripts`"
        )
    return subprocess.run(
        [node, str(VALIDATE), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- helpers to read a document --------------------------------------------------------------------


def resolve(doc: dict[str, Any], pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = doc
    for part in pointer[2:].split("/"):
        node = node[part.replace("%2C", ",").replace("~1", "/").replace("~0", "~")]
    return node


def deref(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(doc, node["$ref"])
    return node


def operations(doc: dict[str, Any], action: str, address: str) -> list[dict[str, Any]]:
    """The operations of ``action`` ("send"/"receive") on the channel with ``address``."""
    return [
        op
        for op in doc["operations"].values()
        if op["action"] == action and deref(doc, op["channel"])["address"] == address
    ]


def messages(doc: dict[str, Any], operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The operation's messages by name, resolved."""
    found = [deref(doc, m) for m in operation["messages"]]
    return {m["name"]: m for m in found}


def payload_title(doc: dict[str, Any], message: dict[str, Any]) -> str:
    title: str = deref(doc, message["payload"])["title"]
    return title


def channel_events(doc: dict[str, Any], action: str, address: str) -> set[str]:
    ops = operations(doc, action, address)
    assert ops, f"no {action} operation on {address}"
    return {name for op in ops for name in messages(doc, op)}


# --- committed, current, valid -----------------------------------------------------------------------


def test_every_instance_has_a_document(runtimes: dict[str, ServiceRuntime]) -> None:
    checkpoints = [c.checkpoint_id for r in RouteBook.load(ROUTES).routes for c in r.checkpoints]
    expected = {
        "intake",
        "eligibility",
        "transport",
        "reporting",
        *(f"border-clearance.{c}" for c in checkpoints),
    }
    assert set(runtimes) == expected
    assert {p.stem for p in DOCS.glob("*.json")} == expected


def test_committed_documents_are_current() -> None:
    problems = asyncapi.stale_documents(DOCS, deployment.asyncapi_documents())
    assert not problems, (
        "docs/asyncapi is not what the code generates; run `python -m services.deployment asyncapi export`:\n  "
        + "\n  ".join(problems)
    )


def test_the_cli_checks_and_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert deployment.main(["asyncapi", "check"]) == 0
    (tmp_path / "gone.json").write_text("{}")
    assert deployment.main(["asyncapi", "check", "--out", str(tmp_path)]) == 1
    assert "python -m services.deployment asyncapi export" in capsys.readouterr().err
    assert deployment.main(["asyncapi", "export", "--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in DOCS.glob("*.json")}
    assert deployment.main(["asyncapi", "check", "--out", str(tmp_path)]) == 0


def test_the_official_parser_accepts_every_document() -> None:
    files = sorted(DOCS.glob("*.json"))
    assert files
    result = validate(*files)
    assert result.returncode == 0, f"@asyncapi/parser rejected a document:\n{result.stderr}{result.stdout}"
    for file in files:
        assert f"{file}: ok (AsyncAPI 3.0.0" in result.stdout


def test_the_official_parser_rejects_a_broken_document(tmp_path: Path) -> None:
    """The check can fail: a dangling reference and a missing required field are both errors."""
    doc = committed("intake")
    broken = copy.deepcopy(doc)
    del broken["info"]["version"]
    operation = next(iter(broken["operations"].values()))
    operation["channel"] = {"$ref": "#/channels/no-such-channel"}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    result = validate(path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'must have required property "version"' in result.stderr
    assert "'#/channels/no-such-channel' does not exist" in result.stderr


def test_the_yaml_form_is_the_same_document_and_valid(tmp_path: Path) -> None:
    doc = committed("border-clearance.uzb-oybek-exit")
    text = asyncapi.to_yaml(doc)
    assert YAML(typ="safe", pure=True).load(text) == doc
    path = tmp_path / "border.yaml"
    path.write_text(text, encoding="utf-8")
    result = validate(path)
    assert result.returncode == 0, result.stderr


# --- what the documents say ----------------------------------------------------------------------------


def test_intake_subscribes_to_the_status_stream_and_publishes_cases_and_statuses() -> None:
    doc = committed("intake")
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] == "Corridor intake"
    assert [s["protocol"] for s in doc["servers"].values()] == ["kafka"]

    assert channel_events(doc, "receive", "corridor.case-status") == {"CaseStatusChanged"}
    assert "CaseRegistered" in channel_events(doc, "send", "intake.cases")
    assert channel_events(doc, "send", "corridor.case-status") == {"CaseStatusChanged"}

    (receive,) = operations(doc, "receive", "corridor.case-status")
    message = messages(doc, receive)["CaseStatusChanged"]
    assert payload_title(doc, message) == "CaseStatusChanged"
    payload = deref(doc, message["payload"])
    assert set(payload["required"]) >= {"case_id", "status", "occurred_at", "members"}
    # An open set (contracts.base.EventJsonSchema): the known statuses, or a status added later.
    known, later = payload["properties"]["status"]["anyOf"]
    assert deref(doc, known)["enum"][0] == "registered" and later["type"] == "string"


def test_every_event_message_describes_the_cloudevents_headers(documents: dict[str, dict[str, Any]]) -> None:
    types = {model.__name__: model for model in all_event_types().values()}
    for name, doc in documents.items():
        for key, message in doc["components"]["messages"].items():
            if key == asyncapi.DEAD_LETTER_MESSAGE:
                assert "dlt_reason" in message["headers"]["required"]
                continue
            headers = message["headers"]
            assert headers["type"] == "object"
            assert set(CE_HEADERS) <= set(headers["properties"]), (name, key)
            assert {"ce_id", "ce_source", "ce_type", "ce_specversion"} <= set(headers["required"])
            assert headers["properties"]["ce_type"]["const"] == types[key].event_type, (name, key)
            assert headers["properties"]["ce_specversion"]["const"] == "1.0"
            assert headers["properties"]["content-type"]["const"] == "application/json"
            assert message["contentType"] == "application/json"
            assert payload_title(doc, message) == key


def test_subscribed_channels_list_the_events_their_consumer_handles(
    runtimes: dict[str, ServiceRuntime], documents: dict[str, dict[str, Any]]
) -> None:
    for name, rt in runtimes.items():
        doc = documents[name]
        for consumer in rt.consumers:
            known = [carried for t in consumer.topics if (carried := asyncapi.events_on(t)) is not None]
            for model in consumer.handled:
                assert not known or any(model in carried for carried in known), (
                    f"{consumer.name} handles {model.__name__}, which no topic it reads carries: "
                    "add it to contracts.topics.table()"
                )
            documented: set[str] = set()
            for topic in consumer.topics:
                events = channel_events(doc, "receive", topic)
                carried = asyncapi.events_on(topic)
                if carried is not None:
                    assert events <= {m.__name__ for m in carried}, (name, topic)
                documented |= events
            assert documented == {m.__name__ for m in consumer.handled}, (name, consumer.name)


def test_every_published_topic_has_its_events(
    runtimes: dict[str, ServiceRuntime], documents: dict[str, dict[str, Any]]
) -> None:
    for name, rt in runtimes.items():
        doc = documents[name]
        for topic in rt.produced_topics:
            carried = asyncapi.events_on(topic)
            assert carried, f"{name} produces {topic}, which has no events in the contract"
            assert channel_events(doc, "send", topic) == {m.__name__ for m in carried}, (name, topic)
        for consumer in rt.consumers:
            assert channel_events(doc, "send", consumer.dead_letter_topic) == {"DeadLetter"}
            (dead_letters,) = operations(doc, "send", consumer.dead_letter_topic)
            message = messages(doc, dead_letters)["DeadLetter"]
            assert "dlt_source_offset" in message["headers"]["properties"]


def test_border_posts_document_their_own_manifest_topic_and_publish_both_decisions() -> None:
    for route in RouteBook.load(ROUTES).routes:
        for checkpoint in route.checkpoints:
            doc = committed(f"border-clearance.{checkpoint.checkpoint_id}")
            assert channel_events(doc, "receive", f"transport.manifests.{checkpoint.checkpoint_id}") == {
                "ManifestIssued",
                "PassengerDataErased",
            }
            assert channel_events(doc, "send", f"border.crossings.{checkpoint.checkpoint_id}") == {
                "BorderCrossingCleared",
                "BorderCrossingRefused",
            }
            # No other post's manifests; it writes no other post's decisions or requirements.
            addresses = {c["address"] for c in doc["channels"].values()}
            assert [a for a in addresses if a.startswith("transport.manifests.")] == [
                f"transport.manifests.{checkpoint.checkpoint_id}"
            ]
            sends = {
                a
                for a in addresses
                if a.startswith(("border.crossings.", "border.requirements.")) and operations(doc, "send", a)
            }
            assert sends == {
                f"border.crossings.{checkpoint.checkpoint_id}",
                f"border.requirements.{checkpoint.checkpoint_id}",
            }


def test_component_keys_follow_the_specification(documents: dict[str, dict[str, Any]]) -> None:
    # AsyncAPI 3.0 "Components Object": keys MUST match ^[a-zA-Z0-9\.\-_]+$ (the parser does not check).
    for name, doc in documents.items():
        for kind, items in doc["components"].items():
            bad = [key for key in items if not asyncapi.COMPONENT_KEY.match(key)]
            assert not bad, (name, kind, bad)


# --- declared by the runtime, served over HTTP ---------------------------------------------------------


def test_publications_declared_ahead_give_the_same_document() -> None:
    """``ServiceRuntime.produces`` may declare its publishers to FastStream up front (see
    corridor/asyncapi.py); the document must not change, and declaring again adds nothing."""
    rt = next(rt for rt in deployment.service_runtimes() if rt.instance == "intake")
    asyncapi.declare_publications(rt)
    declared = len(rt.broker.publishers)
    assert declared == len(rt.produced_topics) + len(rt.consumers)
    asyncapi.declare_publications(rt)
    assert len(rt.broker.publishers) == declared
    assert asyncapi.to_json(asyncapi.asyncapi_document(rt)) == (DOCS / "intake.json").read_text()


def test_a_topic_without_declared_events_is_an_error() -> None:
    rt = next(rt for rt in deployment.service_runtimes() if rt.instance == "eligibility")
    rt.produces("eligibility.something-new")
    with pytest.raises(asyncapi.DocumentationError, match=re.escape("eligibility.something-new")):
        asyncapi.asyncapi_document(rt)


async def test_a_running_service_serves_its_document(issuer: DevIssuer) -> None:
    # The service as deployed mounts the routes itself (ServiceRuntime): the test adds nothing.
    rt = next(rt for rt in deployment.service_runtimes() if rt.instance == "transport")
    # ASGITransport does not run the app's lifespan: nothing connects to Kafka or PostgreSQL.
    transport = httpx.ASGITransport(app=rt.http)
    # Any authenticated caller of any mission may read it (a mission's integrators build on it).
    reader = {"Authorization": f"Bearer {issuer.token(Role.INTEGRATION_CLIENT, 'TJK')}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://transport") as client:
        assert (await client.get("/asyncapi.json")).status_code == 401
        as_json = await client.get("/asyncapi.json", headers=reader)
        as_yaml = await client.get("/asyncapi.yaml", headers=reader)
    assert as_json.status_code == 200
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json() == committed("transport")
    assert as_yaml.status_code == 200
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert YAML(typ="safe", pure=True).load(as_yaml.text) == committed("transport")


def test_status_stream_events_name_their_type() -> None:
    headers = asyncapi.cloudevents_headers(CaseStatusChanged)
    assert headers["properties"]["ce_type"]["const"] == "org.corridor.case.status-changed.v1"
    assert "ce_originsource" in headers["properties"]
