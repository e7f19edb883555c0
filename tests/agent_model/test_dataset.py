"""The agent-model dataset builder: deterministic, split without leaks, rendered exactly as the
host renders its prompts, and every call valid against the real tool schemas.

Two small real builds (BFCL subset, one variant per template, one real text_to_sql run) share
the module; each starts the real servers in-process on the demo data.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from agent_model import bank, bfcl
from agent_model.build_dataset import (
    BFCL_HELDOUT,
    BFCL_TEST_FRACTION,
    QUIVER_HELDOUT,
    QUIVER_TEST_FRACTION,
    bfcl_examples,
    bfcl_heldout_ids,
    default_bfcl,
    load_heldout,
    main,
)
from agent_model.conversation import Example
from agent_model.quiver_tools import discover_tools, world_settings
from agent_model.split import LeakIndex, held_out
from host.backends.formats import render_messages
from host.demo import QUESTIONS as DEMO_QUESTIONS
from host.tools import small_model_view, validate_arguments
from servers.core.models import causal_lm
from servers.core.settings import load_settings
from servers.eval.agents import calls_correct, function_schemas

REPO = Path(__file__).resolve().parents[2]
BFCL = default_bfcl()
pytestmark = [pytest.mark.skipif(not (BFCL / "simple_python.jsonl").is_file(), reason="shared BFCL data not present"),
              pytest.mark.slow]
QUICK = ["--seed", "0", "--per-group", "1", "--sql-runs", "1", "--bfcl-limit", "6"]


def _build(out: Path) -> Path:
    assert main(["--bfcl", str(BFCL), "--out", str(out), *QUICK]) == 0
    return out


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One build in this process, the same command again in a fresh process (as a user rebuilds)."""
    first = _build(tmp_path_factory.mktemp("build_a"))
    second = tmp_path_factory.mktemp("build_b")
    subprocess.run([sys.executable, "-m", "agent_model.build_dataset", "--bfcl", str(BFCL), "--out", str(second), *QUICK],
                   cwd=REPO, check=True, capture_output=True, timeout=1800)
    return first, second


@pytest.fixture(scope="module")
def records(builds: tuple[Path, Path]) -> list[dict[str, Any]]:
    out = builds[0]
    return [json.loads(line) for split in ("train", "test") for line in (out / "examples" / f"{split}.jsonl").open()]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("tokenizer")
    return causal_lm("smollm2", load_settings(overrides={"data_dir": str(root), "roots": [str(root)]})).tokenizer


@pytest.fixture(scope="module")
def real_tools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = world_settings(tmp_path_factory.mktemp("tools"), None)
    return {t.name: t for t in anyio.run(discover_tools, settings)}


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_the_same_bytes(builds: tuple[Path, Path]) -> None:
    a, b = (_files(x) for x in builds)
    assert set(a) >= {"examples/train.jsonl", "examples/test.jsonl", "trl/train.jsonl", "trl_turns/train.jsonl",
                      "trl_tools/train.jsonl", "stats.json"}
    assert a == b


def test_every_source_and_kind_is_present(records: list[dict[str, Any]]) -> None:
    kinds = {r["category"] for r in records}
    assert set(bfcl.CATEGORIES) <= kinds
    assert {"kb_context", "kb_search", "kb_list", "text_to_sql", "parse_document", "no_tool", "no_tool_unsupported",
            "kb_context_answer", "kb_error_corrected", "sql_error_corrected", "text_to_sql_parallel",
            "irrelevance_swapped"} <= kinds
    assert {r["split"] for r in records if r["source"] == "quiver"} == {"train", "test"}


def test_bfcl_heldout_ids_never_in_train() -> None:
    heldout = load_heldout()
    committed = json.loads(BFCL_HELDOUT.read_text())
    assert committed["fraction"] == BFCL_TEST_FRACTION
    assert {c: sorted(ids) for c, ids in heldout.items()} == bfcl_heldout_ids(BFCL)  # the file follows the rule
    examples = bfcl_examples(BFCL, 0, heldout, Counter())
    for category in bfcl.CATEGORIES:
        train = {e.group for e in examples if e.category == category and e.split == "train"}
        test = {e.group for e in examples if e.category == category and e.split == "test"}
        assert train and test, category
        assert not train & heldout[category]
        assert test <= heldout[category]
        assert 0.3 < len(heldout[category]) / (len(heldout[category]) + len(train)) < 0.5


