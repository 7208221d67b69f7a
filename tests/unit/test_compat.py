"""The compatibility gate: BACKWARD_TRANSITIVE plus stable required fields (devkit/contracts_gate/compat.py)."""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field
from typer.testing import CliRunner

import contracts
from contracts import base
from contracts.status import CaseStatusChanged
from devkit.contracts_gate import compat
from devkit.contracts_gate.cli import app

# --- hand-written schema pairs ---------------------------------------------------------------------

BASE: dict[str, Any] = {
    "$defs": {
        "Document": {
            "type": "object",
            "properties": {
                "number": {"type": "string", "minLength": 1, "maxLength": 20},
                "expires_on": {"type": "string", "format": "date"},
            },
            "required": ["number", "expires_on"],
        },
        "Member": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "document": {"$ref": "#/$defs/Document"},
                "age": {"type": "integer", "minimum": 0},
            },
            "required": ["name", "document"],
        },
        "Status": {"type": "string", "enum": ["registered", "eligible", "departed"]},
    },
    "type": "object",
    "properties": {
        "case_id": {"type": "string", "format": "uuid", "description": "The case"},
        "status": {"$ref": "#/$defs/Status"},
        "members": {"type": "array", "items": {"$ref": "#/$defs/Member"}, "minItems": 1},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
    },
    "required": ["case_id", "status", "members"],
}


def changed(edit: Any) -> dict[str, Any]:
    schema = copy.deepcopy(BASE)
    edit(schema)
    return schema


