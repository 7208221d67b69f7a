"""AsyncAPI 3.0 documents of the services' Kafka interfaces, generated from the code.

FastStream's generator (``faststream.specification.AsyncAPI``) builds the structure from the
service's broker: the server, and a channel and an operation for every subscriber and every
publisher, with their Kafka bindings. Two things it cannot know are declared or added here:

* Publications. Services publish through the transactional outbox with a raw aiokafka producer,
  never through FastStream, so every topic a service produces (``ServiceRuntime.produces``) and
  every dead-letter topic gets a documentation-only FastStream publisher
  (``broker.publisher(topic, schema=..., description=...)``) that is never used to publish.
  ``declare_publication`` is idempotent: the runtime may declare them up front, and the document
  declares whatever is still missing.
* Messages. A subscriber's handler takes the raw record (``body: bytes``; the consumer decodes
  the CloudEvents envelope itself so that a malformed record is dead-lettered), so FastStream
  documents a binary payload; and FastStream's messages have no headers. Every Corridor channel's
  messages are therefore replaced: one message per event type (the pydantic model as payload,
  the CloudEvents ``ce_*`` headers with ``ce_type`` fixed to the event's type), listed by the
  channel and by its operation. A subscribed channel lists the events its consumer handles; a
  published channel lists the events the contract puts on the topic (``contracts.topics.table``).

``mount_asyncapi`` serves the running service's document at ``/asyncapi.json`` and ``.yaml``.
``generate_documents`` builds the documents of a deployment's instances; which instances a
deployment has is the deployment's to say (``services/deployment.py``: ``python -m
services.deployment asyncapi export|check`` writes and checks ``docs/asyncapi/<instance>.json``).
This module imports no service.
"""

from __future__ import annotations

import json
import logging
import operator
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import reduce
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, Response
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from faststream.specification.asyncapi.utils import clear_key, ref
from pydantic.json_schema import models_json_schema

from contracts import topics
from contracts.base import Event, EventJsonSchema
from contracts.envelope import CONTENT_TYPE, SPECVERSION, mission_source
from contracts.status import CaseStatusChanged
from corridor import auth

if TYPE_CHECKING:
    from corridor.consumer import EventConsumer
    from corridor.runtime import ServiceRuntime

ASYNCAPI_VERSION = "3.0.0"

_MANIFESTS_PREFIX = topics.manifests("")
_DEAD_LETTER_PREFIX = topics.dead_letters("")

# Extension attributes (``ce_<name>`` headers) an event may carry besides the standard ones.
EVENT_EXTENSIONS: dict[type[Event], dict[str, str]] = {
    CaseStatusChanged: {
        "ce_originsource": "On a status a country mission reported: the ce_source of the report.",
        "ce_originid": "On a status a country mission reported: the ce_id of the report.",
    },
}

# Why a consumer dead-letters a record (``dlt_reason``, corridor/consumer.py): an envelope error, a
# value PostgreSQL refuses, a handler that kept failing, or a domain refusal (``Rejected.code``), so
# the list is open-ended and documented as examples.
DEAD_LETTER_REASONS = (
    "missing_header",
    "bad_header",
    "unsupported_specversion",
    "unknown_type",
    "missing_data",
    "malformed_json",
    "schema_violation",
    "undecodable",
    "invalid_value",
    "handler_error",
)

# AsyncAPI 3.0: keys of the components' maps must match this.
COMPONENT_KEY = re.compile(r"^[a-zA-Z0-9.\-_]+$")

DEAD_LETTER_MESSAGE = "DeadLetter"


class DocumentationError(ValueError):
    """The code declares something the document cannot describe (e.g. a topic with no events)."""


# --- the contract ------------------------------------------------------------------------------


def events_on(topic: str) -> tuple[type[Event], ...] | None:
    """The events the contract (``contracts.topics.table``) puts on ``topic``; None if unknown."""
    found = topics.topic(topic)
    return found.events if found else None


def is_dead_letter_topic(topic: str) -> bool:
    return topic.startswith(_DEAD_LETTER_PREFIX)


def topic_description(topic: str) -> str | None:
    found = topics.topic(topic)
    if found is not None and not found.family:
        return found.description
    if topic.startswith(_MANIFESTS_PREFIX):
        checkpoint = topic.removeprefix(_MANIFESTS_PREFIX)
        return (
            f"Manifests for checkpoint {checkpoint} only (personal data its border post needs), "
            "keyed by movement/vehicle."
        )
    member = topics.family_member(topic)
    if member is not None:
        family, owner = member
        return f"{family.description} This one: {family.per} {owner}; written by {family.written_by}."
    if is_dead_letter_topic(topic):
        consumer = topic.removeprefix(_DEAD_LETTER_PREFIX)
        return (
            f"Dead letters of consumer {consumer}: records it could not decode or apply, with their "
            "original key, value and headers plus dlt_* headers saying why and where they came from."
        )
    return None


