"""Clients generated from our committed schemas keep working (issue 15, item 5).

A mission generates reader models from ``contracts/schemas`` with ``datamodel-code-generator`` and
does not regenerate on our schedule. So: a record of every committed version of an event type,
and of today's, must be read by models generated from every earlier version. Named enumerations
are open sets for exactly this (``contracts.base.EventJsonSchema``); the two widenings that shipped
before they were open are the gate's acknowledged breaks, and this test proves they do break.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.base import all_event_types
from devkit.contracts_gate import compat
from tests.unit.generated_clients import reader_for, records_of

REPO = compat.find_repo_root(Path(__file__).resolve().parent)
assert REPO is not None, "the generated-client test reads the schemas' history from git"
SCHEMAS = compat.SCHEMA_DIR
REL = SCHEMAS.relative_to(REPO).as_posix()


def versions(event_type: str) -> list[compat.Version]:
    """Oldest first; today's file last (it is also the newest commit's, unless edited)."""
    name = compat.schema_file(SCHEMAS, event_type).name
    found = list(reversed(compat.committed_versions(REPO, f"{REL}/{name}")))
    today = (SCHEMAS / name).read_text(encoding="utf-8")
    if not found or found[-1].text != today:
        found.append(compat.Version("today", today))
    return found


PAIRS = [
    pytest.param(event_type, earlier, later, id=f"{event_type}:{earlier}<={later}")
    for event_type in sorted(all_event_types())
    for later in range(len(versions(event_type)))
    for earlier in range(later + 1)
]


def compat_path(loc: tuple[Any, ...]) -> str:
    """pydantic's error location as the gate writes paths: ``members[].document.type``."""
    path = ""
    for step in loc:
        if isinstance(step, int):
            path += "[]"
        elif step not in {"str", "function-after"} and not str(step).startswith(
            ("CaseStatus", "constrained")
        ):
            path = f"{path}.{step}" if path else str(step)
    return path


def acknowledged(event_type: str, earlier: compat.Version, error: ValidationError) -> bool:
    """Every failure is at a place the gate lists as an acknowledged break against ``earlier``."""
    sha = earlier.label.split(" ")[0]
    places = {(t, v, p) for (t, v, p, _kind) in compat.ACKNOWLEDGED}
    return all(any((event_type, sha, p) in places for p in _candidates(e["loc"])) for e in error.errors())


def _candidates(loc: tuple[Any, ...]) -> set[str]:
    # The location runs through the generated model's union branches (``DocumentType``, ``str``):
    # every prefix that ends at a field name is a candidate for the gate's path.
    names = [s for s in loc if isinstance(s, int) or (isinstance(s, str) and s[:1].islower())]
    return {compat_path(tuple(names[:i])) for i in range(1, len(names) + 1)}


@pytest.mark.parametrize(("event_type", "earlier", "later"), PAIRS)
def test_a_reader_generated_from_an_earlier_schema_reads_every_later_record(
    event_type: str, earlier: int, later: int
) -> None:
    history = versions(event_type)
    reader = reader_for(history[earlier].text)
    failures: list[tuple[Any, ValidationError]] = []
    for record in records_of(json.loads(history[later].text)):
        try:
            reader.model_validate(record)
        except ValidationError as error:
            failures.append((record, error))
    unexplained = [(r, e) for r, e in failures if not acknowledged(event_type, history[earlier], e)]
    assert not unexplained, (
        f"{history[earlier].label} cannot read {history[later].label}: {unexplained[0][1]}"
    )


def test_the_acknowledged_breaks_are_real() -> None:
    # An acknowledgement that no longer describes a failure would hide the next real one.
    for event_type, sha, _path, _kind in compat.ACKNOWLEDGED:
        history = versions(event_type)
        (earlier,) = [v for v in history if v.label.startswith(sha)]
        reader = reader_for(earlier.text)
        today = records_of(json.loads(history[-1].text))
        refused = []
        for record in today:
            try:
                reader.model_validate(record)
            except ValidationError as error:
                refused.append(error)
        assert refused and all(acknowledged(event_type, earlier, e) for e in refused), (event_type, sha)


def test_a_status_added_later_is_read_as_an_unknown_value_not_refused() -> None:
    today = versions("org.corridor.case.status-changed.v1")[-1].text
    reader = reader_for(today)
    record = records_of(json.loads(today))[0] | {"status": "quarantined"}
    assert reader.model_validate(record).status == "quarantined"  # type: ignore[attr-defined]


def test_the_synthesised_records_cover_every_listed_value() -> None:
    schema = json.loads(versions("org.corridor.case.status-changed.v1")[-1].text)
    seen = {r["status"] for r in records_of(schema)}
    assert seen == set(schema["$defs"]["CaseStatus"]["enum"])