def messages(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [str(c) for c in compat.breaking_changes(old, new)]


def kinds(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [c.kind for c in compat.breaking_changes(old, new)]


def test_identical_schemas_are_compatible() -> None:
    assert compat.breaking_changes(BASE, copy.deepcopy(BASE)) == []


def test_removed_required_field_breaks() -> None:
    new = changed(lambda s: (s["properties"].pop("status"), s["required"].remove("status")))
    assert messages(BASE, new) == ["status: required field removed"]
    assert kinds(BASE, new) == [compat.REQUIRED_REMOVED]


def test_changed_type_breaks_with_the_full_path() -> None:
    new = changed(lambda s: s["$defs"]["Document"]["properties"].update(expires_on={"type": "integer"}))
    assert messages(BASE, new) == ["members[].document.expires_on: type changed from string to integer"]


def test_narrowed_enum_breaks() -> None:
    new = changed(lambda s: s["$defs"]["Status"].update(enum=["registered", "eligible"]))
    assert messages(BASE, new) == ['status: enum narrowed: "departed" no longer allowed']


def test_enum_added_where_there_was_none_breaks() -> None:
    new = changed(lambda s: s["$defs"]["Member"]["properties"]["name"].update(enum=["a", "b"]))
    assert kinds(BASE, new) == [compat.ENUM_NARROWED]


def test_new_required_field_breaks() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"]["priority"] = {"type": "integer"}
        s["required"].append("priority")

    assert messages(BASE, changed(edit)) == [
        "priority: required field added: data written under the earlier version lacks it"
    ]


def test_optional_field_made_required_breaks() -> None:
    new = changed(lambda s: s["required"].append("note"))
    assert messages(BASE, new) == ["note: optional field made required"]


def test_required_field_made_optional_breaks() -> None:
    new = changed(lambda s: s["required"].remove("case_id"))
    assert messages(BASE, new) == ["case_id: required field made optional"]


def test_required_field_made_nullable_breaks() -> None:
    new = changed(
        lambda s: s["properties"].update(
            case_id={"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]}
        )
    )
    assert messages(BASE, new) == ["case_id: required field made nullable"]


def test_optional_field_no_longer_nullable_breaks() -> None:
    new = changed(lambda s: s["properties"].update(note={"type": "string"}))
    assert messages(BASE, new) == ["note: null is no longer accepted"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda s: s["$defs"]["Document"]["properties"]["number"].update(maxLength=10),
            "members[].document.number: maxLength lowered from 20 to 10",
        ),
        (
            lambda s: s["$defs"]["Document"]["properties"]["number"].update(minLength=3),
            "members[].document.number: minLength raised from 1 to 3",
        ),
        (
            lambda s: s["$defs"]["Member"]["properties"]["age"].update(minimum=18),
            "members[].age: lower bound tightened from >= 0 to >= 18",
        ),
        (
            lambda s: s["$defs"]["Member"]["properties"]["age"].update(exclusiveMaximum=130),
            "members[].age: upper bound < 130 added",
        ),
        (
            lambda s: s["properties"]["members"].update(minItems=2),
            "members: minItems raised from 1 to 2",
        ),
        (
            lambda s: s["properties"]["members"].update(maxItems=9),
            "members: maxItems 9 added",
        ),
        (
            lambda s: s["$defs"]["Member"]["properties"]["name"].update(pattern="^[A-Z]"),
            'members[].name: pattern "^[A-Z]" added',
        ),
        (
            lambda s: s["$defs"]["Document"]["properties"]["expires_on"].update(format="date-time"),
            'members[].document.expires_on: format changed from "date" to "date-time"',
        ),
    ],
)
def test_tightened_constraint_breaks(edit: Any, expected: str) -> None:
    new = changed(edit)
    assert messages(BASE, new) == [expected]
    assert kinds(BASE, new) == [compat.CONSTRAINT_TIGHTENED]


def test_removed_nested_required_field_in_array_of_objects_breaks() -> None:
    def edit(s: dict[str, Any]) -> None:
        del s["$defs"]["Document"]["properties"]["expires_on"]
        s["$defs"]["Document"]["required"] = ["number"]

    assert messages(BASE, changed(edit)) == ["members[].document.expires_on: required field removed"]


def test_closing_the_content_model_breaks() -> None:
    new = changed(lambda s: s["$defs"]["Member"].update(additionalProperties=False))
    assert kinds(BASE, new) == [compat.CONTENT_MODEL_CLOSED]


def test_an_unanalysed_keyword_added_counts_as_breaking() -> None:
    new = changed(lambda s: s["properties"]["note"].update({"not": {"const": "x"}}))
    assert kinds(BASE, new) == [compat.UNANALYSED]


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda s: s["properties"].update(reason={"type": "string"}), id="optional field added"),
        pytest.param(lambda s: s["properties"].pop("note"), id="optional field removed"),
        pytest.param(
            lambda s: s["properties"]["case_id"].update(description="Other words"), id="description"
        ),
        pytest.param(
            lambda s: s["properties"]["case_id"].update(examples=["x"], title="T"), id="annotations"
        ),
        pytest.param(
            lambda s: s["$defs"]["Member"]["properties"]["age"].pop("minimum"), id="minimum dropped"
        ),
        pytest.param(
            lambda s: s["$defs"]["Document"]["properties"]["number"].update(maxLength=40),
            id="maxLength raised",
        ),
        pytest.param(
            lambda s: s["$defs"]["Member"]["properties"]["age"].update(type="number"), id="int→number"
        ),
        pytest.param(
            lambda s: s["$defs"]["Member"]["properties"].update(
                age={"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}
            ),
            id="optional field made nullable",
        ),
        pytest.param(
            lambda s: s["properties"].update(
                members={"allOf": [{"type": "array", "items": {"$ref": "#/$defs/Member"}, "minItems": 1}]}
            ),
            id="allOf wrapper",
        ),
    ],
)
def test_compatible_changes_pass(edit: Any) -> None:
    assert messages(BASE, changed(edit)) == []


OPEN_BASE = changed(
    lambda s: s["properties"].update(status={"anyOf": [{"$ref": "#/$defs/Status"}, {"type": "string"}]})
)


def test_a_closed_enum_widened_breaks_readers_generated_from_the_earlier_schema() -> None:
    new = changed(lambda s: s["$defs"]["Status"]["enum"].append("arrived"))
    assert kinds(BASE, new) == [compat.CLOSED_ENUM_WIDENED]
    assert "a reader generated from the earlier schema rejects it" in messages(BASE, new)[0]


def test_opening_an_enum_is_compatible_but_not_together_with_a_new_value() -> None:
    assert messages(BASE, OPEN_BASE) == []
    opened_and_widened = copy.deepcopy(OPEN_BASE)
    opened_and_widened["$defs"]["Status"]["enum"].append("arrived")
    assert kinds(BASE, opened_and_widened) == [compat.CLOSED_ENUM_WIDENED]


def test_an_open_enum_widened_is_noted_for_consumers() -> None:
    new = copy.deepcopy(OPEN_BASE)
    new["$defs"]["Status"]["enum"].append("arrived")
    comparison = compat.compare(OPEN_BASE, new)
    assert comparison.breaking == []
    assert [n.kind for n in comparison.notes] == [compat.ENUM_WIDENED]
    assert "consumers must upgrade" in str(comparison.notes[0])