def test_rendered_text_equals_the_hosts_prompt(records: list[dict[str, Any]], tokenizer: Any,
                                               builds: tuple[Path, Path]) -> None:
    """For every assistant turn, the host's own prompt (LocalBackend.prompt → render_messages,
    smol dialect) is a prefix of the training text, followed by exactly that turn."""
    trl = {json.loads(line)["id"]: json.loads(line) for line in (builds[0] / "trl" / "train.jsonl").open()}
    turns = {json.loads(line)["id"]: json.loads(line) for line in (builds[0] / "trl_turns" / "train.jsonl").open()}
    checked = 0
    for r in records:
        e = Example.model_validate({k: v for k, v in r.items() if k in Example.model_fields})
        text = r["text"]
        assert text == tokenizer.apply_chat_template(e.smol_messages(), tokenize=False)
        assistant_idx = [i for i, m in enumerate(e.messages) if m["role"] == "assistant"]
        smol_turns = e.turns()
        assert len(assistant_idx) == len(smol_turns) >= 1
        for n, (i, (prompt, completion)) in enumerate(zip(assistant_idx, smol_turns, strict=True)):
            host_prompt = render_messages(e.messages[:i], e.tool_infos(), "smol", tokenizer)
            assert text.startswith(host_prompt), r["id"]
            assert text[len(host_prompt):].startswith(completion["content"] + "<|im_end|>\n")
            assert tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False) == host_prompt
            if r["split"] == "train":
                assert turns[f"{r['id']}#{n}"]["prompt"] == prompt
            checked += 1
        if r["split"] == "train":
            assert tokenizer.apply_chat_template(trl[r["id"]]["messages"], tokenize=False) == text
        assert r["n_tokens"] == len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert checked > len(records)  # traces have several assistant turns


def test_every_call_is_valid_for_its_tool(records: list[dict[str, Any]], real_tools: dict[str, Any]) -> None:
    calls = 0
    for r in records:
        e = Example.model_validate({k: v for k, v in r.items() if k in Example.model_fields})
        offered = {t.name: t for t in e.tool_infos()}
        for turn in e.calls():
            for call in turn:
                assert call["name"] in offered, (r["id"], call["name"])
                assert validate_arguments(offered[call["name"]], call["arguments"]) is None, (r["id"], call)
                if r["source"] != "bfcl":  # also valid for the server's full inputSchema
                    assert validate_arguments(real_tools[call["name"]], call["arguments"]) is None, (r["id"], call)
                calls += 1
    assert calls > 200


def test_irrelevance_and_no_tool_records_answer_without_a_call(records: list[dict[str, Any]]) -> None:
    plain = [r for r in records if r["category"].startswith(("irrelevance", "no_tool"))]
    assert len(plain) > 20
    for r in plain:
        assert [m["role"] for m in r["messages"]][-1] == "assistant"
        assert not any(m.get("tool_calls") for m in r["messages"])
        answer = r["messages"][-1]["content"]
        assert answer and "<tool_call>" not in answer
        assert "<tool_call>" not in r["text"].split("<|im_start|>assistant\n", 1)[1]
    # the others all call: the first assistant turn of every non-plain record is a call
    for r in records:
        if r not in plain:
            first = next(m for m in r["messages"] if m["role"] == "assistant")
            assert first.get("tool_calls"), r["id"]


def test_swapped_irrelevance_pairs_a_training_question_with_unrelated_tools(records: list[dict[str, Any]]) -> None:
    heldout = load_heldout()
    held = set().union(*heldout.values())
    by_id = {r["id"]: r for r in records}
    swapped = [r for r in records if r["category"] == "irrelevance_swapped"]
    assert len(swapped) >= 6
    for r in swapped:
        own = by_id.get(f"bfcl/{r['group']}")  # the same question with its own functions: a call
        assert r["split"] == "train" and r["group"] not in held
        assert own is not None and own["split"] == "train" and own["messages"][1:-1] == r["messages"][1:-1]
        called = {c["function"]["name"] for m in own["messages"] if m.get("tool_calls") for c in m["tool_calls"]}
        offered = {t["name"] for t in r["tools"]}
        assert called and not called & offered
        assert r["tools"] != own["tools"] and not r["messages"][-1].get("tool_calls")


