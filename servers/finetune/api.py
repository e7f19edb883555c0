"""The finetune library's public functions, one per tool (same names and arguments), used by the MCP
server and the ``quiver finetune`` command. Every default comes from ``settings.finetune`` (and
``settings.models`` for the model and device), passed in by the caller.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from servers.core import models
from servers.core.errors import ConfigError, InvalidInput, NotFound
from servers.core.jobs import JobRecord, JobState, JobStore, job_store
from servers.core.roots import resolve_under_roots
from servers.core.settings import Settings
from servers.finetune import data_formats, diagnostics, plots
from servers.finetune.data_prep import MANIFEST, PrepareOptions, PrepareResult, content_hash, read_manifest
from servers.finetune.export import ExportResult
from servers.finetune.memory import MemoryEstimate, estimate, model_shape
from servers.finetune.presets import (
    ALL_PROJECTIONS,
    PRESETS,
    TrainConfig,
    check_method,
    lora_defaults,
    method_infos,
    resolve_config,
)
from servers.finetune.recommend import RANK_GUIDANCE, Recommendation, recommend
from servers.finetune.schemas import JobList, JobLogs, JobStatus, JobSummary, MethodsResult, StartResult

KIND = "finetune"
ENTRY = "servers.finetune.trainer_entry"
ProgressFn = Callable[[int, int | None, str], None]

# argument types shared by the tools (the MCP input schema reads their descriptions)
JobId = Annotated[str, Field(description="the job id returned by start_job (see list_jobs)", min_length=1)]
ModelName = Annotated[str | None, Field(description="configured model name (smollm2, or a key of models.named); "
                                                    "default: the configured model")]


# ---------------------------------------------------------------- helpers


def _device(settings: Settings) -> str:
    return models.select_device(settings.models.device)


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _max_running(settings: Settings) -> int:
    return settings.finetune.max_running_jobs or max(1, _gpus())


def store(settings: Settings, *, monitor: bool = True) -> JobStore:
    """The job store under DATA_DIR/jobs, with this process's monitor running."""
    return job_store(settings.data_path / "jobs", max_running=_max_running(settings), monitor=monitor,
                     slot_devices=_gpus() > 1, kill_after_s=settings.finetune.kill_after_s)


def _model_name(settings: Settings, model: str | None) -> str:
    """The model a call names: a configured name only (paths and hub ids come from the config, never from a
    call), else the configured default."""
    if model is not None:
        return models.configured_model(model, "causal_lm", settings) or model
    return settings.finetune.default_model or settings.models.causal_lm


def _training_model(name: str, settings: Settings) -> dict[str, Any]:
    """Where the trainer reads the weights: a folder (a GGUF is dequantized once into the model cache)."""
    source = models.resolve(name, "causal_lm")
    if source.kind == "adapter":
        raise InvalidInput(f"'{name}' is a LoRA adapter: train from its base model, or export a merged model first")
    if source.kind == "gguf":
        target = models.gguf_cache_dir(source.path, settings)
        if not (target / "config.json").is_file():
            models.causal_lm(name, settings)  # dequantizes and saves the folder once (~25 s)
        if not (target / "config.json").is_file():
            raise ConfigError(f"could not prepare a trainable copy of the GGUF {source.location} in {target}")
        return {"name": name, "location": str(target), "kind": "gguf", "gguf": source.location}
    if source.kind == "hub":
        model_shape(name, settings)  # fails clearly when the id is not in the local cache
    return {"name": name, "location": source.location, "kind": source.kind}


def _path(settings: Settings, path: str, *, must_exist: bool = True) -> Path:
    return resolve_under_roots(path, settings.root_paths(), must_exist=must_exist)


def _record_config(record: JobRecord) -> dict[str, Any]:
    return record.config if record.kind == KIND else {}


# ---------------------------------------------------------------- methods / recommend / estimate


