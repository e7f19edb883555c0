"""Agents and speed: tool-call accuracy as BFCL scores it (AST match), valid-call rate, and
latency figures (p50/p95/p99, QPS, time to first token, time per output token) from host
transcripts or a live probe of the configured generator.

AST match (BFCL's rules): the function name must match; every required argument must be
present and no unknown one; each expected argument's value must be among its acceptable
values (strings compared without spaces, punctuation and case; numbers by value; lists
element-wise; dicts key-wise), and an argument whose acceptable values include ``""`` may be
omitted. Several calls are matched in any order, each expected call once. For an
"irrelevance" item the right behaviour is to call nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from servers.core.errors import InvalidInput
from servers.core.generate import Generator
from servers.eval.schemas import ItemRow, ToolCallItem

# BFCL parameter types -> JSON Schema types ("any" drops the constraint)
BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "int": "integer", "bool": "boolean",
              "str": "string", "list": "array", "any": None}


def to_json_schema(node: Any) -> Any:
    """A BFCL parameter schema (types dict, float, tuple, any, ...) → JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            mapped = BFCL_TYPES.get(value, value)
            if mapped is not None:
                out["type"] = mapped
        elif key == "properties":
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = to_json_schema(value)
        elif key in ("optional", "default") and not isinstance(value, dict | list | str | int | float | bool):
            continue
        else:
            out[key] = value
    return out


