"""Schema compatibility for Corridor's events: the rule, a checker, and the committed history.

Every event type (``org.corridor.case.status-changed.v1``) has one JSON Schema, generated from its
pydantic model and committed as ``contracts/schemas/<event type>.json``. A change to a model must
keep the generated schema compatible with every version of that file ever committed; a change that
cannot must become a new event type (``...v2``) with a new model, never an edit.

The rule: BACKWARD_TRANSITIVE, plus required fields are stable
--------------------------------------------------------------

* BACKWARD_TRANSITIVE: data written under *any* earlier version must be valid under the new one,
  because consumers upgrade first and topics keep old records (replays, dead-letter re-drives).
  So a new schema may not add a required field, change a type (widening ``integer`` to ``number``
  and accepting ``null`` are fine), narrow an enum or add one where there was none, tighten a
  constraint (``minLength``/``minimum``/``minItems`` up, ``maxLength``/``maximum``/``maxItems``
  down, ``pattern``/``format``/``multipleOf`` added or changed, ``uniqueItems`` switched on), or
  stop accepting ``null``.
* Plus: a required field is never removed, made optional, or made nullable. Pure BACKWARD would
  allow it (the new reader ignores the field), but the public status stream has external consumers
  that rely on required fields being present and non-null, and they do not upgrade on our schedule.

Compatible: adding an optional field, removing an optional field, widening an enum, loosening a
constraint, changing a title, description, example or default.

The content model
-----------------

Readers are open: every model ignores fields it does not know (``extra="ignore"``), so the schemas
leave ``additionalProperties`` unset, and switching it to ``false`` is itself a breaking change.
Producers are closed: they only ever emit the fields their model declares (pydantic serialises
declared fields only). The checker therefore reads an *earlier* schema as a description of what was
written (declared fields only) and the *new* schema as a reader. That is why adding an optional
field is compatible: with a fully open writer a field ``x`` could already have been on the wire with
any type, and no field could ever be added safely.

Which schema: the serialisation schema (``model_json_schema(mode="serialization")``), because what
is on the wire is what the producer serialises. Fields with defaults are not ``required`` in it (an
older producer may not have sent them); pydantic validation accepts at least what it serialises.

Keywords this checker does not analyse (``not``, ``if``/``then``/``else``, ``patternProperties``,
``propertyNames``, ``unevaluatedProperties`` ...) are compared for equality: adding or changing one
is reported as breaking so that a human decides; removing one only loosens the schema. Annotations
(``title``, ``description``, ``examples``, ``default``, ``deprecated``, ``x-*``) are ignored.
"""

from __future__ import annotations

import difflib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import contracts
from contracts.base import Event, EventJsonSchema

RULE = "BACKWARD_TRANSITIVE, and a required field is never removed, made optional or made nullable"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# The published contract: the schema files ship with the models.
SCHEMA_DIR = Path(contracts.__file__).resolve().parent / "schemas"

Schema = dict[str, Any]

# Kinds of breaking change (Change.kind).
REQUIRED_ADDED = "required-added"
REQUIRED_REMOVED = "required-removed"
REQUIRED_WEAKENED = "required-weakened"
TYPE_CHANGED = "type-changed"
ENUM_NARROWED = "enum-narrowed"
CLOSED_ENUM_WIDENED = "closed-enum-widened"
CONSTRAINT_TIGHTENED = "constraint-tightened"
CONTENT_MODEL_CLOSED = "content-model-closed"
UNANALYSED = "unanalysed-keyword"
EVENT_TYPE_REMOVED = "event-type-removed"
UNREADABLE = "unreadable-version"
# Kinds of compatible change worth telling (notes).
FIELD_ADDED = "field-added"
FIELD_REMOVED = "field-removed"
ENUM_WIDENED = "enum-widened"
TYPE_WIDENED = "type-widened"

_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$comment",
        "$schema",
        "$id",
        "$anchor",
        "discriminator",  # OpenAPI hint; the variants' own consts carry the constraint
    }
)
_ANALYSED = frozenset(
    {
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "uniqueItems",
        "pattern",
        "format",
        "$ref",
        "$defs",
        "definitions",
        "allOf",
        "anyOf",
        "oneOf",
    }
)
_LOWER_LIMITS = ("minLength", "minItems", "minProperties")
_UPPER_LIMITS = ("maxLength", "maxItems", "maxProperties")


