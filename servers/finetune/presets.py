"""Training methods, adapters, presets and the resolved training configuration.

A job's configuration is built in layers, each later one winning: Quiver's defaults
(the LoRA defaults: r 8, α 16, dropout 0.1, lr 1e-4, weight decay 0.01, AdamW), the
chosen preset, then the caller's overrides. :func:`resolve_config` validates the
result and says which layer set each number.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from servers.core.errors import InvalidInput

Method = Literal["sft", "pretrain", "dpo", "kto", "grpo", "rloo", "reward"]
Adapter = Literal["lora", "qlora", "full", "freeze"]
Precision = Literal["auto", "bf16", "fp16", "fp32"]

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class MethodInfo(BaseModel):
    name: str
    description: str
    data_formats: list[str] = Field(description="dataset formats the method takes (see prepare)")
    trainer: str = Field(description="the TRL trainer that runs it")
    available: bool
    reason: str = Field(default="", description="why not, when unavailable")
    metrics: list[str] = Field(default_factory=list, description="metric keys its status reports")


METHODS: dict[str, dict[str, Any]] = {
    "sft": {
        "description": "supervised fine-tuning on conversations (`messages`, optional `tools`) or prompt/completion "
        "pairs; loss on assistant turns / completions only",
        "data_formats": ["messages", "prompt_completion"], "trainer": "SFTTrainer",
        "metrics": ["loss", "grad_norm", "learning_rate", "entropy", "num_tokens", "mean_token_accuracy", "eval_loss"],
    },
    "pretrain": {
        "description": "continued pretraining on raw `text` (loss on every token)",
        "data_formats": ["text"], "trainer": "SFTTrainer",
        "metrics": ["loss", "grad_norm", "learning_rate", "entropy", "num_tokens", "mean_token_accuracy"],
    },
    "dpo": {
        "description": "direct preference optimization on prompt/chosen/rejected; `rpo_alpha` adds an SFT term on "
        "the chosen answer",
        "data_formats": ["preference"], "trainer": "DPOTrainer",
        "metrics": ["loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"],
    },
    "kto": {
        "description": "Kahneman-Tversky optimization on prompt/completion rows with a boolean `label` (good/bad); "
        "needs no pairs",
        "data_formats": ["kto"], "trainer": "KTOTrainer",
        "metrics": ["loss", "rewards/chosen", "rewards/rejected", "kl"],
    },
    "grpo": {
        "description": "group relative policy optimization: sample several completions per prompt, score them with a "
        "reward spec (rules or a Python callable), learn from the relative scores",
        "data_formats": ["prompt_only"], "trainer": "GRPOTrainer",
        "metrics": ["loss", "reward", "reward_std", "kl", "entropy", "frac_reward_zero_std", "completions/mean_length"],
    },
    "rloo": {
        "description": "REINFORCE leave-one-out: like GRPO (prompts + a reward spec), baseline = mean of the other "
        "samples",
        "data_formats": ["prompt_only"], "trainer": "RLOOTrainer",
        "metrics": ["loss", "reward", "reward_std", "kl", "entropy"],
    },
    "reward": {
        "description": "train a reward model (sequence classifier) on chosen/rejected pairs, e.g. for RLHF",
        "data_formats": ["preference"], "trainer": "RewardTrainer",
        "metrics": ["loss", "accuracy", "margin"],
    },
}

UNAVAILABLE = {
    "ppo": "PPO is no longer in TRL 1.16 (PPOTrainer was removed upstream): use `grpo` or `rloo` with a reward spec, "
    "or `dpo`/`kto` when you have preference data",
    "orpo": "ORPO lives in trl.experimental and is not offered; use `dpo` with `rpo_alpha` for a preference + SFT mix",
}


class Preset(BaseModel):
    name: str
    description: str
    values: dict[str, Any]


PRESETS: dict[str, Preset] = {
    "instruction": Preset(
        name="instruction",
        description="instruction following: all seven projections, rank 16, moderate lr",
        values={"lora_r": 16, "lora_alpha": 32, "target_modules": ALL_PROJECTIONS, "batch_size": 4,
                "grad_accum": 4, "learning_rate": 2e-4, "epochs": 3, "warmup_ratio": 0.03},
    ),
    "code": Preset(
        name="code",
        description="code generation: attention projections, rank 32, long sequences, more epochs",
        values={"lora_r": 32, "lora_alpha": 64, "target_modules": ["q_proj", "k_proj", "v_proj"],
                "lora_dropout": 0.05, "learning_rate": 1e-4, "max_length": 4096, "epochs": 5},
    ),
    "chat": Preset(
        name="chat",
        description="chat style/persona: light adapter on q and v, larger batch, 2 epochs",
        values={"lora_r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"], "learning_rate": 3e-4,
                "batch_size": 8, "epochs": 2},
    ),
}


class TrainConfig(BaseModel):
    """Everything a training job needs besides the data files; every number has a default."""

    model_config = ConfigDict(extra="forbid")

    method: Method = "sft"
    adapter: Adapter = "lora"
    # LoRA / QLoRA
    lora_r: int = Field(default=8, description="LoRA rank")
    lora_alpha: int = Field(default=16, description="LoRA scale numerator (scale = alpha / r)")
    lora_dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    lora_top_layers: int | None = Field(
        default=None, ge=1,
        description="LoRA on the top N decoder layers only (None = all): the backward pass stops below them, "
        "so steps are faster and the adapter smaller",
    )
    qlora_double_quant: bool = True
    freeze_trainable_layers: int = Field(default=2, ge=1, description="freeze: how many top decoder layers train")
    # optimisation
    learning_rate: float = 1e-4
    weight_decay: float = Field(default=0.01, ge=0.0)
    optimizer: str = Field(default="adamw_torch", description="transformers optim name (adamw_torch, adamw_8bit, sgd, ...)")
    lr_scheduler: str = "linear"
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    max_grad_norm: float = Field(default=1.0, gt=0.0)
    batch_size: int = Field(default=4, ge=1, description="per-device batch")
    grad_accum: int = Field(default=1, ge=1)
    epochs: float = Field(default=3.0, gt=0.0)
    max_steps: int | None = Field(default=None, ge=1, description="stop after this many optimizer steps (overrides epochs)")
    max_length: int = Field(default=1024, ge=16)
    precision: Precision = "auto"
    gradient_checkpointing: bool = False
    seed: int = 42
    save_steps: int = Field(default=50, ge=1)
    save_total_limit: int = Field(default=3, ge=1)
    logging_steps: int = Field(default=1, ge=1)
    eval_steps: int | None = Field(default=None, ge=1, description="steps between evaluations (default: save_steps)")
    # SFT
    completion_only: bool = Field(default=True, description="loss on assistant turns / completions only")
    packing: bool = False
    # DPO / KTO
    beta: float | None = Field(default=None, gt=0.0, description="DPO/KTO temperature (default 0.1); GRPO KL weight (default 0.0)")
    rpo_alpha: float | None = Field(default=None, gt=0.0, description="DPO: weight of an SFT term on the chosen answer")
    # GRPO / RLOO
    num_generations: int = Field(default=4, ge=2)
    max_completion_length: int = Field(default=64, ge=1)
    temperature: float = Field(default=1.0, gt=0.0)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.lora_r <= 0:
            raise ValueError(f"lora_r must be a positive rank (got {self.lora_r}); try 8 or 16")
        if self.lora_alpha <= 0:
            raise ValueError(f"lora_alpha must be positive (got {self.lora_alpha}); 2 × lora_r is usual")
        if self.learning_rate <= 0 or self.learning_rate > 1:
            raise ValueError(f"learning_rate must be in (0, 1] (got {self.learning_rate}); LoRA usually 1e-4..3e-4")
        if not self.target_modules:
            raise ValueError("target_modules is empty: name the projections LoRA adapts, e.g. ['q_proj', 'v_proj']")
        if self.method in ("grpo", "rloo") and (self.batch_size * self.grad_accum) % self.num_generations:
            raise ValueError(
                f"batch_size × grad_accum ({self.batch_size * self.grad_accum}) must be a multiple of "
                f"num_generations ({self.num_generations}) for {self.method}"
            )
        return self


def lora_defaults() -> dict[str, Any]:
    fields = TrainConfig.model_fields
    keys = ("lora_r", "lora_alpha", "lora_dropout", "learning_rate", "weight_decay", "optimizer", "target_modules")
    return {k: fields[k].get_default(call_default_factory=True) for k in keys}


def method_infos() -> list[MethodInfo]:
    bnb = importlib.util.find_spec("bitsandbytes") is not None
    out = [MethodInfo(name=name, available=True, **info) for name, info in METHODS.items()]
    out += [MethodInfo(name=name, description=reason, data_formats=[], trainer="-", available=False, reason=reason)
            for name, reason in UNAVAILABLE.items()]
    if not bnb:
        out.append(MethodInfo(name="qlora", description="4-bit NF4 base + LoRA", data_formats=[], trainer="-",
                              available=False, reason="bitsandbytes is not installed: `pip install bitsandbytes`"))
    return out


def check_method(method: str) -> Method:
    low = (method or "").strip().lower()
    if low in UNAVAILABLE:
        raise InvalidInput(UNAVAILABLE[low])
    if low not in METHODS:
        raise InvalidInput(f"unknown method '{method}': choose one of {', '.join(METHODS)}")
    return low  # type: ignore[return-value]


def check_preset(preset: str | None) -> Preset | None:
    if preset is None or preset == "":
        return None
    if preset not in PRESETS:
        raise InvalidInput(f"unknown preset '{preset}': choose one of {', '.join(PRESETS)} (or none)")
    return PRESETS[preset]


def resolve_config(
    method: str,
    adapter: str,
    preset: str | None,
    overrides: dict[str, Any],
    base: dict[str, Any] | None = None,
) -> tuple[TrainConfig, dict[str, str]]:
    """Defaults → ``base`` (settings) → preset → overrides; returns the config and, per key, which layer set it."""
    chosen = check_preset(preset)
    method = check_method(method)
    unknown = sorted(set(overrides) - set(TrainConfig.model_fields))
    if unknown:
        raise InvalidInput(
            f"unknown option(s) {', '.join(unknown)}: valid options are {', '.join(sorted(TrainConfig.model_fields))}"
        )
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for layer, data in (("settings", base or {}), (f"preset {preset}", chosen.values if chosen else {}),
                        ("override", overrides)):
        for key, value in data.items():
            if value is not None:
                values[key], source[key] = value, layer
    values["method"], values["adapter"] = method, adapter
    try:
        config = TrainConfig.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "config"
        raise InvalidInput(f"invalid training option '{key}': {first['msg'].removeprefix('Value error, ')}") from exc
    for key in TrainConfig.model_fields:
        source.setdefault(key, "default")
    return config, source
