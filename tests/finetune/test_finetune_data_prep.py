"""Data preparation on a fixture with planted problems: every count is exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servers.core.errors import AccessDenied, InvalidInput, NotFound
from servers.core.settings import Settings, load_settings
from servers.finetune import api

FILLERS = [
    ("Name a primary colour.", "Red is one of the primary colours."),
    ("Which ocean is the largest?", "The Pacific Ocean is the largest ocean on Earth."),
    ("What do bees make?", "Bees make honey from the nectar of flowers."),
    ("Who wrote Hamlet?", "William Shakespeare wrote the play Hamlet."),
    ("What gas do plants absorb?", "Plants absorb carbon dioxide from the air for photosynthesis."),
    ("How many legs does a spider have?", "A spider has eight legs attached to its body."),
    ("What is the boiling point of water at sea level?", "Water boils at one hundred degrees Celsius at sea level."),
    ("Which planet is called the red planet?", "Mars is often called the red planet because of iron oxide dust."),
]
LONG_EN = ("Explain how a refrigerator keeps food cold.",
           "A refrigerator moves heat from inside the cabinet to the room outside using a refrigerant that "
           "evaporates in coils inside, absorbing heat, and is then compressed so it condenses in coils at the back, "
           "releasing that heat into the kitchen air, while a thermostat switches the compressor on and off to hold "
           "the chosen temperature steady for the food stored inside.")
LONG_ZH = ("请解释光合作用。",
           "光合作用是绿色植物利用阳光的能量，把二氧化碳和水转化为葡萄糖并释放氧气的过程，它主要发生在叶片细胞的叶绿体中，"
           "叶绿素吸收光能，为整个反应提供动力，这个过程为地球上几乎所有生命提供了能量和氧气。")


def conv(q: str, a: str, **extra: object) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], **extra}


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("prep")
    lines = [
        json.dumps(conv("What is the capital of France?", "Paris is the capital of France.")),       # 1 ok (A)
        json.dumps(conv("What is the chemical symbol for gold?", "The chemical symbol for gold is Au.")),  # 2 ok (B)
        json.dumps(conv("what is the  capital of France?", "Paris is the capital of   France.")),    # 3 duplicate of A
        json.dumps(conv(*LONG_EN)),                                                                # 4 ok (C)
        json.dumps(conv(LONG_EN[0], LONG_EN[1].replace("kitchen", "room's"))),                      # 5 near-dup of C
        json.dumps(conv(*LONG_ZH)),                                                                # 6 ok (D, Chinese)
        json.dumps(conv(LONG_ZH[0], LONG_ZH[1].replace("叶片", "叶子"))),                            # 7 near-dup of D
        json.dumps(conv("What is the chemical symbol for gold?", "Gold has the symbol Ag.")),      # 8 conflict with B
        json.dumps(conv("Contact?", "Write to jane.doe@example.com for the details.")),             # 9 PII email
        '{"messages": [{"role": "user", "content": "broken"',                                       # 10 bad JSON
        json.dumps({"messages": [{"role": "user", "content": "no answer here"}]}),                  # 11 no assistant
        json.dumps(conv("Show the config.", "Use api_key = 'sk-abcdefghijklmnopqrstuvwx' here.")), # 12 PII key
        *[json.dumps(conv(q, a)) for q, a in FILLERS],                                             # 13-20 ok
    ]
    train = root / "train.jsonl"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    evals = root / "eval.jsonl"
    evals.write_text("\n".join([
        json.dumps(conv("What is the chemical symbol for gold?", "The chemical symbol for gold is Au.")),  # leak (exact)
        json.dumps(conv(LONG_EN[0], LONG_EN[1].replace("steady", "constant"))),                            # leak (near)
        json.dumps(conv("What is the tallest animal?", "The giraffe is the tallest animal alive today.")), # ok
    ]) + "\n", encoding="utf-8")
    return {"root": root, "train": train, "eval": evals}


@pytest.fixture(scope="module")
def prep_settings(fixture_files: dict[str, Path]) -> Settings:
    root = fixture_files["root"]
    return load_settings(overrides={"data_dir": str(root / "data"), "roots": [str(root)],
                                    "finetune": {"ppl_low_percentile": 10.0, "ppl_high_percentile": 90.0}})


@pytest.fixture(scope="module")
def prepared(fixture_files: dict[str, Path], prep_settings: Settings) -> api.PrepareResult:
    return api.prepare_data(prep_settings, files=[str(fixture_files["train"])], out=str(fixture_files["root"] / "out"),
                            eval_files=[str(fixture_files["eval"])], near_dup=0.7, check_template=True)


def test_planted_problems_are_counted_exactly(prepared: api.PrepareResult) -> None:
    assert prepared.format == "messages"
    assert prepared.dropped == {"invalid": 2, "duplicate": 1, "near_duplicate": 2, "conflict": 1, "pii": 2, "leak": 2}
    # train: 20 lines - 2 invalid - 2 pii - 1 duplicate - 1 conflict - 2 near-dup = 12; eval: 3 - 2 leaks = 1
    assert prepared.splits == {"train": 12, "eval": 1}
    assert prepared.kept == 13
    assert any(line.startswith("train.jsonl:10: not valid JSON") for line in prepared.invalid_lines)
    assert any(line.startswith("train.jsonl:11:") and "no assistant" in line for line in prepared.invalid_lines)
    assert len(prepared.conflicts) == 1 and "train.jsonl:8 vs train.jsonl:2" in prepared.conflicts[0]


def test_output_folder_manifest_and_dropped_log(prepared: api.PrepareResult) -> None:
    out = Path(prepared.path)
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert len(train) == 12 and all("messages" in r for r in train)
    assert any("叶绿体" in r["messages"][1]["content"] for r in train)  # the Chinese original is kept
    dropped = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    assert sorted(d["line"] for d in dropped if d["reason"] == "near_duplicate") == [5, 7]
    assert sorted(d["line"] for d in dropped if d["reason"] == "pii") == [9, 12]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["content_hash"] == prepared.content_hash and len(prepared.content_hash) == 32
    assert prepared.stats["train"].rows == 12 and prepared.stats["train"].tokens_total > 100


def test_template_check_masks_prompts_and_learns_end_of_turn(prepared: api.PrepareResult) -> None:
    check = prepared.template_check
    assert check is not None and check.assistant_only and check.template_source == "quiver-chatml"
    assert check.end_of_turn_learned and check.prompt_tokens_masked and check.problems == []
    assert "[[Paris is the capital of France.<|im_end|>]]" in check.example
    assert "<|im_start|>user\n[[" not in check.example


def test_redacting_pii_keeps_the_rows(fixture_files: dict[str, Path], prep_settings: Settings) -> None:
    r = api.prepare_data(prep_settings, files=[str(fixture_files["train"])], out=str(fixture_files["root"] / "redact"),
                         pii="redact", check_template=False, eval_fraction=0, dedup=False, near_dup=None)
    # without (near-)dedup, lines 5 and 7 (same prompt, slightly different answer) and 8 are conflicts
    assert r.dropped == {"invalid": 2, "conflict": 3} and r.splits["train"] == 15
    text = (Path(r.path) / "train.jsonl").read_text()
    assert "jane.doe@example.com" not in text and "[EMAIL]" in text and "[API_KEY]" in text


def test_random_split_time_split_and_mixing(tmp_path: Path, settings: Settings) -> None:
    rows = [conv(q, a, created=f"2024-01-{i + 10:02d}") for i, (q, a) in enumerate(FILLERS)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    timed = api.prepare_data(settings, files=[str(data)], out=str(tmp_path / "t"), eval_fraction=0.25,
                             split_by="created", check_template=False)
    assert timed.splits == {"train": 6, "eval": 2}
    evals = [json.loads(x)["created"] for x in (tmp_path / "t" / "eval.jsonl").read_text().splitlines()]
    assert evals == ["2024-01-16", "2024-01-17"]  # the latest rows are held out
    general = tmp_path / "g.jsonl"
    general.write_text("".join(json.dumps(conv(f"General question number {w}?", f"General answer {w} here."))
                               + "\n" for w in ("one", "two", "three", "four", "five", "six", "seven", "eight")))
    mixed = api.prepare_data(settings, files=[str(data)], out=str(tmp_path / "m"), eval_fraction=0.25,
                             mix_files=[str(general)], mix_fraction=0.5, check_template=False)
    assert mixed.mixed_rows == 6 and mixed.splits == {"train": 12, "eval": 2}
    with pytest.raises(InvalidInput, match="split_by 'when'"):
        api.prepare_data(settings, files=[str(data)], out=str(tmp_path / "x"), split_by="when", check_template=False)


def test_diversity_selection_and_perplexity_filter(fixture_files: dict[str, Path], prep_settings: Settings) -> None:
    sel = api.prepare_data(prep_settings, files=[str(fixture_files["train"])], out=str(fixture_files["root"] / "sel"),
                           select=5, eval_fraction=0, check_template=False)
    # 20 lines - 2 invalid - 2 PII - 1 duplicate - 3 conflicts (no near-dup pass) = 12 candidates
    assert sel.splits["train"] == 5 and sel.dropped["not_selected"] == 12 - 5
    ppl = api.prepare_data(prep_settings, files=[str(fixture_files["train"])], out=str(fixture_files["root"] / "ppl"),
                           ppl_filter=True, eval_fraction=0, check_template=False)
    assert ppl.ppl_thresholds and ppl.ppl_thresholds["low"] < ppl.ppl_thresholds["median"] < ppl.ppl_thresholds["high"]
    assert ppl.dropped["ppl_low"] == 2 and ppl.dropped["ppl_high"] == 2  # 12 rows: below p10 / above p90
    assert ppl.splits["train"] == 8


def test_host_transcripts_become_tool_calling_rows(tmp_path: Path, settings: Settings) -> None:
    folder = settings.data_path / "transcripts"
    folder.mkdir(parents=True)
    tool = {"type": "function", "function": {"name": "kb_search", "description": "Search",
                                             "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}
    good = {"id": "1", "question": "q", "tools": [tool], "messages": [
        {"role": "user", "content": "Find the refund policy."},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "kb_search", "arguments": "{\"query\": \"refund\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "kb_search", "content": "Refunds within 30 days."},
        {"role": "assistant", "content": "Refunds are accepted within 30 days."}],
        "events": [{"type": "answer", "reason": "final"}]}
    failed = {**good, "id": "2", "events": [{"type": "tool_result", "is_error": True}]}
    (folder / "2026-01-01.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(failed) + "\n")
    r = api.prepare_data(settings, files=[], out=str(tmp_path / "tx"), transcripts=True, eval_fraction=0,
                         check_template=True)
    assert r.splits["train"] == 1 and r.dropped == {"invalid": 1} and r.stats["train"].with_tools == 1
    assert r.template_check and r.template_check.tool_dialect == "smol" and r.template_check.end_of_turn_learned
    assert '[[<tool_call>[{"name": "kb_search", "arguments": {"query": "refund"}}]</tool_call><|im_end|>]]' in \
        r.template_check.example


def test_bad_input(tmp_path: Path, settings: Settings, fixture_files: dict[str, Path]) -> None:
    with pytest.raises(NotFound):
        api.prepare_data(settings, files=[str(tmp_path / "missing.jsonl")], out=str(tmp_path / "o"))
    with pytest.raises(AccessDenied):
        api.prepare_data(settings, files=[str(fixture_files["train"])], out=str(tmp_path / "o"))
    empty = tmp_path / "bad.jsonl"
    empty.write_text('{"foo": 1}\n')
    with pytest.raises(InvalidInput, match="no valid row"):
        api.prepare_data(settings, files=[str(empty)], out=str(tmp_path / "o"), check_template=False)
    weird = tmp_path / "data.txt"
    weird.write_text("x")
    with pytest.raises(InvalidInput, match="unsupported file type"):
        api.prepare_data(settings, files=[str(weird)], out=str(tmp_path / "o"), check_template=False)


def test_the_same_question_with_other_tools_is_neither_a_duplicate_nor_a_conflict(tmp_path: Path,
                                                                                  settings: Settings) -> None:
    """Tool-calling data pairs a question with the tool that serves it (a call) and with unrelated tools (no
    call): the offered tools are part of the prompt. The same question and tools with another target conflicts."""
    def tool(name: str) -> dict:
        return {"type": "function", "function": {"name": name, "description": f"{name} for a city",
                                                 "parameters": {"type": "object", "properties": {
                                                     "city": {"type": "string"}}, "required": ["city"]}}}

    question = [{"role": "user", "content": "What is the weather in Oslo today?"}]
    call = {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]}
    rows = [
        {"tools": [tool("get_weather")], "messages": [*question, call]},
        {"tools": [tool("get_population")], "messages": [*question, {"role": "assistant",
                                                                     "content": "None of my tools gives the weather."}]},
        {"tools": [tool("get_weather")], "messages": [*question, {"role": "assistant", "content": "It is sunny."}]},
        {"tools": [tool("get_mayor")], "messages": [*question, {"role": "assistant",
                                                                "content": "None of my tools gives the weather."}]},
        {"tools": [tool("get_population")], "messages": [*question, {"role": "assistant",
                                                                     "content": "None of my tools gives the weather."}]},
    ]
    data = tmp_path / "tools.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = api.prepare_data(settings, files=[str(data)], out=str(tmp_path / "out"), eval_fraction=0, check_template=False)
    assert r.dropped == {"conflict": 1, "duplicate": 1} and r.splits["train"] == 3
    assert "tools.jsonl:3 vs tools.jsonl:1" in r.conflicts[0]
