"""Reading evaluation inputs: inline values or files under the allowed roots (JSONL, JSON, CSV/TSV,
TREC runs and qrels), validated into the library's models with errors that name the line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from servers.core.errors import InvalidInput, TooLarge
from servers.core.roots import resolve_under_roots
from servers.core.settings import Settings

M = TypeVar("M", bound=BaseModel)
MAX_INPUT_MB = 512


def resolve(path: str, settings: Settings) -> Path:
    resolved = resolve_under_roots(path, settings.root_paths())
    if not resolved.is_file():
        raise InvalidInput(f"{resolved} is not a file")
    return resolved


def read_text(path: str, settings: Settings) -> tuple[str, Path]:
    resolved = resolve(path, settings)
    size = resolved.stat().st_size
    if size > MAX_INPUT_MB * 1024 * 1024:
        raise TooLarge(f"{resolved} is {size / 1e6:.0f} MB; evaluation inputs are limited to {MAX_INPUT_MB} MB")
    try:
        return resolved.read_text(encoding="utf-8-sig"), resolved
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{resolved} is not UTF-8 text ({exc})") from exc


def one_of(inline: Any, path: str | None, what: str, path_arg: str) -> None:
    if inline is None and not path:
        raise InvalidInput(f"give the {what} inline or as a file with '{path_arg}'")
    if inline is not None and path:
        raise InvalidInput(f"give the {what} either inline or with '{path_arg}', not both")


def records(text: str, source: str) -> list[dict[str, Any]]:
    """JSONL, a JSON array (or {"items": [...]}), or CSV/TSV with a header line."""
    stripped = text.lstrip()
    if source.lower().endswith((".csv", ".tsv")):
        dialect = "excel-tab" if source.lower().endswith(".tsv") else "excel"
        return [dict(row) for row in csv.DictReader(io.StringIO(text), dialect=dialect)]
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
        return _objects(data, source)
    if stripped.startswith("{") and "\n" not in stripped.rstrip():
        data = json.loads(stripped)
        return _objects(data.get("items", [data]) if isinstance(data, dict) else data, source)
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{source} line {n} is not JSON ({exc.msg}); give JSONL (one object per line), a "
                               "JSON array, or a .csv file") from exc
        if not isinstance(value, dict):
            raise InvalidInput(f"{source} line {n}: expected a JSON object, got {type(value).__name__}")
        out.append(value)
    return out


def _objects(data: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise InvalidInput(f"{source}: expected a list of JSON objects")
    return data


def validate_items(raw: list[dict[str, Any]], model: type[M], source: str, rename: dict[str, str] | None = None) -> list[M]:
    """Each record as ``model`` (keys renamed first: e.g. BEIR's ``_id`` → ``id``)."""
    out = []
    for i, record in enumerate(raw, 1):
        if rename:
            record = {rename.get(k, k): v for k, v in record.items() if rename.get(k, k) in model.model_fields}
        try:
            out.append(model.model_validate(record))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "item"
            raise InvalidInput(f"{source} item {i}: {where}: {first['msg']} (fields: "
                               f"{', '.join(model.model_fields)})") from exc
    if not out:
        raise InvalidInput(f"{source} holds no items: give at least one")
    return out


def load_items(inline: list[M] | None, path: str | None, model: type[M], settings: Settings, *, what: str,
               path_arg: str, rename: dict[str, str] | None = None) -> tuple[list[M], str]:
    """Items given inline or read from a file; returns them and a description of the source."""
    one_of(inline, path, what, path_arg)
    if inline is not None:
        if not inline:
            raise InvalidInput(f"the {what} list is empty: give at least one item")
        raw = [x.model_dump() if isinstance(x, BaseModel) else x for x in inline]  # dicts from a job's config too
        return validate_items(raw, model, "inline items", rename), "inline"
    text, resolved = read_text(path or "", settings)
    return validate_items(records(text, resolved.name), model, resolved.name, rename), str(resolved)