def test_an_open_enum_narrowed_still_breaks_our_own_readers() -> None:
    new = copy.deepcopy(OPEN_BASE)
    new["$defs"]["Status"]["enum"].remove("departed")
    assert messages(OPEN_BASE, new) == ['status: enum narrowed: "departed" no longer allowed']


def test_named_enumerations_are_open_in_event_schemas_and_literals_closed() -> None:
    generated = schema(V1)
    assert generated["properties"]["colour"]["anyOf"] == [{"$ref": "#/$defs/Colour"}, base.OPEN_VALUE]
    assert generated["properties"]["direction"]["enum"] == ["exit", "entry"]
    assert "anyOf" not in generated["properties"]["direction"]


def test_a_field_removed_then_readded_with_another_type_breaks_against_the_first() -> None:
    v2 = changed(lambda s: s["properties"].pop("note"))
    v3 = changed(lambda s: s["properties"].update(note={"anyOf": [{"type": "integer"}, {"type": "null"}]}))
    assert messages(BASE, v2) == [] and messages(v2, v3) == []
    assert messages(BASE, v3) == ["note: type changed from string to integer"]


# --- real pydantic models ---------------------------------------------------------------------------


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class FewerColours(StrEnum):
    RED = "red"
    GREEN = "green"


class MoreColours(StrEnum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"
    AMBER = "amber"


class Doc(BaseModel):
    number: str = Field(min_length=1, max_length=20)
    expires_on: date


class Member(BaseModel):
    name: str
    document: Doc


class V1(BaseModel):
    case_id: uuid.UUID
    colour: Colour
    direction: Literal["exit", "entry"]
    members: list[Member]
    note: str | None = None


class V2OptionalAdded(V1):
    reason: str | None = Field(default=None, description="Why")


class V2Described(BaseModel):
    case_id: uuid.UUID = Field(description="Pseudonymous case reference")
    colour: MoreColours
    direction: Literal["exit", "entry"]
    members: list[Member]
    note: str | None = Field(default=None, examples=["hello"])


class V2RequiredRemoved(BaseModel):
    colour: Colour
    direction: Literal["exit", "entry"]
    members: list[Member]
    note: str | None = None


class V2LiteralWidened(V1):
    direction: Literal["exit", "entry", "transit"]  # type: ignore[assignment]


class V2TypeChanged(V1):
    case_id: int  # type: ignore[assignment]


class V2EnumNarrowed(V1):
    colour: FewerColours  # type: ignore[assignment]


class V2LiteralNarrowed(V1):
    direction: Literal["exit"]  # type: ignore[assignment]


class V2RequiredAdded(V1):
    priority: int


class V2RequiredMadeOptional(V1):
    case_id: uuid.UUID | None = None  # type: ignore[assignment]


class ShortDoc(BaseModel):
    number: str = Field(min_length=1, max_length=9)
    expires_on: date


class MemberShortDoc(BaseModel):
    name: str
    document: ShortDoc


class V2Tightened(V1):
    members: list[MemberShortDoc]  # type: ignore[assignment]


class MemberWithoutName(BaseModel):
    document: Doc


class V2NestedRemoved(V1):
    members: list[MemberWithoutName]  # type: ignore[assignment]


class DocDateTime(BaseModel):
    number: str = Field(min_length=1, max_length=20)
    expires_on: int


class MemberIntExpiry(BaseModel):
    name: str
    document: DocDateTime


class V2NestedTypeChanged(V1):
    members: list[MemberIntExpiry]  # type: ignore[assignment]


def schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="serialization", schema_generator=base.EventJsonSchema)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (V2RequiredRemoved, ["case_id: required field removed"]),
        (V2TypeChanged, ["case_id: type changed from string to integer"]),
        (V2EnumNarrowed, ['colour: enum narrowed: "blue" no longer allowed']),
        (V2LiteralNarrowed, ['direction: enum narrowed: "entry" no longer allowed']),
        (
            V2LiteralWidened,
            [
                'direction: closed enum widened with "transit": a reader generated from the earlier '
                "schema rejects it (open the enumeration in one release, add values in a later one; "
                "or a new version)"
            ],
        ),
        (
            V2RequiredAdded,
            ["priority: required field added: data written under the earlier version lacks it"],
        ),
        (V2RequiredMadeOptional, ["case_id: required field made optional"]),
        (V2Tightened, ["members[].document.number: maxLength lowered from 20 to 9"]),
        (V2NestedRemoved, ["members[].name: required field removed"]),
        (V2NestedTypeChanged, ["members[].document.expires_on: type changed from string to integer"]),
    ],
)
def test_pydantic_model_changes_that_break(new: type[BaseModel], expected: list[str]) -> None:
    assert messages(schema(V1), schema(new)) == expected