def list_methods(settings: Settings) -> MethodsResult:
    import torch

    device = _device(settings)
    return MethodsResult(
        device=device, gpus=_gpus(), bf16=device == "cuda" and torch.cuda.is_bf16_supported(),
        max_running_jobs=_max_running(settings), methods=method_infos(),
        adapters={
            "lora": "low-rank adapters on the chosen projections; the base stays frozen (default)",
            "qlora": "LoRA over a 4-bit NF4 base (bitsandbytes; runs on CPU too, slowly)",
            "full": "every weight trains (fp32 master weights; bf16 autocast on GPUs that have it)",
            "freeze": "only the top `freeze_trainable_layers` decoder layers train",
        },
        presets=list(PRESETS.values()), lora_defaults=lora_defaults(),
        rank_guidance={task: f"{lo}–{hi}" for task, (lo, hi) in RANK_GUIDANCE.items()},
        rank_ceiling="r ≤ 32 under 7B parameters, ≤ 64 for 7–70B, ≤ 128 above",
        rules=[
            "SFT trains on assistant turns / completions only (completion_only)",
            "epochs: 5 under 10k samples, 2 above",
            "mix 30–50% general data into domain data against forgetting (prepare_data mix_files)",
            "GRPO/RLOO need a reward spec; batch_size × grad_accum must be a multiple of num_generations",
        ],
    )


def recommend_config(
    settings: Settings,
    task: Annotated[Literal["classification", "instruction", "chat", "code", "math", "domain", "tool_calling"],
                    Field(description="what the model should learn")],
    samples: Annotated[int, Field(description="number of training rows", ge=1)],
    model: Annotated[str | None, Field(description="configured model name (smollm2, or a key of models.named); "
                                                   "default: the configured model")] = None,
    memory_gib: Annotated[float | None, Field(description="memory budget in GiB (GPU memory, or RAM on CPU)", gt=0)] = None,
) -> Recommendation:
    """A complete SFT config for the task, model, data size and memory budget, with the rule behind each number."""
    name = _model_name(settings, model)
    return recommend(model_shape(name, settings), task=task, samples=samples, memory_gib=memory_gib,
                     device=_device(settings), default_max_length=settings.finetune.max_length)


def estimate_memory(
    settings: Settings,
    model: ModelName = None,
    method: Annotated[Literal["lora", "qlora", "full", "freeze", "inference"],
                      Field(description="what is trained (or inference)")] = "lora",
    precision: Annotated[Literal["auto", "bf16", "fp16", "fp32"], Field(description="auto = bf16 on GPU, fp32 on CPU")] = "auto",
    seq_len: Annotated[int | None, Field(description="tokens per sequence (default: finetune.max_length)", ge=1)] = None,
    batch: Annotated[int, Field(description="per-device batch size", ge=1)] = 1,
    grad_ckpt: Annotated[bool, Field(description="gradient checkpointing")] = False,
    lora_r: Annotated[int, Field(description="LoRA rank", ge=1)] = 8,
    target_modules: Annotated[list[str] | None, Field(description="LoRA targets, e.g. ['q_proj','v_proj']")] = None,
    optimizer: Annotated[Literal["adamw", "adamw_8bit", "sgd"], Field(description="optimizer")] = "adamw",
    budget_gib: Annotated[float | None, Field(description="answer whether it fits in this many GiB", gt=0)] = None,
    new_tokens: Annotated[int | None, Field(description="inference: tokens generated (KV cache)", ge=0)] = None,
    device: Annotated[Literal["cpu", "cuda"] | None, Field(description="default: this machine's")] = None,
) -> MemoryEstimate:
    """Peak training (or inference) memory per component, from the model's config.json (no weights loaded)."""
    name = _model_name(settings, model)
    where = device or ("cuda" if _device(settings) == "cuda" else "cpu")
    if where not in ("cpu", "cuda"):
        raise InvalidInput("device must be cpu or cuda")
    return estimate(
        model_shape(name, settings), method=method, precision=precision, optimizer=optimizer,
        seq_len=seq_len or settings.finetune.max_length, batch=batch, grad_ckpt=grad_ckpt, lora_r=lora_r,
        target_modules=target_modules, device=where, budget_gib=budget_gib, inference_new_tokens=new_tokens,
    )


