"""Train the shipped tool-calling adapter with Quiver's own finetune server, end to end.

    python -m agent_model.train --data data/agent_model --config agent_model/train_config.toml
    # or: make agent-model (builds the dataset first when it is missing)

1. **Select** (seeded): training records of the built dataset (``trl_tools/train.jsonl``, the
   ``messages`` + ``tools`` view) no longer than ``data.max_tokens``, filled group by group up to
   ``data.token_budget`` (the CPU budget); held-out BFCL ids and Quiver groups are never in the pool.
2. **Prepare** with the finetune server's ``prepare_data`` (validation, exact dedup, conflicts, the
   eval split, the chat-template check: loss on assistant turns only, end-of-turn learned).
3. **Train** with ``start_job`` (SFT, LoRA; the tools render in the host's ``smol`` format) and
   ``wait_job`` until it ends.
4. **Export** with ``export_model`` (reloaded, generated from, perplexity against the base), then
   **ship**: ``adapter_model.safetensors`` in bf16 and ``adapter_config.json`` naming the shipped
   base (``smollm2``) in ``servers/core/adapters/agent-smollm2/``, with ``training.json`` (the
   config, selection, data hash, job, steps, wall time, losses).
5. **Calibrate** the call threshold (``agent_model.calibrate``) on training-split records the selection
   left out: ``calibration.json`` beside the weights, read by the host's local backend.

Prints one JSON object (the training record) on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from servers.core.models import SHIPPED_ADAPTERS
from servers.core.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
CONFIG = Path(__file__).resolve().parent / "train_config.toml"
SHIPPED = SHIPPED_ADAPTERS["agent"][0]
TRAIN_KEYS = ("lora_r", "lora_alpha", "lora_dropout", "target_modules", "lora_top_layers", "learning_rate",
              "lr_scheduler", "warmup_ratio", "weight_decay", "batch_size", "grad_accum", "max_length", "precision",
              "completion_only", "save_steps", "save_total_limit", "logging_steps", "eval_steps")

log = logging.getLogger("agent_model.train")


def load_config(path: Path = CONFIG) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _group_of(example: dict[str, Any], groups: dict[str, dict[str, Any]]) -> str | None:
    """The first group that takes the record: by ``kinds`` ("source/category"), ``sources``, or BFCL ``categories``."""
    kind = f"{example['source']}/{example['category']}"
    for name, spec in groups.items():
        if kind in spec.get("kinds", []) or example["source"] in spec.get("sources", []) or (
                example["source"] == "bfcl" and example["category"] in spec.get("categories", [])):
            return name
    return None


def select(data: Path, config: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The training rows (``messages`` + ``tools``) for the token budget, and what was chosen."""
    cfg = config["data"]
    examples = [json.loads(x) for x in (data / "examples" / "train.jsonl").open(encoding="utf-8")]
    rows = {r["id"]: r for r in map(json.loads, (data / "trl_tools" / "train.jsonl").open(encoding="utf-8"))}
    rng = random.Random(f"{config['seed']}:select")
    pools: dict[str, list[dict[str, Any]]] = {name: [] for name in cfg["groups"]}
    too_long = 0
    for e in examples:
        if e["split"] != "train":
            raise ValueError(f"{e['id']} in the training file is marked {e['split']}")
        if e["n_tokens"] > cfg["max_tokens"]:
            too_long += 1
            continue
        group = _group_of(e, cfg["groups"])
        if group is not None:
            pools[group].append(e)
    budget = int(cfg["token_budget"])
    chosen: list[dict[str, Any]] = []
    report: dict[str, Any] = {"dropped_too_long": too_long, "groups": {}}
    carry = 0
    for name, spec in cfg["groups"].items():
        pool = pools[name]
        rng.shuffle(pool)
        allowance = int(budget * spec["share"]) + carry
        used = 0
        taken = 0
        for e in pool:
            if used + e["n_tokens"] > allowance:
                continue
            used += e["n_tokens"]
            taken += 1
            chosen.append(e)
        carry = allowance - used
        report["groups"][name] = {"available": len(pool), "taken": taken, "tokens": used}
    rng.shuffle(chosen)
    report["records"] = len(chosen)
    report["tokens"] = sum(e["n_tokens"] for e in chosen)
    report["n_tokens"] = {e["id"]: e["n_tokens"] for e in chosen}
    out = []
    for e in chosen:
        row = rows[e["id"]]
        out.append({"id": row["id"], "messages": row["messages"], "tools": row["tools"]})
    return out, report


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def ship(exported: Path, target: Path, config: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """Write the shipped adapter: weights in the export dtype, the config naming the shipped base."""
    import torch
    from safetensors.torch import load_file, save_file

    dtype = getattr(torch, config["export"]["dtype"])
    weights = {k: v.to(dtype).contiguous() for k, v in load_file(str(exported / "adapter_model.safetensors")).items()}
    adapter_config = json.loads((exported / "adapter_config.json").read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = config["train"]["model"]
    tmp = target.parent / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(weights, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
    (tmp / "adapter_model.safetensors").chmod(0o644)  # a file for the repo, not a private one
    (tmp / "adapter_config.json").write_text(json.dumps(adapter_config, indent=1, sort_keys=True) + "\n")
    (tmp / "training.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    size = (tmp / "adapter_model.safetensors").stat().st_size
    if size > config["export"]["max_bytes"]:
        raise ValueError(f"the adapter is {size} bytes, over export.max_bytes ({config['export']['max_bytes']}): "
                         "lower lora_r or lora_top_layers")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return {"path": str(target), "bytes": size, "tensors": len(weights)}


def _progress(step: int, total: int | None, message: str) -> None:
    print(f"[train] {message} ({step}/{total})", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from servers.finetune import api

    config = load_config(args.config)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    settings: Settings = load_settings(overrides={"roots": [str(work), str(args.data.resolve())]})
    rows, selection = select(args.data, config)
    if args.limit:
        kept = {r["id"] for r in rows[: args.limit]}
        rows = rows[: args.limit]
        selection["limited_to"] = len(rows)
        selection["limited_tokens"] = sum(n for i, n in selection.pop("n_tokens").items() if i in kept)
    else:
        selection.pop("n_tokens")
    log.info("selected %d records, %d tokens", len(rows), selection.get("limited_tokens", selection["tokens"]))
    if args.job:  # training already ran (e.g. the export step failed): export and ship that job
        record = finish(args, settings, config, args.job)
        record["selection"] = selection
        if not args.no_ship:
            record["shipped"] = ship(Path(record.pop("export_path")), args.ship_to, config, record)
            record["calibration"] = _calibrate(args, config)
        return record
    selected = work / "selected.jsonl"
    _write_jsonl(selected, rows)
    eval_fraction = min(0.5, config["data"]["eval_rows"] / max(1, len(rows)))
    start = time.perf_counter()
    prepared = api.prepare_data(settings, files=[str(selected)], out=str(work / "prepared"), format="messages",
                                pii="keep", eval_fraction=eval_fraction, model=config["train"]["model"],
                                seed=config["seed"])
    prepare_s = time.perf_counter() - start
    check = prepared.template_check
    if check is not None and not (check.end_of_turn_learned and check.prompt_tokens_masked):
        raise RuntimeError(f"the chat-template check failed: {check.problems}")
    log.info("prepared: %s", prepared.splits)
    train = config["train"]
    options = {k: train[k] for k in TRAIN_KEYS if k in train}
    if args.max_steps:
        options["max_steps"] = args.max_steps
    if args.eval_steps:
        options["eval_steps"] = args.eval_steps
    started = api.start_job(settings, method=train["method"], adapter=train["adapter"], model=train["model"],
                            data=str(work / "prepared"), options=options, epochs=train["epochs"], seed=config["seed"],
                            label="agent model (agent_model/train.py)")
    job_id = started.job_id
    log.info("job %s started: %s", job_id, started.command)
    record = finish(args, settings, config, job_id)
    record["selection"] = selection
    record["prepared"] = {"kept": prepared.kept, "splits": prepared.splits, "dropped": prepared.dropped,
                          "content_hash": prepared.content_hash, "seconds": round(prepare_s, 1)}
    if not args.no_ship:
        record["shipped"] = ship(Path(record.pop("export_path")), args.ship_to, config, record)
        record["calibration"] = _calibrate(args, config)
    return record


def _calibrate(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    """The shipped adapter's call threshold, chosen on training records it did not train on (calibration.json)."""
    from agent_model.calibrate import calibrate_adapter

    result = calibrate_adapter(args.ship_to, config, args.data)
    log.info("calibrated call threshold %.2f (balanced accuracy %s; at 0.5: %s)", result.call_threshold,
             result.balanced_accuracy, result.balanced_accuracy_at_half)
    return result.model_dump()


def finish(args: argparse.Namespace, settings: Settings, config: dict[str, Any], job_id: str) -> dict[str, Any]:
    """Wait for training job ``job_id``, export it (into a folder of its own) and describe the run."""
    from servers.finetune import api

    train = config["train"]
    t0 = time.perf_counter()
    while True:
        status = api.wait_job(settings, job_id=job_id, timeout_s=300, progress=_progress)
        if not status.timed_out:
            break
    wall = time.perf_counter() - t0
    if status.state != "completed":
        raise RuntimeError(f"job {job_id} ended {status.state}: {status.error}\n"
                           f"{api.job_logs(settings, job_id=job_id, lines=40).text}")
    history = [m for m in api.job_status(settings, job_id=job_id, metrics_limit=100000).metrics]
    losses = [m["loss"] for m in history if "loss" in m]
    evals = [{"step": m["step"], "eval_loss": m["eval_loss"]} for m in history if "eval_loss" in m]
    export = api.export_model(settings, job_id=job_id, out=str(args.work.resolve() / f"export-{job_id}"), verify=True)
    result = status.result or {}
    started, ended = status.started_at, status.ended_at
    if started and ended:
        wall = ended - started  # the job's own time (also right when it finished before this process waited)
    return {
        "job_id": job_id,
        "config": config,
        "train": {"steps": status.step, "total_steps": status.total_steps,
                  "wall_s": round(wall, 1),
                  "s_per_step": round(wall / max(1, status.step), 2),
                  "records_seen": status.step * train["batch_size"] * train["grad_accum"],
                  "train_rows": (status.result or {}).get("train_rows"), "train_loss": result.get("train_loss"),
                  "loss_first": losses[:5], "loss_last": losses[-5:], "eval": evals,
                  "peak_rss_gib": result.get("peak_rss_gib"), "precision": result.get("precision"),
                  "diagnostics": status.diagnostics},
        "export": {"perplexity_base": export.perplexity_base, "perplexity_tuned": export.perplexity_tuned,
                   "eval_rows": export.eval_rows, "verified": export.verified},
        "export_path": export.path,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO / "data" / "agent_model", help="the built dataset")
    p.add_argument("--config", type=Path, default=CONFIG)
    p.add_argument("--work", type=Path, default=REPO / "data" / "agent_model_train", help="selection, prepared data, export")
    p.add_argument("--ship-to", type=Path, default=SHIPPED, help="where the shipped adapter goes")
    p.add_argument("--no-ship", action="store_true", help="train and export only (pilots)")
    p.add_argument("--limit", type=int, default=0, help="train on the first N selected records only (pilots)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after N optimizer steps (pilots)")
    p.add_argument("--job", default="", help="export and ship this finished training job instead of training")
    p.add_argument("--eval-steps", type=int, default=0, help="steps between eval-loss measurements")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    log.setLevel(logging.INFO)
    record = run(parse_args(argv))
    print(json.dumps(record, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
