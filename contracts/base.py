"""The base every event model derives from, and the registry of event types."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

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