class SchemaError(ValueError):
    """A schema the checker cannot read (a non-local or dangling ``$ref``)."""


@dataclass(frozen=True)
class Change:
    """One difference between two schemas, at a JSON path (``members[].document.expires_on``)."""

    path: str
    message: str
    kind: str

    def __str__(self) -> str:
        return f"{self.path or '(event)'}: {self.message}"


@dataclass
class Comparison:
    breaking: list[Change] = field(default_factory=list)
    notes: list[Change] = field(default_factory=list)

    @property
    def compatible(self) -> bool:
        return not self.breaking


def compare(old: Schema, new: Schema) -> Comparison:
    """Compare an earlier schema (what was written) with a new one (the reader) under ``RULE``."""
    checker = _Checker(old, new, set())
    checker.compare(old, new, "")
    # A keyword next to an anyOf applies to every variant: report each change once.
    return Comparison(list(dict.fromkeys(checker.breaking)), list(dict.fromkeys(checker.notes)))


def breaking_changes(old: Schema, new: Schema) -> list[Change]:
    return compare(old, new).breaking


# --- the checker ----------------------------------------------------------------------------------


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_of_type(value: Any, type_: str) -> bool:
    actual = _json_type(value)
    return actual == type_ or (type_ == "number" and actual == "integer")


def _resolve_pointer(root: Schema, ref: str) -> Any:
    if not ref.startswith("#"):
        raise SchemaError(f"only local $ref is supported, got {ref!r}")
    node: Any = root
    for raw in ref[1:].split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise SchemaError(f"$ref {ref!r} does not resolve") from exc
    return node


def _deref(root: Schema, node: Any) -> Any:
    """Follow ``$ref`` (keeping sibling keywords, which 2020-12 allows next to a ``$ref``)."""
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            raise SchemaError(f"$ref {ref!r} refers to itself")
        seen.add(ref)
        target = _resolve_pointer(root, ref)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if siblings and isinstance(target, dict):
            node = {**target, **siblings}
        elif siblings and target is False:
            node = False
        else:
            node = {} if target is True else target
    return node


def _merge(base: Schema, part: Schema) -> Schema:
    """Conjunction of two flat schemas, as far as ``allOf`` from pydantic needs it."""
    out = dict(base)
    for key, value in part.items():
        if key == "properties":
            out["properties"] = {**out.get("properties", {}), **value}
        elif key == "required":
            out["required"] = list(dict.fromkeys([*out.get("required", []), *value]))
        else:
            out[key] = value
    return out


def _variants(root: Schema, node: Any) -> list[Schema]:
    """The alternatives a schema allows, each a flat schema of one JSON type (or of any type).

    ``$ref`` is resolved, ``allOf`` merged, ``anyOf``/``oneOf`` and ``type: [...]`` split; an enum or
    const becomes ``enum`` values of the variant's type. ``Optional[X]`` is ``X`` plus a null variant.
    """
    if node is True:
        return [{}]
    if node is False:
        return []
    node = _deref(root, node)
    if not isinstance(node, dict):
        return [{}] if node is not False else []
    if "allOf" in node:
        combos: list[Schema] = [{k: v for k, v in node.items() if k != "allOf"}]
        for part in node["allOf"]:
            combos = [_merge(c, p) for c in combos for p in _variants(root, part)]
        return [v for c in combos for v in _variants(root, c)]
    for combinator in ("anyOf", "oneOf"):
        if combinator in node:
            base = {k: v for k, v in node.items() if k != combinator}
            out: list[Schema] = []
            for option in node[combinator]:
                for variant in _variants(root, option):
                    out.extend(_variants(root, _merge(base, variant)))
            return out
    return _split_by_type(node)


def _split_by_type(node: Schema) -> list[Schema]:
    values: list[Any] | None = None
    if "enum" in node:
        values = list(node["enum"])
    elif "const" in node:
        values = [node["const"]]
    declared = node.get("type")
    if isinstance(declared, str):
        types = [declared]
    elif isinstance(declared, list):
        types = list(dict.fromkeys(declared))
    elif values is not None:
        types = list(dict.fromkeys(_json_type(v) for v in values))
    else:
        return [node]
    out = []
    for type_ in types:
        variant = {k: v for k, v in node.items() if k != "const"}
        variant["type"] = type_
        if values is not None:
            variant["enum"] = [v for v in values if _is_of_type(v, type_)]
        out.append(variant)
    return out


