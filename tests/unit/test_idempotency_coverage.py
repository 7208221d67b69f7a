"""Every command of every service has a retry story (issue 17): generated from the OpenAPI
documents, so a new POST/PUT/PATCH/DELETE without one fails here.

A command is either idempotent by nature (``x-idempotency.kind == "natural"``, saying what makes a
repeat safe and what it answers) or honours the ``Idempotency-Key`` header (the header documented
as a parameter, with its expiry, and ``x-idempotency.kind == "key"``)."""

from __future__ import annotations

from typing import Any

import pytest

from corridor import idempotency
from services import deployment

COMMANDS = {"post", "put", "patch", "delete"}


def _commands() -> list[tuple[str, str, str, dict[str, Any]]]:
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rt in deployment.service_runtimes():
        for path, item in rt.http.openapi()["paths"].items():
            for method, operation in item.items():
                if method in COMMANDS:
                    # One service, several instances (a post per checkpoint): one document each.
                    found.setdefault((rt.service, method.upper(), path), operation)
    return [(s, m, p, op) for (s, m, p), op in sorted(found.items())]


COMMANDS_FOUND = _commands()


def test_the_walk_finds_the_commands_of_every_service() -> None:
    services = {s for s, *_ in COMMANDS_FOUND}
    assert services == {"intake", "eligibility", "transport", "border_clearance", "reporting"}, services
    assert ("intake", "POST", "/cases/{case_id}/health-evidence") in {
        (s, m, p) for s, m, p, _ in COMMANDS_FOUND
    }
    assert len(COMMANDS_FOUND) >= 18


@pytest.mark.parametrize(
    ("service", "method", "path", "operation"), COMMANDS_FOUND, ids=lambda v: str(v)[:60]
)
def test_every_command_is_idempotent_by_nature_or_honours_an_idempotency_key(
    service: str, method: str, path: str, operation: dict[str, Any]
) -> None:
    story = operation.get("x-idempotency")
    assert isinstance(story, dict), f"{service} {method} {path}: no retry story (x-idempotency)"
    header = [
        p for p in operation.get("parameters", []) if p["in"] == "header" and p["name"] == idempotency.HEADER
    ]
    natural = story.get("description") if story.get("kind") == "natural" else story.get("natural")
    if natural is not None:
        assert len(natural) > 30, f"{service} {method} {path}: say what makes a repeat safe"
    if story.get("kind") == "key" or header:
        # Honoured: the header is a parameter, optional, and says how long a key lasts.
        assert len(header) == 1, f"{service} {method} {path}: x-idempotency says key, no header"
        assert header[0].get("required", False) is False
        assert "expire" in header[0]["description"] and "24 hours" in header[0]["description"]
        assert story.get("expires_after_seconds") == int(idempotency.EXPIRY.total_seconds())
    else:
        assert natural is not None, f"{service} {method} {path}: neither natural nor keyed"


def test_a_command_with_an_optional_natural_key_documents_both() -> None:
    """A movement id, a registration key, a requirement's reference are optional: the header is
    honoured, and the natural key is documented beside it."""
    for service, path in (
        ("transport", "/movements"),
        ("intake", "/cases"),
        ("border_clearance", "/requirements"),
    ):
        [op] = [op for s, m, p, op in COMMANDS_FOUND if (s, m, p) == (service, "POST", path)]
        assert op["x-idempotency"]["kind"] == "key" and len(op["x-idempotency"]["natural"]) > 30
        assert any(p["name"] == idempotency.HEADER for p in op["parameters"])
