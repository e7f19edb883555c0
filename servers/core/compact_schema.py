"""Smaller tool schemas for ``tools/list``: what a client puts in its model's context.

Pydantic's JSON Schemas repeat a ``title`` on every field, spell an optional argument as
``anyOf: [X, null]`` with ``default: null``, and carry every output field's description. A model
choosing and calling a tool needs none of that, and the whole suite's ``tools/list`` is read on
every turn. Both functions return new schemas that accept exactly what the server accepts
(input) or sends (output):

- inputs: no titles; an optional argument whose default is null is just ``X`` (or ``anyOf`` of
  its non-null types): leaving it out means null, and the server still accepts an explicit null;
  descriptions and other defaults stay.
- outputs: no titles, descriptions or defaults; ``anyOf: [X, null]`` becomes ``type: [X, "null"]``
  where ``X`` is a plain type, so a validating client still accepts every result.
"""

from __future__ import annotations

from typing import Any

NULL = {"type": "null"}
SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "contains")
SUBSCHEMA_MAPS = ("properties", "$defs", "patternProperties")


def compact_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The arguments' schema without titles and with optional arguments as their plain type."""
    return _walk(schema, output=False)


def compact_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The result's schema without titles, descriptions or defaults; nullable plain types inline."""
    return _walk(schema, output=True)


def _walk(node: Any, *, output: bool) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" or (output and key in ("description", "default", "examples")):
            continue
        if key in SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _walk(sub, output=output) for name, sub in value.items()}
        elif key in SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [_walk(sub, output=output) for sub in value]
        elif key in SUBSCHEMA_ONE and isinstance(value, dict):
            out[key] = _walk(value, output=output)
        else:
            out[key] = value
    return _fold_nullable(out, output=output)


def _fold_nullable(node: dict[str, Any], *, output: bool) -> dict[str, Any]:
    """``anyOf: [X, ..., null]`` -> ``X`` / ``anyOf: [X, ...]`` (an input defaulting to null) or
    ``type: [X, "null"]`` (a plain output type); anything else unchanged."""
    options = node.get("anyOf")
    if not isinstance(options, list) or NULL not in options:
        return node
    others = [o for o in options if o != NULL]
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    if not output:
        if "default" not in rest or rest["default"] is not None:
            return node
        rest.pop("default")
        if len(others) > 1:
            return {"anyOf": others} | rest
        if set(rest) & set(others[0]):
            return node
        return others[0] | rest
    if len(others) != 1:
        return node
    other = others[0]
    kind = other.get("type")
    if not isinstance(kind, str) or {"$ref", "enum", "const"} & set(other) or set(rest) & set(other):
        return node
    return other | rest | {"type": [kind, "null"]}