def _open_string(variant: Schema) -> bool:
    """Any string at all: the open alternative of an open enumeration."""
    return variant.get("type") == "string" and not (set(variant) & (_ANALYSED - {"type"}))


def _type_name(variant: Schema) -> str:
    return str(variant.get("type", "any"))


def _accepts_type(new: Schema, old: Schema) -> bool:
    new_type, old_type = new.get("type"), old.get("type")
    if new_type is None:
        return True
    if old_type is None:
        return False
    return bool(new_type == old_type or (old_type == "integer" and new_type == "number"))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


Bound = tuple[Fraction, bool]  # (value, exclusive)


def _bound(variant: Schema, inclusive_key: str, exclusive_key: str, lower: bool) -> Bound | None:
    found: list[Bound] = []
    for key, exclusive in ((inclusive_key, False), (exclusive_key, True)):
        value = variant.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            found.append((Fraction(str(value)), exclusive))
    if not found:
        return None
    if lower:  # the tightest lower bound: the largest, exclusive before inclusive at a tie
        return max(found, key=lambda b: (b[0], b[1]))
    return min(found, key=lambda b: (b[0], not b[1]))


def _show_bound(bound: Bound, lower: bool) -> str:
    value, exclusive = bound
    number = int(value) if value.denominator == 1 else float(value)
    op = (">" if exclusive else ">=") if lower else ("<" if exclusive else "<=")
    return f"{op} {number}"