# --- declaring publications to FastStream ----------------------------------------------------------


def _publisher_topic(publisher: Any) -> str | None:
    return getattr(getattr(publisher, "specification", None), "topic", None)


def declare_publication(broker: KafkaBroker, topic: str) -> None:
    """Declare ``topic`` to FastStream as published, for documentation only (idempotent).

    The publisher object is never used to publish (the outbox relay and the dead-letter path use
    their own aiokafka producer); FastStream's generator documents it from ``schema``.
    """
    if any(_publisher_topic(p) == topic for p in broker.publishers):
        return
    events = events_on(topic)
    schema: Any
    if is_dead_letter_topic(topic):
        schema = bytes
    elif events:
        schema = reduce(operator.or_, events)
    else:
        schema = None
    broker.publisher(topic, schema=schema, description=topic_description(topic))


def declare_publications(rt: ServiceRuntime) -> None:
    """Declare every topic ``rt`` publishes to: what it produces and its dead-letter topics."""
    for topic in sorted(rt.produced_topics):
        declare_publication(rt.broker, topic)
    for consumer in rt.consumers:
        declare_publication(rt.broker, consumer.dead_letter_topic)


# --- the document ------------------------------------------------------------------------------------


def package_version() -> str:
    try:
        return version("corridor")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "0.0.0"


def asyncapi_document(rt: ServiceRuntime) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of ``rt``'s Kafka interface, as a JSON-ready dict."""
    declare_publications(rt)
    spec = AsyncAPI(
        rt.broker,
        title=rt.http.title,
        version=package_version(),
        description=_info_description(rt),
        identifier=f"urn:corridor:{rt.instance}",
        schema_version=ASYNCAPI_VERSION,
    ).to_specification()
    doc: dict[str, Any] = spec.to_jsonable()

    endpoints = [*_subscribed_channels(rt), *_published_channels(rt)]
    models = [m for e in endpoints for m in e.events]
    payloads, schemas = _payload_schemas(models)
    components = doc.setdefault("components", {})
    messages: dict[str, Any] = components.setdefault("messages", {})
    component_schemas: dict[str, Any] = components.setdefault("schemas", {})
    component_schemas.update(schemas)

    for endpoint in endpoints:
        channel = doc["channels"][endpoint.channel]
        described = topic_description(endpoint.address)
        if described is not None:
            channel.setdefault("description", described)
        if endpoint.dead_letters:
            names = [DEAD_LETTER_MESSAGE]
            messages[DEAD_LETTER_MESSAGE] = _dead_letter_message()
        else:
            names = []
            for model in endpoint.events:
                name = _message_name(model)
                message = _event_message(model, payloads[model])
                if messages.get(name, message) != message:
                    raise DocumentationError(f"two events are both named {name}")
                messages[name] = message
                names.append(name)
        channel["messages"] = {name: ref("components", "messages", name) for name in names}
        channel_ref = ref("channels", endpoint.channel)
        for operation in doc["operations"].values():
            if operation.get("channel") == channel_ref:
                operation["messages"] = [
                    ref("channels", endpoint.channel, "messages", name) for name in names
                ]
                operation.setdefault("description", endpoint.description)

    for topic in sorted(rt.produced_topics):
        if events_on(topic) is None:
            raise DocumentationError(
                f"{rt.instance} produces {topic}, which has no events in contracts.topics.table()"
            )
    return _canonical(_prune_components(doc))


def _info_description(rt: ServiceRuntime) -> str:
    return (
        f"The Kafka interface of {rt.instance}, generated from its code.\n\n"
        "Every record is a CloudEvents 1.0 event in the Kafka protocol binding, binary content mode: "
        "the attributes travel as `ce_*` headers, the event data as the JSON record value. Consumers "
        "deduplicate on `ce_source` + `ce_id`, so delivery is at least once and effect exactly once. "
        f"The events this service publishes carry `ce_source` `{rt.source}` and are published "
        "through a transactional outbox; every consumer parks what it cannot decode or apply on "
        "its dead-letter topic."
    )


class _Endpoint:
    """One of the document's channels that Corridor knows more about than FastStream."""

    def __init__(
        self,
        channel: str,
        address: str,
        events: Sequence[type[Event]],
        description: str,
        *,
        dead_letters: bool = False,
    ) -> None:
        self.channel = channel
        self.address = address
        self.events = tuple(events)
        self.description = description
        self.dead_letters = dead_letters