def function_schemas(functions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """name -> JSON Schema of the function's parameters."""
    out = {}
    for f in functions:
        if not isinstance(f, dict) or not f.get("name"):
            raise InvalidInput("every function needs a 'name' (and 'parameters' as a JSON Schema or BFCL schema)")
        out[str(f["name"])] = to_json_schema(f.get("parameters") or {"type": "dict", "properties": {}})
    return out


def _norm_str(value: str) -> str:
    return re.sub(r"[\s,./\-_*^]", "", value).lower().replace("'", '"')


def value_matches(value: Any, acceptable: list[Any]) -> bool:
    for option in acceptable:
        if option == "":
            continue
        if isinstance(option, str) and isinstance(value, str):
            if _norm_str(option) == _norm_str(value):
                return True
        elif isinstance(option, bool) or isinstance(value, bool):
            if option is value:
                return True
        elif isinstance(option, int | float) and isinstance(value, int | float):
            if float(option) == float(value):
                return True
        elif isinstance(option, list) and isinstance(value, list):
            if len(option) == len(value) and all(value_matches(v, [o]) for v, o in zip(value, option, strict=True)):
                return True
        elif isinstance(option, dict) and isinstance(value, dict):
            if all(value_matches(value.get(k), v if isinstance(v, list) else [v]) or ("" in v and k not in value)
                   for k, v in option.items()) and set(value) <= set(option):
                return True
        elif option == value:
            return True
    return False


def call_matches(name: str, args: Any, expected: dict[str, dict[str, list[Any]]],
                 schemas: dict[str, dict[str, Any]]) -> bool:
    (exp_name, exp_args), = expected.items()
    if name != exp_name or not isinstance(args, dict):
        return False
    schema = schemas.get(name, {})
    if set(args) - set(schema.get("properties", {})):
        return False  # an argument the function does not have
    if any(req not in args for req in schema.get("required", [])):
        return False
    for param, acceptable in exp_args.items():
        if param not in args:
            if "" not in acceptable:
                return False
        elif not value_matches(args[param], acceptable):
            return False
    return True


def calls_correct(calls: list[tuple[str, Any]], expected: list[dict[str, Any]], schemas: dict[str, dict[str, Any]],
                  irrelevance: bool) -> bool:
    """BFCL's AST verdict for one item."""
    if irrelevance:
        return not calls
    if len(calls) != len(expected):
        return False
    remaining = list(expected)
    for name, args in calls:  # order-independent: each expected call matched once
        hit = next((i for i, exp in enumerate(remaining) if call_matches(name, args, exp, schemas)), None)
        if hit is None:
            return False
        remaining.pop(hit)
    return True


def argument_problem(schema: dict[str, Any], arguments: Any) -> str | None:
    """None when ``arguments`` satisfy ``schema``, else the first problem."""
    if not isinstance(arguments, dict):
        return f"arguments must be a JSON object, got {type(arguments).__name__}"
    try:
        validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    except jsonschema.SchemaError:
        return None  # a broken schema cannot judge the call
    if not errors:
        return None
    where = "/".join(str(p) for p in errors[0].path) or "arguments"
    return f"{where}: {errors[0].message}"


def calls_valid(calls: list[tuple[str, Any]], schemas: dict[str, dict[str, Any]], irrelevance: bool,
                parse_error: str | None = None) -> tuple[bool, str | None]:
    """Whether every call names an offered function with schema-valid arguments (and why not)."""
    if parse_error:
        return False, f"the output could not be parsed: {parse_error}"
    if not calls:
        return (True, None) if irrelevance else (False, "no call was made")
    for name, args in calls:
        if name not in schemas:
            return False, f"'{name}' is not an offered function"
        problem = argument_problem(schemas[name], args)
        if problem:
            return False, f"{name}: {problem}"
    return True, None


def _calls(item: ToolCallItem) -> list[tuple[str, Any]]:
    out = []
    for c in item.calls:
        args = c.get("arguments", c.get("args", {}))
        if isinstance(args, str):
            with contextlib.suppress(json.JSONDecodeError):  # left as a string: invalid
                args = json.loads(args)
        out.append((str(c.get("name", "")), args))
    return out


def score_tool_calls(items: list[ToolCallItem]) -> list[ItemRow]:
    rows = []
    for i, item in enumerate(items, 1):
        row = ItemRow(id=item.id or str(i))
        try:
            schemas = function_schemas(item.functions)
        except InvalidInput as exc:
            row.unscorable["*"] = f"unscorable: {exc}"
            rows.append(row)
            continue
        if not item.irrelevance and not item.expected:
            row.unscorable["*"] = "unscorable: no expected calls were given (and the item is not marked irrelevance)"
            rows.append(row)
            continue
        calls = _calls(item)
        ok = calls_correct(calls, item.expected, schemas, item.irrelevance) and not item.parse_error
        valid, why = calls_valid(calls, schemas, item.irrelevance, item.parse_error)
        row.scores.update(ast_accuracy=float(ok), valid_calls=float(valid))
        row.detail.update(calls=len(calls), irrelevance=item.irrelevance, **({"invalid": why} if why else {}))
        rows.append(row)
    return rows


# ---------------------------------------------------------------- latency


def percentiles(values: Iterable[float], qs: Iterable[int] = (50, 95, 99)) -> dict[str, float]:
    x = np.asarray(list(values), dtype=np.float64)
    if x.size == 0:
        return {}
    return {f"p{q}": float(np.percentile(x, q)) for q in qs} | {"mean": float(x.mean())}


def transcript_rows(paths: list[Path]) -> list[ItemRow]:
    """One row per host run in the transcript files (``DATA_DIR/transcripts/*.jsonl``)."""
    rows = []
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    rows.append(ItemRow(id=f"{path.name}:{n}", unscorable={"*": "unscorable: the line is not JSON"}))
                    continue
                rows.append(_transcript_row(record, f"{path.name}:{n}"))
    return rows


def _transcript_row(record: dict[str, Any], rid: str) -> ItemRow:
    events = record.get("events") or []
    row = ItemRow(id=str(record.get("id") or rid), detail={"model": record.get("model"),
                                                           "question": str(record.get("question", ""))[:200]})
    total = next((e for e in events if e.get("type") == "usage" and e.get("total")), None)
    if total is None:
        row.unscorable["*"] = "unscorable: the transcript has no total usage event (an interrupted run)"
        return row
    latency = sum(float(total.get(k) or 0.0) for k in ("model_seconds", "tool_seconds", "overhead_seconds"))
    row.scores["latency_s"] = latency
    turns = [e for e in events if e.get("type") == "usage" and not e.get("total")]
    ttfts = [float(e["ttft_s"]) for e in turns if e.get("ttft_s") is not None]
    if ttfts:
        row.scores["ttft_s"] = ttfts[0]
    per_token = [(float(e.get("model_seconds") or 0.0) - float(e.get("ttft_s") or 0.0)) / (int(e["completion_tokens"]) - 1)
                 for e in turns if int(e.get("completion_tokens") or 0) > 1]
    if per_token:
        row.scores["tpot_s"] = float(np.mean(per_token))
    tools = [float(e.get("seconds") or 0.0) for e in events if e.get("type") == "tool_result"]
    if tools:
        row.scores["tool_call_s"] = float(np.mean(tools))
    row.detail.update(steps=len(turns), tool_calls=len(tools), completion_tokens=int(total.get("completion_tokens") or 0))
    return row


def probe_rows(generator: Generator, *, prompt: str, requests: int, max_new_tokens: int,
               progress: Callable[[int, int, str], None] | None = None) -> list[ItemRow]:
    """Time the generator: one 1-token request (time to first token) and one ``max_new_tokens``
    request per probe; time per output token is the difference over the extra tokens."""
    messages = [{"role": "user", "content": prompt}]
    rows = []
    for i in range(1, requests + 1):
        start = time.perf_counter()
        generator.chat(messages, max_new_tokens=1)
        ttft = time.perf_counter() - start
        start = time.perf_counter()
        text = generator.chat(messages, max_new_tokens=max_new_tokens)[0]
        full = time.perf_counter() - start
        tokens = _count_tokens(generator, text)
        row = ItemRow(id=str(i), scores={"latency_s": full, "ttft_s": ttft}, detail={"output_tokens": tokens})
        if tokens > 1:
            row.scores["tpot_s"] = max(0.0, full - ttft) / (tokens - 1)
        rows.append(row)
        if progress is not None:
            progress(i, requests, f"probe {i}/{requests}")
    return rows


def _count_tokens(generator: Generator, text: str) -> int:
    lm = getattr(generator, "lm", None)
    if lm is not None:
        return len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
    return max(1, len(text.split()))  # an endpoint: words as the unit


def latency_summary(rows: list[ItemRow]) -> dict[str, float]:
    """Percentiles of each timing and sequential QPS (requests / summed latency)."""
    out: dict[str, float] = {}
    for name in ("latency_s", "ttft_s", "tpot_s", "tool_call_s"):
        values = [r.scores[name] for r in rows if name in r.scores]
        for key, value in percentiles(values).items():
            out[f"{name}_{key}"] = value
    latencies = [r.scores["latency_s"] for r in rows if "latency_s" in r.scores]
    if latencies and sum(latencies) > 0:
        out["qps"] = len(latencies) / sum(latencies)
    return out