# ---------------------------------------------------------------- data


def prepare_data(
    settings: Settings,
    out: Annotated[str, Field(description="folder to write (train.jsonl, eval.jsonl, manifest.json), under the allowed roots")],
    files: Annotated[list[str], Field(description="input files under the allowed roots")] = [],  # noqa: B006 - never mutated
    format: Annotated[Literal["messages", "prompt_completion", "preference", "kto", "prompt_only", "text"] | None,  # noqa: A002 - the tool's argument name
                      Field(description="expected format (default: detected)")] = None,
    dedup: Annotated[bool, Field(description="drop exact duplicates (md5 of normalized text)")] = True,
    near_dup: Annotated[float | None, Field(description="drop near-duplicates above this MinHash Jaccard (e.g. 0.85)",
                                            gt=0, le=1)] = None,
    ppl_filter: Annotated[bool, Field(description="drop both perplexity tails under the reference model")] = False,
    pii: Annotated[Literal["drop", "redact", "keep"], Field(description="rows with emails, phones, API keys")] = "drop",
    min_chars: Annotated[int, Field(description="drop rows shorter than this", ge=0)] = 1,
    max_chars: Annotated[int | None, Field(description="drop rows longer than this", ge=1)] = None,
    select: Annotated[int | None, Field(description="keep this many diverse rows (k-center over embeddings)", ge=1)] = None,
    eval_fraction: Annotated[float | None, Field(description="held-out share (default from config)", ge=0, lt=0.9)] = None,
    split_by: Annotated[str | None, Field(description="time field: the latest rows become eval (default: random)")] = None,
    eval_files: Annotated[list[str] | None, Field(description="an existing eval split (leaks into train are removed)")] = None,
    mix_files: Annotated[list[str] | None, Field(description="general data mixed into train against forgetting")] = None,
    mix_fraction: Annotated[float | None, Field(description="share of train drawn from mix_files (0.3–0.5)", gt=0, lt=1)] = None,
    transcripts: Annotated[bool, Field(description="inputs are host transcripts (default: DATA_DIR/transcripts/*.jsonl)")] = False,
    model: Annotated[str | None, Field(description="model whose tokenizer and chat template are checked")] = None,
    check_template: Annotated[bool, Field(description="check masking and end-of-turn with the model's template")] = True,
    seed: Annotated[int, Field(description="random seed (split, mixing, selection)")] = 42,
) -> PrepareResult:
    """Validate, clean, split and describe training data; writes DIR/train.jsonl, eval.jsonl, manifest.json."""
    from servers.finetune.data_prep import prepare

    fin = settings.finetune
    if transcripts and not files:
        folder = settings.data_path / "transcripts"
        paths = [_path(settings, str(p)) for p in sorted(folder.glob("*.jsonl"))]  # a link may lead outside the roots
        if not paths:
            raise NotFound(f"no host transcripts in {folder}: run `quiver ask` / `quiver chat` first")
    else:
        if not files:
            raise InvalidInput("give at least one input file (JSONL, JSON, CSV or Parquet), or transcripts=true")
        paths = [_path(settings, f) for f in files]
    for p in paths:
        if p.is_dir():
            raise InvalidInput(f"{p} is a folder: list the data files themselves")
    target = _path(settings, out, must_exist=False)
    if target.exists() and not target.is_dir():
        raise InvalidInput(f"out {target} is a file: give a folder for the prepared dataset")
    options = PrepareOptions(
        format=format, dedup=dedup, near_dup=near_dup, pii=pii, min_chars=min_chars, max_chars=max_chars,
        ppl_filter=ppl_filter, ppl_low_percentile=fin.ppl_low_percentile, ppl_high_percentile=fin.ppl_high_percentile,
        select=select, eval_fraction=fin.eval_fraction if eval_fraction is None else eval_fraction,
        split_by=split_by, seed=seed, mix_fraction=mix_fraction, max_rows=fin.max_prepare_rows,
    )
    if not 0 <= options.eval_fraction < 0.9:
        raise InvalidInput("eval_fraction must be in [0, 0.9)")
    tokenizer = reference = embed = checker = None
    if check_template or ppl_filter:
        loaded = models.causal_lm(_model_name(settings, model), settings)
        tokenizer = loaded.tokenizer
        if ppl_filter:
            reference = (loaded.model, loaded.tokenizer)
        if check_template:
            from servers.finetune.chat_format import check_masking

            def checker(rows: list[dict[str, Any]]) -> Any:
                return check_masking(loaded.tokenizer, rows)
    if select is not None:
        if select < 1:
            raise InvalidInput("select must be at least 1")

        def embed(texts: list[str]) -> Any:
            return models.embedder(None, settings).encode(
                texts, batch_size=settings.models.batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return prepare(
        paths, target, options, eval_paths=[_path(settings, f) for f in eval_files or []] or None,
        mix_paths=[_path(settings, f) for f in mix_files or []] or None, transcripts=transcripts,
        tokenizer=tokenizer, reference=reference, embed=embed, template_checker=checker,
    )


def _data_files(settings: Settings, data: str, eval_data: str | None, method: str) -> dict[str, Any]:
    """Resolve `data` (a prepared folder or one file) and check every row against the method's format."""
    path = _path(settings, data)
    manifest = None
    if path.is_dir():  # the files inside are checked too: a prepared folder under a root may hold links out of it
        if not (path / "train.jsonl").is_file():
            raise InvalidInput(f"{path} is not a prepared dataset (no train.jsonl): run prepare_data, or pass a file")
        _path(settings, str(path / MANIFEST), must_exist=False)
        manifest = read_manifest(path)
        train = _path(settings, str(path / "train.jsonl"))
        evals = _path(settings, str(path / "eval.jsonl"), must_exist=False)
        eval_path = _path(settings, eval_data) if eval_data else (evals if evals.is_file() and evals.stat().st_size else None)
    else:
        train, eval_path = path, (_path(settings, eval_data) if eval_data else None)
    out: dict[str, Any] = {"source": str(path), "prepared": manifest is not None}
    fmt = None
    for split, file in (("train", train), ("eval", eval_path)):
        if file is None:
            continue
        rows, errors = data_formats.read_rows(file, settings.finetune.max_prepare_rows)
        if errors:
            line, msg = errors[0]
            raise InvalidInput(f"{file.name}:{line}: {msg} ({len(errors)} bad line(s)); fix them or run prepare_data")
        if not rows:
            raise InvalidInput(f"{file} has no rows")
        detected = data_formats.detect_format(rows[0][1]) if isinstance(rows[0][1], dict) else None
        if detected is None:
            raise InvalidInput(f"{file.name}:{rows[0][0]}: no known fields; run prepare_data to see the expected formats")
        data_formats.check_method_format(method, detected)
        for line, row in rows:
            try:
                data_formats.validate_row(row, detected)
            except ValueError as exc:
                raise InvalidInput(f"{file.name}:{line}: {exc}; fix the row or run prepare_data to drop bad rows") from exc
        fmt = fmt or detected
        out[split] = str(file)
        out[f"{split}_rows"] = len(rows)
    out["format"] = fmt
    out["hash"] = manifest["content_hash"] if manifest else None
    return out


def _snapshot(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Copy the data into the job folder as JSONL (the job trains on exactly this), with its content hash."""
    target = folder / "data"
    target.mkdir(parents=True, exist_ok=True)
    snap = dict(data)
    for split in ("train", "eval"):
        if not data.get(split):
            continue
        src = Path(data[split])
        dst = target / f"{split}.jsonl"
        if src.suffix == ".jsonl":
            shutil.copyfile(src, dst)
        else:
            rows, _ = data_formats.read_rows(src, 10**9)
            dst.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for _, r in rows), encoding="utf-8")
        snap[split] = str(dst)
    snap["hash"] = data.get("hash") or content_hash(target)
    snap["snapshot_hash"] = content_hash(target)
    return snap


# ---------------------------------------------------------------- jobs


def _launcher(device: str, adapter: str, folder: Path) -> list[str]:
    """One process per job; several GPUs and full fine-tuning: `accelerate launch` (DeepSpeed ZeRO-3 when present)."""
    gpus = _gpus()
    if device != "cuda" or gpus < 2 or adapter != "full":
        return [sys.executable]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(gpus), "--multi_gpu"]
    import importlib.util

    if importlib.util.find_spec("deepspeed") is not None:
        ds = {"zero_optimization": {"stage": 3, "overlap_comm": True, "stage3_gather_16bit_weights_on_model_save": True},
              "bf16": {"enabled": "auto"}, "train_micro_batch_size_per_gpu": "auto",
              "gradient_accumulation_steps": "auto", "train_batch_size": "auto"}
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "deepspeed.json").write_text(json.dumps(ds, indent=1))
        launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(gpus),
                    "--use_deepspeed", "--deepspeed_config_file", str(folder / "deepspeed.json")]
    return launcher



def _job_exists(jobs: JobStore, job_id: str) -> bool:
    try:
        jobs.get(job_id, refresh=False)
    except NotFound:
        return False
    return True

def start_job(
    settings: Settings,
    data: Annotated[str, Field(description="a prepared dataset folder or a data file under the roots")],
    method: Annotated[Literal["sft", "pretrain", "dpo", "kto", "grpo", "rloo", "reward"],
                      Field(description="training method")] = "sft",
    adapter: Annotated[Literal["lora", "qlora", "full", "freeze"], Field(description="what trains")] = "lora",
    model: ModelName = None,
    eval_data: Annotated[str | None, Field(description="eval file (default: the prepared folder's eval.jsonl)")] = None,
    preset: Annotated[Literal["instruction", "code", "chat"] | None,
                      Field(description="numbers from a preset (see list_methods)")] = None,
    options: Annotated[dict[str, Any] | None, Field(description="overrides, e.g. {lora_r: 16, learning_rate: 2e-4, "
                                                                "batch_size: 2, max_length: 512}")] = None,
    max_steps: Annotated[int | None, Field(description="stop after this many optimizer steps", ge=1)] = None,
    epochs: Annotated[float | None, Field(description="epochs (when max_steps is not set)", gt=0)] = None,
    seed: Annotated[int | None, Field(description="random seed")] = None,
    reward: Annotated[list[dict[str, Any]] | None, Field(description="GRPO/RLOO reward rules with weights")] = None,
    dry_run: Annotated[bool, Field(description="validate and show what would run, without training")] = False,
    job_id: Annotated[str | None, Field(description="choose the job id (letters, digits, . _ -)")] = None,
    label: Annotated[str, Field(description="a note shown in list_jobs")] = "",
) -> StartResult:
    """Validate and launch a training job (or, with dry_run, return what would run)."""
    method = check_method(method)
    fin = settings.finetune
    overrides = dict(options or {})
    for key, value in (("max_steps", max_steps), ("epochs", epochs), ("seed", seed)):
        if value is not None:
            overrides[key] = value
    base = {"max_length": fin.max_length, "logging_steps": fin.logging_steps, "save_steps": fin.save_steps,
            "save_total_limit": fin.save_total_limit}
    if adapter not in ("lora", "qlora", "full", "freeze"):
        raise InvalidInput(f"unknown adapter '{adapter}': choose lora, qlora, full or freeze")
    config, sources = resolve_config(method, adapter, preset, overrides, base)
    if adapter == "qlora":
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError("qlora needs bitsandbytes: `pip install bitsandbytes` (it runs on CPU too)")
    name = _model_name(settings, model)
    device = _device(settings)
    if device == "mps":
        device = "cpu"  # TRL on MPS is not supported here; train on the CPU
    shape = model_shape(name, settings)
    if adapter in ("lora", "qlora"):
        missing = [t for t in config.target_modules if t not in shape.linear_shapes]
        if missing:
            raise InvalidInput(f"target module(s) {', '.join(missing)} are not in {name}; it has "
                               f"{', '.join(shape.linear_shapes)} (e.g. {', '.join(ALL_PROJECTIONS[:2])})")
    data_info = _data_files(settings, data, eval_data, method)
    if method in ("grpo", "rloo"):
        from servers.finetune.rewards import build_rewards

        build_rewards(reward)
    warnings: list[str] = []
    if adapter == "qlora" and device == "cpu":
        warnings.append("QLoRA on the CPU works (bitsandbytes) but is slow; LoRA is faster here")
    jobs = store(settings)
    if job_id and _job_exists(jobs, job_id):
        raise InvalidInput(f"a job '{job_id}' already exists: choose another job_id or omit it")
    the_id = job_id or f"ft-{time.strftime('%Y%m%d-%H%M%S')}-{hashlib.sha1(str(time.time_ns()).encode()).hexdigest()[:6]}"
    folder = jobs.root / the_id
    est = estimate(shape, method=adapter, precision=config.precision, seq_len=config.max_length,
                   batch=config.batch_size, grad_ckpt=config.gradient_checkpointing, lora_r=config.lora_r,
                   target_modules=config.target_modules if adapter in ("lora", "qlora") else None,
                   lora_dropout=config.lora_dropout, freeze_layers=config.freeze_trainable_layers,
                   device="cuda" if device == "cuda" else "cpu", with_remedies=False,
                   optimizer="adamw_8bit" if "8bit" in config.optimizer else "sgd" if config.optimizer == "sgd" else "adamw")
    launcher = [sys.executable] if dry_run else _launcher(device, adapter, folder)
    command = [*launcher, "-m", ENTRY, str(folder)]
    memory = {"total_gib": est.total_gib, **est.components}
    if dry_run:
        return StartResult(job_id=the_id, state="dry_run", dry_run=True, method=method, adapter=adapter, model=name,
                           model_location=models.resolve(name, "causal_lm").location, device=device,
                           config=config.model_dump(), config_sources=sources, data=data_info, command=command,
                           memory=memory, warnings=warnings)
    model_info = _training_model(name, settings)
    snap = _snapshot(data_info, folder)
    job_config = {
        "train": config.model_dump(), "model": model_info, "data": snap, "device": device,
        "output_dir": str(folder), "reward": reward, "estimate_gib": est.total_gib,
    }
    label = label or f"{method}/{adapter} {name} on {Path(data).name}"
    record = jobs.submit(KIND, ENTRY, job_config, job_id=the_id, label=label, launcher=launcher)
    return StartResult(job_id=record.job_id, state=record.state, dry_run=False, method=method, adapter=adapter,
                       model=name, model_location=model_info["location"], device=device, config=config.model_dump(),
                       config_sources=sources, data=snap, command=record.command, memory=memory, warnings=warnings)


def _checkpoints(folder: Path) -> list[int]:
    out = []
    for item in (folder / "checkpoints").glob("checkpoint-*"):
        suffix = item.name.rsplit("-", 1)[-1]
        if suffix.isdigit() and item.is_dir():
            out.append(int(suffix))
    return sorted(out)


def _plots(record: JobRecord, history: list[dict[str, Any]]) -> list[str]:
    folder = record.path / "plots"
    metrics = record.path / "metrics.jsonl"
    if not history or not metrics.is_file():
        return []
    existing = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if existing and min(p.stat().st_mtime for p in existing) >= metrics.stat().st_mtime:
        return [str(p) for p in existing]
    return [str(p) for p in plots.render(history, _record_config(record).get("train", {}).get("method", "sft"), folder)]


def _status(jobs: JobStore, record: JobRecord, metrics_limit: int = 20) -> JobStatus:
    cfg = _record_config(record)
    train = cfg.get("train", {})
    history = jobs.metrics(record.job_id)
    progress = jobs.progress(record.job_id) or {}
    latest: dict[str, float] = {}
    for rec in history:
        if rec.get("summary"):
            continue
        for key, value in rec.items():
            if key not in ("time", "step", "epoch") and isinstance(value, int | float):
                latest[key] = value
    step = int(progress.get("step") or (history[-1].get("step", 0) if history else 0))
    total = progress.get("total") or (record.result or {}).get("max_steps")
    warmup = train.get("warmup_ratio", 0) * (total or 0)
    context = {"method": train.get("method"), "max_grad_norm": train.get("max_grad_norm", 1.0),
               "lr_scheduler": train.get("lr_scheduler", "linear"), "warmup_steps": warmup, "total_steps": total,
               "precision": (record.result or {}).get("precision", train.get("precision"))}
    found = diagnostics.diagnose(history, context)
    messages = [f"{d.level}: {d.message}" for d in found]
    if record.state == JobState.completed and not any(d.level == "warning" for d in found) and history:
        messages.append("info: no problems found in the curves")
    result = record.result or {}
    return JobStatus(
        job_id=record.job_id, state=record.state, method=train.get("method"), adapter=train.get("adapter"),
        model=cfg.get("model", {}).get("name"), label=record.label, step=step, total_steps=total,
        epoch=progress.get("epoch"), eta_s=progress.get("eta_s") if record.state == JobState.running else None,
        elapsed_s=progress.get("elapsed_s"), attempt=record.attempt, created_at=record.created_at,
        started_at=record.started_at, ended_at=record.ended_at, latest=latest,
        metrics=[r for r in history if not r.get("summary")][-metrics_limit:] if metrics_limit else [],
        plots=_plots(record, history), diagnostics=messages, checkpoints=_checkpoints(record.path),
        best_checkpoint=diagnostics.best_eval_step(history), output=result.get("final_dir"),
        dataset=cfg.get("data", {}).get("source"), dataset_hash=cfg.get("data", {}).get("hash"),
        error=record.error, result=result or None,
    )


def _job(jobs: JobStore, job_id: str) -> JobRecord:
    record = jobs.get(job_id)
    if record.kind != KIND:
        raise NotFound(f"job '{job_id}' is a {record.kind} job, not a fine-tuning job")
    return record


def job_status(
    settings: Settings,
    job_id: JobId,
    metrics_limit: Annotated[int, Field(description="how many recent metric records to include", ge=0, le=1000)] = 20,
) -> JobStatus:
    """State, progress, metrics, curves, diagnostics and checkpoints of a fine-tuning job."""
    jobs = store(settings)
    return _status(jobs, _job(jobs, job_id), metrics_limit)


def wait_job(
    settings: Settings,
    job_id: JobId,
    timeout_s: Annotated[float | None, Field(description="seconds to wait at most", gt=0)] = None,
    *,
    progress: ProgressFn | None = None,
) -> JobStatus:
    """Block until the job ends or the timeout (default finetune.wait_timeout_s) passes; reports progress."""
    jobs = store(settings)
    _job(jobs, job_id)
    limit = settings.finetune.wait_timeout_s if timeout_s is None else min(timeout_s, settings.finetune.wait_timeout_s)

    def on_progress(_record: JobRecord, info: dict[str, Any] | None) -> None:
        if progress and info:
            progress(int(info.get("step") or 0), info.get("total"), str(info.get("message") or ""))

    record = jobs.wait(job_id, timeout_s=limit, on_progress=on_progress, poll_s=0.5)
    status = _status(jobs, record)
    status.timed_out = not record.terminal
    return status


def list_jobs(
    settings: Settings,
    state: Annotated[Literal["queued", "running", "completed", "failed", "cancelled", "orphaned"] | None,
                     Field(description="only jobs in this state")] = None,
    limit: Annotated[int, Field(description="most jobs to list", ge=1, le=1000)] = 50,
) -> JobList:
    """Fine-tuning jobs, newest first, with the running/queued counts of every kind."""
    jobs = store(settings)
    states = None
    if state:
        try:
            states = [JobState(state)]
        except ValueError as exc:
            raise InvalidInput(f"unknown state '{state}': use one of {', '.join(s.value for s in JobState)}") from exc
    records = jobs.list(kind=KIND, states=states, limit=limit)
    summaries = []
    for r in records:
        progress = jobs.progress(r.job_id) or {}
        train = r.config.get("train", {})
        summaries.append(JobSummary(
            job_id=r.job_id, state=r.state, method=train.get("method"), adapter=train.get("adapter"),
            model=r.config.get("model", {}).get("name"), label=r.label, step=progress.get("step"),
            total_steps=progress.get("total"), created_at=r.created_at, ended_at=r.ended_at))
    every = jobs.list(kind=None, states=[JobState.running, JobState.queued], limit=1000)
    return JobList(jobs=summaries, running=sum(1 for r in every if r.state == JobState.running),
                   queued=sum(1 for r in every if r.state == JobState.queued), max_running_jobs=jobs.max_running)


def job_logs(
    settings: Settings,
    job_id: JobId,
    lines: Annotated[int, Field(description="how many trailing lines", ge=1, le=5000)] = 60,
) -> JobLogs:
    """The last ``lines`` lines of the job's trainer output."""
    if lines < 1 or lines > 5000:
        raise InvalidInput("lines must be between 1 and 5000")
    jobs = store(settings)
    record = _job(jobs, job_id)
    text = jobs.log_tail(job_id, lines)
    return JobLogs(job_id=job_id, state=record.state, lines=len(text.splitlines()), text=text)


def cancel_job(settings: Settings, job_id: JobId) -> JobStatus:
    """Stop a job: queued → cancelled at once; running → SIGTERM, a checkpoint is saved, then cancelled."""
    jobs = store(settings)
    _job(jobs, job_id)
    return _status(jobs, jobs.cancel(job_id))


def resume_job(settings: Settings, job_id: JobId) -> JobStatus:
    """Run a cancelled, failed or orphaned job again from its last checkpoint (optimizer, scheduler, RNG,
    step and data position restored: the next logged step is N + 1)."""
    jobs = store(settings)
    record = _job(jobs, job_id)
    config = dict(record.config)
    config["resume"] = True
    return _status(jobs, jobs.requeue(job_id, config))


def export_model(
    settings: Settings,
    job_id: JobId,
    merge: Annotated[bool, Field(description="merge the adapter into the base weights")] = False,
    out: Annotated[str | None, Field(description="empty or new folder under the roots (default: JOB/export/KIND)")] = None,
    checkpoint: Annotated[int | None, Field(description="export this checkpoint step instead of the final model", ge=1)] = None,
    verify: Annotated[bool, Field(description="reload, generate and compare perplexity with the base")] = True,
) -> ExportResult:
    """Write the job's adapter (or merged model) to a folder and verify it loads and generates."""
    from servers.finetune.export import export

    jobs = store(settings)
    record = _job(jobs, job_id)
    if checkpoint is not None:
        source = record.path / "checkpoints" / f"checkpoint-{checkpoint}"
        if not source.is_dir():
            raise NotFound(f"job '{job_id}' has no checkpoint at step {checkpoint}; it has "
                           f"{', '.join(map(str, _checkpoints(record.path))) or 'none'}")
    else:
        if record.state != JobState.completed:
            raise InvalidInput(f"job '{job_id}' is {record.state}: export a completed job, or name a `checkpoint` "
                               f"({', '.join(map(str, _checkpoints(record.path))) or 'none saved'})")
        source = Path((record.result or {}).get("final_dir") or record.path / "final")
    kind = "merged" if merge else "adapter"
    target = _path(settings, out, must_exist=False) if out else record.path / "export" / (
        f"{kind}-{checkpoint}" if checkpoint is not None else kind)
    eval_file = record.config.get("data", {}).get("eval")
    rows = [r for _, r in data_formats.read_rows(Path(eval_file), 16)[0]] if eval_file and Path(eval_file).is_file() else []
    if not rows:
        train_file = record.config.get("data", {}).get("train")
        rows = [r for _, r in data_formats.read_rows(Path(train_file), 4)[0]] if train_file else []
    return export(job_id, record.config, source, target, merge=merge, verify=verify, eval_rows=rows)


def train_config_fields() -> dict[str, str]:
    """Option names start_job accepts in `options`, with their descriptions (CLI help)."""
    return {k: (f.description or "") for k, f in TrainConfig.model_fields.items()}