def _first_call(r: dict[str, Any]) -> dict[str, Any] | None:
    turn = next(m for m in r["messages"] if m["role"] == "assistant")
    calls = turn.get("tool_calls") or []
    return calls[0]["function"] if calls else None


def test_the_resources_listed_do_not_give_the_tool_away(records: list[dict[str, Any]]) -> None:
    """A knowledge base a call names is one the prompt lists or the user names (often under a name
    that is not its topic's usual one, so it is read, not recalled); what the prompt lists does not
    decide the tool: database questions list knowledge bases too, knowledge-base questions the
    database, and the knowledge-base and SQL tools are offered together."""
    mine = [r for r in records if r["source"] != "bfcl"]
    aliased, sql_with_kbs, kb_with_db, together = 0, 0, 0, Counter()
    for r in mine:
        system, user = r["messages"][0]["content"], r["messages"][1]["content"]
        call = _first_call(r)
        name = call["name"] if call else None
        kb = json.loads(call["arguments"]).get("kb") if call else None
        if name in ("kb_context", "kb_search"):
            listed = system.split("Knowledge bases: ", 1)[1].split("\n")[0] if "Knowledge bases: " in system else ""
            assert f"{kb} (" in listed or kb in user, r["id"]
            aliased += kb not in bank.KB_DESCRIPTIONS
            kb_with_db += "SQL databases: " in system
        if name == "text_to_sql":
            sql_with_kbs += "Knowledge bases: " in system
        offered = {t["name"] for t in r["tools"]}
        if {"kb_context", "kb_search", "text_to_sql"} <= offered and name:
            together[name] += 1
            if name == "kb_search":  # with both offered, only a search request goes to kb_search
                assert r["category"] == "kb_search" and any(w in user for w in ("Find", "Search", "Show me", "Look up")), r["id"]
    assert aliased >= 5 and sql_with_kbs >= 3 and kb_with_db >= 5
    assert together["kb_context"] >= 3 and together["text_to_sql"] >= 3, together


def test_no_training_question_leaks_a_held_out_or_demo_question(records: list[dict[str, Any]]) -> None:
    index = LeakIndex([r["question"] for r in records if r["split"] == "test"] + list(DEMO_QUESTIONS))
    train = [r for r in records if r["split"] == "train"]
    assert train
    assert [r["id"] for r in train if index.match(r["question"])] == []
    # the sentences that answer the demo's questions are never a training answer
    for r in train:
        answer = r["messages"][-1]["content"] or ""
        assert not any(ev.split("\n")[0] in answer for ev in bank.DEMO_EVIDENCE), r["id"]


def test_leak_index_finds_near_duplicates() -> None:
    index = LeakIndex(["How many customers live in Paris?"])
    assert index.match("how many customers live in Paris") is not None
    assert index.match("Hi! How many customers live in Paris? Thanks!") is not None
    assert index.match("What is the price of the Yoga Mat?") is None


def test_kb_answers_cite_the_passage_that_holds_the_evidence(records: list[dict[str, Any]]) -> None:
    facts = {f.id: f for f in bank.KB_FACTS}
    cited = 0
    for r in records:
        if r["category"] != "kb_context_answer" or "could not find" in r["messages"][-1]["content"]:
            continue
        fact = facts[r["group"].split(":", 1)[1]]
        answer = r["messages"][-1]["content"]
        n = answer.rsplit("[", 1)[1].split("]")[0]
        observation = r["messages"][-2]["content"]
        passage = observation.split(f"[{n}] (", 1)[1].split("\n\n[", 1)[0]
        assert " ".join(fact.evidence.split()) in " ".join(passage.split()), r["id"]
        cited += 1
    assert cited >= 5


def test_quiver_split_follows_the_committed_groups(records: list[dict[str, Any]]) -> None:
    committed = set(json.loads(QUIVER_HELDOUT.read_text())["groups"])
    test_groups = {r["group"] for r in records if r["source"] != "bfcl" and r["split"] == "test"}
    assert test_groups and test_groups <= committed
    for group in committed:  # the hash rule (a kb+sql pair is held out when either part is)
        assert held_out(group, QUIVER_TEST_FRACTION) or any(held_out(g, QUIVER_TEST_FRACTION) for g in group.split("+"))