@pytest.mark.parametrize("new", [V1, V2OptionalAdded, V2Described])
def test_pydantic_model_changes_that_are_compatible(new: type[BaseModel]) -> None:
    assert messages(schema(V1), schema(new)) == []


class Tree(BaseModel):
    name: str
    children: list[Tree] = Field(default_factory=list)
    parent: Tree | None = None


class TreeV2(BaseModel):
    name: str = Field(max_length=5)
    children: list[TreeV2] = Field(default_factory=list)
    parent: TreeV2 | None = None


def test_recursive_models_terminate() -> None:
    assert messages(schema(Tree), schema(Tree)) == []
    assert "name: maxLength 5 added" in messages(schema(Tree), schema(TreeV2))


def test_the_real_status_event_gaining_a_required_field_breaks() -> None:
    class StatusWithTenant(CaseStatusChanged):  # inherits event_type, so it registers nothing
        tenant: str

    assert StatusWithTenant not in contracts.all_event_types().values()
    current = compat.schema_for(CaseStatusChanged)
    assert messages(current, compat.schema_for(StatusWithTenant)) == [
        "tenant: required field added: data written under the earlier version lacks it"
    ]


# --- the git history ----------------------------------------------------------------------------------

EVENT = "org.example.thing.v1"


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def commit_schema(root: Path, event_type: str, schema: dict[str, Any], message: str) -> None:
    path = root / "contracts" / "schemas" / f"{event_type}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(compat.render(schema), encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    return tmp_path


def test_compat_passes_compatible_history_then_fails_naming_the_field(repo: Path) -> None:
    schema_dir = repo / "contracts" / "schemas"
    v1 = copy.deepcopy(BASE)
    v2 = changed(lambda s: s["properties"].update(reason={"type": "string"}))  # optional field added
    v3 = changed(  # compatible with nothing: expires_on becomes an integer
        lambda s: s["$defs"]["Document"]["properties"].update(expires_on={"type": "integer"})
    )

    assert compat.check_history(repo, schema_dir, {EVENT: v1})[0].status == "new"

    commit_schema(repo, EVENT, v1, "v1")
    commit_schema(repo, EVENT, v2, "v2: optional reason")
    [report] = compat.check_history(repo, schema_dir, {EVENT: v2})
    assert report.status == "compatible"
    assert len(report.versions) == 2 and not report.breaking
    assert [c.kind for _, c in report.notes] == [compat.FIELD_ADDED]

    commit_schema(repo, EVENT, v3, "v3: integer expiry")
    [report] = compat.check_history(repo, schema_dir, {EVENT: v3})
    assert report.status == "breaking"
    found = {str(change) for _, change in report.breaking}
    assert found == {"members[].document.expires_on: type changed from string to integer"}
    assert len(report.breaking) == 2  # against v1 and against v2; v3 itself is the current schema


def test_compat_is_transitive_over_history(repo: Path) -> None:
    schema_dir = repo / "contracts" / "schemas"
    v2 = changed(lambda s: s["properties"].pop("note"))  # optional field removed: fine
    v3 = changed(
        lambda s: s["properties"].update(note={"anyOf": [{"type": "integer"}, {"type": "null"}]})
    )  # fine against v2 only
    commit_schema(repo, EVENT, BASE, "v1")
    commit_schema(repo, EVENT, v2, "v2")
    [report] = compat.check_history(repo, schema_dir, {EVENT: v3})
    assert [str(c) for _, c in report.breaking] == ["note: type changed from string to integer"]


