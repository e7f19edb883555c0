"""Training diagnostics: each rule reads a metrics history (the job's metrics.jsonl records, in
order) and says in words what looks wrong and what to do. Rules are silent when they have too
few points to judge, and on a healthy run.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

History = list[dict[str, Any]]


class Diagnosis(BaseModel):
    rule: str
    level: Literal["info", "warning"]
    message: str


def _series(history: History, key: str, *, train_only: bool = True) -> list[tuple[int, float]]:
    out = []
    for record in history:
        if record.get("summary"):
            continue
        if train_only and key == "loss" and "eval_loss" in record:
            continue
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append((int(record.get("step", len(out))), float(value)))
    return out


def _finite(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    return [(s, v) for s, v in points if math.isfinite(v)]


def _window_mean(values: list[float], part: float, *, head: bool) -> float:
    k = max(1, int(len(values) * part))
    chunk = values[:k] if head else values[-k:]
    return sum(chunk) / len(chunk)


def loss_trend(history: History, context: dict[str, Any] | None = None) -> list[Diagnosis]:
    """Loss falling smoothly is fine; slow → raise lr / check data; oscillating or rising → lr too high,
    batch too small, or dirty data."""
    values = [v for _, v in _finite(_series(history, "loss"))]
    if len(values) < 8:
        return []
    first, last = _window_mean(values, 0.25, head=True), _window_mean(values, 0.25, head=False)
    diffs = [b - a for a, b in zip(values, values[1:], strict=False)]
    flips = sum(1 for a, b in zip(diffs, diffs[1:], strict=False) if a * b < 0) / max(len(diffs) - 1, 1)
    spread = statistics.pstdev(diffs)
    scale = abs(statistics.mean(values)) or 1.0
    if last > first * 1.05:
        return [Diagnosis(rule="loss_trend", level="warning", message=(
            f"training loss is rising ({first:.3g} → {last:.3g}): the learning rate is probably too high, the batch "
            "too small, or the data dirty; lower lr (÷3), raise batch or accumulation, check the data"))]
    if flips > 0.6 and spread > 0.15 * scale:
        return [Diagnosis(rule="loss_trend", level="warning", message=(
            f"training loss oscillates (direction flips on {flips:.0%} of steps, step-to-step σ {spread:.3g}): "
            "lower the learning rate, raise the effective batch (grad accumulation), or look for noisy rows"))]
    if len(values) >= 20 and first - last < 0.02 * first:
        return [Diagnosis(rule="loss_trend", level="warning", message=(
            f"training loss is barely falling ({first:.3g} → {last:.3g} over {len(values)} logs): raise the learning "
            "rate (×2–3), check the data (formatting, masking), or add capacity (higher LoRA rank, more targets)"))]
    return []


def grad_norm(history: History, context: dict[str, Any] | None = None) -> list[Diagnosis]:
    """grad_norm at max_grad_norm most of the time → clipping active, lr probably high; ≪ 0.1 for long →
    vanishing; ≫ 10 → exploding."""
    clip = float((context or {}).get("max_grad_norm", 1.0))
    values = [v for _, v in _finite(_series(history, "grad_norm"))]
    out: list[Diagnosis] = []
    if len(values) < 5:
        return out
    clipped = sum(1 for v in values if v >= clip * 0.98) / len(values)
    if clipped >= 0.6:
        out.append(Diagnosis(rule="grad_norm", level="warning", message=(
            f"gradient clipping is active on {clipped:.0%} of steps (grad_norm ≥ max_grad_norm {clip:g}): "
            "the learning rate is probably too high; lower it")))
    tail = values[-10:]
    if len(values) >= 10 and max(tail) < 0.01:
        out.append(Diagnosis(rule="grad_norm", level="warning", message=(
            f"gradients are vanishing (grad_norm < 0.01 for the last {len(tail)} logs): check that the trainable "
            "parameters get gradients (adapter targets, frozen layers), raise the lr, or check the loss masking")))
    big = [v for v in values if v > 10 * max(clip, 1.0)]
    if len(big) >= 3 or any(v > 100 for v in values):
        out.append(Diagnosis(rule="grad_norm", level="warning", message=(
            f"gradients are exploding (grad_norm up to {max(values):.3g}): lower the learning rate, keep "
            "max_grad_norm at 1.0, use bf16 rather than fp16, check for corrupt rows")))
    return out


def learning_rate(history: History, context: dict[str, Any] | None = None) -> list[Diagnosis]:
    """learning_rate must rise through warmup then follow the schedule; flat means the scheduler is not bound."""
    ctx = context or {}
    if ctx.get("lr_scheduler", "linear") in ("constant", "constant_with_warmup"):
        return []
    values = [v for _, v in _finite(_series(history, "learning_rate"))]
    if len(values) < 5:
        return []
    if max(values) - min(values) <= 1e-12 * max(abs(max(values)), 1e-30):
        return [Diagnosis(rule="learning_rate", level="warning", message=(
            f"the learning rate stays at {values[0]:.3g} although the schedule is '{ctx.get('lr_scheduler', 'linear')}': "
            "the scheduler is not bound to the optimizer (a custom optimizer without a scheduler?)"))]
    peak = values.index(max(values))
    if ctx.get("warmup_steps", 0) > 1 and peak == 0:
        return [Diagnosis(rule="learning_rate", level="warning", message=(
            "warmup was configured but the learning rate starts at its peak: the warmup is not applied"))]
    return []


def entropy(history: History, context: dict[str, Any] | None = None) -> list[Diagnosis]:
    """Entropy should decline; high and flat → underfitting or noisy labels; near 0 early → over-confident."""
    points = _finite(_series(history, "entropy"))
    if len(points) < 5:
        return []
    values = [v for _, v in points]
    total = int((context or {}).get("total_steps") or points[-1][0] or 1)
    early = [v for s, v in points if s <= max(1, 0.2 * total)]
    if early and min(early) < 0.05:
        return [Diagnosis(rule="entropy", level="warning", message=(
            f"token entropy is near 0 early ({min(early):.3g} within the first 20% of steps): the model is "
            "over-confident — duplicated or trivial targets, or a data leak; check the data and lower the lr"))]
    first, last = _window_mean(values, 0.3, head=True), _window_mean(values, 0.3, head=False)
    if len(values) >= 10 and first > 3.0 and abs(first - last) < 0.03 * first:
        return [Diagnosis(rule="entropy", level="warning", message=(
            f"token entropy stays high and flat (~{last:.3g} nats): underfitting or noisy labels; train longer, "
            "raise the lr or rank, or clean the targets"))]
    return []


def num_tokens(history: History, context: dict[str, Any] | None = None) -> list[Diagnosis]:
    """Fewer than 100 tokens in a step's batch → malformed batch (empty targets, truncation, masking)."""
    points = _finite(_series(history, "num_tokens"))
    if len(points) < 2:
        return []
    per_step = []
    for (s0, a), (s1, b) in zip(points, points[1:], strict=False):
        if s1 > s0 and b >= a:  # the counter is cumulative; it restarts after a resume
            per_step.append((b - a) / (s1 - s0))
    if not per_step:
        return []
    low = sum(1 for v in per_step if v < 100)
    if low:
        return [Diagnosis(rule="num_tokens", level="warning", message=(
            f"{low} logged step(s) saw fewer than 100 tokens (min {min(per_step):.0f}): batches look malformed — "
            "empty or truncated rows, a wrong format, or max_length too small"))]
    return []


