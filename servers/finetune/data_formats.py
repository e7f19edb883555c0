"""Dataset formats TRL takes, per-row validation with line numbers, and reading JSONL/CSV/Parquet.

Formats (the keys a row has):

* ``messages``: ``messages`` [{role, content, tool_calls?, name?}], optional ``tools`` (SFT, tool calling)
* ``prompt_completion``: ``prompt`` + ``completion`` (strings, or message lists) (SFT)
* ``preference``: ``chosen`` + ``rejected`` (+ ``prompt``) (DPO, reward models)
* ``kto``: ``prompt`` + ``completion`` + boolean ``label`` (KTO)
* ``prompt_only``: ``prompt`` (+ any other columns, e.g. ``answer`` for a reward) (GRPO, RLOO)
* ``text``: ``text`` (continued pretraining)
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Literal

from servers.core.errors import InvalidInput

Format = Literal["messages", "prompt_completion", "preference", "kto", "prompt_only", "text"]
FORMATS: tuple[str, ...] = ("messages", "prompt_completion", "preference", "kto", "prompt_only", "text")
ROLES = {"system", "user", "assistant", "tool"}

METHOD_FORMATS: dict[str, tuple[str, ...]] = {
    "sft": ("messages", "prompt_completion"),
    "pretrain": ("text",),
    "dpo": ("preference",),
    "reward": ("preference",),
    "kto": ("kto",),
    "grpo": ("prompt_only",),
    "rloo": ("prompt_only",),
}


def detect_format(row: dict[str, Any]) -> Format | None:
    keys = set(row)
    if "messages" in keys:
        return "messages"
    if {"chosen", "rejected"} <= keys:
        return "preference"
    if {"prompt", "completion", "label"} <= keys:
        return "kto"
    if {"prompt", "completion"} <= keys:
        return "prompt_completion"
    if "prompt" in keys:
        return "prompt_only"
    if "text" in keys:
        return "text"
    return None


def _check_messages(value: Any, where: str, *, need_assistant: bool) -> None:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where} must be a non-empty list of messages")
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise ValueError(f"{where}[{i}] must be an object with 'role' and 'content'")
        role = m.get("role")
        if role not in ROLES:
            raise ValueError(f"{where}[{i}].role is {role!r}: use system, user, assistant or tool")
        content = m.get("content")
        if content is not None and not isinstance(content, str):
            raise ValueError(f"{where}[{i}].content must be a string")
        if role == "assistant" and m.get("tool_calls") is not None:
            calls = m["tool_calls"]
            if not isinstance(calls, list) or not all(
                isinstance(c, dict) and isinstance(c.get("function", {}).get("name"), str) for c in calls
            ):
                raise ValueError(f"{where}[{i}].tool_calls must be a list of {{function: {{name, arguments}}}}")
        elif not content and role != "tool":
            raise ValueError(f"{where}[{i}] ({role}) has empty content")
    if need_assistant and not any(m.get("role") == "assistant" for m in value):
        raise ValueError(f"{where} has no assistant message to learn from")


def _text_or_messages(value: Any, where: str, *, need_assistant: bool = False) -> None:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{where} is empty")
        return
    _check_messages(value, where, need_assistant=need_assistant)


def validate_row(row: Any, fmt: Format) -> None:
    """Raise ValueError (message without the line number) if ``row`` is not a valid ``fmt`` row."""
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    if fmt == "messages":
        _check_messages(row.get("messages"), "messages", need_assistant=True)
        tools = row.get("tools")
        if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
            raise ValueError("tools must be a list of tool objects ({type: function, function: {name, parameters}})")
    elif fmt == "prompt_completion":
        _text_or_messages(row.get("prompt"), "prompt")
        _text_or_messages(row.get("completion"), "completion")
    elif fmt == "preference":
        if "prompt" in row:
            _text_or_messages(row["prompt"], "prompt")
        _text_or_messages(row.get("chosen"), "chosen")
        _text_or_messages(row.get("rejected"), "rejected")
        if row.get("chosen") == row.get("rejected"):
            raise ValueError("chosen and rejected are identical: nothing to prefer")
    elif fmt == "kto":
        _text_or_messages(row.get("prompt"), "prompt")
        _text_or_messages(row.get("completion"), "completion")
        if not isinstance(row.get("label"), bool):
            raise ValueError("label must be true (desirable) or false (undesirable)")
    elif fmt == "prompt_only":
        _text_or_messages(row.get("prompt"), "prompt")
    elif fmt == "text" and (not isinstance(row.get("text"), str) or not row["text"].strip()):
        raise ValueError("text must be a non-empty string")


def read_rows(path: Path, max_rows: int) -> tuple[list[tuple[int, Any]], list[tuple[int, str]]]:
    """(line number, row) pairs and (line number, error) for unreadable lines; JSONL, JSON, CSV or Parquet."""
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    rows: list[tuple[int, Any]] = []
    errors: list[tuple[int, str]] = []
    if suffix in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8", errors="replace") as source:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                if len(rows) >= max_rows:
                    break
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    errors.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); use JSONL for one row per line") from exc
        if not isinstance(data, list):
            raise InvalidInput(f"{path} must hold a JSON list of rows (or use JSONL)")
        rows = [(i + 1, r) for i, r in enumerate(data[:max_rows])]
    elif suffix == ".csv":
        with path.open(encoding="utf-8", errors="replace", newline="") as source:
            for number, record in enumerate(csv.DictReader(source), start=2):
                if len(rows) >= max_rows:
                    break
                rows.append((number, {k: _csv_value(k, v) for k, v in record.items() if k is not None}))
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        rows = [(i + 1, r) for i, r in enumerate(table.slice(0, max_rows).to_pylist())]
    else:
        raise InvalidInput(f"{path.name}: unsupported file type '{path.suffix}': use .jsonl, .json, .csv or .parquet")
    return rows, errors


def _csv_value(key: str, value: str | None) -> Any:
    """CSV cells are strings; JSON-looking message lists and booleans are decoded."""
    if value is None:
        return None
    text = value.strip()
    if key in ("messages", "tools", "prompt", "completion", "chosen", "rejected") and text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    if key == "label" and text.lower() in ("true", "false", "1", "0"):
        return text.lower() in ("true", "1")
    return value


def check_method_format(method: str, fmt: str) -> None:
    allowed = METHOD_FORMATS.get(method, ())
    if fmt not in allowed:
        want = " or ".join(allowed)
        raise InvalidInput(
            f"the dataset is in '{fmt}' format, but {method} needs {want} rows "
            f"({_keys_hint(allowed)}); convert the data or choose another method"
        )


def _keys_hint(formats: tuple[str, ...]) -> str:
    hints = {
        "messages": "'messages' [+ 'tools']", "prompt_completion": "'prompt' + 'completion'",
        "preference": "'prompt' + 'chosen' + 'rejected'", "kto": "'prompt' + 'completion' + boolean 'label'",
        "prompt_only": "'prompt' (+ reward columns)", "text": "'text'",
    }
    return "; ".join(hints[f] for f in formats)


def row_text(row: dict[str, Any], fmt: str) -> tuple[str, str]:
    """(prompt-side text, target-side text) of a row, for dedup, conflicts, lengths and filters."""
    def flat(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            parts = []
            for m in value:
                if isinstance(m, dict):
                    parts.append(str(m.get("content") or ""))
                    for c in m.get("tool_calls") or []:
                        parts.append(json.dumps(c.get("function", {}), sort_keys=True, ensure_ascii=False))
            return "\n".join(parts)
        return "" if value is None else str(value)

    if fmt == "messages":
        msgs = row.get("messages") or []
        last = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant"), default=len(msgs))
        return flat(msgs[:last]), flat(msgs[last:])
    if fmt == "preference":
        return flat(row.get("prompt", "")), flat(row.get("chosen")) + "\n" + flat(row.get("rejected"))
    if fmt in ("prompt_completion", "kto"):
        return flat(row.get("prompt")), flat(row.get("completion"))
    if fmt == "prompt_only":
        return flat(row.get("prompt")), ""
    return "", flat(row.get("text"))