def _subscriber_of(broker: KafkaBroker, consumer: EventConsumer) -> Any:
    declared = getattr(consumer, "subscriber", None)
    if declared is not None:
        return declared
    for subscriber in broker.subscribers:
        for call in subscriber.calls:
            if getattr(call.handler, "_original_call", None) == consumer._on_batch:
                return subscriber
    raise DocumentationError(f"consumer {consumer.name} has no FastStream subscriber")


def _subscribed_channels(rt: ServiceRuntime) -> Iterator[_Endpoint]:
    for consumer in rt.consumers:
        subscriber = _subscriber_of(rt.broker, consumer)
        if not subscriber.specification.include_in_schema:
            continue
        handled = consumer.handled
        for key, spec in subscriber.schema().items():
            address = spec.address or ""
            carried = events_on(address)
            events = [m for m in handled if carried is None or m in carried] or handled
            names = ", ".join(m.__name__ for m in events)
            yield _Endpoint(
                clear_key(key),
                address,
                events,
                f"Consumer group {consumer.name} applies {names}, committing the offset only after "
                "the effect is committed; other known events are skipped, and a record it cannot "
                f"decode or apply goes to {consumer.dead_letter_topic}.",
            )


def _published_channels(rt: ServiceRuntime) -> Iterator[_Endpoint]:
    for publisher in rt.broker.publishers:
        if not publisher.specification.include_in_schema:
            continue
        for key, spec in publisher.schema().items():
            address = spec.address or ""
            if is_dead_letter_topic(address):
                yield _Endpoint(
                    clear_key(key),
                    address,
                    (),
                    "A record its consumer could not decode or apply, sent before the consumer "
                    "commits the record's offset (acks=all), so a dead letter is never lost.",
                    dead_letters=True,
                )
                continue
            events = events_on(address)
            if events is None:
                continue  # a FastStream publisher Corridor has nothing to add to
            yield _Endpoint(
                clear_key(key),
                address,
                events,
                f"{rt.instance} publishes {', '.join(m.__name__ for m in events)} through its "
                "transactional outbox: written in the transaction of the change that causes it, "
                "sent by the relay with an idempotent producer (acks=all), per case in order.",
            )


def _payload_schemas(
    models: Iterable[type[Event]],
) -> tuple[dict[type[Event], dict[str, Any]], dict[str, Any]]:
    """Each model's payload reference and every schema they need, as components/schemas.

    Serialisation mode, like ``contracts/schemas``: what is on the wire is what producers serialise.
    """
    unique = list(dict.fromkeys(models))
    if not unique:
        return {}, {}
    refs, top = models_json_schema(
        [(m, "serialization") for m in unique],
        ref_template="#/components/schemas/{model}",
        schema_generator=EventJsonSchema,
    )
    payloads = {m: dict(refs[(m, "serialization")]) for m in unique}
    return payloads, dict(top.get("$defs", {}))


def _message_name(model: type[Event]) -> str:
    return model.__name__