class _Checker:
    def __init__(self, old_root: Schema, new_root: Schema, active: set[tuple[int, int]]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.active = active  # node pairs being compared further up: recursion in recursive models
        self.breaking: list[Change] = []
        self.notes: list[Change] = []

    def _break(self, path: str, message: str, kind: str) -> None:
        self.breaking.append(Change(path, message, kind))

    def _note(self, path: str, message: str, kind: str) -> None:
        self.notes.append(Change(path, message, kind))

    def compare(self, old: Any, new: Any, path: str) -> None:
        if not (isinstance(old, dict) and isinstance(new, dict)):
            self._compare(old, new, path)
            return
        pair = (id(old), id(new))
        if pair in self.active:
            return
        self.active.add(pair)
        try:
            self._compare(old, new, path)
        finally:
            self.active.discard(pair)

    def _compare(self, old: Any, new: Any, path: str) -> None:
        new_variants = _variants(self.new_root, new)
        old_variants = _variants(self.old_root, old)
        self._compare_enumeration(old_variants, new_variants, path)
        for old_variant in old_variants:
            candidates = [n for n in new_variants if _accepts_type(n, old_variant)]
            if not candidates:
                if old_variant.get("type") == "null":
                    self._break(path, "null is no longer accepted", TYPE_CHANGED)
                else:
                    names = list(dict.fromkeys(_type_name(n) for n in new_variants))
                    shown = [n for n in names if n != "null"] or names  # nullability is not the news
                    accepted = " | ".join(shown) or "nothing"
                    self._break(
                        path, f"type changed from {_type_name(old_variant)} to {accepted}", TYPE_CHANGED
                    )
                continue
            best: _Checker | None = None
            for candidate in candidates:
                trial = _Checker(self.old_root, self.new_root, self.active)
                trial._compare_variant(old_variant, candidate, path)
                if best is None or len(trial.breaking) < len(best.breaking):
                    best = trial
                if not trial.breaking:
                    break
            assert best is not None
            self.breaking.extend(best.breaking)
            self.notes.extend(best.notes)

    def _compare_enumeration(self, old: list[Schema], new: list[Schema], path: str) -> None:
        """The values an enumeration lists, across its variants. A value removed breaks readers of
        old records (our models validate the listed values, whatever the schema's open alternative
        says). A value added breaks, the other way round, a reader generated from the earlier schema
        (a mission's client) unless that schema already said the set is open (``contracts.base``)."""
        before = [v for variant in old for v in variant.get("enum", ())]
        after = [v for variant in new for v in variant.get("enum", ())]
        if not before or not after:
            return  # an enum added where there was none is the variants' business; one dropped loosens
        before_keys, after_keys = {_key(v) for v in before}, {_key(v) for v in after}
        removed = [v for v in dict.fromkeys(before) if _key(v) not in after_keys]
        added = [v for v in dict.fromkeys(after) if _key(v) not in before_keys]
        if removed:
            shown = ", ".join(_show(v) for v in removed)
            self._break(path, f"enum narrowed: {shown} no longer allowed", ENUM_NARROWED)
        if not added:
            return
        shown = ", ".join(_show(v) for v in added)
        if any(_open_string(v) for v in old):
            self._note(
                path,
                f"enum widened with {shown}: our consumers must upgrade before producers send it; "
                "readers generated from the earlier schema keep it as an unknown value",
                ENUM_WIDENED,
            )
        else:
            self._break(
                path,
                f"closed enum widened with {shown}: a reader generated from the earlier schema rejects "
                "it (open the enumeration in one release, add values in a later one; or a new version)",
                CLOSED_ENUM_WIDENED,
            )

    def _compare_variant(self, old: Schema, new: Schema, path: str) -> None:
        if old.get("type") == "integer" and new.get("type") == "number":
            self._note(path, "type widened from integer to number", TYPE_WIDENED)
        self._compare_values(old, new, path)
        self._compare_limits(old, new, path)
        for keyword in ("pattern", "format"):
            before, after = old.get(keyword), new.get(keyword)
            if after is not None and after != before:
                if before is None:
                    self._break(path, f"{keyword} {_show(after)} added", CONSTRAINT_TIGHTENED)
                else:
                    self._break(
                        path,
                        f"{keyword} changed from {_show(before)} to {_show(after)}",
                        CONSTRAINT_TIGHTENED,
                    )
        # Object and array keywords apply to objects and arrays only; a variant without a type is any.
        if old.get("type") in ("object", None) and new.get("type") in ("object", None):
            self._compare_objects(old, new, path)
        if old.get("type") in ("array", None) and new.get("type") in ("array", None):
            self._compare_arrays(old, new, path)
        self._compare_unanalysed(old, new, path)

    def _compare_values(self, old: Schema, new: Schema, path: str) -> None:
        # Values removed or added are compared across all variants (_compare_enumeration).
        new_values = new.get("enum")
        if new_values is not None and old.get("enum") is None:
            shown = ", ".join(_show(v) for v in new_values)
            self._break(path, f"enum added where there was none: only {shown} allowed now", ENUM_NARROWED)

    def _compare_limits(self, old: Schema, new: Schema, path: str) -> None:
        for key in _LOWER_LIMITS:
            before, after = old.get(key), new.get(key)
            if after is not None and after > (before if before is not None else 0):
                change = f"raised from {before} to {after}" if before is not None else f"{after} added"
                self._break(path, f"{key} {change}", CONSTRAINT_TIGHTENED)
        for key in _UPPER_LIMITS:
            before, after = old.get(key), new.get(key)
            if after is not None and (before is None or after < before):
                change = f"lowered from {before} to {after}" if before is not None else f"{after} added"
                self._break(path, f"{key} {change}", CONSTRAINT_TIGHTENED)
        for lower, inclusive, exclusive in (
            (True, "minimum", "exclusiveMinimum"),
            (False, "maximum", "exclusiveMaximum"),
        ):
            before_b = _bound(old, inclusive, exclusive, lower)
            after_b = _bound(new, inclusive, exclusive, lower)
            if after_b is None or before_b == after_b:
                continue
            if lower:
                tighter = (
                    before_b is None or after_b[0] > before_b[0] or (after_b[0] == before_b[0] and after_b[1])
                )
            else:
                tighter = (
                    before_b is None or after_b[0] < before_b[0] or (after_b[0] == before_b[0] and after_b[1])
                )
            if tighter:
                side = "lower" if lower else "upper"
                shown = _show_bound(after_b, lower)
                change = (
                    f"tightened from {_show_bound(before_b, lower)} to {shown}"
                    if before_b is not None
                    else f"{shown} added"
                )
                self._break(path, f"{side} bound {change}", CONSTRAINT_TIGHTENED)
        before_m, after_m = old.get("multipleOf"), new.get("multipleOf")
        if after_m is not None and after_m != before_m:
            divides = before_m is not None and Fraction(str(before_m)) % Fraction(str(after_m)) == 0
            if not divides:
                change = (
                    f"changed from {before_m} to {after_m}" if before_m is not None else f"{after_m} added"
                )
                self._break(path, f"multipleOf {change}", CONSTRAINT_TIGHTENED)
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            self._break(path, "uniqueItems switched on", CONSTRAINT_TIGHTENED)

    def _accepts_null(self, root: Schema, node: Any) -> bool:
        return any(v.get("type") in (None, "null") for v in _variants(root, node))

    def _compare_objects(self, old: Schema, new: Schema, path: str) -> None:
        old_props: dict[str, Any] = old.get("properties", {})
        new_props: dict[str, Any] = new.get("properties", {})
        old_required: list[str] = list(old.get("required", []))
        new_required: list[str] = list(new.get("required", []))
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)

        for name in new_required:
            if name in old_required:
                continue
            if name in old_props:
                self._break(_join(path, name), "optional field made required", REQUIRED_ADDED)
            else:
                self._break(
                    _join(path, name),
                    "required field added: data written under the earlier version lacks it",
                    REQUIRED_ADDED,
                )
        for name in old_required:
            where = _join(path, name)
            if name in new_required:
                if name in new_props and name in old_props:
                    if self._accepts_null(self.new_root, new_props[name]) and not self._accepts_null(
                        self.old_root, old_props[name]
                    ):
                        self._break(where, "required field made nullable", REQUIRED_WEAKENED)
            elif name in new_props:
                self._break(where, "required field made optional", REQUIRED_WEAKENED)
            else:
                self._break(where, "required field removed", REQUIRED_REMOVED)

        for name, old_schema in old_props.items():
            where = _join(path, name)
            if name in new_props:
                self.compare(old_schema, new_props[name], where)
                continue
            if name not in old_required:
                self._note(where, "optional field removed", FIELD_REMOVED)
            # Old data may still carry the field: the new reader must accept it as an extra.
            if new_extra is False and old_extra is False:
                self._break(
                    where,
                    "field removed while additionalProperties is false: old data carrying it is rejected",
                    CONTENT_MODEL_CLOSED,
                )
            elif isinstance(new_extra, dict):
                self.compare(old_schema, new_extra, where)
        for name, new_schema in new_props.items():
            if name in old_props:
                continue
            where = _join(path, name)
            if name not in new_required:
                self._note(where, "optional field added", FIELD_ADDED)
            # Producers only emit declared fields, unless the old schema was a map with typed values.
            if isinstance(old_extra, dict):
                self.compare(old_extra, new_schema, where)

        if new_extra is False and old_extra is not False:
            self._break(
                path,
                "additionalProperties became false: readers must ignore unknown fields (open content model)",
                CONTENT_MODEL_CLOSED,
            )
        elif isinstance(old_extra, dict) and new_extra is not False:
            self.compare(old_extra, new_extra, f"{path}{{}}")

    def _compare_arrays(self, old: Schema, new: Schema, path: str) -> None:
        old_prefix: list[Any] = old.get("prefixItems", [])
        new_prefix: list[Any] = new.get("prefixItems", [])
        old_items = old.get("items", True)
        new_items = new.get("items", True)
        for i in range(max(len(old_prefix), len(new_prefix))):
            before = old_prefix[i] if i < len(old_prefix) else old_items
            after = new_prefix[i] if i < len(new_prefix) else new_items
            self.compare(before, after, f"{path}[{i}]")
        if "items" in old or "items" in new:
            self.compare(old_items, new_items, f"{path}[]")

    def _compare_unanalysed(self, old: Schema, new: Schema, path: str) -> None:
        for keyword in new:
            if keyword in _ANALYSED or keyword in _ANNOTATIONS or keyword.startswith("x-"):
                continue
            if keyword not in old:
                self._break(
                    path,
                    f"`{keyword}` added; this checker does not analyse it, so it counts as breaking",
                    UNANALYSED,
                )
            elif _key(old[keyword]) != _key(new[keyword]):
                self._break(
                    path,
                    f"`{keyword}` changed; this checker does not analyse it, so it counts as breaking",
                    UNANALYSED,
                )


