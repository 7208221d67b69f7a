"""Domain errors every service raises from its use cases, mapped to HTTP answers in one place
(``ServiceRuntime``, as ``corridor.problems`` problem details), so routes stay thin and use cases
know nothing of HTTP.

An error's machine-readable ``code`` is its class's name (``CaseNotFound``: ``case_not_found``)
unless the class names one, or its detail (a JSON object) carries one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError

from corridor.problems import snake


class DomainError(Exception):
    """A command the domain refuses. ``status_code`` is its HTTP answer; ``detail`` its body's
    ``detail``: a text, or a JSON object for a caller to act on, whose ``message`` is the text and
    whose other members extend the problem (``waiting``, ``departure``)."""

    status_code = 409
    code = "conflict"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = snake(cls.__name__)

    def __init__(self, detail: Any) -> None:
        super().__init__(detail if isinstance(detail, str) else repr(detail))
        self.detail = detail


class NotFound(DomainError):
    """What the command names does not exist (here)."""

    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The command does not fit the state it would change."""

    status_code = 409
    code = "conflict"


class Gone(DomainError):
    """What the command names existed and was removed for good (personal data erased)."""

    status_code = 410
    code = "gone"


class Invalid(DomainError):
    """A value the command carries is wrong: answered 422 naming the field, like FastAPI does."""

    status_code = 422
    code = "invalid_value"

    def __init__(self, loc: str | Sequence[str | int], msg: str) -> None:
        super().__init__(msg)
        self.loc: tuple[str | int, ...] = ("body", loc) if isinstance(loc, str) else ("body", *loc)
        self.msg = msg


def invalid(loc: str | Sequence[str | int], msg: str, *, where: str = "body") -> RequestValidationError:
    """A 422 naming the field, raised as FastAPI raises its own (answered as a problem whose
    ``errors`` name it: ``corridor.problems``)."""
    path = (loc,) if isinstance(loc, str) else tuple(loc)
    return RequestValidationError([{"loc": (where, *path), "msg": msg, "type": "value_error"}])