def _words(name: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return spaced[:1] + spaced[1:].lower()


def _summary(model: type[Event]) -> str | None:
    doc = model.__dict__.get("__doc__")
    if not doc:
        return None
    return " ".join(doc.strip().split("\n\n")[0].split())


def _event_message(model: type[Event], payload: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": _message_name(model),
        "title": _words(model.__name__),
    }
    summary = _summary(model)
    if summary:
        message["summary"] = summary
    message.update(
        {
            "description": (
                f"CloudEvents type `{model.event_type}`: the `ce_*` headers carry the event's "
                "attributes and the record value its data as JSON."
            ),
            "contentType": CONTENT_TYPE,
            "headers": cloudevents_headers(model),
            "payload": payload,
        }
    )
    return message


def cloudevents_headers(model: type[Event]) -> dict[str, Any]:
    """The headers of ``model``'s records: CloudEvents 1.0, Kafka protocol binding, binary mode."""
    properties: dict[str, Any] = {
        "ce_specversion": {
            "type": "string",
            "const": SPECVERSION,
            "description": "CloudEvents specification version.",
        },
        "ce_id": {
            "type": "string",
            "minLength": 1,
            "description": "Event id, unique per source: consumers deduplicate on ce_source + ce_id.",
            "examples": ["0f8e2a3c-5d7b-4c1e-9a6f-2b4d8e1c7a90"],
        },
        "ce_source": {
            "type": "string",
            "format": "uri-reference",
            "minLength": 1,
            "description": "Who published it: /missions/<ISO 3166-1 alpha-3>/<service>.",
            "examples": [mission_source("KAZ", "intake")],
        },
        "ce_type": {
            "type": "string",
            "const": model.event_type,
            "description": "The versioned event type; it decides how the value is read.",
        },
        "ce_subject": {
            "type": "string",
            "description": (
                "What the event is about: the pseudonymous case id, or movement/vehicle for "
                "movement events. Always set by Corridor's producers."
            ),
        },
        "ce_time": {
            "type": "string",
            "format": "date-time",
            "description": "When the event was created (RFC 3339). Always set by Corridor's producers.",
        },
        "content-type": {
            "type": "string",
            "const": CONTENT_TYPE,
            "description": "Media type of the record value. Always set by Corridor's producers.",
        },
    }
    for name, description in EVENT_EXTENSIONS.get(model, {}).items():
        properties[name] = {"type": "string", "description": f"CloudEvents extension. {description}"}
    properties.update(
        {
            "traceparent": {
                "type": "string",
                "description": "W3C Trace Context of the request or record that caused the event.",
            },
            "tracestate": {"type": "string", "description": "W3C Trace Context vendor state."},
        }
    )
    return {
        "type": "object",
        "description": (
            "Kafka record headers (UTF-8 strings). A record without ce_specversion, ce_id, "
            "ce_source or ce_type, or with an unknown ce_type, is dead-lettered."
        ),
        "required": ["ce_specversion", "ce_id", "ce_source", "ce_type"],
        "properties": properties,
        "additionalProperties": {"type": "string"},
    }


def _dead_letter_message() -> dict[str, Any]:
    def header(description: str, **extra: Any) -> dict[str, Any]:
        return {"type": "string", "description": description, **extra}

    properties = {
        "dlt_reason": header(
            "Machine-readable reason: an envelope error, invalid_value, handler_error, or the domain's "
            "refusal code.",
            examples=list(DEAD_LETTER_REASONS),
        ),
        "dlt_error": header("Human-readable detail, cut to its first 4000 characters."),
        "dlt_consumer": header("The consumer group that dead-lettered the record."),
        "dlt_source_topic": header("Topic of the original record."),
        "dlt_source_partition": header("Partition of the original record.", pattern=r"^[0-9]+$"),
        "dlt_source_offset": header("Offset of the original record.", pattern=r"^[0-9]+$"),
        "dlt_failed_at": header("When it was dead-lettered (RFC 3339).", format="date-time"),
    }
    return {
        "name": DEAD_LETTER_MESSAGE,
        "title": "Dead letter",
        "summary": "A record a consumer could not decode or apply, parked with why and where it came from.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "description": (
                "The original record's headers, unchanged (usually its ce_* headers), plus the dlt_* headers."
            ),
            "required": list(properties),
            "properties": properties,
            "additionalProperties": {"type": "string"},
        },
        "payload": {
            "description": (
                "The original record value, byte for byte: possibly not JSON, possibly empty. "
                "The record key is the original key."
            )
        },
    }


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _prune_components(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop the components nothing refers to (FastStream's payloads that were replaced)."""
    components: dict[str, dict[str, Any]] = doc.get("components", {})
    outside = {k: v for k, v in doc.items() if k != "components"}
    reached: set[tuple[str, str]] = set()
    pending = list(_refs(outside))
    prefix = "#/components/"
    while pending:
        target = pending.pop()
        if not target.startswith(prefix):
            continue
        kind, _, name = target.removeprefix(prefix).partition("/")
        name = name.replace("~1", "/").replace("~0", "~")
        if (kind, name) in reached or name not in components.get(kind, {}):
            continue
        reached.add((kind, name))
        pending.extend(_refs(components[kind][name]))
    doc["components"] = {
        kind: {name: item for name, item in items.items() if (kind, name) in reached}
        for kind, items in components.items()
    }
    doc["components"] = {kind: items for kind, items in doc["components"].items() if items}
    return doc


_TOP_LEVEL = ("asyncapi", "id", "info", "defaultContentType", "servers", "channels", "operations")
_CHANNEL_FIELDS = ("address", "title", "summary", "description", "servers", "messages", "bindings")
_OPERATION_FIELDS = ("action", "channel", "title", "summary", "description", "messages", "bindings")


def _ordered(obj: dict[str, Any], first: Sequence[str]) -> dict[str, Any]:
    out = {key: obj[key] for key in first if key in obj}
    out.update({key: value for key, value in obj.items() if key not in out})
    return out


def _canonical(doc: dict[str, Any]) -> dict[str, Any]:
    """A stable order: FastStream keeps endpoints in a WeakSet, whose order varies per process."""
    out = _ordered(doc, _TOP_LEVEL)
    out["servers"] = dict(sorted(out.get("servers", {}).items()))
    out["channels"] = {k: _ordered(v, _CHANNEL_FIELDS) for k, v in sorted(out.get("channels", {}).items())}
    out["operations"] = {
        k: _ordered(v, _OPERATION_FIELDS) for k, v in sorted(out.get("operations", {}).items())
    }
    if doc.get("components"):
        out["components"] = {
            kind: dict(sorted(items.items())) for kind, items in sorted(doc["components"].items())
        }
    return out


# --- serving it ------------------------------------------------------------------------------------


def mount_asyncapi(rt: ServiceRuntime) -> None:
    """Serve ``rt``'s document at ``GET /asyncapi.json`` and ``GET /asyncapi.yaml``.

    The document is built on the first request (after the service declared its consumers and
    topics) and kept: a running service's interface does not change.
    """
    built: list[dict[str, Any]] = []

    def document() -> dict[str, Any]:
        if not built:
            built.append(asyncapi_document(rt))
        return built[0]

    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(document())

    async def asyncapi_yaml() -> Response:
        return Response(to_yaml(document()), media_type="application/yaml")

    for path, endpoint, what in (
        ("/asyncapi.json", asyncapi_json, "JSON"),
        ("/asyncapi.yaml", asyncapi_yaml, "YAML"),
    ):
        rt.http.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            tags=["docs"],
            summary=f"AsyncAPI 3.0 document of this service's Kafka interface ({what})",
            response_class=JSONResponse if what == "JSON" else Response,
            # Any authenticated caller, of any mission: it describes topics and event schemas (no
            # data), and the missions' integration clients build their consumers from it; reading
            # the topics needs Kafka credentials anyway.
            dependencies=[Depends(auth.allow(*auth.ALL_ROLES, any_mission=True))],
            responses={
                200: {
                    "description": f"The AsyncAPI {ASYNCAPI_VERSION} document",
                    "content": {
                        "application/json" if what == "JSON" else "application/yaml": {
                            "schema": {
                                "type": "object",
                                "description": "The document (in YAML, the same as its JSON)",
                            }
                        }
                    },
                }
            },
        )


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$.\-]*$")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"})


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(str(value), ensure_ascii=False)


