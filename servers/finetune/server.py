"""MCP façade of the finetune library: plan, launch, watch, diagnose and export fine-tuning jobs."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from servers.core.boundary import new_server, tool
from servers.core.settings import Settings
from servers.finetune import api
from servers.finetune.data_prep import PrepareResult
from servers.finetune.export import ExportResult
from servers.finetune.memory import MemoryEstimate
from servers.finetune.recommend import Recommendation
from servers.finetune.schemas import JobList, JobLogs, JobStatus, MethodsResult, StartResult

INSTRUCTIONS = (
    "Fine-tunes language models (SFT, DPO, KTO, GRPO, RLOO, reward models; LoRA, QLoRA, full or top-layer "
    "training) as background jobs that survive restarts. Typical flow: `list_methods` / `recommend_config` "
    "to plan, `estimate_memory` to check it fits, `prepare_data` to validate and clean the data, `start_job` "
    "(try dry_run first), then `wait_job` or `job_status` (curves as PNG, diagnostics in words), "
    "`cancel_job` / `resume_job`, and `export_model` to get an adapter or merged model the other servers "
    "and the host can load."
)

JobId = Annotated[str, Field(description="the job id returned by start_job (see list_jobs)", min_length=1)]
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)


def build_server(settings: Settings) -> MCPServer:
    app = new_server("finetune", title="Quiver finetune", instructions=INSTRUCTIONS,
                     description="Fine-tune language models as background jobs: plan, prepare data, train, diagnose, export")

    async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(partial(fn, settings, *args, **kwargs))

    @tool(
        app, name="list_methods",
        title="Training methods and presets",
        description=(
            "What this machine can train and how: methods (sft, pretrain, dpo, kto, grpo, rloo, reward; PPO is gone "
            "from TRL 1.16 — use grpo/rloo), adapters (lora, qlora, full, freeze), presets with their numbers "
            "(instruction, code, chat), LoRA defaults, rank guidance by task, device, GPUs and the job limit."
        ),
        annotations=READ_ONLY,
    )
    async def list_methods() -> MethodsResult:
        return await run(api.list_methods)

    @tool(
        app, name="recommend_config",
        title="Recommend a training config",
        description=(
            "A complete SFT config for a task, model, number of samples and memory budget, with the rule behind "
            "each number (rank by task and model size, epochs by data size, batch that fits, LoRA vs QLoRA) and "
            "its memory estimate. Pass the result's `config` fields as start_job options."
        ),
        annotations=READ_ONLY,
    )
    async def recommend_config(
        task: Annotated[Literal["classification", "instruction", "chat", "code", "math", "domain", "tool_calling"],
                        Field(description="what the model should learn")],
        samples: Annotated[int, Field(description="number of training rows", ge=1)],
        model: Annotated[str | None, Field(description="shipped short name (smollm2), local folder or cached hub id; default: the configured model")] = None,
        memory_gib: Annotated[float | None, Field(description="memory budget in GiB (GPU memory, or RAM on CPU)", gt=0)] = None,
    ) -> Recommendation:
        return await run(api.recommend_config, task=task, model=model, samples=samples, memory_gib=memory_gib)

    @tool(
        app, name="estimate_memory",
        title="Estimate training memory",
        description=(
            "Peak memory of training (or inference) a model, from its config.json without loading weights: "
            "weights, gradients, optimizer states, fp32 master copy, activations, logits, KV cache, each with its "
            "formula; whether it fits a budget, and remedies ranked by what they save (batch 1 + accumulation, "
            "checkpointing, bf16, shorter sequences, LoRA, QLoRA, ZeRO-3)."
        ),
        annotations=READ_ONLY,
    )
    async def estimate_memory(
        model: Annotated[str | None, Field(description="shipped short name, local folder or cached hub id; default: the configured model")] = None,
        method: Annotated[Literal["lora", "qlora", "full", "freeze", "inference"], Field(description="what is trained (or inference)")] = "lora",
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
        return await run(api.estimate_memory, model=model, method=method, precision=precision, seq_len=seq_len,
                         batch=batch, grad_ckpt=grad_ckpt, lora_r=lora_r, target_modules=target_modules,
                         optimizer=optimizer, budget_gib=budget_gib, new_tokens=new_tokens, device=device)

    @tool(
        app, name="prepare_data",
        title="Prepare training data",
        description=(
            "Validate and clean JSONL/JSON/CSV/Parquet training data (messages [+tools], prompt/completion, "
            "prompt/chosen/rejected, KTO labels, prompt-only, text) into a dataset folder: per-line errors with "
            "line numbers, exact and near-duplicate removal (MinHash; Chinese by characters), same-prompt "
            "conflicts, PII, length and perplexity filters, diversity selection, random or time split with a leak "
            "check, general-data mixing, a check that the chat template masks prompts and learns the end-of-turn "
            "token, and statistics. Host transcripts convert into tool-calling data (transcripts=true)."
        ),
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False),
    )
    async def prepare_data(
        out: Annotated[str, Field(description="folder to write (train.jsonl, eval.jsonl, manifest.json), under the allowed roots")],
        files: Annotated[list[str], Field(description="input files under the allowed roots")] = [],  # noqa: B006
        format: Annotated[Literal["messages", "prompt_completion", "preference", "kto", "prompt_only", "text"] | None,  # noqa: A002
                          Field(description="expected format (default: detected)")] = None,
        dedup: Annotated[bool, Field(description="drop exact duplicates (md5 of normalized text)")] = True,
        near_dup: Annotated[float | None, Field(description="drop near-duplicates above this MinHash Jaccard (e.g. 0.85)", gt=0, le=1)] = None,
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
        return await run(api.prepare_data, files=files, out=out, format=format, dedup=dedup, near_dup=near_dup,
                         ppl_filter=ppl_filter, pii=pii, min_chars=min_chars, max_chars=max_chars, select=select,
                         eval_fraction=eval_fraction, split_by=split_by, eval_files=eval_files, mix_files=mix_files,
                         mix_fraction=mix_fraction, transcripts=transcripts, model=model,
                         check_template=check_template, seed=seed)

    @tool(
        app, name="start_job",
        title="Start a fine-tuning job",
        description=(
            "Launch a training job in the background and return its id (poll with job_status or wait_job). "
            "Validates everything first: method/adapter/preset, options, the model, every data row against the "
            "method's format, the reward spec. dry_run=true returns the resolved config, the launch command and "
            "the memory estimate without training. GRPO/RLOO take `reward`: rules such as "
            "[{\"type\": \"format_regex\", \"pattern\": \"<answer>.*</answer>\"}, {\"type\": \"numeric_match\", "
            "\"field\": \"answer\", \"weight\": 2}] (also exact_match, json_schema, length, repetition, language, "
            "python)."
        ),
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False),
    )
    async def start_job(
        data: Annotated[str, Field(description="a prepared dataset folder or a data file under the roots")],
        method: Annotated[Literal["sft", "pretrain", "dpo", "kto", "grpo", "rloo", "reward"], Field(description="training method")] = "sft",
        adapter: Annotated[Literal["lora", "qlora", "full", "freeze"], Field(description="what trains")] = "lora",
        model: Annotated[str | None, Field(description="shipped short name, local folder or cached hub id; default: the configured model")] = None,
        eval_data: Annotated[str | None, Field(description="eval file (default: the prepared folder's eval.jsonl)")] = None,
        preset: Annotated[Literal["instruction", "code", "chat"] | None, Field(description="numbers from a preset (see list_methods)")] = None,
        options: Annotated[dict[str, Any] | None, Field(description="overrides, e.g. {lora_r: 16, learning_rate: 2e-4, batch_size: 2, max_length: 512}")] = None,
        max_steps: Annotated[int | None, Field(description="stop after this many optimizer steps", ge=1)] = None,
        epochs: Annotated[float | None, Field(description="epochs (when max_steps is not set)", gt=0)] = None,
        seed: Annotated[int | None, Field(description="random seed")] = None,
        reward: Annotated[list[dict[str, Any]] | None, Field(description="GRPO/RLOO reward rules with weights")] = None,
        dry_run: Annotated[bool, Field(description="validate and show what would run, without training")] = False,
        job_id: Annotated[str | None, Field(description="choose the job id (letters, digits, . _ -)")] = None,
        label: Annotated[str, Field(description="a note shown in list_jobs")] = "",
    ) -> StartResult:
        return await run(api.start_job, method=method, adapter=adapter, model=model, data=data, eval_data=eval_data,
                         preset=preset, options=options, max_steps=max_steps, epochs=epochs, seed=seed,
                         reward=reward, dry_run=dry_run, job_id=job_id, label=label)

    @tool(
        app, name="job_status",
        title="Job status, curves and diagnostics",
        description=(
            "A job's state, step / total, ETA, latest metrics, recent metric records, PNG curves (loss and eval "
            "loss, lr, grad norm; reward/KL/entropy for GRPO; chosen/rejected rewards and margin for DPO), "
            "diagnostics in words, checkpoints and the best one, and the last error of a failed run."
        ),
        annotations=READ_ONLY,
    )
    async def job_status(
        job_id: JobId,
        metrics_limit: Annotated[int, Field(description="how many recent metric records to include", ge=0, le=1000)] = 20,
    ) -> JobStatus:
        return await run(api.job_status, job_id=job_id, metrics_limit=metrics_limit)

    @tool(
        app, name="wait_job",
        title="Wait for a job",
        description=(
            "Block until the job ends or timeout_s passes (capped by the server), sending a progress "
            "notification at every logged step; returns the same report as job_status (timed_out tells whether "
            "it is still running)."
        ),
        annotations=READ_ONLY,
    )
    async def wait_job(
        ctx: Context,
        job_id: JobId,
        timeout_s: Annotated[float | None, Field(description="seconds to wait at most", gt=0)] = None,
    ) -> JobStatus:
        def progress(step: int, total: int | None, message: str) -> None:
            with contextlib.suppress(Exception):  # a client that went away must not break the wait
                anyio.from_thread.run(ctx.report_progress, step, total, message)

        return await run(api.wait_job, job_id=job_id, timeout_s=timeout_s, progress=progress)

    @tool(
        app, name="list_jobs",
        title="List fine-tuning jobs",
        description="Fine-tuning jobs, newest first, with state, method, model and progress; plus running/queued counts.",
        annotations=READ_ONLY,
    )
    async def list_jobs(
        state: Annotated[Literal["queued", "running", "completed", "failed", "cancelled", "orphaned"] | None,
                         Field(description="only jobs in this state")] = None,
        limit: Annotated[int, Field(description="most jobs to list", ge=1, le=1000)] = 50,
    ) -> JobList:
        return await run(api.list_jobs, state=state, limit=limit)

    @tool(
        app, name="job_logs",
        title="Job log",
        description="The last lines of a job's trainer output (stdout/stderr): tracebacks, warnings, per-step logs.",
        annotations=READ_ONLY,
    )
    async def job_logs(
        job_id: JobId,
        lines: Annotated[int, Field(description="how many trailing lines", ge=1, le=5000)] = 60,
    ) -> JobLogs:
        return await run(api.job_logs, job_id=job_id, lines=lines)

    @tool(
        app, name="cancel_job",
        title="Cancel a job",
        description=(
            "Stop a job: a queued one is cancelled at once; a running one saves a checkpoint at the end of its "
            "current step and ends 'cancelled' (resume_job continues it). A finished job is left as it is."
        ),
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False),
    )
    async def cancel_job(job_id: JobId) -> JobStatus:
        return await run(api.cancel_job, job_id=job_id)

    @tool(
        app, name="resume_job",
        title="Resume a job",
        description=(
            "Run a cancelled, failed or orphaned job again from its last checkpoint, with optimizer, scheduler, "
            "RNG, global step and data position restored (it continues at step N+1, not step 1)."
        ),
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False),
    )
    async def resume_job(job_id: JobId) -> JobStatus:
        return await run(api.resume_job, job_id=job_id)

    @tool(
        app, name="export_model",
        title="Export the trained model",
        description=(
            "Write a completed job's LoRA adapter (or, with merge=true, the merged model in safetensors) to a "
            "folder, verified by reloading it and generating, with perplexity against the base model on the "
            "eval set. Set models.causal_lm to the folder to use it in every server and the host. `checkpoint` "
            "exports an earlier step (e.g. the best one)."
        ),
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False),
    )
    async def export_model(
        job_id: JobId,
        merge: Annotated[bool, Field(description="merge the adapter into the base weights")] = False,
        out: Annotated[str | None, Field(description="empty or new folder under the roots (default: JOB/export/KIND)")] = None,
        checkpoint: Annotated[int | None, Field(description="export this checkpoint step instead of the final model", ge=1)] = None,
        verify: Annotated[bool, Field(description="reload, generate and compare perplexity with the base")] = True,
    ) -> ExportResult:
        return await run(api.export_model, job_id=job_id, merge=merge, out=out, checkpoint=checkpoint, verify=verify)

    return app
