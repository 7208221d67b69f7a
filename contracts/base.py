"""The base every event model derives from, and the registry of event types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import (
    DEFAULT_REF_TEMPLATE,
    DefsRef,
    GenerateJsonSchema,
    JsonSchemaKeyT,
    JsonSchemaMode,
    JsonSchemaValue,
)
from pydantic_core import CoreSchema

_REGISTRY: dict[str, type[Event]] = {}

READING: dict[str, Any] = {"corridor.reading": True}
"""Validation context of an event read from a record (``CloudEvent.from_record``): checks that
guard what a writer may say (``contracts.reasons``) do not refuse what was written already, by
an older or newer producer."""


def is_reading(context: Any) -> bool:
    return isinstance(context, dict) and bool(context.get("corridor.reading"))


class Event(BaseModel):
    """An immutable fact. Subclasses set ``event_type`` (the versioned CloudEvents type).

    Readers ignore fields they do not know (``extra="ignore"``): that is what lets a producer add
    an optional field without breaking consumers that upgrade later (BACKWARD compatibility).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        event_type = cls.__dict__.get("event_type")
        if event_type is not None:
            if event_type in _REGISTRY and _REGISTRY[event_type] is not cls:
                raise TypeError(f"event type {event_type} registered twice")
            _REGISTRY[event_type] = cls

    def subject(self) -> str:
        """The CloudEvents subject: the pseudonymous case reference where there is one."""
        case_id = getattr(self, "case_id", None)
        if case_id is None:
            raise NotImplementedError(f"{type(self).__name__} must define subject()")
        return str(case_id)


def model_for_type(event_type: str) -> type[Event] | None:
    return _REGISTRY.get(event_type)


def all_event_types() -> dict[str, type[Event]]:
    return dict(_REGISTRY)


OPEN_VALUE = {
    "type": "string",
    "description": "A value added in a later version of this contract: readers keep the record and treat the value as unknown.",
}


class EventJsonSchema(GenerateJsonSchema):
    """JSON Schema of events for readers generated from it (e.g. ``datamodel-code-generator``).

    A named enumeration (a ``StrEnum`` such as ``CaseStatus``, ``DocumentType``) is an open set:
    every reference to it is "one of these values, or another string", so a reader generated from
    today's schema keeps working when a later version adds a value (contracts/README.md, "Open
    enumerations"). An inline ``Literal`` (a direction, a stage) is closed: adding a value to one is
    a new event version. Our own models still validate the known values strictly.
    """

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        return open_enumerations(super().generate(schema, mode))

    def generate_definitions(
        self, inputs: Sequence[tuple[JsonSchemaKeyT, JsonSchemaMode, CoreSchema]]
    ) -> tuple[dict[tuple[JsonSchemaKeyT, JsonSchemaMode], JsonSchemaValue], dict[DefsRef, JsonSchemaValue]]:
        refs, definitions = super().generate_definitions(inputs)
        opened = open_enumerations({"$defs": dict(definitions)}, self.ref_template)["$defs"]
        return refs, opened


def open_enumerations(schema: dict[str, Any], ref_template: str = DEFAULT_REF_TEMPLATE) -> dict[str, Any]:
    """``schema`` with every reference to an enumeration in its ``$defs`` made an open set."""
    definitions = schema.get("$defs", {})
    enums = {ref_template.format(model=name) for name, d in definitions.items() if "enum" in d}

    def opened(node: Any) -> Any:
        if isinstance(node, list):
            return [opened(n) for n in node]
        if not isinstance(node, dict):
            return node
        if node.get("$ref") in enums:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**rest, "anyOf": [{"$ref": node["$ref"]}, OPEN_VALUE]}
        return {k: opened(v) for k, v in node.items()}

    return opened(schema)
