"""MCP façade of the finetune capability: the tools are :mod:`servers.finetune.api`'s functions."""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

from servers.core.boundary import Tools, new_server
from servers.core.settings import Settings
from servers.finetune import api

INSTRUCTIONS = (
    "Fine-tunes language models (SFT, DPO, KTO, GRPO, RLOO, reward models; LoRA, QLoRA, full or top-layer "
    "training) as background jobs that survive restarts. Typical flow: `list_methods` / `recommend_config` "
    "to plan, `estimate_memory` to check it fits, `prepare_data` to validate and clean the data, `start_job` "
    "(try dry_run first), then `wait_job` or `job_status` (curves as PNG, diagnostics in words), "
    "`cancel_job` / `resume_job`, and `export_model` to get an adapter or merged model the other servers "
    "and the host can load."
)

# What each kind of tool does to the world (the MCP tool annotations).
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
DESTRUCTIVE = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False)
CREATES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False)


def build_server(settings: Settings) -> MCPServer:
    app = new_server("finetune", title="Quiver finetune", instructions=INSTRUCTIONS,
                     description="Fine-tune language models as background jobs: plan, prepare data, train, diagnose, export")
    tools = Tools(app, settings)
    tools.add(
        api.list_methods, name="list_methods", title="Training methods and presets",
        annotations=READ_ONLY,
        description=(
            "What this machine can train and how: methods (sft, pretrain, dpo, kto, grpo, rloo, reward; PPO is gone "
            "from TRL 1.16 — use grpo/rloo), adapters (lora, qlora, full, freeze), presets with their numbers "
            "(instruction, code, chat), LoRA defaults, rank guidance by task, device, GPUs and the job limit."
        ),
    )
    tools.add(
        api.recommend_config, name="recommend_config", title="Recommend a training config",
        annotations=READ_ONLY,
        description=(
            "A complete SFT config for a task, model, number of samples and memory budget, with the rule behind "
            "each number (rank by task and model size, epochs by data size, batch that fits, LoRA vs QLoRA) and "
            "its memory estimate. Pass the result's `config` fields as start_job options."
        ),
    )
    tools.add(
        api.estimate_memory, name="estimate_memory", title="Estimate training memory",
        annotations=READ_ONLY,
        description=(
            "Peak memory of training (or inference) a model, from its config.json without loading weights: "
            "weights, gradients, optimizer states, fp32 master copy, activations, logits, KV cache, each with its "
            "formula; whether it fits a budget, and remedies ranked by what they save (batch 1 + accumulation, "
            "checkpointing, bf16, shorter sequences, LoRA, QLoRA, ZeRO-3)."
        ),
    )
    tools.add(
        api.prepare_data, name="prepare_data", title="Prepare training data",
        annotations=DESTRUCTIVE,
        description=(
            "Validate and clean JSONL/JSON/CSV/Parquet training data (messages [+tools], prompt/completion, "
            "prompt/chosen/rejected, KTO labels, prompt-only, text) into a dataset folder: per-line errors with "
            "line numbers, exact and near-duplicate removal (MinHash; Chinese by characters), same-prompt "
            "conflicts, PII, length and perplexity filters, diversity selection, random or time split with a leak "
            "check, general-data mixing, a check that the chat template masks prompts and learns the end-of-turn "
            "token, and statistics. Host transcripts convert into tool-calling data (transcripts=true)."
        ),
    )
    tools.add(
        api.start_job, name="start_job", title="Start a fine-tuning job",
        annotations=CREATES,
        description=(
            "Launch a training job in the background and return its id (poll with job_status or wait_job). "
            "Validates everything first: method/adapter/preset, options, the model, every data row against the "
            "method's format, the reward spec. dry_run=true returns the resolved config, the launch command and "
            "the memory estimate without training. GRPO/RLOO take `reward`: rules such as "
            "[{\"type\": \"format_regex\", \"pattern\": \"<answer>.*</answer>\"}, {\"type\": \"numeric_match\", "
            "\"field\": \"answer\", \"weight\": 2}] (also exact_match, json_schema, length, repetition, language, "
            "python)."
        ),
    )
    tools.add(
        api.job_status, name="job_status", title="Job status, curves and diagnostics",
        annotations=READ_ONLY,
        description=(
            "A job's state, step / total, ETA, latest metrics, recent metric records, PNG curves (loss and eval "
            "loss, lr, grad norm; reward/KL/entropy for GRPO; chosen/rejected rewards and margin for DPO), "
            "diagnostics in words, checkpoints and the best one, and the last error of a failed run."
        ),
    )
    tools.add(
        api.wait_job, name="wait_job", title="Wait for a job",
        annotations=READ_ONLY,
        description=(
            "Block until the job ends or timeout_s passes (capped by the server), sending a progress "
            "notification at every logged step; returns the same report as job_status (timed_out tells whether "
            "it is still running)."
        ),
    )
    tools.add(
        api.list_jobs, name="list_jobs", title="List fine-tuning jobs",
        annotations=READ_ONLY,
        description="Fine-tuning jobs, newest first, with state, method, model and progress; plus running/queued counts.",
    )
    tools.add(
        api.job_logs, name="job_logs", title="Job log",
        annotations=READ_ONLY,
        description="The last lines of a job's trainer output (stdout/stderr): tracebacks, warnings, per-step logs.",
    )
    tools.add(
        api.cancel_job, name="cancel_job", title="Cancel a job",
        annotations=DESTRUCTIVE,
        description=(
            "Stop a job: a queued one is cancelled at once; a running one saves a checkpoint at the end of its "
            "current step and ends 'cancelled' (resume_job continues it). A finished job is left as it is."
        ),
    )
    tools.add(
        api.resume_job, name="resume_job", title="Resume a job",
        annotations=CREATES,
        description=(
            "Run a cancelled, failed or orphaned job again from its last checkpoint, with optimizer, scheduler, "
            "RNG, global step and data position restored (it continues at step N+1, not step 1)."
        ),
    )
    tools.add(
        api.export_model, name="export_model", title="Export the trained model",
        annotations=CREATES,
        description=(
            "Write a completed job's LoRA adapter (or, with merge=true, the merged model in safetensors) to a "
            "folder, verified by reloading it and generating, with perplexity against the base model on the "
            "eval set. Set models.causal_lm to the folder to use it in every server and the host. `checkpoint` "
            "exports an earlier step (e.g. the best one)."
        ),
    )
    return app
