"""The training subprocess: ``python -m servers.finetune.trainer_entry JOB_DIR``.

Reads the resolved job config (written by :func:`servers.finetune.api.start`), loads the model
and data, runs the TRL trainer, and reports every logging step to ``metrics.jsonl`` and
``progress.json``. SIGTERM (cancel) saves a checkpoint at the end of the current step and
stops. A resumed job (attempt > 1) continues from the last checkpoint: the Trainer restores
the optimizer, scheduler, RNG states and global step and skips the batches already seen, so
the first step logged after a resume is N + 1.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from servers.core.jobs import JobContext, child_main

CHECKPOINTS = "checkpoints"
FINAL = "final"


def _peak_rss_gib() -> float:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak_kib * (1 if sys.platform != "darwin" else 1 / 1024) / 1024**2, 4)


def _precision(cfg: dict[str, Any]) -> tuple[str, Any]:
    import torch

    want = cfg["train"]["precision"]
    cuda = cfg["device"] == "cuda"
    if want == "auto":
        want = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[want]
    return want, dtype


def load_tokenizer(location: str) -> Any:
    from transformers import AutoTokenizer

    from servers.core.models import CHATML_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True)
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(cfg: dict[str, Any], dtype: Any, precision: str) -> Any:
    """The model as the adapter needs it: full (fp32 master weights), freeze, LoRA or QLoRA (4-bit NF4)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    train = cfg["train"]
    adapter, location = train["adapter"], cfg["model"]["location"]
    kwargs: dict[str, Any] = {"local_files_only": True}
    if adapter == "full":
        kwargs["dtype"] = torch.float32  # fp32 master weights; bf16/fp16 via autocast
    else:
        kwargs["dtype"] = dtype
    if adapter == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=train["qlora_double_quant"],
            bnb_4bit_compute_dtype=dtype,
        )
        if cfg["device"] == "cuda":
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    cls = AutoModelForSequenceClassification if train["method"] == "reward" else AutoModelForCausalLM
    if train["method"] == "reward":
        kwargs["num_labels"] = 1
    model = cls.from_pretrained(location, **kwargs)
    if adapter == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=train["gradient_checkpointing"])
    if adapter in ("lora", "qlora"):
        from peft import LoraConfig, get_peft_model

        top = train.get("lora_top_layers")
        layers = None
        if top:
            n = len(_decoder_layers(model))
            layers = list(range(max(0, n - top), n))
        peft_config = LoraConfig(
            r=train["lora_r"], lora_alpha=train["lora_alpha"], lora_dropout=train["lora_dropout"],
            target_modules=train["target_modules"], bias="none", layers_to_transform=layers,
            task_type="SEQ_CLS" if train["method"] == "reward" else "CAUSAL_LM",
        )
        model = get_peft_model(model, peft_config)
    elif adapter == "freeze":
        layers = _decoder_layers(model)
        top = train["freeze_trainable_layers"]
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in list(layers)[-top:]:
            for p in layer.parameters():
                p.requires_grad_(True)
    return model


def _decoder_layers(model: Any) -> Any:
    from servers.finetune.memory import _decoder_layers as find

    layers = find(model)
    if layers is None:
        raise ValueError("freeze: cannot find the decoder layers of this architecture; use lora or full")
    return layers


