"""Measure the host: BFCL tool-call accuracy (with and without constrained decoding), accuracy on
Quiver's own tools, the local backend's generation speed against plain ``model.generate``, and
the loop's own overhead; before/after the agent model's adapter (``--adapter none,agent``).

    python -m bench.host --data ../shared/data/bfcl --adapter none,agent --limit 10

BFCL: only the held-out records (``agent_model/heldout/bfcl_test_ids.json``, never trained on),
``tool_choice=auto``, per category, AST accuracy and valid-call rate (``servers.eval.agents``).
Quiver tools: the first assistant turn of each held-out record of the agent-model dataset
(``data/agent_model/examples/test.jsonl``, sources quiver and trace), scored by the eval server's
tool-call scorer (``score_tool_calls``): tool choice, and tool plus arguments (values equal after
BFCL normalisation; a ``query``/``question`` argument may also be the user's message verbatim).
Call probability: P(the reply opens with ``<tool_call>``) on those held-out records, per category, and
its AUC between records that need a call and records that do not (does the model judge relevance?).

Prints one JSON object per line (figures only; progress on stderr).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from agent_model.conversation import record_tools as offered_tools  # the small-model view a record offered
from bench.common import REPO, SHARED_DATA, log
from host.backends.base import ToolInfo
from host.backends.local import CALL_TAG, LocalBackend
from host.loop import SYSTEM_PROMPT
from servers.eval.agents import calls_correct, calls_valid, score_tool_calls, to_json_schema
from servers.eval.schemas import ToolCallItem

SYSTEM = "You are a helpful assistant that calls functions to answer requests."
SYSTEMS = {"bench": SYSTEM, "host": SYSTEM_PROMPT}
HELDOUT_IDS = REPO / "agent_model" / "heldout" / "bfcl_test_ids.json"
CATEGORIES = "simple_python,multiple,parallel,parallel_multiple,irrelevance,live_simple,live_multiple"
FREE_TEXT = ("query", "question")  # arguments the model writes; the user's message verbatim is accepted too


def heldout_ids(category: str) -> list[str]:
    """The BFCL ids of ``category`` kept out of the agent model's training (in file order)."""
    ids = json.loads(HELDOUT_IDS.read_text(encoding="utf-8"))["ids"]
    if category not in ids:
        raise SystemExit(f"no held-out ids for category {category!r} in {HELDOUT_IDS}; known: {sorted(ids)}")
    return list(ids[category])