def _yaml_key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) and key.lower() not in _YAML_WORDS else json.dumps(key)


def _yaml_lines(value: Any, indent: int) -> Iterator[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                yield f"{pad}{_yaml_key(str(key))}:"
                yield from _yaml_lines(item, indent + 1)
            else:
                yield f"{pad}{_yaml_key(str(key))}: {_yaml_inline(item)}"
    else:
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = list(_yaml_lines(item, indent + 1))
                yield f"{pad}- {nested[0].lstrip()}"
                yield from nested[1:]
            else:
                yield f"{pad}- {_yaml_inline(item)}"


def _yaml_inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _yaml_scalar(value)


def to_yaml(doc: dict[str, Any]) -> str:
    """Block-style YAML for JSON data (strings double-quoted), without a YAML library."""
    return "\n".join(_yaml_lines(doc, 0)) + "\n"


# --- a deployment's documents --------------------------------------------------------------------


def generate_documents(runtimes: Iterable[ServiceRuntime]) -> dict[str, str]:
    """File name -> content of the document of each of ``runtimes`` (a deployment's instances:
    ``services.deployment.service_runtimes``)."""
    files: dict[str, str] = {}
    # Each runtime installs its tracer provider; only the first one takes, which is fine here.
    otel = logging.getLogger("opentelemetry.trace")
    level = otel.level
    otel.setLevel(logging.ERROR)
    try:
        for rt in runtimes:
            files[f"{rt.instance}.json"] = to_json(asyncapi_document(rt))
    finally:
        otel.setLevel(level)
    return files


def stale_documents(out: Path, files: dict[str, str]) -> list[str]:
    """What differs between ``out`` and ``files``: changed, missing and unexpected files."""
    problems = []
    for name, content in files.items():
        path = out / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"{name}: out of date")
    for path in sorted(out.glob("*.json")):
        if path.name not in files:
            problems.append(f"{path.name}: no such service instance any more")
    return problems


def write_documents(out: Path, files: dict[str, str]) -> list[str]:
    """Make ``out`` hold exactly ``files``; what was written or removed, for the operator."""
    done = []
    out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = out / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            done.append(f"wrote {path}")
    for path in sorted(out.glob("*.json")):
        if path.name not in files:
            path.unlink()
            done.append(f"removed {path}")
    return done
