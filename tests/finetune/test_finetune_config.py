"""Presets, config resolution, recommendations, memory estimates, reward rules, chat formats and bad input
(no training here: fast)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from servers.core import models
from servers.core.errors import AccessDenied, InvalidInput, NotFound
from servers.core.settings import Settings
from servers.finetune import api, rewards
from servers.finetune.memory import estimate, model_shape
from servers.finetune.presets import ALL_PROJECTIONS, resolve_config

# ---------------------------------------------------------------- presets and config


def test_layers_defaults_settings_preset_override() -> None:
    config, source = resolve_config("sft", "lora", "instruction", {"learning_rate": 5e-5}, {"max_length": 256})
    assert (config.lora_r, config.lora_alpha, config.target_modules) == (16, 32, ALL_PROJECTIONS)
    assert (config.batch_size, config.grad_accum, config.epochs, config.warmup_ratio) == (4, 4, 3, 0.03)
    assert config.learning_rate == 5e-5 and source["learning_rate"] == "override"
    assert source["lora_r"] == "preset instruction" and source["max_length"] == "settings"
    assert source["lora_dropout"] == "default" and config.lora_dropout == 0.1 and config.weight_decay == 0.01
    code, _ = resolve_config("sft", "lora", "code", {}, None)
    assert (code.lora_r, code.lora_alpha, code.lora_dropout, code.max_length, code.epochs) == (32, 64, 0.05, 4096, 5)
    chat, _ = resolve_config("sft", "lora", "chat", {}, None)
    assert (chat.lora_r, chat.target_modules, chat.learning_rate, chat.batch_size, chat.epochs) == (8, ["q_proj", "v_proj"], 3e-4, 8, 2)


@pytest.mark.parametrize(("method", "preset", "overrides", "message"), [
    ("sft", "poetry", {}, "unknown preset 'poetry'"),
    ("ppo", None, {}, "PPO is no longer in TRL 1.16"),
    ("magic", None, {}, "unknown method 'magic'"),
    ("sft", None, {"lora_r": 0}, "lora_r must be a positive rank"),
    ("sft", None, {"learning_rate": -1e-4}, "learning_rate must be in"),
    ("sft", None, {"rank": 8}, "unknown option(s) rank"),
    ("grpo", None, {"batch_size": 3, "num_generations": 2}, "multiple of num_generations"),
])
def test_bad_config_is_explained(method: str, preset: str | None, overrides: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_config(method, "lora", preset, overrides, None)


def test_list_methods_says_what_runs_here(settings: Settings) -> None:
    result = api.list_methods(settings)
    by_name = {m.name: m for m in result.methods}
    assert {"sft", "dpo", "grpo", "kto", "rloo", "reward", "pretrain"} <= {n for n, m in by_name.items() if m.available}
    assert not by_name["ppo"].available and "grpo" in by_name["ppo"].reason
    assert result.device == "cpu" and result.max_running_jobs == 1 and {p.name for p in result.presets} == {"instruction", "code", "chat"}
    assert result.lora_defaults["lora_r"] == 8 and result.lora_defaults["learning_rate"] == 1e-4


# ---------------------------------------------------------------- memory


def _safetensors_params(folder: Path) -> int:
    """Parameters stored in the weight files, read from the safetensors header (no tensor is loaded)."""
    total = 0
    for file in folder.glob("*.safetensors"):
        with file.open("rb") as fh:
            header = json.loads(fh.read(struct.unpack("<Q", fh.read(8))[0]))
        for name, info in header.items():
            if name != "__metadata__":
                n = 1
                for dim in info["shape"]:
                    n *= dim
                total += n
    return total


def test_parameters_are_counted_exactly_from_the_config(settings: Settings) -> None:
    shape = model_shape("smollm2", settings)
    folder = models.gguf_cache_dir(models.resolve("smollm2", "causal_lm").path, settings)
    if not (folder / "config.json").is_file():
        models.causal_lm("smollm2", settings)
    assert shape.parameters == _safetensors_params(folder) == 134_515_008
    assert (shape.hidden, shape.layers, shape.heads, shape.kv_width, shape.vocab) == (576, 30, 9, 192, 49152)


def test_estimate_components_fit_and_ranked_remedies(settings: Settings) -> None:
    shape = model_shape("smollm2", settings)
    full = estimate(shape, method="full", seq_len=128, batch=4, budget_gib=2.0)
    p = shape.parameters
    assert full.components["weights"] == pytest.approx(p * 4 / 2**30, abs=1e-3)
    assert full.components["optimizer"] == pytest.approx(p * 8 / 2**30, abs=1e-3)
    assert full.fits is False and full.remedies
    assert [r.saves_gib for r in full.remedies] == sorted((r.saves_gib for r in full.remedies), reverse=True)
    assert any("QLoRA" in r.change for r in full.remedies) and any("LoRA r 8" in r.change for r in full.remedies)
    lora = estimate(shape, method="lora", seq_len=128, batch=4)
    assert lora.trainable_parameters == 30 * 8 * ((576 + 576) + (576 + 192))  # r·(in+out) on q and v, 30 layers
    assert lora.total_gib < full.total_gib
    qlora = estimate(shape, method="qlora", seq_len=128, batch=4)
    assert qlora.components["weights"] < lora.components["weights"] / 3
    ckpt = estimate(shape, method="lora", seq_len=128, batch=4, grad_ckpt=True)
    assert ckpt.components["activations"] < lora.components["activations"] / 5
    mixed = estimate(shape, method="full", precision="bf16", device="cuda", seq_len=128, batch=4)
    assert mixed.components["master_weights"] == pytest.approx(p * 4 / 2**30, abs=1e-3)
    assert mixed.components["weights"] == pytest.approx(p * 2 / 2**30, abs=1e-3)
    assert any("ZeRO-3" in r.change for r in mixed.remedies)
    infer = estimate(shape, method="inference", precision="fp16", seq_len=100, batch=2, inference_new_tokens=28, device="cuda")
    assert infer.components["kv_cache"] == pytest.approx(2 * 2 * 30 * 192 * 128 * 2 / 2**30, abs=1e-4)


def test_estimate_bad_input(settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="unknown method"):
        api.estimate_memory(settings, method="sparse")
    with pytest.raises(InvalidInput, match="lora_r must be a positive"):
        api.estimate_memory(settings, lora_r=0)
    with pytest.raises(InvalidInput, match="not in smollm2"):
        api.estimate_memory(settings, target_modules=["query_key_value"])
    with pytest.raises(NotFound):
        api.estimate_memory(settings, model="/nonexistent/model-folder")


def test_recommend_gives_rules_and_fits_the_budget(settings: Settings) -> None:
    small = api.recommend_config(settings, task="code", samples=20_000, memory_gib=64)
    assert small.config.lora_r == 32 and small.config.epochs == 2 and small.preset == "code"
    assert {r.key for r in small.rules} >= {"lora_r", "epochs", "batch_size", "adapter", "learning_rate"}
    assert small.mix_general_fraction == 0.3
    tight = api.recommend_config(settings, task="instruction", samples=800, memory_gib=1.3)
    assert tight.config.epochs == 5 and tight.config.lora_r == 16
    assert tight.memory.total_gib <= 1.3 or tight.notes
    assert tight.config.batch_size * tight.config.grad_accum == 16  # the effective batch is kept
    with pytest.raises(InvalidInput, match="unknown task"):
        api.recommend_config(settings, task="poetry", samples=10)


# ---------------------------------------------------------------- rewards


def test_reward_rules() -> None:
    prompts = ["What is 2+2?", "2+3?", "你好吗？"]
    outs = ["<answer>4</answer>", "the answer is 6", "我很好，谢谢"]
    cols = {"answer": ["4", "5", "x"]}
    assert rewards.score([{"type": "format_regex", "pattern": r"<answer>.*</answer>"}], prompts, outs) == [1, 0, 0]
    assert rewards.score([{"type": "numeric_match", "weight": 2}], prompts, outs, **cols) == [2, 0, 0]
    assert rewards.score([{"type": "exact_match"}], prompts, outs, **cols) == [1, 0, 0]
    assert rewards.score([{"type": "json_schema", "schema": {"type": "object", "required": ["a"]}}],
                         ["p"] * 3, ['{"a": 1}', '{"b": 1}', "nope"]) == [1, 0.5, 0]
    assert rewards.score([{"type": "length", "min_chars": 2, "max_chars": 10}], ["p"] * 2, ["abc", "x" * 20]) == [1, 0]
    rep = rewards.score([{"type": "repetition", "ngram": 1}], ["p"] * 2, ["a b c d", "a a a a"])
    assert rep[0] == 0 and rep[1] == pytest.approx(-0.75)
    lang = rewards.score([{"type": "language"}], prompts, outs)
    assert lang[2] == 1.0 and lang[0] == 1.0
    with pytest.raises(InvalidInput, match="unknown reward rule type"):
        rewards.build_rewards([{"type": "vibes"}])
    with pytest.raises(InvalidInput, match="need a reward spec"):
        rewards.build_rewards(None)
    with pytest.raises(InvalidInput, match="cannot import reward module"):
        rewards.build_rewards([{"type": "python", "callable": "no_such_module_xyz:f"}])
    with pytest.raises(InvalidInput, match="not a valid regex"):
        rewards.build_rewards([{"type": "format_regex", "pattern": "("}])


# ---------------------------------------------------------------- chat format: training text = inference text


def test_training_format_equals_what_the_host_sends() -> None:
    """An adapter must learn exactly the tool format the host prompts it with."""
    from host.backends.base import ToolInfo
    from host.backends.formats import render_messages
    from servers.core.tool_prompt import smol_messages

    lm_tokenizer = _smol_tokenizer()
    schema = {"type": "object", "title": "Args", "properties": {"city": {"type": "string", "title": "City"}}}
    tool = ToolInfo(name="get_weather", server="w", remote_name="get_weather", description="Weather for a city",
                    input_schema=schema)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Oslo?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
                {"role": "tool", "tool_call_id": "1", "name": "get_weather", "content": "cold"}]
    host_text = render_messages(messages, [tool], "smol", lm_tokenizer)
    ours = smol_messages(messages, [{"type": "function", "function": {"name": "get_weather", "description":
                                     "Weather for a city", "parameters": schema}}])
    train_text = lm_tokenizer.apply_chat_template(ours, tokenize=False, add_generation_prompt=True)
    assert train_text == host_text and '"title"' not in train_text


def _smol_tokenizer():  # noqa: ANN202
    from transformers import AutoTokenizer

    from servers.core.settings import load_settings

    folder = models.gguf_cache_dir(models.resolve("smollm2", "causal_lm").path, load_settings())
    if not (folder / "tokenizer_config.json").is_file():
        models.causal_lm("smollm2", load_settings())
    return AutoTokenizer.from_pretrained(str(folder))


# ---------------------------------------------------------------- start_job validation (dry runs)


def _data(tmp_path: Path, rows: list[dict]) -> str:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


SFT_ROW = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def test_dry_run_resolves_without_creating_a_job(tmp_path: Path, settings: Settings) -> None:
    r = api.start_job(settings, data=_data(tmp_path, [SFT_ROW] * 3), preset="chat", max_steps=3, dry_run=True,
                      options={"lora_r": 4})
    assert r.dry_run and r.state == "dry_run" and r.config["lora_r"] == 4 and r.config["batch_size"] == 8
    assert r.config_sources["lora_r"] == "override" and r.config_sources["batch_size"] == "preset chat"
    assert r.command[-3:-1] == ["-m", "servers.finetune.trainer_entry"] and r.memory["total_gib"] > 0.5
    assert r.data["format"] == "messages" and r.data["train_rows"] == 3
    assert api.list_jobs(settings).jobs == []


def test_start_job_bad_input(tmp_path: Path, settings: Settings) -> None:
    sft = _data(tmp_path, [SFT_ROW])
    cases = [
        (dict(data=sft, method="dpo"), InvalidInput, "needs preference rows"),
        (dict(data=sft, preset="nope"), InvalidInput, "unknown preset"),
        (dict(data=sft, options={"lora_r": -2}), InvalidInput, "positive rank"),
        (dict(data=sft, options={"learning_rate": -0.1}), InvalidInput, "learning_rate"),
        (dict(data=str(tmp_path / "none.jsonl")), NotFound, "no file"),
        (dict(data="/etc/passwd"), AccessDenied, "outside the allowed roots"),
        (dict(data=sft, model="/no/such/model"), NotFound, "not found"),
        (dict(data=sft, method="grpo"), InvalidInput, "needs prompt_only"),
        (dict(data=sft, adapter="lora", options={"target_modules": ["c_attn"]}), InvalidInput, "not in smollm2"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            api.start_job(settings, dry_run=True, **kwargs)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(SFT_ROW) + "\n" + json.dumps({"messages": [{"role": "user", "content": "x"}]}) + "\n")
    with pytest.raises(InvalidInput, match="bad.jsonl:2: messages has no assistant"):
        api.start_job(settings, data=str(bad), dry_run=True)
    grpo = _data(tmp_path, [{"prompt": "2+2?", "answer": "4"}])
    with pytest.raises(InvalidInput, match="need a reward spec"):
        api.start_job(settings, method="grpo", data=grpo, dry_run=True)
    for call in (api.job_status, api.cancel_job, api.resume_job, api.job_logs, api.export_model):
        with pytest.raises(NotFound, match="no job 'ghost'"):
            call(settings, job_id="ghost")


def test_cli_estimate_and_dry_run_print_one_json_object(tmp_path: Path, settings: Settings,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from host.cli import main

    base = ["--data-dir", str(tmp_path / "data")]
    assert main(["finetune", "estimate", "--model", "smollm2", "--method", "qlora", "--seq-len", "64", "--batch", "2",
                 "--budget-gib", "8", "--json", *base]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["parameters"] == 134_515_008 and est["fits"] is True and "activations" in est["components"]
    data = _data(tmp_path, [SFT_ROW] * 2)
    assert main(["finetune", "start", "--data", data, "--max-steps", "2", "--set", "lora_r=4", "--dry-run", "--json",
                 "--root", str(tmp_path), *base]) == 0
    started = json.loads(capsys.readouterr().out)
    assert started["state"] == "dry_run" and started["config"]["lora_r"] == 4 and started["config"]["max_steps"] == 2
    assert main(["finetune", "status", "ghost", "--json", *base]) == 2
    assert "no job 'ghost'" in capsys.readouterr().err


def test_trainer_data_keeps_each_tool_calls_own_arguments(tmp_path: Path) -> None:
    """Rows whose tool calls have different argument names must not be merged into one Arrow struct."""
    from servers.finetune.trainer_entry import load_data

    def row(tool: str, args: dict) -> dict:
        spec = {"type": "function", "function": {"name": tool, "description": tool,
                                                  "parameters": {"type": "object", "properties": {k: {"type": "string"} for k in args}}}}
        return {"tools": [spec], "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": tool, "arguments": args}}]},
            {"role": "tool", "name": tool, "content": "ok"}, {"role": "assistant", "content": "done"}]}

    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(row("weather", {"city": "Oslo"})) + "\n" + json.dumps(row("clock", {"timezone": "UTC"})) + "\n")
    tokenizer = _smol_tokenizer()
    train, _, info = load_data({"data": {"format": "messages", "train": str(path)}}, tokenizer)
    assert info["tool_dialect"] == "smol" and info["template"] == "quiver-chatml"
    second = tokenizer.apply_chat_template(train[1]["messages"], tokenize=False)
    assert '<tool_call>[{"name": "clock", "arguments": {"timezone": "UTC"}}]</tool_call>' in second
    assert "city" not in second and "null" not in second
