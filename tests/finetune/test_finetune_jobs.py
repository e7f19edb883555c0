"""Real training jobs on the CPU: SFT-LoRA of the shipped SmolLM2-135M with a kill, a resume, a cancel and a
second resume, and its export; DPO, GRPO with rule rewards, QLoRA and a failing run on a tiny local Llama
(SmolLM2's tokenizer, two layers: the same trainers and loading code, seconds per job).

The jobs are submitted together at module start and run two at a time (the configured limit), so the
whole file costs about as much as its slowest chain of jobs.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from servers.core import models
from servers.core.jobs import JobState
from servers.core.settings import Settings, load_settings
from servers.finetune import api

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                        "required": ["city"]}}}
CLOCK = {"type": "function", "function": {"name": "get_time", "description": "Local time in a time zone",
                                          "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}}
CITIES = ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Quito", "Dakar"]
TINY = {"batch_size": 2, "max_length": 64, "logging_steps": 1}
pytestmark = pytest.mark.slow  # five real training jobs (~4 min on 2 cores)


def _sft_rows() -> list[dict[str, Any]]:
    rows = []
    for i, city in enumerate(CITIES):
        rows.append({"messages": [{"role": "user", "content": f"What is {i} plus {i + 2}?"},
                                  {"role": "assistant", "content": f"{i} plus {i + 2} is {2 * i + 2}."}]})
        tool, args = (TOOL, {"city": city}) if i % 2 else (CLOCK, {"zone": f"Europe/{city}"})
        name = tool["function"]["name"]
        rows.append({"tools": [TOOL, CLOCK], "messages": [
            {"role": "user", "content": f"Weather or time in {city}?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": name, "arguments": args}}]},
            {"role": "tool", "name": name, "content": "sunny" if i % 2 else "noon"},
            {"role": "assistant", "content": f"It is {'sunny' if i % 2 else 'noon'} in {city}."}]})
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _tiny_llama(folder: Path) -> str:
    """A 2-layer Llama with SmolLM2's tokenizer, saved the way users keep models (QLoRA, DPO, GRPO jobs)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    smol = models.gguf_cache_dir(models.resolve("smollm2", "causal_lm").path, load_settings())
    tokenizer = AutoTokenizer.from_pretrained(str(smol))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ftjobs")
    llama = _tiny_llama(root / "tiny-llama")  # calls name models only by configured name (issue 15, defect 8)
    settings = load_settings(overrides={"data_dir": str(root / "data"), "roots": [str(root)],
                                        "models": {"named": {"tiny-llama": llama}},
                                        "finetune": {"max_running_jobs": 2, "kill_after_s": 30}})
    models.causal_lm("smollm2", settings)  # the trainable folder exists before jobs start (no race)
    rows = _sft_rows()
    sft = _write(root / "sft.jsonl", rows[:12])
    sft_eval = _write(root / "sft_eval.jsonl", rows[12:14])
    dpo = _write(root / "dpo.jsonl", [
        {"prompt": f"Say the capital of {c}'s country politely.", "chosen": f"Certainly! It is the capital city near {c}.",
         "rejected": "No."} for c in CITIES[:4]])
    grpo = _write(root / "grpo.jsonl", [{"prompt": f"What is {i} + {i}? Answer with a number.", "answer": str(2 * i)}
                                        for i in range(4)])
    reward = [{"type": "numeric_match", "field": "answer", "weight": 2.0}, {"type": "length", "min_chars": 1, "max_chars": 40}]
    ids = {}
    ids["sft"] = api.start_job(settings, data=sft, eval_data=sft_eval, max_steps=6, job_id="sft",
                               options={**TINY, "save_steps": 2, "eval_steps": 2, "max_length": 320}).job_id
    # DPO, GRPO and the failing run train the tiny Llama: the same trainers, loading code and metrics in
    # seconds instead of minutes (two steps of SmolLM2 DPO or GRPO took 90-100 s on 2 busy cores)
    ids["dpo"] = api.start_job(settings, method="dpo", model="tiny-llama", data=dpo, max_steps=2, job_id="dpo",
                               options=TINY).job_id
    ids["grpo"] = api.start_job(settings, method="grpo", model="tiny-llama", data=grpo, max_steps=2, job_id="grpo",
                                reward=reward,
                                options={**TINY, "num_generations": 2, "max_completion_length": 8}).job_id
    ids["qlora"] = api.start_job(settings, adapter="qlora", model="tiny-llama", data=sft, max_steps=2, job_id="qlora",
                                 options={**TINY, "target_modules": ["q_proj", "v_proj"]}).job_id
    ids["broken"] = api.start_job(settings, method="grpo", model="tiny-llama", data=grpo, max_steps=2, job_id="broken",
                                  reward=[{"type": "python", "callable": "tests.finetune.reward_fns:broken"}],
                                  options={**TINY, "num_generations": 2, "max_completion_length": 4}).job_id
    return {"settings": settings, "root": root, "ids": ids, "sft": sft}


