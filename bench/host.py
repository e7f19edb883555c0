"""Measure the host: BFCL tool-call accuracy (with and without constrained decoding), the local
backend's generation speed against plain ``model.generate``, and the loop's own overhead.

    python -m bench.host --data ../shared/data/bfcl --categories simple_python,multiple,parallel,irrelevance --limit 10

Prints one JSON object per line (figures only; progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, SHARED_DATA, log
from host.backends.base import ToolInfo
from host.backends.local import LocalBackend
from servers.eval.agents import calls_correct, calls_valid, to_json_schema

SYSTEM = "You are a helpful assistant that calls functions to answer requests."


# ---------------------------------------------------------------- BFCL → JSON Schema

def record_tools(record: dict[str, Any]) -> list[ToolInfo]:
    return [ToolInfo(name=f["name"], server="bfcl", remote_name=f["name"], description=f.get("description", ""),
                     input_schema=to_json_schema(f.get("parameters") or {"type": "dict", "properties": {}}))
            for f in record["function"]]


# ---------------------------------------------------------------- AST match (servers.eval.agents, as BFCL does)

def score(calls: list[tuple[str, Any]], truth: list[dict[str, Any]], tools: dict[str, ToolInfo], irrelevance: bool) -> bool:
    return calls_correct(calls, truth, {n: t.input_schema for n, t in tools.items()}, irrelevance)


def valid(calls: list[Any], parse_error: str | None, tools: dict[str, ToolInfo], irrelevance: bool) -> bool:
    pairs = [(c.name, c.arguments) for c in calls]
    return calls_valid(pairs, {n: t.input_schema for n, t in tools.items()}, irrelevance, parse_error)[0]


# ---------------------------------------------------------------- runs

def bfcl(
    backend: LocalBackend, data: Path, category: str, limit: int, max_new_tokens: int, tool_choice: str = "auto"
) -> dict[str, Any]:
    records = [json.loads(x) for x in (data / f"{category}.jsonl").open()][:limit]
    answers_path = data / "possible_answer" / f"{category}.jsonl"
    answers = {json.loads(x)["id"]: json.loads(x)["ground_truth"] for x in answers_path.open()} if answers_path.exists() else {}
    irrelevance = category.startswith("irrelevance")
    correct = valid_n = 0
    seconds: list[float] = []
    tokens = 0
    for i, rec in enumerate(records):
        tools = record_tools(rec)
        by_name = {t.name: t for t in tools}
        messages = [{"role": "system", "content": SYSTEM}, *rec["question"][0]]
        turn = backend.complete(messages, tools, tool_choice=tool_choice, max_new_tokens=max_new_tokens)
        calls = [(c.name, c.arguments) for c in turn.tool_calls]
        ok = score(calls, answers.get(rec["id"], []), by_name, irrelevance)
        correct += ok
        valid_n += valid(turn.tool_calls, turn.parse_error, by_name, irrelevance)
        seconds.append(turn.seconds)
        tokens += turn.completion_tokens
        log(f"{category} {i + 1}/{len(records)} constrained={backend.constrained} ok={ok} {turn.raw[:100]!r}")
    n = len(records)
    return {"bench": "host_bfcl", "category": category, "model": backend.name, "constrained": backend.constrained,
            "tool_choice": tool_choice, "n": n, "accuracy": round(correct / n, 4) if n else None,
            "valid_rate": round(valid_n / n, 4) if n else None,
            "seconds_per_record": round(statistics.mean(seconds), 3) if seconds else None,
            "tokens_per_record": round(tokens / n, 1) if n else None}


def speed(backend: LocalBackend, new_tokens: int, repeats: int) -> dict[str, Any]:
    """Tokens/s of the backend's decode loop vs model.generate on the same prompt, and the
    constrained loop (a JSON-schema grammar) vs the free one."""
    import torch
    import xgrammar as xgr

    tok, model = backend.tokenizer, backend.lm.model
    prompt = tok.apply_chat_template([{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
                                     add_generation_prompt=True, tokenize=False)
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
    decoder = backend.decoder  # the core decoding loop (repetition penalty 1.0: the same computation as greedy generate)
    tool = ToolInfo("record", "bench", "record", "Record a story.", {
        "type": "object", "properties": {"title": {"type": "string"}, "story": {"type": "string"}},
        "required": ["title", "story"]})
    from host.backends.formats import structural_tag

    grammar = decoder.compile(structural_tag([tool], backend.dialect, "required"))
    rows: dict[str, list[float]] = {"generate": [], "host_loop": [], "host_constrained": []}
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        n = out.shape[1] - enc["input_ids"].shape[1]
        rows["generate"].append(n / (time.perf_counter() - start))
        start = time.perf_counter()
        n = decoder.decode(prompt, max_new_tokens=new_tokens).new_tokens
        rows["host_loop"].append(n / (time.perf_counter() - start))
        start = time.perf_counter()
        n = decoder.decode(prompt, grammar=grammar, max_new_tokens=new_tokens).new_tokens
        rows["host_constrained"].append(n / (time.perf_counter() - start))
    # grammar mask cost alone, per token
    matcher = xgr.GrammarMatcher(grammar)
    bitmask = xgr.allocate_token_bitmask(1, grammar.tokenizer_info.vocab_size)
    start = time.perf_counter()
    for _ in range(200):
        matcher.fill_next_token_bitmask(bitmask)
    mask_ms = (time.perf_counter() - start) / 200 * 1000
    med = {k: statistics.median(v) for k, v in rows.items()}
    return {"bench": "host_speed", "model": backend.name, "device": backend.lm.device, "new_tokens": new_tokens,
            "prompt_tokens": int(enc["input_ids"].shape[1]),
            "generate_tok_s": round(med["generate"], 2), "host_tok_s": round(med["host_loop"], 2),
            "host_constrained_tok_s": round(med["host_constrained"], 2),
            "host_vs_generate": round(med["host_loop"] / med["generate"], 3),
            "constrained_vs_free": round(med["host_constrained"] / med["host_loop"], 3),
            "grammar_mask_ms_per_token": round(mask_ms, 3)}


def loop_overhead(steps: int) -> dict[str, Any]:
    """The loop's own time per step (excluding model and tool time), against the real test server."""
    import anyio

    from host.backends.base import ModelTurn, ToolCall
    from host.config import ServerSpec
    from host.connections import Hub
    from host.loop import Agent
    from servers.core.settings import load_settings

    class Instant:
        name, constrained = "instant", False

        def __init__(self) -> None:
            self.i = 0

        def complete(self, messages, tools, **kw):  # noqa: ANN001, ANN003
            self.i += 1
            if self.i > steps:
                return ModelTurn(text="done")
            return ModelTurn(text="", tool_calls=[ToolCall(f"c{self.i}", "add", {"a": self.i, "b": 1})])

    settings = load_settings(overrides={"data_dir": "/tmp/quiver-bench-host", "host": {"transcripts": False}})
    spec = ServerSpec(name="test", command=sys.executable, args=[str(REPO / "tests/host/mcp_test_server.py")],
                      env={"PYTHONPATH": str(REPO)})

    async def main() -> dict[str, Any]:
        async with Hub([spec], log_dir=settings.data_path / "logs") as hub:
            agent = Agent(hub, Instant(), settings, max_steps=steps + 1)
            total = None
            start = time.perf_counter()
            async for event in agent.run("add numbers"):
                if event.type == "usage" and event.total:
                    total = event
            wall = time.perf_counter() - start
        return {"bench": "host_loop_overhead", "steps": steps, "wall_s": round(wall, 4),
                "tool_s": total.tool_seconds, "overhead_ms_per_step": round(total.overhead_seconds / steps * 1000, 3),
                "tool_call_ms_per_step": round(total.tool_seconds / steps * 1000, 3)}

    return anyio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(SHARED_DATA / "bfcl"))
    parser.add_argument("--categories", default="simple_python,multiple,parallel,irrelevance")
    parser.add_argument("--limit", type=int, default=10, help="records per category")
    parser.add_argument("--model", default=None, help="causal LM (default: the shipped smollm2); repeatable via commas")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--settings", default="constrained,free",
                        help="comma list of constrained, free, constrained-required (tool_choice=required; "
                             "irrelevance is skipped there: a forced call is wrong by definition)")
    parser.add_argument("--speed-tokens", type=int, default=48)
    parser.add_argument("--speed-repeats", type=int, default=2)
    parser.add_argument("--skip", default="", help="comma list of parts to skip: bfcl,speed,overhead")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    from servers.core.models import causal_lm
    from servers.core.settings import load_settings

    settings = load_settings()
    if "overhead" not in skip:
        print(json.dumps(loop_overhead(20)), flush=True)
    for model_name in (args.model or "smollm2").split(","):
        lm = causal_lm(model_name, settings)
        if "speed" not in skip:
            print(json.dumps(speed(LocalBackend(lm), args.speed_tokens, args.speed_repeats)), flush=True)
        if "bfcl" in skip:
            continue
        for mode in args.settings.split(","):
            backend = LocalBackend(lm, constrained=mode.startswith("constrained"))
            choice = "required" if mode.endswith("-required") else "auto"
            for category in args.categories.split(","):
                if choice == "required" and category.startswith("irrelevance"):
                    continue
                row = bfcl(backend, Path(args.data), category, args.limit, args.max_new_tokens, choice)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
