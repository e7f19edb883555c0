"""Results of the finetune tools (the ones not defined next to their library module)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from servers.finetune.presets import MethodInfo, Preset


class MethodsResult(BaseModel):
    device: str = Field(description="where jobs train here: cuda, mps or cpu")
    gpus: int
    bf16: bool = Field(description="whether this device trains in bf16")
    max_running_jobs: int
    methods: list[MethodInfo]
    adapters: dict[str, str]
    presets: list[Preset]
    lora_defaults: dict[str, Any]
    rank_guidance: dict[str, str]
    rank_ceiling: str
    rules: list[str]


class StartResult(BaseModel):
    job_id: str
    state: str
    dry_run: bool
    method: str
    adapter: str
    model: str
    model_location: str
    device: str
    config: dict[str, Any] = Field(description="the resolved training config")
    config_sources: dict[str, str] = Field(description="which layer set each option: default, settings, preset, override")
    data: dict[str, Any] = Field(description="train/eval files, format, rows, content hash")
    command: list[str] = Field(description="the launch command of the training process")
    memory: dict[str, Any] | None = Field(default=None, description="estimated peak memory (GiB) by component")
    warnings: list[str] = Field(default_factory=list)


class JobStatus(BaseModel):
    job_id: str
    state: str
    method: str | None = None
    adapter: str | None = None
    model: str | None = None
    label: str = ""
    step: int = 0
    total_steps: int | None = None
    epoch: float | None = None
    eta_s: float | None = None
    elapsed_s: float | None = None
    attempt: int = 0
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    latest: dict[str, float] = Field(default_factory=dict, description="the latest value of every logged metric")
    metrics: list[dict[str, Any]] = Field(default_factory=list, description="the last logged records, oldest first")
    plots: list[str] = Field(default_factory=list, description="PNG curves (loss, lr, grad norm; reward/KL for GRPO; rewards for DPO)")
    diagnostics: list[str] = Field(default_factory=list, description="what the curves say, in words")
    checkpoints: list[int] = Field(default_factory=list, description="steps with a saved checkpoint")
    best_checkpoint: int | None = Field(default=None, description="step with the lowest eval loss")
    output: str | None = Field(default=None, description="folder of the final adapter/model once completed")
    dataset: str | None = None
    dataset_hash: str | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    timed_out: bool | None = Field(default=None, description="wait only: the job was still running at the timeout")


class JobSummary(BaseModel):
    job_id: str
    state: str
    method: str | None
    adapter: str | None
    model: str | None
    label: str
    step: int | None
    total_steps: int | None
    created_at: float
    ended_at: float | None


class JobList(BaseModel):
    jobs: list[JobSummary]
    running: int
    queued: int
    max_running_jobs: int


class JobLogs(BaseModel):
    job_id: str
    state: str
    lines: int
    text: str