# --- generating the committed schemas -------------------------------------------------------------


def schema_id(event_type: str) -> str:
    return f"urn:corridor:schema:{event_type}"


def schema_for(model: type[Event]) -> Schema:
    """The JSON Schema of an event as it travels: what the producer serialises."""
    schema = model.model_json_schema(mode="serialization", schema_generator=EventJsonSchema)
    schema["$schema"] = SCHEMA_DIALECT
    schema["$id"] = schema_id(model.event_type)
    schema["x-cloudevents-type"] = model.event_type
    return schema


def generate(models: Mapping[str, type[Event]]) -> dict[str, Schema]:
    return {event_type: schema_for(model) for event_type, model in sorted(models.items())}


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_file(schema_dir: Path, event_type: str) -> Path:
    return schema_dir / f"{event_type}.json"


def event_type_of(file_name: str) -> str:
    return file_name.removesuffix(".json")


def write_schemas(schema_dir: Path, schemas: Mapping[str, Schema]) -> list[Path]:
    """Write each schema file that is missing or differs; return those written. Never deletes."""
    schema_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in schemas.items():
        path = schema_file(schema_dir, event_type)
        text = render(schema)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


@dataclass(frozen=True)
class Drift:
    event_type: str
    path: Path
    problem: str  # "missing" or "out of date"
    diff: str = ""