def test_small_model_view_keeps_what_the_model_must_write(real_tools: dict[str, Any]) -> None:
    search = small_model_view(real_tools["kb_search"]).input_schema
    assert set(search["properties"]) == {"kb", "query"} and "$defs" not in search
    parse = small_model_view(real_tools["parse_document"]).input_schema
    assert "path" in parse["properties"] and len(parse["properties"]) <= 4
    rerank = small_model_view(real_tools["rerank"]).input_schema
    assert "Document" in rerank["$defs"]  # still referenced by the documents argument


def test_bfcl_training_targets_score_correct_with_the_eval_scorer() -> None:
    """Every BFCL target call the builder writes is right by the eval server's own AST matcher."""
    examples = bfcl_examples(BFCL, 0, load_heldout(), Counter())
    by_id = {r.id: r for c in bfcl.CATEGORIES for r in bfcl.load_category(BFCL, c)}
    for e in examples:
        record = by_id[e.group]
        calls = [(c["name"], c["arguments"]) for turn in e.calls() for c in turn]
        assert calls_correct(calls, record.truth, function_schemas(record.functions), record.irrelevance), e.id
    assert len(examples) > 1200


def test_bfcl_schemas_are_the_ones_the_bench_scores_with() -> None:
    spec = importlib.util.spec_from_file_location("bench_host", REPO / "bench" / "host.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    for category in bfcl.CATEGORIES:
        for record in bfcl.load_category(BFCL, category)[:30]:
            ours = [(t.name, t.description, t.input_schema) for t in record.tools()]
            bench = [(t.name, t.description, t.input_schema) for t in module.record_tools(
                {"function": record.functions})]
            assert ours == bench


def test_training_selection_fits_the_token_budget_and_only_takes_training_records(builds: tuple[Path, Path]) -> None:
    """agent_model.train's selection: within the budget, no record over max_tokens, no held-out record, seeded."""
    from agent_model.train import load_config, select

    out = builds[0]
    config = load_config()
    config["data"]["token_budget"] = 20000
    rows, report = select(out, config)
    train = {json.loads(x)["id"]: json.loads(x) for x in (out / "examples" / "train.jsonl").open()}
    test = {json.loads(x)["id"] for x in (out / "examples" / "test.jsonl").open()}
    ids = [r["id"] for r in rows]
    assert rows and set(ids) <= set(train) and not set(ids) & test
    assert report["tokens"] == sum(train[i]["n_tokens"] for i in ids) <= 20000
    assert all(train[i]["n_tokens"] <= config["data"]["max_tokens"] for i in ids)
    assert all(r["messages"] and "tools" in r for r in rows)
    assert {train[i]["source"] for i in ids} >= {"quiver", "bfcl"}
    assert [r["id"] for r in select(out, config)[0]] == ids  # seeded


def test_calibration_records_are_training_records_the_selection_left_out(builds: tuple[Path, Path]) -> None:
    """agent_model.calibrate's validation records: training split only, never a record the adapter trained
    on, records that call and records that do not, seeded."""
    from agent_model.calibrate import validation_records
    from agent_model.train import load_config, select

    out = builds[0]
    config = load_config()
    config["data"]["token_budget"] = 20000
    taken = {r["id"] for r in select(out, config)[0]}
    train = {json.loads(x)["id"] for x in (out / "examples" / "train.jsonl").open()}
    calls, answers = validation_records(out, config, per_class=12)
    assert calls and answers
    ids = [r["id"] for r in calls + answers]
    assert len(set(ids)) == len(ids) and set(ids) <= train and not set(ids) & taken
    assert all(next(m for m in r["messages"] if m["role"] == "assistant").get("tool_calls") for r in calls)
    assert not any(next(m for m in r["messages"] if m["role"] == "assistant").get("tool_calls") for r in answers)
    assert len({f"{r['source']}/{r['category']}" for r in calls}) > 1  # round-robin over kinds of request
    again = validation_records(out, config, per_class=12)
    assert [r["id"] for r in again[0] + again[1]] == ids