def test_an_uncommitted_edit_is_compared_too(repo: Path) -> None:
    schema_dir = repo / "contracts" / "schemas"
    commit_schema(repo, EVENT, BASE, "v1")
    widened = changed(lambda s: s["$defs"]["Status"]["enum"].append("arrived"))
    (schema_dir / f"{EVENT}.json").write_text(compat.render(widened), encoding="utf-8")
    [report] = compat.check_history(repo, schema_dir, {EVENT: BASE})
    assert report.versions[0] == "working tree"
    assert [str(c) for _, c in report.breaking] == ['status: enum narrowed: "arrived" no longer allowed']


def test_a_vanished_event_type_is_breaking(repo: Path) -> None:
    schema_dir = repo / "contracts" / "schemas"
    commit_schema(repo, EVENT, BASE, "v1")
    (schema_dir / f"{EVENT}.json").unlink()
    git(repo, "commit", "-q", "-am", "drop it")
    [report] = compat.check_history(repo, schema_dir, {})
    assert [str(c) for _, c in report.breaking] == [
        "(event): event type removed; publish a new version instead"
    ]


def test_cli_compat_fails_against_an_earlier_committed_version(repo: Path) -> None:
    """End to end on the real models: history says status-changed once required a `tenant`."""
    schema_dir = repo / "contracts" / "schemas"
    event_type = CaseStatusChanged.event_type
    earlier = compat.schema_for(CaseStatusChanged)
    earlier["properties"]["tenant"] = {"type": "string"}
    earlier["required"].append("tenant")
    commit_schema(repo, event_type, earlier, "status v1 with tenant")

    runner = CliRunner()
    result = runner.invoke(app, ["compat", "--repo", str(repo), "--schema-dir", str(schema_dir)])
    assert result.exit_code == 1, result.output
    assert "tenant: required field removed" in result.output
    assert f"✗ {event_type}: BREAKING" in result.output
    for other in set(contracts.all_event_types()) - {event_type}:
        assert f"✓ {other}: new event type" in result.output

    commit_schema(repo, event_type, compat.schema_for(CaseStatusChanged), "status v1 without tenant")
    git(repo, "rm", "-q", "--cached", f"contracts/schemas/{event_type}.json")
    git(repo, "commit", "-q", "-m", "forget")
    result = runner.invoke(app, ["compat", "--repo", str(repo), "--schema-dir", str(schema_dir)])
    assert result.exit_code == 1, "the earlier version is still in history"


def test_cli_check_and_export(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["check", "--schema-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "schemas out of date: run `make contracts`" in result.output

    result = runner.invoke(app, ["export", "--schema-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(
        f"{t}.json" for t in contracts.all_event_types()
    )
    assert runner.invoke(app, ["check", "--schema-dir", str(tmp_path)]).exit_code == 0

    stale = tmp_path / f"{CaseStatusChanged.event_type}.json"
    data = json.loads(stale.read_text())
    data["properties"]["members"]["minimum"] = 2
    stale.write_text(compat.render(data))
    result = runner.invoke(app, ["check", "--schema-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert '"minimum": 2' in result.output


def test_a_shallow_clone_is_refused_rather_than_silently_weaker(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    commit_schema(repo, EVENT, BASE, "v1")
    commit_schema(repo, EVENT, changed(lambda s: s["properties"].update(reason={"type": "string"})), "v2")
    shallow = tmp_path_factory.mktemp("clone") / "shallow"
    git(shallow.parent, "clone", "-q", "--depth", "1", repo.as_uri(), str(shallow))
    with pytest.raises(compat.HistoryError, match="shallow clone"):
        compat.check_history(shallow, shallow / "contracts" / "schemas", {EVENT: BASE})
    [report] = compat.check_history(
        shallow, shallow / "contracts" / "schemas", {EVENT: BASE}, allow_shallow=True
    )
    assert len(report.versions) == 1  # only the tip is there


def test_a_renamed_schema_file_is_a_removed_event_type_not_a_continuation(repo: Path) -> None:
    schema_dir = repo / "contracts" / "schemas"
    commit_schema(repo, EVENT, BASE, "v1")
    renamed = "org.example.thing.v2"
    git(repo, "mv", f"contracts/schemas/{EVENT}.json", f"contracts/schemas/{renamed}.json")
    git(repo, "commit", "-q", "-m", "rename")
    reports = {r.event_type: r for r in compat.check_history(repo, schema_dir, {renamed: BASE})}
    assert reports[EVENT].status == "breaking"  # v1 vanished
    assert len(reports[renamed].versions) == 1  # its own history only, not v1's
    assert reports[renamed].status == "compatible"