def _jsonl(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as source:
        return [json.loads(line) for line in source if line.strip()]


def _arrow_safe(row: dict[str, Any]) -> dict[str, Any]:
    """Tools and tool-call arguments as JSON strings: Arrow would merge differently shaped objects across rows
    into one struct (every tool's arguments gaining the other tools' keys as nulls)."""
    out = dict(row)
    if out.get("tools") is not None:
        out["tools"] = json.dumps(out["tools"], ensure_ascii=False)
    messages = []
    for m in out["messages"]:
        if m.get("tool_calls"):
            m = {**m, "tool_calls": [
                {**c, "function": {**c["function"], "arguments": c["function"]["arguments"]
                                   if isinstance(c["function"].get("arguments"), str)
                                   else json.dumps(c["function"].get("arguments", {}), ensure_ascii=False)}}
                for c in m["tool_calls"]]}
        messages.append(m)
    out["messages"] = messages
    return out


def load_data(cfg: dict[str, Any], tokenizer: Any) -> tuple[Any, Any, dict[str, Any]]:
    from datasets import Dataset, load_dataset

    from servers.finetune.chat_format import to_training_messages, training_template

    data = cfg["data"]
    info: dict[str, Any] = {}
    if data["format"] == "messages":
        # Rows are converted in Python before Arrow sees them (see _arrow_safe).
        choice = training_template(tokenizer)
        info = {"template": choice.source, "tool_dialect": choice.tool_dialect, "assistant_only": choice.assistant_only}
        if choice.template:
            tokenizer.chat_template = choice.template

        def build(path: str) -> Any:
            rows = [_arrow_safe(to_training_messages(r, choice.tool_dialect)) for r in _jsonl(path)]
            if any("tools" in r for r in rows):
                for r in rows:
                    r.setdefault("tools", None)
            return Dataset.from_list(rows)

        return build(data["train"]), build(data["eval"]) if data.get("eval") else None, info
    files = {"train": data["train"]}
    if data.get("eval"):
        files["eval"] = data["eval"]
    ds = load_dataset("json", data_files=files)
    return ds["train"], ds.get("eval"), info


def build_trainer(cfg: dict[str, Any], ctx: JobContext | None, model: Any, tokenizer: Any, train_ds: Any,
                  eval_ds: Any, info: dict[str, Any], precision: str) -> Any:
    import trl

    train = cfg["train"]
    method = train["method"]
    out = Path(cfg["output_dir"])
    common: dict[str, Any] = dict(
        output_dir=str(out / CHECKPOINTS), per_device_train_batch_size=train["batch_size"],
        per_device_eval_batch_size=train["batch_size"], gradient_accumulation_steps=train["grad_accum"],
        learning_rate=train["learning_rate"], weight_decay=train["weight_decay"], optim=train["optimizer"],
        lr_scheduler_type=train["lr_scheduler"], warmup_steps=train["warmup_ratio"],
        max_grad_norm=train["max_grad_norm"], num_train_epochs=train["epochs"],
        max_steps=train["max_steps"] or -1, logging_steps=train["logging_steps"], save_steps=train["save_steps"],
        save_total_limit=train["save_total_limit"], seed=train["seed"], data_seed=train["seed"],
        bf16=precision == "bf16", fp16=precision == "fp16", gradient_checkpointing=train["gradient_checkpointing"],
        report_to="none", disable_tqdm=True, use_cpu=cfg["device"] == "cpu", dataloader_num_workers=0,
        save_strategy="steps", logging_first_step=True,
    )
    if eval_ds is not None:
        common.update(eval_strategy="steps", eval_steps=train["eval_steps"] or train["save_steps"])
    if method in ("sft", "pretrain"):
        args = trl.SFTConfig(
            **common, max_length=train["max_length"], packing=train["packing"],
            assistant_only_loss=method == "sft" and cfg["data"]["format"] == "messages"
            and train["completion_only"] and info.get("assistant_only", False),
            completion_only_loss=(train["completion_only"] if cfg["data"]["format"] == "prompt_completion" else None),
            dataset_text_field="text",
        )
        trainer_cls, extra = trl.SFTTrainer, {}
    elif method == "dpo":
        kw: dict[str, Any] = {"beta": train["beta"] or 0.1, "max_length": train["max_length"]}
        if train["rpo_alpha"]:
            kw.update(loss_type=["sigmoid", "sft"], loss_weights=[1.0, train["rpo_alpha"]])
        args, trainer_cls, extra = trl.DPOConfig(**common, **kw), trl.DPOTrainer, {}
    elif method == "kto":
        args = trl.KTOConfig(**common, beta=train["beta"] or 0.1, max_length=train["max_length"])
        trainer_cls, extra = trl.KTOTrainer, {}
    elif method == "reward":
        args, trainer_cls, extra = trl.RewardConfig(**common, max_length=train["max_length"]), trl.RewardTrainer, {}
    elif method in ("grpo", "rloo"):
        from servers.finetune.rewards import build_rewards

        funcs, weights = build_rewards(cfg.get("reward"))
        cls_cfg = trl.GRPOConfig if method == "grpo" else trl.RLOOConfig
        args = cls_cfg(
            **common, num_generations=train["num_generations"], max_completion_length=train["max_completion_length"],
            temperature=train["temperature"], beta=train["beta"] or 0.0, reward_weights=weights,
        )
        trainer_cls = trl.GRPOTrainer if method == "grpo" else trl.RLOOTrainer
        extra = {"reward_funcs": funcs}
    else:
        raise ValueError(f"unknown method {method}")
    callbacks = [JobCallback(ctx, cfg)] if ctx is not None else []
    return trainer_cls(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                       processing_class=tokenizer, callbacks=callbacks, **extra)


def _callback_base() -> type:
    from transformers import TrainerCallback

    return TrainerCallback


class JobCallback(_callback_base()):  # type: ignore[misc]
    """Metrics → metrics.jsonl, progress → progress.json, SIGTERM → save a checkpoint and stop."""

    def __init__(self, ctx: JobContext, cfg: dict[str, Any]) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.started = time.time()
        self.first_step: int | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.first_step = state.global_step
        self.ctx.report_progress(state.global_step, state.max_steps, "training started", epoch=state.epoch)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        if not logs:
            return
        record = {k: v for k, v in logs.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        if "train_runtime" in record:
            record["summary"] = True
        self.ctx.log_metrics({"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), **record})
        self._progress(state)
        self._maybe_stop(control)

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._progress(state)
        self._maybe_stop(control)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._maybe_stop(control)

    def _maybe_stop(self, control: Any) -> None:
        """A cancel asked during this step's log/eval phase still saves this step and stops before the next."""
        if self.ctx.cancelled:
            control.should_save = True
            control.should_training_stop = True

    def _progress(self, state: Any) -> None:
        done = state.global_step - (self.first_step or 0)
        elapsed = time.time() - self.started
        eta = elapsed / done * (state.max_steps - state.global_step) if done > 0 else None
        self.ctx.report_progress(state.global_step, state.max_steps, f"step {state.global_step}/{state.max_steps}",
                                 epoch=state.epoch, eta_s=eta, elapsed_s=round(elapsed, 1))


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest *complete* checkpoint (trainer_state.json is written last: a process killed while saving
    leaves a folder without it, which is skipped)."""
    found = []
    for item in (output_dir / CHECKPOINTS).glob("checkpoint-*"):
        step = item.name.rsplit("-", 1)[-1]
        if step.isdigit() and (item / "trainer_state.json").is_file():
            found.append((int(step), item))
    return str(max(found)[1]) if found else None


def run(ctx: JobContext) -> dict[str, Any]:
    cfg = ctx.config
    import torch

    torch.manual_seed(cfg["train"]["seed"])
    precision, dtype = _precision(cfg)
    tokenizer = load_tokenizer(cfg["model"]["location"])
    train_ds, eval_ds, info = load_data(cfg, tokenizer)
    model = load_model(cfg, dtype, precision)
    rows = len(train_ds)
    trainer = build_trainer(cfg, ctx, model, tokenizer, train_ds, eval_ds, info, precision)
    kept = len(trainer.train_dataset) if hasattr(trainer.train_dataset, "__len__") else rows
    if kept == 0:
        raise ValueError(
            f"all {rows} training rows were dropped while preparing them: with max_length "
            f"{cfg['train']['max_length']} the prompts fill the sequence and no answer token is left to learn; "
            "raise max_length (or shorten the prompts / system prompt)")
    if kept < rows:
        info["rows_dropped_by_truncation"] = rows - kept
    out = Path(cfg["output_dir"])
    resume = last_checkpoint(out) if ctx.attempt > 1 or cfg.get("resume") else None
    if ctx.cancelled:
        return {"stopped": "cancelled before training started"}
    print(f"quiver-finetune: {cfg['train']['method']}/{cfg['train']['adapter']} on {cfg['model']['name']}"
          f" ({precision}, {cfg['device']}); resume from {resume or 'scratch'}", file=sys.stderr, flush=True)
    result = trainer.train(resume_from_checkpoint=resume)
    state = trainer.state
    summary: dict[str, Any] = {
        "global_step": state.global_step, "max_steps": state.max_steps, "resumed_from": resume,
        "train_loss": getattr(result, "training_loss", None), "peak_rss_gib": _peak_rss_gib(),
        "precision": precision, **info,
    }
    if torch.cuda.is_available():
        summary["cuda_max_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 4)
    if ctx.cancelled:
        summary["checkpoint"] = last_checkpoint(out)
        return summary
    final = out / FINAL
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    (final / "quiver_job.json").write_text(json.dumps({
        "job_id": ctx.job_id, "base_model": cfg["model"]["name"], "base_location": cfg["model"]["location"],
        "method": cfg["train"]["method"], "adapter": cfg["train"]["adapter"], **info,
    }, indent=1))
    summary["final_dir"] = str(final)
    summary["checkpoint"] = last_checkpoint(out)
    return summary


if __name__ == "__main__":
    raise SystemExit(child_main(run))