def drift(schema_dir: Path, schemas: Mapping[str, Schema], context: int = 2) -> list[Drift]:
    """Each registered event type whose committed schema file is missing or differs from its model."""
    found = []
    for event_type, schema in schemas.items():
        path = schema_file(schema_dir, event_type)
        expected = render(schema)
        if not path.exists():
            found.append(Drift(event_type, path, "missing"))
            continue
        actual = path.read_text(encoding="utf-8")
        if actual != expected:
            diff = "".join(
                difflib.unified_diff(
                    actual.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    fromfile=f"committed/{path.name}",
                    tofile=f"generated/{path.name}",
                    n=context,
                )
            )
            found.append(Drift(event_type, path, "out of date", diff))
    return found


def unregistered_files(schema_dir: Path, schemas: Mapping[str, Schema]) -> list[Path]:
    """Schema files in the working tree whose event type no model registers any more."""
    if not schema_dir.is_dir():
        return []
    return sorted(p for p in schema_dir.glob("*.json") if event_type_of(p.name) not in schemas)


# --- the committed history --------------------------------------------------------------------------


class HistoryError(RuntimeError):
    """The git history cannot be read (not a repository, a shallow clone, git missing)."""


@dataclass(frozen=True)
class Version:
    label: str  # "working tree" or "<short sha> (<commit date>)"
    text: str


def _git(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo_root), "-c", "core.quotepath=off", *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            check=False,
        )
    except FileNotFoundError as exc:
        raise HistoryError("git is not installed") from exc


def find_repo_root(start: Path) -> Path | None:
    result = _git(start, "rev-parse", "--show-toplevel")
    return Path(result.stdout.strip()) if result.returncode == 0 else None


