"""Reward specs for GRPO/RLOO: declarative rules with weights, or a Python callable.

A spec is a list of rules, each ``{"type": ..., "weight": 1.0, ...}``:

* ``format_regex`` ``pattern``: 1 if the completion matches (``re.search``, DOTALL), else 0
* ``exact_match`` ``field`` (dataset column, default ``answer``): 1 if the stripped completion
  (or the content of its last ``<answer>...</answer>`` when present) equals the column
* ``numeric_match`` ``field``, ``tolerance``: 1 if the last number in the completion is within
  tolerance of the column's number
* ``json_schema`` ``schema``: 1 if the completion (or its first ```json block) is JSON valid
  against the schema, 0.5 if it is JSON but invalid, 0 otherwise
* ``length`` ``min_chars``, ``max_chars``: 1 inside the window, falling linearly to 0 at
  half / twice the bounds
* ``repetition`` ``ngram`` (default 3): minus the share of repeated n-grams (0 when none repeat)
* ``language`` ``language`` (``zh``, ``en``, or ``prompt`` = same script as the prompt):
  the share of letters in the expected script
* ``python`` ``callable`` ``"module:function"``: a TRL reward function
  ``f(prompts, completions, **columns) -> list[float]``
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from servers.core.errors import InvalidInput

RULE_TYPES = ("format_regex", "exact_match", "numeric_match", "json_schema", "length", "repetition", "language", "python")
NUMBER_RE = re.compile(r"-?\d+(?:[.,]\d+)*(?:\.\d+)?")
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
LATIN_RE = re.compile(r"[A-Za-z]")


class RewardRule(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(description=", ".join(RULE_TYPES))
    weight: float = 1.0


RewardFunc = Callable[..., list[float]]


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "\n".join(str(m.get("content") or "") for m in completion if isinstance(m, dict))
    return str(completion)


def _answer(text: str) -> str:
    found = ANSWER_RE.findall(text)
    return (found[-1] if found else text).strip()


def _number(text: str) -> float | None:
    found = NUMBER_RE.findall(text.replace(",", ""))
    if not found:
        return None
    try:
        return float(found[-1])
    except ValueError:
        return None


def _column(kwargs: dict[str, Any], field: str, n: int) -> list[Any]:
    values = kwargs.get(field)
    if values is None:
        raise InvalidInput(f"the reward needs the dataset column '{field}' next to 'prompt'")
    return list(values)[:n]


def _build_rule(rule: RewardRule, index: int) -> RewardFunc:
    extra = rule.model_extra or {}
    kind = rule.type

    if kind == "format_regex":
        try:
            pattern = re.compile(str(extra["pattern"]), re.DOTALL)
        except KeyError as exc:
            raise InvalidInput("format_regex needs 'pattern'") from exc
        except re.error as exc:
            raise InvalidInput(f"format_regex pattern is not a valid regex: {exc}") from exc

        def fn(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
            return [1.0 if pattern.search(_text(c)) else 0.0 for c in completions]

    elif kind == "exact_match":
        field = str(extra.get("field", "answer"))

        def fn(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
            gold = _column(kw, field, len(completions))
            return [1.0 if _answer(_text(c)) == str(g).strip() else 0.0 for c, g in zip(completions, gold, strict=False)]

    elif kind == "numeric_match":
        field = str(extra.get("field", "answer"))
        tol = float(extra.get("tolerance", 1e-6))

        def fn(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
            gold = _column(kw, field, len(completions))
            out = []
            for c, g in zip(completions, gold, strict=False):
                got, want = _number(_answer(_text(c))), _number(str(g))
                out.append(1.0 if got is not None and want is not None and abs(got - want) <= tol else 0.0)
            return out

    elif kind == "json_schema":
        import jsonschema

        schema = extra.get("schema")
        if not isinstance(schema, dict):
            raise InvalidInput("json_schema needs 'schema' (a JSON Schema object)")
        try:
            validator = jsonschema.Draft202012Validator(schema)
        except jsonschema.SchemaError as exc:
            raise InvalidInput(f"json_schema 'schema' is not a valid JSON Schema: {exc.message}") from exc

        def fn(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
            out = []
            for c in completions:
                text = _text(c)
                block = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
                try:
                    value = json.loads(block.group(1) if block else text.strip())
                except json.JSONDecodeError:
                    out.append(0.0)
                    continue
                out.append(1.0 if validator.is_valid(value) else 0.5)
            return out

    elif kind == "length":
        low, high = int(extra.get("min_chars", 1)), int(extra.get("max_chars", 10**9))
        if low < 0 or high < low:
            raise InvalidInput("length needs 0 ≤ min_chars ≤ max_chars")

        def fn(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
            out = []
            for c in completions:
                n = len(_text(c))
                if low <= n <= high:
                    out.append(1.0)
                elif n < low:
                    out.append(max(0.0, 1 - (low - n) / max(low / 2, 1)))
                else:
                    out.append(max(0.0, 1 - (n - high) / max(high, 1)))
            return out

    elif kind == "repetition":
        size = int(extra.get("ngram", 3))

        def fn(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
            out = []
            for c in completions:
                words = _text(c).split()
                grams = [tuple(words[i : i + size]) for i in range(max(0, len(words) - size + 1))]
                out.append(-(1 - len(set(grams)) / len(grams)) if grams else 0.0)
            return out

    elif kind == "language":
        lang = str(extra.get("language", "prompt"))
        if lang not in ("zh", "ja", "ko", "cjk", "en", "latin", "prompt"):
            raise InvalidInput("language must be zh/ja/ko/cjk, en/latin, or 'prompt' (same script as the prompt)")

        def share(text: str, cjk: bool) -> float:
            c, lat = len(CJK_RE.findall(text)), len(LATIN_RE.findall(text))
            return (c if cjk else lat) / (c + lat) if c + lat else 0.0

        def fn(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
            out = []
            for p, c in zip(prompts, completions, strict=False):
                if lang == "prompt":
                    ptext = _text(p)
                    cjk = len(CJK_RE.findall(ptext)) > len(LATIN_RE.findall(ptext))
                else:
                    cjk = lang in ("zh", "ja", "ko", "cjk")
                out.append(share(_text(c), cjk))
            return out

    elif kind == "python":
        target = str(extra.get("callable", ""))
        fn = load_callable(target)
    else:
        raise InvalidInput(f"unknown reward rule type '{kind}': use one of {', '.join(RULE_TYPES)}")
    fn.__name__ = f"{kind}_{index}" if kind != "python" else getattr(fn, "__name__", f"python_{index}")
    return fn


def load_callable(target: str) -> RewardFunc:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidInput(f"python reward 'callable' must look like 'package.module:function' (got {target!r})")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"cannot import reward module '{module_name}': {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InvalidInput(f"'{attr}' in {module_name} is not a callable reward function")
    return fn


def build_rewards(spec: list[dict[str, Any]] | None) -> tuple[list[RewardFunc], list[float]]:
    """Reward functions and their weights from a spec; raises InvalidInput naming the bad rule."""
    if not spec:
        raise InvalidInput(
            "grpo/rloo need a reward spec: e.g. [{\"type\": \"format_regex\", \"pattern\": \"<answer>.*</answer>\"}, "
            "{\"type\": \"numeric_match\", \"field\": \"answer\", \"weight\": 2}] or [{\"type\": \"python\", "
            "\"callable\": \"my_rewards:score\"}]"
        )
    funcs, weights = [], []
    for index, raw in enumerate(spec):
        try:
            rule = RewardRule.model_validate(raw)
        except Exception as exc:
            raise InvalidInput(f"reward rule {index} is not valid: {exc}") from exc
        funcs.append(_build_rule(rule, index))
        weights.append(rule.weight)
    return funcs, weights


def score(spec: list[dict[str, Any]], prompts: list[Any], completions: list[Any], **columns: Any) -> list[float]:
    """The weighted total reward per completion (for previews and tests)."""
    funcs, weights = build_rewards(spec)
    totals = [0.0] * len(completions)
    for fn, weight in zip(funcs, weights, strict=True):
        for i, value in enumerate(fn(prompts, completions, **columns)):
            totals[i] += weight * (value if value is not None else 0.0)
    return totals
