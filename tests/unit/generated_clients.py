"""What a mission's IT team does with our contracts: generate reader models from the committed JSON
Schemas with a tool nobody here wrote (``datamodel-code-generator``), and read records with them.

Also a small record synthesiser: records of a given schema version, built from the schema alone
(its examples, formats, patterns and enumerations), each checked against that schema with
``jsonschema`` so a record is what that version's producers could have written.
"""

from __future__ import annotations

import copy
import functools
import json
import sys
import types
import warnings
from collections.abc import Iterator
from typing import Any

import jsonschema
from datamodel_code_generator import DataModelType, InputFileType, generate
from hypothesis import strategies
from pydantic import BaseModel

Schema = dict[str, Any]

_FORMATS = {
    "uuid": "6f1c2a3e-8b4d-4e5f-9a0b-1c2d3e4f5a6b",
    "date": "2026-12-01",
    "date-time": "2026-12-01T08:30:00Z",
    "email": "duty@example.org",
    "uri": "https://example.org/x",
}


@functools.cache
def reader_for(schema_text: str) -> type[BaseModel]:
    """The root model ``datamodel-codegen`` generates from ``schema_text``, imported."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tool's notices about its future defaults
        code = generate(
            schema_text,
            input_file_type=InputFileType.JsonSchema,
            output_model_type=DataModelType.PydanticV2BaseModel,
        )
    assert isinstance(code, str)
    name = f"generated_reader_{abs(hash(schema_text))}"
    module = types.ModuleType(name)
    sys.modules[name] = module  # pydantic resolves the postponed annotations through it
    exec(compile(code, name, "exec"), module.__dict__)
    title = json.loads(schema_text)["title"]
    model = getattr(module, title)
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return model


def records_of(schema: Schema) -> list[Any]:
    """Records valid under ``schema``: one with every optional field, one with required fields
    only, and one for each value of each enumeration (so every listed value is read once)."""
    root = schema
    full = _value(root, schema, optional=True)
    minimal = _value(root, schema, optional=False)
    found = [full, minimal]
    for path, values in _enumerations(root, schema, ()):
        for value in values:
            record = copy.deepcopy(full)
            if _set(record, path, value):
                found.append(record)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for record in found:
        validator.validate(record)  # a synthesised record must be one the version allows
    return found


def _deref(root: Schema, node: Schema) -> Schema:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        rest = {k: v for k, v in node.items() if k != "$ref"}
        node = {**root["$defs"][name], **rest}
    return node


def _value(root: Schema, node: Schema, *, optional: bool) -> Any:
    node = _deref(root, node)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    for combinator in ("anyOf", "oneOf"):
        if combinator in node:
            variants = [_deref(root, v) for v in node[combinator]]
            chosen = next((v for v in variants if v.get("type") != "null"), variants[0])
            return _value(root, chosen, optional=optional)
    if "allOf" in node:
        merged: Schema = {}
        for part in node["allOf"]:
            merged.update(_deref(root, part))
        return _value(root, merged, optional=optional)
    if node.get("examples") and node.get("type") != "object":
        return node["examples"][0]
    kind = node.get("type")
    if kind == "object":
        required = set(node.get("required", ()))
        return {
            name: _value(root, sub, optional=optional)
            for name, sub in node.get("properties", {}).items()
            if optional or name in required
        }
    if kind == "array":
        count = max(node.get("minItems", 0), 1 if optional else 0)
        return [_value(root, node.get("items", {}), optional=optional) for _ in range(count)]
    if kind == "string":
        if node.get("format") in _FORMATS:
            return _FORMATS[node["format"]]
        if "pattern" in node:
            return _matching(node["pattern"], node.get("minLength", 0), node.get("maxLength"))
        return "x" * max(node.get("minLength", 0), 1)
    if kind == "integer":
        return max(node.get("minimum", 0), node.get("exclusiveMinimum", -1) + 1, 1)
    if kind == "number":
        return float(max(node.get("minimum", 0), 1))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    raise AssertionError(f"the synthesiser does not know {node}")


@functools.cache
def _matching(pattern: str, min_length: int, max_length: int | None) -> str:
    """A string matching ``pattern`` within the length limits, found by hypothesis' regex strategy."""
    candidates = strategies.from_regex(pattern, fullmatch=True).filter(
        lambda s: len(s) >= min_length and (max_length is None or len(s) <= max_length)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # .example() is meant for interactive use; here it is a generator
        return str(candidates.example())


def _enumerations(
    root: Schema, node: Schema, path: tuple[Any, ...]
) -> Iterator[tuple[tuple[Any, ...], list[Any]]]:
    node = _deref(root, node)
    values = [v for variant in _variants(root, node) for v in variant.get("enum", ())]
    if values:
        yield path, values
        return
    for variant in _variants(root, node):
        if variant.get("type") == "object":
            for name, sub in variant.get("properties", {}).items():
                yield from _enumerations(root, sub, (*path, name))
        elif variant.get("type") == "array":
            yield from _enumerations(root, variant.get("items", {}), (*path, 0))


def _variants(root: Schema, node: Schema) -> list[Schema]:
    for combinator in ("anyOf", "oneOf"):
        if combinator in node:
            return [v for sub in node[combinator] for v in _variants(root, _deref(root, sub))]
    return [node]


def _set(record: Any, path: tuple[Any, ...], value: Any) -> bool:
    *parents, last = path
    for step in parents:
        if isinstance(step, int):
            if not isinstance(record, list) or not record:
                return False
            record = record[step]
        else:
            if not isinstance(record, dict) or step not in record:
                return False
            record = record[step]
    if isinstance(last, int):
        if not isinstance(record, list) or not record:
            return False
        record[last] = value
        return True
    if not isinstance(record, dict):
        return False
    record[last] = value
    return True
