"""CloudEvents 1.0 envelope in the Kafka protocol binding, binary content mode.

Attributes travel as ``ce_``-prefixed headers, the event data as the record value (JSON), the
record key is the case id. ``source`` + ``id`` identify an event: consumers deduplicate on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uuid6
from pydantic import ValidationError

from contracts.base import READING, Event, model_for_type

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"

Headers = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A record that is not a valid Corridor event. ``code`` is machine-readable."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def mission_source(mission: str, service: str) -> str:
    return f"/missions/{mission}/{service}"


@dataclass(frozen=True)
class CloudEvent:
    id: str
    source: str
    type: str
    subject: str
    time: datetime
    data: Event
    extensions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(cls, data: Event, *, source: str, event_id: str | None = None) -> CloudEvent:
        return cls(
            # Time-ordered (UUIDv7): every inbox and outbox keys its rows by event id, and ids that
            # grow append at one end of those indexes where random ones touch a page anywhere
            # (half the cost of each consumer's inbox insert at 50 cases/s, bench/RESULTS.md).
            id=event_id or str(uuid6.uuid7()),
            source=source,
            type=data.event_type,
            subject=data.subject(),
            time=datetime.now(UTC),
            data=data,
        )

    @property
    def dedup_key(self) -> tuple[str, str]:
        return (self.source, self.id)

    def headers(self) -> Headers:
        return [(k, v.encode()) for k, v in self.header_texts().items()]

    def header_texts(self) -> dict[str, str]:
        """``headers`` before encoding (what the outbox keeps of them, as JSON)."""
        texts = {
            "ce_specversion": SPECVERSION,
            "ce_id": self.id,
            "ce_source": self.source,
            "ce_type": self.type,
            "ce_subject": self.subject,
            "ce_time": self.time.isoformat(),
            "content-type": CONTENT_TYPE,
        }
        for k, v in self.extensions.items():
            texts[f"ce_{k}"] = v
        return texts

    def value(self) -> bytes:
        return self.data.model_dump_json().encode()

    @classmethod
    def from_record(cls, headers: Headers | None, value: bytes | None) -> CloudEvent:
        """Decode a record in binary mode, or in structured mode when its content type says so.

        Raises EnvelopeError with a machine-readable code and a precise reason.
        """
        content_type = (header(headers, "content-type") or "").split(";")[0].strip().lower()
        if content_type == STRUCTURED_CONTENT_TYPE:
            if value is None:
                raise EnvelopeError("missing_data", "record has no value")
            return cls.from_structured(value)
        attrs: dict[str, str] = {}
        for name, raw in headers or ():
            if name.startswith("ce_"):
                try:
                    attrs[name[3:]] = raw.decode()
                except (UnicodeDecodeError, AttributeError) as exc:
                    raise EnvelopeError("bad_header", f"header {name} is not UTF-8") from exc
        if value is None:
            raise EnvelopeError("missing_data", "record has no value")
        return cls._build(
            attrs, lambda model: model.model_validate_json(value, context=READING), "header ce_"
        )

    @classmethod
    def from_structured(cls, value: bytes | str) -> CloudEvent:
        """Decode a structured-mode event: the whole envelope as one JSON object."""
        try:
            envelope = json.loads(value)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            # RecursionError: nesting deeper than any event has; refuse it like any malformed input.
            raise EnvelopeError("malformed_json", str(exc)[:300]) from exc
        if not isinstance(envelope, dict):
            raise EnvelopeError("malformed_json", "a structured-mode event must be a JSON object")
        if "data" not in envelope:
            raise EnvelopeError("missing_data", "structured-mode event has no data member")
        data = envelope.pop("data")
        for required in ("id", "source", "type", "specversion", "subject", "time"):
            if required in envelope and not isinstance(envelope[required], str):
                raise EnvelopeError("bad_header", f"attribute {required} must be a string")
        attrs = {k: v if isinstance(v, str) else json.dumps(v) for k, v in envelope.items()}
        return cls._build(attrs, lambda model: model.model_validate(data, context=READING), "attribute ")

    @classmethod
    def _build(cls, attrs: dict[str, str], parse: Any, where: str) -> CloudEvent:
        for required in ("id", "source", "type", "specversion"):
            if not attrs.get(required):
                raise EnvelopeError("missing_header", f"required {where}{required} is missing")
        if attrs["specversion"] != SPECVERSION:
            raise EnvelopeError("unsupported_specversion", f"specversion {attrs['specversion']} is not 1.0")
        model = model_for_type(attrs["type"])
        if model is None:
            raise EnvelopeError("unknown_type", f"type {attrs['type']} is not a known event")
        try:
            data = parse(model)
        except RecursionError as exc:
            raise EnvelopeError("malformed_json", "nested too deeply") from exc
        except ValidationError as exc:
            if any(err["type"] == "json_invalid" for err in exc.errors()):
                raise EnvelopeError("malformed_json", str(exc.errors()[0]["msg"])) from exc
            raise EnvelopeError("schema_violation", _summarise(exc)) from exc
        time_raw = attrs.get("time")
        try:
            time = datetime.fromisoformat(time_raw) if time_raw else datetime.now(UTC)
        except ValueError as exc:
            raise EnvelopeError("bad_header", f"time {time_raw!r} is not RFC 3339") from exc
        known = {"id", "source", "type", "specversion", "time", "subject", "datacontenttype"}
        return cls(
            id=attrs["id"],
            source=attrs["source"],
            type=attrs["type"],
            subject=attrs.get("subject") or data.subject(),
            time=time,
            data=data,
            extensions={k: v for k, v in attrs.items() if k not in known},
        )

    def structured(self) -> dict[str, Any]:
        """The event as a structured-mode JSON object."""
        return {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": self.time.isoformat(),
            "datacontenttype": CONTENT_TYPE,
            **self.extensions,
            "data": self.data.model_dump(mode="json"),
        }


def _summarise(exc: ValidationError) -> str:
    parts: list[str] = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def header(headers: Headers | None, name: str) -> str | None:
    for key, raw in headers or ():
        if key == name:
            return raw.decode(errors="replace")
    return None


def decode_headers(headers: Any) -> Headers:
    """Normalise aiokafka's header tuples (str, bytes|None) to (str, bytes)."""
    return [(k, v if v is not None else b"") for k, v in headers or ()]