def heldout_records(data: Path, category: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` held-out BFCL records of ``category``."""
    by_id = {r["id"]: r for r in map(json.loads, (data / f"{category}.jsonl").open())}
    return [by_id[i] for i in heldout_ids(category) if i in by_id][:limit]


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
    backend: LocalBackend, data: Path, category: str, limit: int, max_new_tokens: int, tool_choice: str = "auto",
    system: str = "bench", adapter: str = "none",
) -> dict[str, Any]:
    """The held-out records of ``category`` only (the first ``limit`` of them)."""
    records = heldout_records(data, category, limit)
    answers_path = data / "possible_answer" / f"{category}.jsonl"
    answers = {json.loads(x)["id"]: json.loads(x)["ground_truth"] for x in answers_path.open()} if answers_path.exists() else {}
    irrelevance = category.startswith("irrelevance")
    correct = valid_n = 0
    seconds: list[float] = []
    tokens = 0
    for i, rec in enumerate(records):
        tools = record_tools(rec)
        by_name = {t.name: t for t in tools}
        messages = [{"role": "system", "content": SYSTEMS[system]}, *rec["question"][0]]
        turn = backend.complete(messages, tools, tool_choice=tool_choice, max_new_tokens=max_new_tokens)
        calls = [(c.name, c.arguments) for c in turn.tool_calls]
        ok = score(calls, answers.get(rec["id"], []), by_name, irrelevance)
        correct += ok
        valid_n += valid(turn.tool_calls, turn.parse_error, by_name, irrelevance)
        seconds.append(turn.seconds)
        tokens += turn.completion_tokens
        log(f"{category} {i + 1}/{len(records)} constrained={backend.constrained} ok={ok} {turn.raw[:100]!r}")
    n = len(records)
    return {"bench": "host_bfcl", "category": category, "model": backend.name, "adapter": adapter,
            "constrained": backend.constrained, "call_decision": backend.call_decision, "call_threshold": backend.call_threshold, "tool_choice": tool_choice, "system": system, "heldout": True, "n": n, "accuracy": round(correct / n, 4) if n else None,
            "valid_rate": round(valid_n / n, 4) if n else None,
            "seconds_per_record": round(statistics.mean(seconds), 3) if seconds else None,
            "tokens_per_record": round(tokens / n, 1) if n else None}


def quiver_records(dataset: Path, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` held-out Quiver and trace records, round-robin over their categories (so a
    small ``limit`` still covers many kinds of request)."""
    path = dataset / "examples" / "test.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: build the dataset first (make agent-model-data)")
    by_category: dict[str, list[dict[str, Any]]] = {}
    for r in map(json.loads, path.open(encoding="utf-8")):
        if r["source"] in ("quiver", "trace"):
            by_category.setdefault(r["category"], []).append(r)
    return [r for group in itertools.zip_longest(*by_category.values()) for r in group if r is not None][:limit]


def quiver_tools(backend: LocalBackend, dataset: Path, limit: int, max_new_tokens: int,
                 adapter: str = "none", order: str = "recorded") -> dict[str, Any]:
    """Tool choice and arguments on the agent-model dataset's held-out Quiver records (first assistant
    turn, prompted exactly as the host prompts: its messages, the offered small-view tools, ``auto``).
    ``order="reversed"`` offers each record's tools in reverse order: a model that reads the request
    chooses the same tools; ``first_listed_rate`` (calls that open with the first tool offered)
    shows a position bias (in the recorded, shuffled order the target is first in about a third)."""
    records = quiver_records(dataset, limit)
    items: list[ToolCallItem] = []
    choice_ok = called = first_listed = 0
    per_category: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        first = next(k for k, m in enumerate(rec["messages"]) if m["role"] == "assistant")
        prompt, target = rec["messages"][:first], rec["messages"][first]
        user = next(m["content"] for m in reversed(prompt) if m["role"] == "user")
        tools = offered_tools(rec)
        if order == "reversed":
            tools.reverse()
        turn = backend.complete(prompt, tools, tool_choice="auto", max_new_tokens=max_new_tokens)
        if turn.tool_calls:
            called += 1
            first_listed += turn.tool_calls[0].name == tools[0].name
        want = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in target.get("tool_calls") or []]
        expected = [{name: {k: [v, user] if k in FREE_TEXT else [v] for k, v in args.items()}} for name, args in want]
        item = ToolCallItem(id=rec["id"], functions=[{"name": t.name, "description": t.description,
                                                      "parameters": t.input_schema} for t in tools],
                            calls=[{"name": c.name, "arguments": c.arguments} for c in turn.tool_calls],
                            expected=expected, irrelevance=not want, parse_error=turn.parse_error)
        items.append(item)
        chose = sorted(c.name for c in turn.tool_calls) == sorted(n for n, _ in want)
        choice_ok += chose
        per_category.setdefault(rec["category"], []).append(int(chose))
        log(f"quiver {i + 1}/{len(records)} {rec['category']} choice={chose} {turn.raw[:100]!r}")
    rows = score_tool_calls(items)
    n = len(rows)
    return {"bench": "host_quiver_tools", "model": backend.name, "adapter": adapter, "constrained": backend.constrained,
            "call_decision": backend.call_decision, "call_threshold": backend.call_threshold,
            "tool_choice": "auto", "tool_order": order, "n": n,
            "tool_choice_accuracy": round(choice_ok / n, 4) if n else None,
            "first_listed_rate": round(first_listed / called, 4) if called else None,
            "accuracy": round(sum(r.scores.get("ast_accuracy", 0.0) for r in rows) / n, 4) if n else None,
            "valid_rate": round(sum(r.scores.get("valid_calls", 0.0) for r in rows) / n, 4) if n else None,
            "no_call_targets": sum(i.irrelevance for i in items),
            "tool_choice_by_category": {k: round(sum(v) / len(v), 3) for k, v in sorted(per_category.items())}}


def p_call(backend: LocalBackend, messages: list[dict[str, Any]], tools: list[ToolInfo]) -> float:
    """The probability that the model's reply opens with a tool call (the call tag teacher-forced after the
    host's prompt): the model's own call / no-call decision, before any grammar or sampling."""
    return backend.decoder.continuation_probability(backend.prompt(messages, tools), CALL_TAG)


def auc(positive: list[float], negative: list[float]) -> float | None:
    """P(a random should-call record scores above a random should-not one); 0.5 = no discrimination."""
    if not positive or not negative:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return round(wins / (len(positive) * len(negative)), 4)


def answer_turns(record: dict[str, Any]) -> list[int]:
    """Indices of a record's plain answers that follow a tool result: the model has what it asked
    for and should answer, not call again."""
    messages = record["messages"]
    return [i for i, m in enumerate(messages) if i and m["role"] == "assistant" and not m.get("tool_calls")
            and messages[i - 1]["role"] == "tool"]


def call_probability(backend: LocalBackend, data: Path, dataset: Path, categories: list[str], limit: int,
                     system: str = "host", adapter: str = "none") -> dict[str, Any]:
    """Does the model call when it should and not otherwise? P(call) on held-out BFCL records per category
    and on the held-out Quiver records, and the AUC between records that need a call and records that
    do not (irrelevance, Quiver no-tool). A forward pass per record, no generation: a sharper figure than
    accuracy on a few records, and the one a decision threshold would need (an AUC near 0.5 means no
    threshold on P(call) can separate them). Apart from the AUC: P(call) at up to ``limit`` answer turns
    of held-out traces (``trace/answer_turn``, after a tool result that holds the answer), and the share
    the host would call again there (``answer_turn_calls``: the loop a run then stops on)."""
    if backend.dialect not in ("smol", "hermes"):
        raise SystemExit(f"call probability needs a tagged tool-call dialect (smol, hermes), not {backend.dialect}")
    by_category: dict[str, list[float]] = {}
    split: dict[str, tuple[list[float], list[float]]] = {"bfcl": ([], []), "quiver": ([], [])}
    for category in categories:
        for rec in heldout_records(data, category, limit):
            messages = [{"role": "system", "content": SYSTEMS[system]}, *rec["question"][0]]
            p = p_call(backend, messages, record_tools(rec))
            by_category.setdefault(category, []).append(p)
            split["bfcl"][category.startswith("irrelevance")].append(p)
        log(f"call probability {category}: {statistics.mean(by_category.get(category) or [0]):.3f}")
    taken = {True: 0, False: 0}
    for rec in quiver_records(dataset, 10**9):  # up to ``limit`` records that need a call and ``limit`` that do not
        first = next(k for k, m in enumerate(rec["messages"]) if m["role"] == "assistant")
        should = bool(rec["messages"][first].get("tool_calls"))
        if taken[should] >= limit:
            continue
        taken[should] += 1
        tools = offered_tools(rec)
        p = p_call(backend, rec["messages"][:first], tools)
        by_category.setdefault(f"quiver/{'call' if should else 'no_call'}", []).append(p)
        split["quiver"][not should].append(p)
    t = backend.call_threshold
    after: list[float] = []
    for rec in quiver_records(dataset, 10**9):
        for i in answer_turns(rec)[: max(0, limit - len(after))]:
            after.append(p_call(backend, rec["messages"][:i], offered_tools(rec)))
    if after:
        by_category["trace/answer_turn"] = after
    return {"bench": "host_call_probability", "model": backend.name, "adapter": adapter, "system": system,
            "heldout": True, "n": sum(map(len, by_category.values())),
            "mean_p_call": {k: round(statistics.mean(v), 4) for k, v in sorted(by_category.items())},
            "n_by_category": {k: len(v) for k, v in sorted(by_category.items())},
            "auc_bfcl": auc(*split["bfcl"]), "auc_quiver": auc(*split["quiver"]),
            # the host's decision (call when P(call) >= the backend's threshold) here: right call / no-call share
            "call_threshold": t,
            "decision_accuracy": {k: round((sum(p >= t for p in pos) + sum(p < t for p in neg))
                                           / max(1, len(pos) + len(neg)), 4) for k, (pos, neg) in split.items()},
            "answer_turn_calls": round(sum(p >= t for p in after) / len(after), 4) if after else None}


def speed(backend: LocalBackend, new_tokens: int, repeats: int, adapter: str = "none") -> dict[str, Any]:
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
    return {"bench": "host_speed", "model": backend.name, "adapter": adapter, "device": backend.lm.device, "new_tokens": new_tokens,
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
    parser.add_argument("--dataset", default=str(REPO / "data" / "agent_model"),
                        help="the built agent-model dataset (its held-out test split scores Quiver's tools)")
    parser.add_argument("--categories", default=CATEGORIES)
    parser.add_argument("--limit", type=int, default=10, help="held-out records per category (and Quiver records)")
    parser.add_argument("--model", default=None, help="causal LM (default: the shipped smollm2); repeatable via commas")
    parser.add_argument("--adapter", default="none",
                        help="comma list of models.adapter values to compare: none, agent (the shipped one), a folder")
    parser.add_argument("--system", default="host", help="comma list of system prompts: host (the host's), bench")
    parser.add_argument("--call-limit", type=int, default=20,
                        help="held-out records per category for P(call) (a forward pass each; Quiver: this many "
                             "records that need a call and this many that do not)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--call-threshold", type=float, default=None,
                        help="P(call) threshold of the probability decision (default: the adapter's calibrated one, else 0.5)")
    parser.add_argument("--settings", default="constrained",
                        help="comma list of constrained, constrained-greedy (call when the tag is the most likely first "
                             "token, not when P(call) >= 0.5), free, constrained-required (tool_choice=required; "
                             "irrelevance is skipped there: a forced call is wrong by definition)")
    parser.add_argument("--speed-tokens", type=int, default=48)
    parser.add_argument("--speed-repeats", type=int, default=2)
    parser.add_argument("--tool-order", default="recorded",
                        help="comma list for the Quiver records: recorded (the dataset's shuffled order), reversed "
                             "(the same tools listed in reverse: a position-bias check)")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: bfcl,quiver,speed,overhead,calls "
                                                   "(calls: P(call) per category and its AUC)")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    from servers.core.models import causal_lm
    from servers.core.settings import load_settings

    settings = load_settings()
    if "overhead" not in skip:
        print(json.dumps(loop_overhead(20)), flush=True)
    for model_name in (args.model or "smollm2").split(","):
        speeds: dict[str, float] = {}
        for adapter in args.adapter.split(","):
            lm = causal_lm(model_name, settings, adapter=adapter)
            if adapter.lower() not in ("none", "") and "+" not in lm.name:
                raise SystemExit(f"the adapter {adapter!r} did not load for {model_name} (not trained yet? "
                                 "run `make agent-model`); see the warning above")
            if "speed" not in skip:
                row = speed(LocalBackend(lm), args.speed_tokens, args.speed_repeats, adapter)
                speeds[adapter] = row["host_tok_s"]
                print(json.dumps(row), flush=True)
            if "calls" not in skip:
                row = call_probability(LocalBackend(lm, call_threshold=args.call_threshold), Path(args.data), Path(args.dataset),
                                       args.categories.split(","), args.call_limit, args.system.split(",")[0], adapter)
                print(json.dumps(row), flush=True)
            for mode in args.settings.split(","):
                backend = LocalBackend(lm, constrained=mode.startswith("constrained"),
                                       call_decision="greedy" if mode.endswith("-greedy") else "probability",
                                       call_threshold=args.call_threshold)
                choice = "required" if mode.endswith("-required") else "auto"
                if "quiver" not in skip and choice == "auto":
                    for order in args.tool_order.split(","):
                        row = quiver_tools(backend, Path(args.dataset), args.limit, args.max_new_tokens, adapter, order)
                        print(json.dumps(row), flush=True)
                if "bfcl" in skip:
                    continue
                for system in args.system.split(","):
                    for category in args.categories.split(","):
                        if choice == "required" and category.startswith("irrelevance"):
                            continue
                        row = bfcl(backend, Path(args.data), category, args.limit, args.max_new_tokens, choice,
                                   system, adapter)
                        print(json.dumps(row), flush=True)
        if "none" in speeds and len(speeds) > 1:
            for adapter, tok_s in speeds.items():
                if adapter != "none":
                    print(json.dumps({"bench": "host_speed_adapter", "model": model_name, "adapter": adapter,
                                      "tok_s": tok_s, "plain_tok_s": speeds["none"],
                                      "ratio": round(tok_s / speeds["none"], 3)}), flush=True)


if __name__ == "__main__":
    main()
