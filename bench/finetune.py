"""Fine-tuning benchmarks, one JSON line each:

* ``{"bench": "memory", "method": ..., "estimated_gib": ..., "measured_gib": ..., "error": ...}``: the
  estimator against the measured peak of a real job (peak RSS of the training process on CPU;
  ``torch.cuda.max_memory_allocated`` + the CUDA context on a GPU) for SFT-LoRA, SFT-full and QLoRA.
  Every sequence is exactly ``--seq-len`` tokens (long answers truncated), so the estimate's s is exact.
* ``{"bench": "speed", "ratio": ...}``: training steps/s through Quiver (the job subprocess) against a
  plain TRL script with the same config, in the same run (steps/s from the trainers' own train_runtime).
* ``{"bench": "data", ...}``: prepare_data (exact dedup + MinHash near-dup + stats) on N synthetic rows
  against datasketch MinHash/LSH alone over the same texts.

    python bench/finetune.py                       # all three, small settings
    python bench/finetune.py --only memory --steps 3 --seq-len 128 --batch 4

Run on a quiet machine for speed figures (CPU contention changes steps/s, not memory).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from servers.core.settings import Settings, load_settings
from servers.finetune import api

WORDS = ["the", "model", "learns", "to", "answer", "questions", "about", "tools", "data", "memory", "training",
         "steps", "with", "short", "clear", "sentences", "while", "loss", "falls", "and", "gradients", "stay",
         "small", "enough", "for", "stable", "updates"]


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def long_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        answer = " ".join(rng.choice(WORDS) for _ in range(400))
        rows.append({"messages": [{"role": "user", "content": f"Tell me a long story number {i}."},
                                  {"role": "assistant", "content": answer}]})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def run_job(settings: Settings, **kwargs: Any) -> api.JobStatus:
    started = api.start_job(settings, **kwargs)
    status = api.wait_job(settings, job_id=started.job_id, timeout_s=3600)
    if status.state != "completed":
        raise RuntimeError(f"job {started.job_id} ended {status.state}: {status.error}")
    return status


def bench_memory(settings: Settings, work: Path, args: argparse.Namespace) -> None:
    data = write_jsonl(work / "long.jsonl", long_rows(args.batch * args.steps * 2))
    for method, adapter in (("sft-lora", "lora"), ("sft-full", "full"), ("qlora", "qlora")):
        if args.methods and method not in args.methods:
            continue
        options = {"batch_size": args.batch, "max_length": args.seq_len, "save_steps": 10_000, "logging_steps": 1,
                   "target_modules": ["q_proj", "v_proj"], "lora_r": 8}
        est = api.estimate_memory(settings, model=args.model, method=adapter, seq_len=args.seq_len, batch=args.batch,
                                  lora_r=8, target_modules=["q_proj", "v_proj"])
        status = run_job(settings, model=args.model, adapter=adapter, data=data, max_steps=args.steps, options=options)
        result = status.result or {}
        measured = result.get("peak_rss_gib")
        if "cuda_max_allocated_gib" in result:
            measured = result["cuda_max_allocated_gib"] + est.components.get("runtime", 0.0)
        emit({"bench": "memory", "method": method, "model": args.model, "seq_len": args.seq_len, "batch": args.batch,
              "estimated_gib": est.total_gib, "measured_gib": measured,
              "error": round((est.total_gib - measured) / measured, 4) if measured else None,
              "components": est.components, "device": est.device})


PLAIN_TRL = textwrap.dedent(
    """
    import json, sys, torch
    from datasets import load_dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    cfg = json.loads(sys.argv[1])
    torch.manual_seed(cfg["seed"])
    tok = AutoTokenizer.from_pretrained(cfg["model"])
    tok.chat_template = cfg["template"] or tok.chat_template
    model = AutoModelForCausalLM.from_pretrained(cfg["model"], dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["q_proj", "v_proj"],
                                             task_type="CAUSAL_LM"))
    args = SFTConfig(output_dir=cfg["out"], per_device_train_batch_size=cfg["batch"], max_steps=cfg["steps"],
                     learning_rate=1e-4, weight_decay=0.01, warmup_steps=0.03, max_length=cfg["seq_len"],
                     logging_steps=1, save_strategy="no", report_to="none", use_cpu=not torch.cuda.is_available(),
                     assistant_only_loss=True, gradient_checkpointing=False, disable_tqdm=True, seed=cfg["seed"],
                     bf16=False, fp16=False, lr_scheduler_type="linear", optim="adamw_torch", max_grad_norm=1.0)
    trainer = SFTTrainer(model=model, args=args, train_dataset=load_dataset("json", data_files=cfg["data"])["train"],
                         processing_class=tok)
    out = trainer.train()
    print("RESULT " + json.dumps({"steps_per_s": out.metrics["train_steps_per_second"]}))
    """
)


def bench_speed(settings: Settings, work: Path, args: argparse.Namespace) -> None:
    from servers.finetune.chat_format import training_template
    from servers.finetune.trainer_entry import load_tokenizer

    data = write_jsonl(work / "speed.jsonl", long_rows(args.batch * args.speed_steps))
    status = run_job(settings, model=args.model, data=data, max_steps=args.speed_steps,
                     options={"batch_size": args.batch, "max_length": args.seq_len, "save_steps": 10_000, "seed": 42})
    summary = next(r for r in api.store(settings).metrics(status.job_id) if r.get("summary"))
    quiver = summary["train_steps_per_second"]
    location = api._training_model(args.model, settings)["location"]
    cfg = {"model": location, "template": training_template(load_tokenizer(location)).template, "data": data,
           "batch": args.batch, "steps": args.speed_steps, "seq_len": args.seq_len, "seed": 42,
           "out": str(work / "plain")}
    proc = subprocess.run([sys.executable, "-c", PLAIN_TRL, json.dumps(cfg)], capture_output=True, text=True,
                          env=os.environ.copy(), check=True)
    plain = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])["steps_per_s"]
    emit({"bench": "speed", "model": args.model, "steps": args.speed_steps, "batch": args.batch,
          "seq_len": args.seq_len, "quiver_steps_per_s": quiver, "plain_trl_steps_per_s": plain,
          "ratio": round(quiver / plain, 4)})


def bench_data(settings: Settings, work: Path, args: argparse.Namespace) -> None:
    from datasketch import MinHash, MinHashLSH

    from servers.finetune.data_filters import shingles

    rng = random.Random(1)
    rows = []
    for i in range(args.rows):
        q = " ".join(rng.choice(WORDS) for _ in range(12))
        a = " ".join(rng.choice(WORDS) for _ in range(40))
        rows.append({"messages": [{"role": "user", "content": f"{q} {i}"}, {"role": "assistant", "content": a}]})
        if i % 20 == 0 and rows:
            rows.append(rows[rng.randrange(len(rows))])  # 5% exact duplicates
    path = write_jsonl(work / "rows.jsonl", rows)
    t0 = time.perf_counter()
    result = api.prepare_data(settings, files=[path], out=str(work / "prepared"), near_dup=0.85, check_template=False)
    quiver_s = time.perf_counter() - t0
    texts = [r["messages"][0]["content"] + "\n" + r["messages"][1]["content"] for r in rows]
    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=0.85, num_perm=128)
    for i, text in enumerate(texts):
        mh = MinHash(num_perm=128, seed=1)
        mh.update_batch([s.encode() for s in shingles(text)])
        if not lsh.query(mh):
            lsh.insert(str(i), mh)
    plain_s = time.perf_counter() - t0
    emit({"bench": "data", "rows": len(rows), "kept": result.kept, "dropped": result.dropped,
          "quiver_rows_per_s": round(len(rows) / quiver_s, 1), "datasketch_rows_per_s": round(len(rows) / plain_s, 1),
          "ratio": round(plain_s / quiver_s, 4)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="memory,speed,data")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--methods", nargs="*", default=None, help="memory: sft-lora sft-full qlora")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="memory: steps per job (the peak comes at step 1)")
    parser.add_argument("--speed-steps", type=int, default=10)
    parser.add_argument("--rows", type=int, default=10_000, help="data: synthetic rows")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="quiver-bench-ft-") as tmp:
        work = Path(tmp)
        settings = load_settings(overrides={"data_dir": str(work / "data"), "roots": [str(work)]})
        chosen = set(args.only.split(","))
        if "memory" in chosen:
            bench_memory(settings, work, args)
        if "speed" in chosen:
            bench_speed(settings, work, args)
        if "data" in chosen:
            bench_data(settings, work, args)


if __name__ == "__main__":
    main()
