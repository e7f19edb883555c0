"""The search filter language: a small JSON object, validated, then translated to a Milvus expression.

Every condition is ANDed::

    {"sources": ["/docs/a.pdf"], "source_prefix": "/docs/", "doc_ids": ["..."],
     "tags_any": ["hr"], "tags_all": ["policy", "2024"],
     "created_after": "2024-01-01", "created_before": 1735689600,
     "updated_after": "2024-06-01T12:00:00Z", "updated_before": "...",
     "metadata": {"lang": "en", "year": {"$gte": 2020}, "team": ["a", "b"]}}

A ``metadata`` value is a scalar (equality), a list (any of), or an object of operators
``$eq $ne $gt $gte $lt $lte $in $nin $contains $exists``. Values are escaped; keys must be
identifiers (``a.b`` reaches into nested objects). Anything else raises :class:`InvalidInput`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from servers.core import dates
from servers.core.errors import InvalidInput, validation_message
from servers.retrieval.store import quote, validate_id

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
Scalar = str | int | float | bool
MAX_VALUES = 1000

COMPARE = {"$eq": "==", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
OPERATORS = (*COMPARE, "$in", "$nin", "$contains", "$exists")


class SearchFilter(BaseModel):
    """Conditions on chunks, all of which must hold (see the module docstring for the grammar)."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str] | None = Field(default=None, description="exact source paths/names (any of)")
    source_prefix: str | None = Field(default=None, description="source starts with this (e.g. a folder)")
    doc_ids: list[str] | None = Field(default=None, description="document ids (any of)")
    tags_any: list[str] | None = Field(default=None, description="chunk has at least one of these tags")
    tags_all: list[str] | None = Field(default=None, description="chunk has all of these tags")
    created_after: str | int | None = Field(default=None, description="document date ≥ this (ISO date/time or epoch s)")
    created_before: str | int | None = Field(default=None, description="document date < this")
    updated_after: str | int | None = Field(default=None, description="ingested at or after this")
    updated_before: str | int | None = Field(default=None, description="ingested before this")
    metadata: dict[str, Any] | None = Field(
        default=None,
        description='user metadata conditions: {"key": value | [any of] | {"$gte": 2020, "$ne": "x", ...}}; '
        "operators $eq $ne $gt $gte $lt $lte $in $nin $contains $exists",
    )


def parse_filter(value: SearchFilter | dict[str, Any] | str | None) -> SearchFilter | None:
    """Accept a :class:`SearchFilter`, a dict, or a JSON string of one; None/empty means no filter."""
    if value is None or isinstance(value, SearchFilter):
        return value
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"filter is not valid JSON ({exc.msg} at position {exc.pos}); {_HINT}") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"filter must be a JSON object, not {type(value).__name__}; {_HINT}")
    try:
        return SearchFilter.model_validate(value)
    except ValidationError as exc:
        raise InvalidInput(f"invalid filter: {validation_message(exc, limit=3)}; {_HINT}") from exc


_HINT = (
    'filter keys: sources, source_prefix, doc_ids, tags_any, tags_all, created_after, created_before, '
    'updated_after, updated_before, metadata (e.g. {"tags_any": ["hr"], "metadata": {"year": {"$gte": 2020}}})'
)


def to_epoch(value: str | int | float, field: str) -> int:
    """An ISO date / datetime (UTC unless it says otherwise) or epoch seconds → epoch seconds."""
    try:
        return dates.to_epoch(value)
    except ValueError as exc:
        raise InvalidInput(
            f"filter '{field}': {value!r} is not a date; use ISO format ('2024-01-31' or "
            "'2024-01-31T12:00:00Z') or epoch seconds"
        ) from exc