def is_shallow(repo_root: Path) -> bool:
    return _git(repo_root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"


def _has_commits(repo_root: Path) -> bool:
    return _git(repo_root, "rev-parse", "--verify", "--quiet", "HEAD").returncode == 0


def committed_versions(repo_root: Path, rel_path: str) -> list[Version]:
    """Every distinct content a file has had in the history of HEAD, newest first.

    The path is the identity: no ``--follow``. A schema file's name is its event type, so a file
    under another name is another event type, and git's rename detection (by similarity) would
    otherwise take, say, ``crossing-refused.v1`` for a rename of ``crossing-cleared.v1``.
    ``--full-history`` keeps versions that only ever lived on a merged branch.
    """
    if not _has_commits(repo_root):
        return []
    log = _git(repo_root, "log", "--full-history", "--no-renames", "--format=%H %cs", "--", rel_path)
    if log.returncode != 0:
        raise HistoryError(f"git log failed for {rel_path}: {log.stderr.strip()}")
    versions: list[Version] = []
    seen: set[str] = set()
    for line in log.stdout.splitlines():
        sha, _, day = line.partition(" ")
        shown = _git(repo_root, "show", f"{sha}:{rel_path}")
        if shown.returncode != 0:  # the commit deleted the file
            continue
        if shown.stdout in seen:
            continue
        seen.add(shown.stdout)
        versions.append(Version(f"{sha[:10]} ({day})", shown.stdout))
    return versions


def committed_file_names(repo_root: Path, rel_dir: str) -> set[str]:
    """Names of the ``*.json`` files ever committed directly in ``rel_dir`` in HEAD's history."""
    if not _has_commits(repo_root):
        return set()
    prefix = rel_dir.rstrip("/") + "/"
    log = _git(repo_root, "log", "--full-history", "--no-renames", "--format=", "--name-only", "--", prefix)
    if log.returncode != 0:
        raise HistoryError(f"git log failed for {rel_dir}: {log.stderr.strip()}")
    names = set()
    for line in log.stdout.splitlines():
        if line.startswith(prefix):
            name = line[len(prefix) :]
            if "/" not in name and name.endswith(".json"):
                names.add(name)
    return names


_PRE_OPEN_ENUMS = (
    "widened on 2026-11-28, before named enumerations were open sets: a reader generated from this "
    "first schema rejects internal passports and birth certificates (contracts/README.md)"
)
ACKNOWLEDGED: dict[tuple[str, str, str, str], str] = {
    # (event type, earlier version's commit, path, kind): why it stands. Never for a new change:
    # an acknowledged break is one that shipped before the gate could see it.
    (
        "org.corridor.intake.case-registered.v1",
        "109372891b",
        "members[].document.type",
        CLOSED_ENUM_WIDENED,
    ): _PRE_OPEN_ENUMS,
    (
        "org.corridor.intake.case-registered.v1",
        "78fc0ffdd0",
        "members[].document.type",
        CLOSED_ENUM_WIDENED,
    ): _PRE_OPEN_ENUMS,
    (
        "org.corridor.transport.manifest-issued.v1",
        "78fc0ffdd0",
        "passengers[].document_type",
        CLOSED_ENUM_WIDENED,
    ): _PRE_OPEN_ENUMS,
}


def _acknowledged(event_type: str, version: str, change: Change) -> str | None:
    return ACKNOWLEDGED.get((event_type, version.split(" ")[0], change.path, change.kind))


@dataclass
class TypeReport:
    event_type: str
    versions: list[str] = field(default_factory=list)  # labels of the earlier versions compared
    breaking: list[tuple[str, Change]] = field(default_factory=list)  # (version label, change)
    notes: list[tuple[str, Change]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.breaking:
            return "breaking"
        return "compatible" if self.versions else "new"


def check_history(
    repo_root: Path, schema_dir: Path, current: Mapping[str, Schema], *, allow_shallow: bool = False
) -> list[TypeReport]:
    """Compare each current schema with every earlier version of its file (history and working tree).

    An event type whose file was ever committed (or is in the working tree) but that no model
    registers any more is reported as breaking.
    """
    repo_root = repo_root.resolve()
    if not allow_shallow and is_shallow(repo_root):
        raise HistoryError(
            "this is a shallow clone, so earlier schema versions are missing: "
            "run `git fetch --unshallow` (CI: check out with full history)"
        )
    try:
        rel_dir = schema_dir.resolve().relative_to(repo_root).as_posix()
    except ValueError as exc:
        raise HistoryError(f"{schema_dir} is not inside the repository {repo_root}") from exc

    names = committed_file_names(repo_root, rel_dir)
    names |= {p.name for p in schema_dir.glob("*.json")} if schema_dir.is_dir() else set()
    names |= {schema_file(schema_dir, t).name for t in current}

    reports = []
    for name in sorted(names):
        event_type = event_type_of(name)
        report = TypeReport(event_type)
        reports.append(report)
        if event_type not in current:
            report.breaking.append(
                (
                    "registry",
                    Change("", "event type removed; publish a new version instead", EVENT_TYPE_REMOVED),
                )
            )
            continue
        versions = committed_versions(repo_root, f"{rel_dir}/{name}")
        working = schema_dir / name
        if working.exists():  # exported but not committed yet, or a model edited without exporting
            text = working.read_text(encoding="utf-8")
            if text != render(current[event_type]) and all(text != v.text for v in versions):
                versions.insert(0, Version("working tree", text))
        for version in versions:
            report.versions.append(version.label)
            try:
                earlier = json.loads(version.text)
            except ValueError as exc:
                report.breaking.append((version.label, Change("", f"not valid JSON: {exc}", UNREADABLE)))
                continue
            try:
                result = compare(earlier, current[event_type])
            except SchemaError as exc:
                report.breaking.append((version.label, Change("", str(exc), UNREADABLE)))
                continue
            for change in result.breaking:
                reason = _acknowledged(event_type, version.label, change)
                if reason is None:
                    report.breaking.append((version.label, change))
                else:
                    report.notes.append(
                        (
                            version.label,
                            Change(change.path, f"acknowledged: {change.message}; {reason}", change.kind),
                        )
                    )
            report.notes.extend((version.label, c) for c in result.notes)
    return reports