def token_accuracy(history: History, context: dict[str, Any] | None = None) -> list[Diagnosis]:
    """mean_token_accuracy at 100% quickly → overfitting or a train/eval leak."""
    points = _finite(_series(history, "mean_token_accuracy"))
    if len(points) < 3:
        return []
    total = int((context or {}).get("total_steps") or points[-1][0] or 1)
    early = [(s, v) for s, v in points if s <= max(2, 0.3 * total)]
    if sum(1 for _, v in early if v >= 0.999) >= 2:
        return [Diagnosis(rule="token_accuracy", level="warning", message=(
            "token accuracy reached 100% within the first 30% of training: the model memorizes — too many epochs "
            "on little data, duplicated rows, or the eval set leaks into training; dedup and stop earlier"))]
    return []


def overfitting(history: History, context: dict[str, Any] | None = None) -> list[Diagnosis]:
    """Eval loss rising while train loss falls → overfitting; stop early at the best checkpoint."""
    evals = _finite(_series(history, "eval_loss", train_only=False))
    train = [v for _, v in _finite(_series(history, "loss"))]
    if len(evals) < 3 or len(train) < 4:
        return []
    best_step, best = min(evals, key=lambda p: p[1])
    last = evals[-1][1]
    falling = _window_mean(train, 0.3, head=False) < _window_mean(train, 0.3, head=True)
    if last > best * 1.02 and evals[-1][0] > best_step and falling:
        return [Diagnosis(rule="overfitting", level="warning", message=(
            f"eval loss is rising ({best:.3g} at step {best_step} → {last:.3g}) while train loss falls: overfitting. "
            f"Stop early; the best checkpoint is step {best_step} (export checkpoint-{best_step})"))]
    return []


