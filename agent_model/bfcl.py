"""BFCL records as tool-calling conversations: functions mapped to JSON Schema, ground truth to calls.

The schema mapping is the eval server's (``servers.eval.agents.to_json_schema``, which the host
bench uses too): a model trained on these prompts sees the tool listing it is evaluated with,
byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host.connections import ToolInfo
from servers.eval.agents import to_json_schema

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance", "live_simple",
              "live_multiple")
# The system prompt of the BFCL bench (bench/host.py); some BFCL records use it, so the model
# also behaves under the prompt it is measured with.
BENCH_SYSTEM = "You are a helpful assistant that calls functions to answer requests."


class BfclError(ValueError):
    """A BFCL record whose ground truth cannot become a training call."""


@dataclass
class BfclRecord:
    id: str
    category: str
    messages: list[dict[str, Any]]  # the user turn(s) (and a record's own system turn, if any)
    functions: list[dict[str, Any]]
    truth: list[dict[str, dict[str, list[Any]]]]  # [{function: {argument: [acceptable values]}}]

    @property
    def irrelevance(self) -> bool:
        return self.category.startswith("irrelevance")

    def tools(self) -> list[ToolInfo]:
        return [ToolInfo(name=f["name"], server="bfcl", remote_name=f["name"], description=f.get("description", ""),
                         input_schema=to_json_schema(f.get("parameters") or {"type": "dict", "properties": {}}))
                for f in self.functions]

    def question_text(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.messages if m.get("role") == "user")


def load_category(folder: Path, category: str) -> list[BfclRecord]:
    path = folder / f"{category}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no BFCL file {path}: pass --bfcl the folder holding {category}.jsonl")
    answers: dict[str, list[Any]] = {}
    answer_path = folder / "possible_answer" / f"{category}.jsonl"
    if answer_path.is_file():
        for line in answer_path.open(encoding="utf-8"):
            row = json.loads(line)
            answers[row["id"]] = row["ground_truth"]
    records = []
    for line in path.open(encoding="utf-8"):
        row = json.loads(line)
        turns = row["question"][0] if row["question"] and isinstance(row["question"][0], list) else row["question"]
        truth = answers.get(row["id"], [])
        if not category.startswith("irrelevance") and not truth:
            raise BfclError(f"{category} record {row['id']} has no ground truth in {answer_path}")
        records.append(BfclRecord(id=row["id"], category=category, messages=list(turns),
                                  functions=row["function"], truth=truth))
    return records


def _mentioned(value: Any, question: str) -> bool:
    text = json.dumps(value, ensure_ascii=False).strip('"') if not isinstance(value, str) else value
    return bool(text) and text.lower() in question.lower()


def choose_value(options: list[Any], question: str) -> tuple[bool, Any]:
    """One target value from BFCL's acceptable values: (include?, value).

    ``""`` among the options means the argument may be omitted: it is left out unless the
    question states the value. Nested dicts choose per key.
    """
    concrete = [o for o in options if o != ""]
    if not concrete:
        return False, None
    value = concrete[0]
    if "" in options and not _mentioned(value, question):
        return False, None
    return True, _resolve(value, question)


def _is_spec(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, list) for v in value.values())


def _resolve(value: Any, question: str) -> Any:
    """Nested specs (a dict of acceptable-value lists, alone or in a list) become plain values."""
    if _is_spec(value):
        return _choose_object(value, question)
    if isinstance(value, list) and value and all(_is_spec(v) for v in value):
        return [_choose_object(v, question) for v in value]
    return value


def _choose_object(spec: dict[str, Any], question: str) -> dict[str, Any]:
    out = {}
    for key, options in spec.items():
        include, value = choose_value(options if isinstance(options, list) else [options], question)
        if include:
            out[key] = value
    return out


def conform(value: Any, schema: dict[str, Any]) -> Any:
    """Repair a ground-truth value the scorer accepts but the schema rejects: an enum member in
    another case (``horror`` → ``Horror``), a number or boolean where the schema wants its string."""
    if not isinstance(schema, dict):
        return value
    if schema.get("type") == "string" and isinstance(value, bool | int | float):
        value = str(value)
    enum = schema.get("enum")
    if enum and value not in enum:
        match = [e for e in enum if str(e).lower() == str(value).lower()]
        if len(match) == 1:
            value = match[0]
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        return {k: conform(v, schema["properties"].get(k, {})) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [conform(v, schema["items"]) for v in value]
    return value


def target_calls(record: BfclRecord) -> list[dict[str, Any]]:
    """The ground truth as calls ``[{"name", "arguments"}]`` (empty for irrelevance records)."""
    if record.irrelevance:
        return []
    question = record.question_text()
    schemas = {t.name: t.input_schema for t in record.tools()}
    calls = []
    for item in record.truth:
        ((name, spec),) = item.items()
        calls.append({"name": name, "arguments": conform(_choose_object(spec, question), schemas.get(name, {}))})
    return calls


def no_call_answer(record: BfclRecord, variant: int) -> str:
    """The reply to an irrelevance record: say plainly that no offered function fits."""
    names = [f["name"] for f in record.functions]
    listed = ", ".join(names[:3]) + (" and others" if len(names) > 3 else "")
    templates = [
        f"None of the available functions can do that: {listed} {'is' if len(names) == 1 else 'are'} for something else.",
        f"I can't help with this using the tools I have ({listed}); none of them fits this request.",
        f"That request doesn't match any available function ({listed}), so I won't call one.",
    ]
    return templates[variant % len(templates)]