def _wait(settings: Settings, job_id: str, timeout: float = 600) -> api.JobStatus:
    status = api.wait_job(settings, job_id=job_id, timeout_s=timeout)
    assert not status.timed_out, f"{job_id} still {status.state}"
    return status


def _until(predicate, timeout: float = 300, poll: float = 0.2):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(poll)
    raise AssertionError("condition not reached in time")


def _steps(settings: Settings, job_id: str) -> list[int]:
    return [r["step"] for r in api.job_status(settings, job_id=job_id, metrics_limit=1000).metrics if "loss" in r]


def _wait_over_mcp(settings: Settings, job_id: str) -> tuple[dict[str, Any], list[tuple[float, float | None]]]:
    """Call the `wait_job` tool through an in-process MCP client and collect its progress notifications."""
    import asyncio

    from mcp import Client

    from servers.finetune.server import build_server

    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async def run() -> dict[str, Any]:
        async with Client(build_server(settings)) as client:
            result = await client.call_tool("wait_job", {"job_id": job_id, "timeout_s": 600},
                                            progress_callback=on_progress)
            assert not result.is_error, result.content
            return result.structured_content

    return asyncio.run(run()), seen


def _png_ok(path: str) -> bool:
    data = Path(path).read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_sft_kill_resume_cancel_resume_continues_at_the_next_step(env: dict[str, Any]) -> None:
    settings, job = env["settings"], "sft"
    folder = api.store(settings).folder(job)
    state2 = folder / "checkpoints" / "checkpoint-2" / "trainer_state.json"
    _until(lambda: state2.is_file() and json.loads(state2.read_text() or "{}").get("global_step") == 2)
    pid = api.store(settings).get(job).pid
    os.kill(pid, signal.SIGKILL)  # the trainer dies without warning after its step-2 checkpoint
    died = _wait(settings, job, 60)
    assert died.state == "failed" and "signal 9" in died.error
    logged_before = _steps(settings, job)

    resumed = api.resume_job(settings, job_id=job)
    assert resumed.state in ("queued", "running") and resumed.error is None
    _until(lambda: (api.job_status(settings, job_id=job).step or 0) >= 4)
    cancelled = api.cancel_job(settings, job_id=job)
    assert cancelled.job_id == job
    stopped = _wait(settings, job, 300)
    assert stopped.state == "cancelled"
    after_first_resume = [s for s in _steps(settings, job)[len(logged_before):]]
    assert after_first_resume[0] == 3, after_first_resume  # continued from checkpoint-2: step 3, not step 1
    last_ckpt = stopped.result["checkpoint"]
    k = int(last_ckpt.rsplit("-", 1)[-1])
    assert k >= 4 and k in stopped.checkpoints  # the cancel saved a checkpoint at its step

    n_before = len(_steps(settings, job))
    api.resume_job(settings, job_id=job)
    done, progress = _wait_over_mcp(settings, job)  # the tool a client calls, with progress notifications
    assert done["state"] == "completed", done["error"]
    # before the resumed trainer reports its step count (queued, loading) progress has no total yet
    known = [total for _, total in progress if total is not None]
    assert progress and progress[-1] == (6, 6) and known and all(total == 6 for total in known)
    done = api.job_status(settings, job_id=job)
    tail = _steps(settings, job)[n_before:]
    assert tail[0] == k + 1 and tail[-1] == 6 and done.step == 6
    assert done.result["resumed_from"].endswith(f"checkpoint-{k}") and done.attempt == 3