def grpo_signal(history: History, context: dict[str, Any] | None = None) -> list[Diagnosis]:
    """GRPO: loss 0 at step 0 is normal (KL starts at 0); all-equal rewards with zero loss and gradient →
    no learning signal."""
    if (context or {}).get("method") not in ("grpo", "rloo"):
        return []
    out: list[Diagnosis] = []
    losses = _series(history, "loss")
    if losses and losses[0][1] == 0.0 and losses[0][0] <= 1:
        out.append(Diagnosis(rule="grpo_signal", level="info", message=(
            "loss 0 at the first step is normal for GRPO: the policy equals the reference, so the KL term and the "
            "advantage-weighted loss start at 0")))
    dead = 0
    for record in history:
        if record.get("summary"):
            continue
        if (record.get("frac_reward_zero_std") == 1.0 and abs(record.get("loss", 1.0)) < 1e-9
                and abs(record.get("grad_norm", 1.0)) < 1e-9):
            dead += 1
    if dead >= 2:
        out.append(Diagnosis(rule="grpo_signal", level="warning", message=(
            f"no learning signal on {dead} logged steps: every completion of a prompt scored the same reward "
            "(frac_reward_zero_std = 1), so loss and gradient are 0. Make the reward graded (partial credit), raise "
            "num_generations or temperature, or use easier prompts")))
    return out


def dpo_rewards(history: History, context: dict[str, Any] | None = None) -> list[Diagnosis]:
    """DPO: chosen rewards falling while the margin rises → both answers are pushed down."""
    chosen = [v for _, v in _finite(_series(history, "rewards/chosen"))]
    margins = [v for _, v in _finite(_series(history, "rewards/margins"))]
    if len(chosen) < 4 or len(margins) < 4:
        return []
    chosen_drop = _window_mean(chosen, 0.3, head=False) - _window_mean(chosen, 0.3, head=True)
    margin_rise = _window_mean(margins, 0.3, head=False) - _window_mean(margins, 0.3, head=True)
    if chosen_drop < 0 and margin_rise > 0 and _window_mean(chosen, 0.3, head=False) < 0:
        return [Diagnosis(rule="dpo_rewards", level="warning", message=(
            "chosen rewards are falling while the margin grows: both answers are being pushed down (likelihood "
            "displacement). Add an SFT term on the chosen answer (rpo_alpha, e.g. 1.0) or lower the learning rate"))]
    return []


def non_finite(history: History, context: dict[str, Any] | None = None) -> list[Diagnosis]:
    """NaN/inf loss or gradients (fp16 overflow) → prefer bf16, lower lr."""
    bad = [r.get("step") for r in history
           if any(isinstance(r.get(k), float) and not math.isfinite(r[k]) for k in ("loss", "grad_norm"))]
    if not bad:
        return []
    fp16 = (context or {}).get("precision") == "fp16"
    return [Diagnosis(rule="non_finite", level="warning", message=(
        f"loss or grad_norm is NaN/inf at step(s) {', '.join(str(s) for s in bad[:5])}: "
        + ("fp16 overflowed; prefer bf16 where the GPU has it, " if fp16 else "")
        + "lower the learning rate and check for corrupt rows"))]


RULES: list[Callable[[History, dict[str, Any] | None], list[Diagnosis]]] = [
    loss_trend, grad_norm, learning_rate, entropy, num_tokens, token_accuracy, overfitting, grpo_signal,
    dpo_rewards, non_finite,
]


def diagnose(history: History, context: dict[str, Any] | None = None) -> list[Diagnosis]:
    """Every rule's findings, warnings first."""
    found = [d for rule in RULES for d in rule(history, context)]
    return sorted(found, key=lambda d: d.level != "warning")


def best_eval_step(history: History) -> int | None:
    evals = _finite(_series(history, "eval_loss", train_only=False))
    return min(evals, key=lambda p: p[1])[0] if evals else None
