"""Tool-call scoring as BFCL does it, and latency figures from transcripts and a live probe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servers.eval import api
from servers.eval.agents import calls_correct, calls_valid, function_schemas, value_matches
from servers.eval.schemas import ToolCallItem
from tests.eval.conftest import SHARED, Scripted

WEATHER = {"name": "get_weather", "description": "Weather for a city", "parameters": {
    "type": "dict", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"]}}
EXPECTED = [{"get_weather": {"city": ["Oslo", "Oslo, Norway"], "unit": ["", "celsius"], "days": [3]}}]


def test_ast_match_rules() -> None:
    schemas = function_schemas([WEATHER])
    assert schemas["get_weather"]["type"] == "object"  # BFCL 'dict' mapped to JSON Schema
    assert calls_correct([("get_weather", {"city": "oslo, norway", "days": 3})], EXPECTED, schemas, False)
    assert not calls_correct([("get_weather", {"city": "Oslo", "days": 4})], EXPECTED, schemas, False)
    assert not calls_correct([("get_weather", {"city": "Oslo", "days": 3, "extra": 1})], EXPECTED, schemas, False)
    assert not calls_correct([("get_weather", {"days": 3})], EXPECTED, schemas, False)
    assert calls_correct([], [], schemas, True) and not calls_correct([("get_weather", {"city": "x"})], [], schemas, True)
    two = [{"get_weather": {"city": ["A"], "days": [1]}}, {"get_weather": {"city": ["B"], "days": [2]}}]
    assert calls_correct([("get_weather", {"city": "B", "days": 2}), ("get_weather", {"city": "A", "days": 1})], two,
                         schemas, False)
    assert value_matches(3.0, [3]) and not value_matches(True, [1]) and value_matches([1, "a"], [[1, "A"]])
    assert calls_valid([("get_weather", {"city": 5})], schemas, False)[1] == "get_weather: city: 5 is not of type 'string'"
    assert calls_valid([("nope", {})], schemas, False) == (False, "'nope' is not an offered function")


def test_tool(eval_env) -> None:
    items = [
        ToolCallItem(functions=[WEATHER], calls=[{"name": "get_weather", "arguments": {"city": "Oslo", "days": 3}}],
                     expected=EXPECTED),
        ToolCallItem(functions=[WEATHER], calls=[{"name": "get_weather", "arguments": '{"city": "Bergen", "days": 3}'}],
                     expected=EXPECTED),
        ToolCallItem(functions=[WEATHER], calls=[], irrelevance=True),
        ToolCallItem(functions=[WEATHER], calls=[], parse_error="unterminated string", expected=EXPECTED),
        ToolCallItem(functions=[WEATHER], calls=[]),
    ]
    result = api.eval_tool_calls(items=items, settings=eval_env)
    assert [r.scores.get("ast_accuracy") for r in result.rows] == [1.0, 0.0, 1.0, 0.0, None]
    assert [r.scores.get("valid_calls") for r in result.rows] == [1.0, 1.0, 1.0, 0.0, None]
    assert result.rows[4].unscorable["*"].startswith("unscorable: no expected calls")


@pytest.mark.skipif(not (SHARED / "bfcl" / "simple_python.jsonl").is_file(), reason="../shared/data/bfcl is absent")
def test_bfcl_ground_truth_scores_one(eval_env) -> None:
    """The possible answers themselves, replayed as calls, are all correct and valid (the scorer's oracle)."""
    data = SHARED / "bfcl"
    records = [json.loads(x) for x in (data / "simple_python.jsonl").open()][:40]
    truth = {json.loads(x)["id"]: json.loads(x)["ground_truth"] for x in (data / "possible_answer" / "simple_python.jsonl").open()}
    items = []
    for rec in records:
        calls = [{"name": name, "arguments": {k: next(v for v in vals if v != "") for k, vals in args.items()
                                              if any(v != "" for v in vals)}}
                 for expected in truth[rec["id"]] for name, args in expected.items()]
        items.append(ToolCallItem(id=rec["id"], functions=rec["function"], calls=calls, expected=truth[rec["id"]]))
    result = api.eval_tool_calls(items=items, settings=eval_env)
    assert result.metrics["ast_accuracy"] == 1.0 and result.n_items == 40


def test_latency_from_transcripts_and_probe(eval_env, tmp_path: Path) -> None:
    folder = tmp_path / "transcripts"
    folder.mkdir()
    runs = []
    for i, total in enumerate([1.0, 2.0, 3.0, 4.0]):
        runs.append({"id": f"r{i}", "model": "m", "question": "q", "events": [
            {"type": "usage", "completion_tokens": 11, "model_seconds": total / 2, "ttft_s": 0.1 * (i + 1)},
            {"type": "tool_result", "id": "c", "name": "t", "seconds": 0.25},
            {"type": "usage", "total": True, "model_seconds": total / 2, "tool_seconds": total / 4,
             "overhead_seconds": total / 4, "completion_tokens": 11}]})
    (folder / "2025-01-01.jsonl").write_text("\n".join(json.dumps(r) for r in runs) + "\n{broken\n")
    settings = eval_env.model_copy(deep=True)
    settings.roots = [*settings.roots, str(tmp_path)]
    result = api.eval_latency(transcripts_path=str(folder), settings=settings)
    assert result.metrics["latency_s_p50"] == pytest.approx(2.5) and result.metrics["qps"] == pytest.approx(0.4)
    assert result.metrics["ttft_s_p50"] == pytest.approx(0.25)
    assert result.metrics["tpot_s_mean"] == pytest.approx(sum((t / 2 - 0.1 * (i + 1)) / 10
                                                              for i, t in enumerate([1.0, 2.0, 3.0, 4.0])) / 4)
    assert result.n_unscorable == 1  # the broken line
    probe = api.eval_latency(probe_requests=2, max_new_tokens=5, settings=eval_env,
                             generator=Scripted(lambda m: "one two three four five"))
    assert probe.n_items == 2 and {"latency_s_p50", "ttft_s_p50", "tpot_s_p50", "qps"} <= set(probe.metrics)