def test_sft_metrics_plots_diagnostics_and_data_hash(env: dict[str, Any]) -> None:
    status = _wait(env["settings"], "sft")
    keys = set().union(*(r.keys() for r in status.metrics))
    assert {"loss", "grad_norm", "learning_rate", "entropy", "num_tokens", "mean_token_accuracy", "eval_loss"} <= keys
    assert {Path(p).name for p in status.plots} == {"loss.png", "learning_rate.png", "grad_norm.png"}
    assert all(_png_ok(p) for p in status.plots)
    assert status.diagnostics and status.best_checkpoint in (2, 4, 6)
    assert status.result["template"] == "quiver-chatml" and status.result["tool_dialect"] == "smol"
    assert "rows_dropped_by_truncation" not in status.result  # the tool-calling rows were all trained on
    assert status.dataset_hash and len(status.dataset_hash) == 32
    logs = api.job_logs(env["settings"], job_id="sft", lines=400)
    assert "attempt 3 started" in logs.text and "resume from" in logs.text


def test_export_adapter_and_merged_load_through_the_model_layer(env: dict[str, Any]) -> None:
    settings = env["settings"]
    _wait(settings, "sft")
    adapter = api.export_model(settings, job_id="sft")
    assert adapter.kind == "adapter" and adapter.verified and isinstance(adapter.sample_output, str)
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= set(adapter.files)
    assert adapter.perplexity_base and adapter.perplexity_tuned and adapter.eval_rows == 2
    merged = api.export_model(settings, job_id="sft", merge=True, out=str(env["root"] / "merged"), verify=False)
    assert merged.kind == "merged" and "model.safetensors" in merged.files and "config.json" in merged.files

    prompt = [{"role": "user", "content": "What is 3 plus 5?"}]

    def greedy(name: str) -> str:
        lm = models.causal_lm(name, settings)
        text = lm.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        ids = lm.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        out = lm.model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=lm.tokenizer.pad_token_id)
        return lm.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    from_merged = greedy(merged.path)
    from_adapter = greedy(adapter.path)
    assert from_merged and from_merged == from_adapter  # both load as models.causal_lm and agree
    with pytest.raises(Exception, match="not empty"):
        api.export_model(settings, job_id="sft", merge=True, out=str(env["root"] / "merged"), verify=False)


def test_dpo_job_logs_reward_metrics(env: dict[str, Any]) -> None:
    status = _wait(env["settings"], "dpo")
    assert status.state == "completed", status.error
    keys = set().union(*(r.keys() for r in status.metrics))
    assert {"loss", "rewards/chosen", "rewards/rejected", "rewards/margins"} <= keys
    assert {Path(p).name for p in status.plots} == {"loss.png", "rewards.png"}
    assert all(_png_ok(p) for p in status.plots)


def test_grpo_job_with_rule_rewards(env: dict[str, Any]) -> None:
    status = _wait(env["settings"], "grpo")
    assert status.state == "completed", status.error
    keys = set().union(*(r.keys() for r in status.metrics))
    assert {"loss", "reward", "reward_std", "entropy", "frac_reward_zero_std"} <= keys
    assert any(k.startswith("rewards/numeric_match_0") for k in keys) and status.step == 2
    assert "reward.png" in {Path(p).name for p in status.plots} and all(_png_ok(p) for p in status.plots)


def test_qlora_on_a_tiny_local_llama(env: dict[str, Any]) -> None:
    status = _wait(env["settings"], "qlora")
    assert status.state == "completed", status.error
    assert status.adapter == "qlora" and status.step == 2 and "loss" in status.latest
    exported = api.export_model(env["settings"], job_id="qlora", verify=True)
    assert exported.kind == "adapter" and exported.verified


def test_a_failing_run_ends_failed_with_the_trainers_error(env: dict[str, Any]) -> None:
    status = _wait(env["settings"], "broken")
    assert status.state == "failed" and "planted reward failure" in status.error
    assert "RuntimeError" in api.job_logs(env["settings"], job_id="broken").text
    listed = api.list_jobs(env["settings"])
    assert {j.job_id for j in listed.jobs} == set(env["ids"].values()) and listed.max_running_jobs == 2
    assert api.list_jobs(env["settings"], state="failed").jobs[0].job_id == "broken"
    assert all(j.state != JobState.running for j in api.list_jobs(env["settings"]).jobs if j.job_id == "broken")
