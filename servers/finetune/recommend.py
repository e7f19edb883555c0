"""A full training config from task, model, data size and memory budget, with the rule behind each number."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from servers.core.errors import InvalidInput
from servers.finetune.memory import MemoryEstimate, ModelShape, estimate
from servers.finetune.presets import ALL_PROJECTIONS, PRESETS, TrainConfig

Task = Literal["classification", "instruction", "chat", "code", "math", "domain", "tool_calling"]

RANK_GUIDANCE: dict[str, tuple[int, int]] = {
    "classification": (1, 4), "instruction": (8, 16), "chat": (8, 16), "tool_calling": (8, 16),
    "code": (16, 32), "math": (32, 64), "domain": (8, 32),
}
TASK_PRESET = {"instruction": "instruction", "tool_calling": "instruction", "code": "code", "chat": "chat"}


class Rule(BaseModel):
    key: str
    value: Any
    rule: str


class Recommendation(BaseModel):
    task: str
    model: str
    parameters: int
    samples: int
    method: str
    preset: str | None
    config: TrainConfig
    rules: list[Rule] = Field(description="why each number is what it is")
    memory: MemoryEstimate
    mix_general_fraction: float | None = Field(
        default=None, description="share of general data to mix in against forgetting (prepare's mix option)"
    )
    notes: list[str] = Field(default_factory=list)


def rank_ceiling(parameters: int) -> int:
    """r ≤ 32 under 7B, 64 for 7–70B, 128 above."""
    if parameters < 7e9:
        return 32
    if parameters <= 70e9:
        return 64
    return 128


def recommend(
    shape: ModelShape,
    *,
    task: str,
    samples: int,
    memory_gib: float | None,
    device: str,
    default_max_length: int = 1024,
) -> Recommendation:
    if task not in RANK_GUIDANCE:
        raise InvalidInput(f"unknown task '{task}': choose one of {', '.join(RANK_GUIDANCE)}")
    if samples < 1:
        raise InvalidInput("samples must be at least 1 (the number of training rows you have)")
    rules: list[Rule] = []
    notes: list[str] = []
    preset = TASK_PRESET.get(task)
    values: dict[str, Any] = dict(PRESETS[preset].values) if preset else {}
    low, high = RANK_GUIDANCE[task]
    ceiling = rank_ceiling(shape.parameters)
    rank = high if samples >= 10_000 else low if task == "classification" else max(low, min(high, 16))
    rank = min(rank, ceiling)
    rules.append(Rule(key="lora_r", value=rank, rule=(
        f"{task}: rank {low}–{high} ({'upper end with ≥10k samples' if samples >= 10_000 else 'lower/middle with fewer samples'}); "
        f"ceiling r ≤ {ceiling} for a {shape.parameters / 1e9:.2g}B model (≤32 under 7B, 64 for 7–70B, 128 above)")))
    values["lora_r"] = rank
    values["lora_alpha"] = 2 * rank
    rules.append(Rule(key="lora_alpha", value=2 * rank, rule="alpha = 2 × r (scale 2), the usual LoRA setting"))
    if "target_modules" not in values:
        values["target_modules"] = ALL_PROJECTIONS if task in ("math", "domain") else ["q_proj", "v_proj"]
    present = [t for t in values["target_modules"] if t in shape.linear_shapes]
    values["target_modules"] = present or list(shape.linear_shapes)[:2]
    rules.append(Rule(key="target_modules", value=values["target_modules"], rule=(
        "all seven projections for instruction/math/domain (capacity); attention-only for code (preset) and "
        "chat/classification (light touch)")))
    epochs = 5 if samples < 10_000 else 2
    values["epochs"] = epochs
    rules.append(Rule(key="epochs", value=epochs, rule="SFT: 5 epochs under 10k samples, 2 above"))
    values.setdefault("learning_rate", 1e-4)
    rules.append(Rule(key="learning_rate", value=values["learning_rate"], rule=(
        f"preset '{preset}'" if preset and "learning_rate" in PRESETS[preset].values else "LoRA default 1e-4")))
    max_length = int(values.get("max_length", default_max_length))
    values["max_length"] = max_length
    rules.append(Rule(key="max_length", value=max_length, rule=(
        "code preset: 4096 for whole files" if preset == "code" else "the configured finetune.max_length")))
    values.setdefault("batch_size", 4)
    values.setdefault("grad_accum", 4 if preset == "instruction" else 1)
    effective = values["batch_size"] * values["grad_accum"]
    values["completion_only"] = True
    rules.append(Rule(key="completion_only", value=True, rule="SFT: loss on assistant turns / completions only"))

    adapter = "lora"
    est = _fit(shape, "lora", values, device)
    if memory_gib is not None:
        while not est.total_gib <= memory_gib and values["batch_size"] > 1:
            values["batch_size"] //= 2
            values["grad_accum"] = max(1, effective // values["batch_size"])
            est = _fit(shape, "lora", values, device)
        if est.total_gib > memory_gib and not values.get("gradient_checkpointing"):
            values["gradient_checkpointing"] = True
            est = _fit(shape, "lora", values, device)
        if est.total_gib > memory_gib:
            q = _fit(shape, "qlora", values, device)
            adapter, est = "qlora", q
        if est.total_gib > memory_gib:
            notes.append(f"even QLoRA with batch 1 and checkpointing needs {est.total_gib} GiB > {memory_gib} GiB: "
                         "shorten max_length or use a smaller model")
    rules.append(Rule(key="batch_size", value=values["batch_size"], rule=(
        f"largest per-device batch that fits{f' in {memory_gib} GiB' if memory_gib else ''}; "
        f"grad_accum {values['grad_accum']} keeps the effective batch at {values['batch_size'] * values['grad_accum']}")))
    rules.append(Rule(key="adapter", value=adapter, rule=(
        "LoRA fits the budget" if adapter == "lora" else "LoRA does not fit: QLoRA stores the base in 4-bit NF4")))
    mix = 0.3 if task in ("domain", "code", "math") else None
    if mix:
        notes.append("to limit forgetting, mix 30–50% general instruction data into the training set "
                     "(prepare_data's mix_files / mix_fraction)")
    config = TrainConfig.model_validate({**values, "method": "sft", "adapter": adapter})
    return Recommendation(
        task=task, model=shape.name, parameters=shape.parameters, samples=samples, method="sft",
        preset=preset, config=config, rules=rules, memory=est, mix_general_fraction=mix, notes=notes,
    )


def _fit(shape: ModelShape, adapter: str, values: dict[str, Any], device: str) -> MemoryEstimate:
    return estimate(
        shape, method=adapter, seq_len=int(values["max_length"]), batch=int(values["batch_size"]),
        grad_ckpt=bool(values.get("gradient_checkpointing", False)), lora_r=int(values["lora_r"]),
        target_modules=list(values["target_modules"]), device=device, with_remedies=False,
        lora_dropout=float(values.get("lora_dropout", 0.1)),
    )
