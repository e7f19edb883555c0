"""Build the tool-calling dataset for the shipped SmolLM2 (deterministic for a seed).

    python -m agent_model.build_dataset --bfcl ../shared/data/bfcl --out DIR --seed 0

Writes, per split (``train``, ``test``):

* ``examples/SPLIT.jsonl``: every record (id, source, category, group, offered tools, the
  messages in the host's format, the rendered ``text`` and its token count);
* ``trl/SPLIT.jsonl``: ``{"messages"}`` in the ``smol`` dialect (plain ChatML turns; the
  SmolLM2 template renders them to the training text);
* ``trl_turns/SPLIT.jsonl``: ``{"prompt", "completion"}``, one row per assistant turn (loss on
  the completion only: the recommended training view);
* ``trl_tools/SPLIT.jsonl``: ``{"messages", "tools"}`` with OpenAI-style tool calls, for models
  whose chat template takes ``tools=`` (and the finetune server's data preparation);
* ``stats.json``: counts, drops and why, token-length distribution.

The BFCL held-out ids come from ``agent_model/heldout/bfcl_test_ids.json`` (committed; a record
listed there is never trained on); Quiver records split by a hash of their group.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import re
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import anyio

from agent_model import bank, bfcl, quiver_data, traces
from agent_model.conversation import Builder, Example, tool_dict
from agent_model.quiver_tools import (
    REPO,
    World,
    discover_tools,
    world_folder,
    world_settings,
)
from agent_model.split import LeakIndex, held_out
from host.loop import SYSTEM_PROMPT
from host.tools import ToolSelector, small_model_view, validate_arguments
from servers.eval.agents import calls_correct, function_schemas

HELDOUT = Path(__file__).resolve().parent / "heldout"
BFCL_HELDOUT = HELDOUT / "bfcl_test_ids.json"
QUIVER_HELDOUT = HELDOUT / "quiver_test_groups.json"
BFCL_TEST_FRACTION = 0.4
QUIVER_TEST_FRACTION = 0.25
LENGTH_MARKS = (512, 768, 1024, 1536)

log = logging.getLogger("agent_model")


# ---------------------------------------------------------------- BFCL

def bfcl_heldout_ids(folder: Path, fraction: float = BFCL_TEST_FRACTION) -> dict[str, list[str]]:
    """The rule behind the committed held-out list: a record is held out when the hash of
    ``category/id`` falls below ``fraction`` (independent of any seed)."""
    out = {}
    for category in bfcl.CATEGORIES:
        records = bfcl.load_category(folder, category)
        out[category] = sorted(r.id for r in records if held_out(f"bfcl/{category}/{r.id}", fraction))
    return out


def load_heldout(path: Path = BFCL_HELDOUT) -> dict[str, set[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: it is committed with the repo (rebuild it with --write-heldout)")
    data = json.loads(path.read_text(encoding="utf-8"))
    return {category: set(ids) for category, ids in data["ids"].items()}


def bfcl_examples(folder: Path, seed: int, heldout: dict[str, set[str]], drops: Counter) -> list[Example]:
    out = []
    for category in bfcl.CATEGORIES:
        for record in bfcl.load_category(folder, category):
            split = "test" if record.id in heldout.get(category, set()) else "train"
            tools = record.tools()
            by_name = {t.name: t for t in tools}
            calls = bfcl.target_calls(record)
            problems = [p for c in calls for p in [validate_arguments(by_name[c["name"]], c["arguments"])
                                                   if c["name"] in by_name else f"unknown function {c['name']}"] if p]
            if problems:
                drops[f"bfcl_truth_invalid_{split}"] += 1
                log.debug("dropped %s: %s", record.id, problems[0])
                continue
            pairs = [(c["name"], c["arguments"]) for c in calls]
            if not calls_correct(pairs, record.truth, function_schemas(record.functions), record.irrelevance):
                drops[f"bfcl_truth_unscorable_{split}"] += 1  # schema-valid, yet the AST scorer says wrong
                continue
            rng = random.Random(f"{seed}:bfcl:{record.id}")
            system = SYSTEM_PROMPT if rng.random() < 0.7 else bfcl.BENCH_SYSTEM
            b = Builder(system)
            b.messages.extend(dict(m) for m in record.messages)
            if calls:
                b.call(calls)
            else:
                b.answer(bfcl.no_call_answer(record, rng.randrange(3)))
            out.append(Example(id=f"bfcl/{record.id}", source="bfcl", category=category, split=split, group=record.id,
                               question=record.question_text(), tools=[tool_dict(t) for t in tools],
                               messages=b.messages))
    return out


SWAP_SOURCES = ("simple_python", "live_simple", "multiple")  # one call per question: what to pair with other tools


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", text.lower()) if len(w) > 3}


def swapped_irrelevance(examples: list[Example], seed: int) -> list[Example]:
    """Contrastive no-call records (BFCL builds its irrelevance category the same way): a training
    question whose own record calls a function, offered instead the functions of another training
    record that share no word (over three letters) of their names with the question and none of its
    target names; the reply says no function fits. The model then learns to read the offered tools
    before calling, not to call whatever it is offered. Training records only, never held-out ones."""
    rng = random.Random(f"{seed}:bfcl-swapped")
    pool = [e for e in examples if e.source == "bfcl" and e.split == "train" and e.calls()]
    questions = [e for e in pool if e.category in SWAP_SOURCES]
    out = []
    for e in questions:
        targets = {c["name"] for turn in e.calls() for c in turn}
        asked = _words(e.question) | {w for name in targets for w in _words(name)}
        for _ in range(20):  # a few draws until one record's functions are unrelated
            other = pool[rng.randrange(len(pool))]
            names = [t["name"] for t in other.tools]
            if other.group == e.group or targets & set(names) or any(_words(n) & asked for n in names):
                continue
            record = bfcl.BfclRecord(id=e.group, category="irrelevance_swapped", messages=[], functions=other.tools,
                                     truth=[])
            system = e.messages[0]["content"]
            b = Builder(system)
            b.messages.extend(dict(m) for m in e.messages[1:] if m["role"] == "user")
            b.answer(bfcl.no_call_answer(record, rng.randrange(3)))
            out.append(Example(id=f"bfcl-swapped/{e.group}", source="bfcl", category="irrelevance_swapped",
                               split="train", group=e.group, question=e.question, tools=other.tools,
                               messages=b.messages))
            break
    return out


# ---------------------------------------------------------------- Quiver tools

async def quiver_examples(args: argparse.Namespace, tokenizer_box: list[Any], trace_stats: traces.TraceStats,
                          tool_names: list[dict[str, str]]) -> list[Example]:
    from servers.core.models import causal_lm, embed

    with world_folder() as root:
        settings = world_settings(root, args.model_cache)
        tools = await discover_tools(settings)
        tool_names.extend({"name": t.name, "server": t.server} for t in tools)
        views = {t.name: small_model_view(t) for t in tools}
        tokenizer_box.append(causal_lm(None, settings).tokenizer)
        selector = ToolSelector(lambda texts: embed(texts, settings))
        shop = bank.ShopValues()
        ctx = quiver_data.Context(views=views, selector=selector, shop=shop, seed=args.seed,
                                  test_fraction=QUIVER_TEST_FRACTION, per_group=args.per_group)
        examples: list[Example] = []
        async with World.open(root, settings, tools, list(bank.LIVE_KBS), args.observation_chars) as world:
            await read_shop_values(world, shop)
            for generate in quiver_data.GENERATORS:
                examples.extend(generate(ctx))
                log.info("%s: %d records so far", generate.__name__, len(examples))
            for trace in (traces.kb_traces, traces.kb_chain_traces, traces.kb_error_traces):
                examples.extend([e async for e in trace(ctx, world, trace_stats)])
                log.info("%s: %d records so far", trace.__name__, len(examples))
            for trace in (traces.sql_error_traces, traces.describe_traces, traces.parse_traces):
                examples.extend([e async for e in trace(ctx, world)])
                log.info("%s: %d records so far", trace.__name__, len(examples))
            log.info("running text_to_sql %d times (the shipped model writes the SQL)", args.sql_runs)
            runs = await traces.text_to_sql_runs(ctx, world, trace_stats, args.sql_runs)
            examples.extend([e async for e in traces.sql_traces(ctx, world, runs)])
            examples.extend([e async for e in traces.parallel_traces(ctx, world, runs)])
        return examples


async def read_shop_values(world: World, shop: bank.ShopValues) -> None:
    """Slot values from the real shop database (through the real sql_execute tool); its table list
    must be the one the system prompts name (what the host reads from sql_list_databases)."""
    listing = await world.call("sql_list_databases", {}, seed="values")
    shop_entry = next((d for d in (listing.structured or {}).get("databases", []) if d.get("name") == "shop"), None)
    if shop_entry is None or tuple(shop_entry.get("table_names") or ()) != bank.SHOP_TABLES:
        raise RuntimeError(f"the shop database lists tables {shop_entry and shop_entry.get('table_names')}, "
                           f"not {bank.SHOP_TABLES}: update agent_model/bank.py SHOP_TABLES")
    queries = {
        "city": "SELECT DISTINCT city FROM customers ORDER BY city",
        "country": "SELECT DISTINCT country FROM customers ORDER BY country",
        "category": "SELECT DISTINCT category FROM products ORDER BY category",
        "product": "SELECT name FROM products ORDER BY product_id",
        "status": "SELECT DISTINCT status FROM orders ORDER BY status",
        "customer": "SELECT DISTINCT name FROM customers ORDER BY customer_id",
        "year": "SELECT DISTINCT substr(order_date, 1, 4) FROM orders ORDER BY 1",
    }
    for slot, sql in queries.items():
        obs = await world.call("sql_execute", {"sql": sql}, seed="values")
        if obs.is_error:
            raise RuntimeError(f"could not read {slot} values from the shop database: {obs.text}")
        setattr(shop, slot, [str(r[0]) for r in obs.structured["rows"]])


# ---------------------------------------------------------------- checks, stats, output

def dedup_and_leak_check(examples: list[Example], drops: Counter, extra_test_texts: list[str]) -> list[Example]:
    """Exact duplicates and same-prompt-different-target conflicts dropped (first kept); training
    records whose question duplicates or nearly duplicates a held-out one (or a demo question) dropped."""
    index = LeakIndex([e.question for e in examples if e.split == "test"] + extra_test_texts)
    seen: dict[str, str] = {}
    kept = []
    for e in examples:
        prompt = json.dumps([e.tools, e.messages[:-1]], sort_keys=True)
        target = json.dumps(e.messages[-1], sort_keys=True)
        key = hashlib.sha256(prompt.encode()).hexdigest()
        if key in seen:
            drops["duplicate" if seen[key] == target else f"conflict_{e.split}"] += 1
            continue
        seen[key] = target
        if e.split == "train" and index.match(e.question) is not None:
            drops[f"leak_{e.source}"] += 1
            continue
        kept.append(e)
    return kept


def length_stats(lengths: list[int]) -> dict[str, Any]:
    if not lengths:
        return {"n": 0}
    ordered = sorted(lengths)

    def pct(p: float) -> int:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return {"n": len(ordered), "min": ordered[0], "p50": pct(0.5), "p90": pct(0.9), "p95": pct(0.95),
            "p99": pct(0.99), "max": ordered[-1], "mean": round(statistics.mean(ordered), 1), "total": sum(ordered),
            "over": {str(m): sum(1 for x in ordered if x > m) for m in LENGTH_MARKS}}


def trl_tools_messages(e: Example) -> list[dict[str, Any]]:
    """Messages with OpenAI tool calls whose arguments are objects (what chat templates expect)."""
    out = []
    for m in e.messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [{"type": "function", "function": {"name": c["function"]["name"],
                                                       "arguments": json.loads(c["function"]["arguments"])}}
                     for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": m.get("content") or "", "tool_calls": calls})
        else:
            out.append({k: v for k, v in m.items() if k in ("role", "content", "name", "tool_call_id")})
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")  # key order kept: schemas render as served


def write_dataset(out: Path, examples: list[Example], tokenizer: Any) -> dict[str, dict[str, Any]]:
    lengths: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    rows: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for e in sorted(examples, key=lambda x: x.id):
        text = e.text(tokenizer)
        n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        lengths[e.split]["all"].append(n)
        lengths[e.split][e.source].append(n)
        rows[e.split]["examples"].append({**e.model_dump(), "text": text, "n_tokens": n})
        rows[e.split]["trl"].append({"id": e.id, "messages": e.smol_messages()})
        rows[e.split]["trl_tools"].append({"id": e.id, "messages": trl_tools_messages(e), "tools": e.openai_tools()})
        for i, (prompt, completion) in enumerate(e.turns()):
            rows[e.split]["trl_turns"].append({"id": f"{e.id}#{i}", "prompt": prompt, "completion": [completion]})
    for split, views in rows.items():
        for view, items in views.items():
            write_jsonl(out / view / f"{split}.jsonl", items)
    return {split: {k: length_stats(v) for k, v in sorted(by.items())} for split, by in sorted(lengths.items())}


def quiver_heldout_groups(examples: list[Example]) -> list[str]:
    return sorted({e.group for e in examples if e.source != "bfcl" and e.split == "test"})


def build(args: argparse.Namespace) -> dict[str, Any]:
    from host.demo import QUESTIONS as DEMO_QUESTIONS

    drops: Counter = Counter()
    heldout = load_heldout()
    examples = bfcl_examples(args.bfcl, args.seed, heldout, drops)
    if args.bfcl_limit:
        per_cat: Counter = Counter()
        limited = []
        for e in examples:
            per_cat[(e.category, e.split)] += 1
            if per_cat[(e.category, e.split)] <= args.bfcl_limit:
                limited.append(e)
        examples = limited
    examples += swapped_irrelevance(examples, args.seed)
    tokenizer_box: list[Any] = []
    trace_stats = traces.TraceStats()
    tool_names: list[dict[str, str]] = []
    examples += anyio.run(quiver_examples, args, tokenizer_box, trace_stats, tool_names)
    examples = dedup_and_leak_check(examples, drops, list(DEMO_QUESTIONS))
    args.out.mkdir(parents=True, exist_ok=True)
    lengths = write_dataset(args.out, examples, tokenizer_box[0])
    counts: dict[str, Counter] = defaultdict(Counter)
    for e in examples:
        counts[e.split][f"{e.source}/{e.category}"] += 1
    stats = {
        "seed": args.seed,
        "per_group": args.per_group,
        "sql_runs": args.sql_runs,
        "observation_chars": args.observation_chars,
        "bfcl_test_fraction": BFCL_TEST_FRACTION,
        "quiver_test_fraction": QUIVER_TEST_FRACTION,
        "records": {split: sum(c.values()) for split, c in sorted(counts.items())},
        "by_source": {split: dict(sorted(Counter(k.split("/")[0] for k in c.elements()).items()))
                      for split, c in sorted(counts.items())},
        "by_category": {split: dict(sorted(c.items())) for split, c in sorted(counts.items())},
        "dropped": dict(sorted(drops.items())),
        "traces": {"not_found_answers": trace_stats.not_found_answers, "text_to_sql_runs": trace_stats.sql_runs,
                   "text_to_sql_matched_gold": trace_stats.sql_matched},
        "tokens": lengths,
        "tools": tool_names,
        "quiver_heldout_groups": quiver_heldout_groups(examples),
    }
    (args.out / "stats.json").write_text(json.dumps(stats, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return stats


def default_bfcl() -> Path:
    """``shared/data/bfcl`` next to the checkout, or next to a folder above it (worktrees)."""
    for folder in REPO.parents:
        if (folder / "shared" / "data" / "bfcl").is_dir():
            return folder / "shared" / "data" / "bfcl"
    return REPO.parent / "shared" / "data" / "bfcl"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bfcl", type=Path, default=default_bfcl(), help="the BFCL folder (default: shared/data/bfcl "
                   "beside the repo or a folder above it)")
    p.add_argument("--out", type=Path, required=True, help="output folder (rebuildable; keep it out of git)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-group", type=int, default=6,
                   help="variants per question template / topic (smaller = fewer Quiver records, quicker build)")
    p.add_argument("--sql-runs", type=int, default=8,
                   help="real text_to_sql runs (each a few seconds on CPU) for the SQL answer traces")
    p.add_argument("--observation-chars", type=int, default=2000,
                   help="the host's observation budget used in traces (host.observation_chars' default)")
    p.add_argument("--bfcl-limit", type=int, default=0, help="keep at most N BFCL records per category and split")
    p.add_argument("--model-cache", type=Path,
                   default=Path(os.environ["QUIVER_MODELS__CACHE_DIR"]) if os.environ.get("QUIVER_MODELS__CACHE_DIR")
                   else Path.home() / ".quiver" / "models",
                   help="the dequantized-model cache (models.cache_dir)")
    p.add_argument("--write-heldout", action="store_true",
                   help="rewrite agent_model/heldout/*.json from the hash rule (only when the BFCL data changes)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    log.setLevel(logging.INFO)
    for noisy in ("grpc", "grpc._server", "pymilvus", "milvus_lite"):  # Milvus Lite's unimplemented-RPC tracebacks
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    if args.write_heldout:
        ids = bfcl_heldout_ids(args.bfcl)
        BFCL_HELDOUT.write_text(json.dumps({
            "rule": f"held out when sha256('bfcl/<category>/<id>') as a fraction of 16**15 (first 15 hex digits) "
                    f"< {BFCL_TEST_FRACTION}", "fraction": BFCL_TEST_FRACTION, "ids": ids}, indent=1) + "\n",
            encoding="utf-8")
    stats = build(args)
    if args.write_heldout:
        QUIVER_HELDOUT.write_text(json.dumps({
            "rule": f"a Quiver record is held out when sha256 of its group < {QUIVER_TEST_FRACTION} "
                    "(a shop template keeps its first phrasing in training if all would be held out)",
            "groups": stats["quiver_heldout_groups"]}, indent=1) + "\n", encoding="utf-8")
    summary = {k: stats[k] for k in ("records", "by_source", "dropped", "traces")}
    summary["tokens_train"] = stats["tokens"].get("train", {}).get("all")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
