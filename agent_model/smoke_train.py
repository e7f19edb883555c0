"""A short plain-TRL LoRA run on a few records of the built dataset: does the data train (loss
falls), and how many seconds a step takes here. Not the recipe's training (that goes through the
finetune server); indicative only on a shared machine.

    python -m agent_model.smoke_train --data DIR --records 50 --steps 10

Prints one JSON object per logged step, then a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The LoRA configuration the recipe proposes (README): every linear projection, rank 16.
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


def pick(data: Path, n: int, max_tokens: int, seed: int) -> list[dict[str, Any]]:
    """``n`` assistant turns (prompt → completion) from the training split, mixed across sources,
    from records no longer than ``max_tokens``."""
    lengths = {}
    for line in (data / "examples" / "train.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        lengths[row["id"]] = row["n_tokens"]
    turns = [json.loads(line) for line in (data / "trl_turns" / "train.jsonl").open(encoding="utf-8")]
    turns = [t for t in turns if lengths[t["id"].split("#")[0]] <= max_tokens]
    random.Random(seed).shuffle(turns)
    return [{"prompt": t["prompt"], "completion": t["completion"]} for t in turns[:n]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a folder written by agent_model.build_dataset")
    p.add_argument("--records", type=int, default=50)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--grad-accum", type=int, default=5)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--max-tokens", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from servers.core.models import causal_lm
    from servers.core.settings import load_settings

    lm = causal_lm("smollm2", load_settings())
    rows = pick(args.data, args.records, args.max_tokens, args.seed)
    marks: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            marks.append(time.perf_counter())

        def on_log(self, _args: Any, state: Any, _control: Any, logs: dict[str, Any] | None = None, **__: Any) -> None:
            if logs and "loss" in logs:
                print(json.dumps({"step": state.global_step, "loss": round(float(logs["loss"]), 4),
                                  "mean_token_accuracy": logs.get("mean_token_accuracy")}), flush=True)

    with tempfile.TemporaryDirectory() as out:
        config = SFTConfig(
            output_dir=out, max_steps=args.steps, per_device_train_batch_size=args.batch,
            gradient_accumulation_steps=args.grad_accum, learning_rate=args.lr, lr_scheduler_type="constant",
            logging_steps=1, save_strategy="no", report_to=[], seed=args.seed, max_length=args.max_tokens,
            completion_only_loss=True, use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
            gradient_checkpointing=False,  # a 135M model needs no activation memory savings; it costs ~30 % time
            bf16=False,  # TRL's default is bf16 autocast, which CPUs without native bf16 emulate very slowly
        )
        trainer = SFTTrainer(model=lm.model.train(), args=config, train_dataset=Dataset.from_list(rows),
                             processing_class=lm.tokenizer, peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA),
                             callbacks=[Timer()])
        tokens = sum(len(x["input_ids"]) for x in trainer.train_dataset)
        start = time.perf_counter()
        trainer.train()
        total = time.perf_counter() - start
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    steps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    print(json.dumps({
        "bench": "agent_model_smoke_train", "records": len(rows), "steps": len(losses), "lora": LORA,
        "trainable_params": trainable, "train_tokens": tokens,
        "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4),
        "loss_first3_mean": round(sum(losses[:3]) / 3, 4), "loss_last3_mean": round(sum(losses[-3:]) / 3, 4),
        "seconds_total": round(total, 1), "seconds_per_step": round(sorted(steps)[len(steps) // 2], 2) if steps else None,
        "rows_per_step": args.batch * args.grad_accum, "threads": os.environ.get("OMP_NUM_THREADS"),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