def _literal(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInput(f"filter {where}: numbers must be finite")
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    raise InvalidInput(
        f"filter {where}: value {value!r} must be a string, number or boolean (not {type(value).__name__})"
    )


def _strings(values: list[str], where: str) -> str:
    if not values:
        raise InvalidInput(f"filter '{where}' is an empty list: give at least one value or leave it out")
    if len(values) > MAX_VALUES:
        raise InvalidInput(f"filter '{where}' has {len(values)} values; at most {MAX_VALUES}")
    return "[" + ", ".join(_literal(v, f"'{where}'") for v in values) + "]"


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return quote(escaped + "%")


def _json_path(key: str) -> str:
    parts = key.split(".")
    for part in parts:
        if not KEY_RE.match(part):
            raise InvalidInput(
                f"filter metadata key {key!r}: use letters, digits, '_' or '-' (dots reach into nested objects)"
            )
    return "metadata" + "".join(f"[{quote(p)}]" for p in parts)


def _any_of(path: str, values: list[Any], where: str) -> str:
    if not isinstance(values, list) or not values:
        raise InvalidInput(f"filter {where}: expected a non-empty list of values")
    if len(values) > MAX_VALUES:
        raise InvalidInput(f"filter {where}: at most {MAX_VALUES} values")
    return "(" + " or ".join(f"{path} == {_literal(v, where)}" for v in values) + ")"


def _metadata_condition(key: str, cond: Any) -> list[str]:
    path = _json_path(key)
    where = f"metadata '{key}'"
    if isinstance(cond, list):
        return [_any_of(path, cond, where)]
    if not isinstance(cond, dict):
        return [f"{path} == {_literal(cond, where)}"]
    if not cond:
        raise InvalidInput(f"filter {where}: empty operator object; use e.g. {{\"$gte\": 2020}}")
    parts = []
    for op, value in cond.items():
        if op in COMPARE:
            if op in ("$gt", "$gte", "$lt", "$lte") and (isinstance(value, bool) or not isinstance(value, int | float | str)):
                raise InvalidInput(f"filter {where}: {op} needs a number or string, got {value!r}")
            parts.append(f"{path} {COMPARE[op]} {_literal(value, where)}")
        elif op == "$in":
            parts.append(_any_of(path, value, f"{where} $in"))
        elif op == "$nin":
            parts.append(f"not {_any_of(path, value, f'{where} $nin')}")
        elif op == "$contains":
            parts.append(f"json_contains({path}, {_literal(value, where)})")
        elif op == "$exists":
            if not isinstance(value, bool):
                raise InvalidInput(f"filter {where}: $exists takes true or false")
            parts.append(f"exists {path}" if value else f"not (exists {path})")
        else:
            raise InvalidInput(f"filter {where}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    return parts


def to_expression(flt: SearchFilter | dict[str, Any] | str | None) -> str:
    """The Milvus boolean expression for a filter ('' when there is none)."""
    f = parse_filter(flt)
    if f is None:
        return ""
    parts: list[str] = []
    if f.sources is not None:
        parts.append(f"source in {_strings(f.sources, 'sources')}")
    if f.source_prefix is not None:
        if not f.source_prefix:
            raise InvalidInput("filter 'source_prefix' is empty: give the start of a source path or leave it out")
        parts.append(f"source like {_like_prefix(f.source_prefix)}")
    if f.doc_ids is not None:
        parts.append(f"doc_id in {_strings([validate_id(d, 'doc_id') for d in f.doc_ids], 'doc_ids')}")
    if f.tags_any is not None:
        parts.append(f"ARRAY_CONTAINS_ANY(tags, {_strings(f.tags_any, 'tags_any')})")
    if f.tags_all is not None:
        parts.append(f"ARRAY_CONTAINS_ALL(tags, {_strings(f.tags_all, 'tags_all')})")
    for name, field, op in (
        ("created_after", "created", ">="), ("created_before", "created", "<"),
        ("updated_after", "updated", ">="), ("updated_before", "updated", "<"),
    ):
        value = getattr(f, name)
        if value is not None:
            parts.append(f"{field} {op} {to_epoch(value, name)}")
    for key, cond in (f.metadata or {}).items():
        parts.extend(_metadata_condition(key, cond))
    return " and ".join(f"({p})" for p in parts)
