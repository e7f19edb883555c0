"""Each diagnostic rule fires on a crafted metrics history and stays silent on a healthy one."""

from __future__ import annotations

import math

import pytest

from servers.finetune import diagnostics as d


def healthy(n: int = 30) -> list[dict]:
    """A run that goes as it should: smooth loss decline, moderate gradients, warmup then decay, falling entropy."""
    out = []
    for step in range(1, n + 1):
        warm = min(1.0, step / 3)
        out.append({
            "step": step, "loss": 2.0 * math.exp(-step / 15) + 0.5, "grad_norm": 0.6 + 0.1 * math.sin(step),
            "learning_rate": 2e-4 * warm * (1 - step / (n + 1)), "entropy": 2.5 - step * 0.03,
            "num_tokens": 800.0 * step, "mean_token_accuracy": 0.5 + step * 0.01,
        })
        if step % 5 == 0:
            out.append({"step": step, "eval_loss": 2.2 * math.exp(-step / 15) + 0.6})
    return out


CONTEXT = {"method": "sft", "max_grad_norm": 1.0, "lr_scheduler": "linear", "warmup_steps": 3, "total_steps": 30}


@pytest.mark.parametrize("rule", d.RULES, ids=lambda r: r.__name__)
def test_every_rule_is_silent_on_a_healthy_run(rule) -> None:  # noqa: ANN001
    assert [x for x in rule(healthy(), CONTEXT) if x.level == "warning"] == []


def test_diagnose_on_healthy_run_has_no_warnings() -> None:
    assert [x for x in d.diagnose(healthy(), CONTEXT) if x.level == "warning"] == []


def _set(history: list[dict], key: str, values) -> list[dict]:  # noqa: ANN001
    train = [r for r in history if "loss" in r]
    for record, value in zip(train, values, strict=False):
        record[key] = value
    return history


def test_loss_rising() -> None:
    h = _set(healthy(), "loss", [1.0 + 0.05 * i for i in range(30)])
    [found] = d.loss_trend(h, CONTEXT)
    assert "rising" in found.message and "learning rate" in found.message


def test_loss_oscillating() -> None:
    h = _set(healthy(), "loss", [1.0 + (0.6 if i % 2 else -0.4) - 0.005 * i for i in range(30)])
    [found] = d.loss_trend(h, CONTEXT)
    assert "oscillates" in found.message


def test_loss_slow() -> None:
    h = _set(healthy(), "loss", [2.0 - 0.0005 * i for i in range(30)])
    [found] = d.loss_trend(h, CONTEXT)
    assert "barely falling" in found.message and "raise the learning" in found.message


def test_grad_norm_clipping_vanishing_exploding() -> None:
    clipped = d.grad_norm(_set(healthy(), "grad_norm", [1.0] * 30), CONTEXT)
    assert len(clipped) == 1 and "clipping is active" in clipped[0].message
    vanishing = d.grad_norm(_set(healthy(), "grad_norm", [0.001] * 30), CONTEXT)
    assert any("vanishing" in x.message for x in vanishing)
    exploding = d.grad_norm(_set(healthy(), "grad_norm", [0.5] * 25 + [50, 80, 200, 40, 30]), CONTEXT)
    assert any("exploding" in x.message for x in exploding)


def test_flat_learning_rate_means_no_scheduler() -> None:
    [found] = d.learning_rate(_set(healthy(), "learning_rate", [1e-4] * 30), CONTEXT)
    assert "not bound" in found.message
    assert d.learning_rate(_set(healthy(), "learning_rate", [1e-4] * 30), {**CONTEXT, "lr_scheduler": "constant"}) == []


def test_warmup_missing() -> None:
    [found] = d.learning_rate(_set(healthy(), "learning_rate", [2e-4 * (1 - i / 30) for i in range(30)]), CONTEXT)
    assert "warmup" in found.message


def test_entropy_high_flat_and_collapsed() -> None:
    flat = d.entropy(_set(healthy(), "entropy", [5.0 + 0.01 * (i % 2) for i in range(30)]), CONTEXT)
    assert len(flat) == 1 and "high and flat" in flat[0].message
    collapsed = d.entropy(_set(healthy(), "entropy", [0.01] * 30), CONTEXT)
    assert len(collapsed) == 1 and "over-confident" in collapsed[0].message


def test_too_few_tokens_per_step() -> None:
    [found] = d.num_tokens(_set(healthy(), "num_tokens", [40.0 * (i + 1) for i in range(30)]), CONTEXT)
    assert "malformed" in found.message


def test_num_tokens_counter_restarting_after_a_resume_is_not_a_bad_batch() -> None:
    h = _set(healthy(), "num_tokens", [800.0 * (i + 1) for i in range(15)] + [800.0 * (i + 1) for i in range(15)])
    assert d.num_tokens(h, CONTEXT) == []


def test_token_accuracy_perfect_early() -> None:
    [found] = d.token_accuracy(_set(healthy(), "mean_token_accuracy", [1.0] * 30), CONTEXT)
    assert "memorizes" in found.message


def test_overfitting_names_the_best_checkpoint() -> None:
    h = [r for r in healthy() if "eval_loss" not in r]
    for step, value in ((5, 1.5), (10, 1.2), (15, 1.3), (20, 1.5), (25, 1.7)):
        h.append({"step": step, "eval_loss": value})
    [found] = d.overfitting(h, CONTEXT)
    assert "step 10" in found.message and "checkpoint-10" in found.message
    assert d.best_eval_step(h) == 10


def test_grpo_zero_loss_first_step_is_normal_and_dead_signal_warns() -> None:
    ctx = {**CONTEXT, "method": "grpo"}
    start = [{"step": 1, "loss": 0.0, "grad_norm": 0.3, "frac_reward_zero_std": 0.25, "reward": 0.5}]
    [info] = d.grpo_signal(start, ctx)
    assert info.level == "info" and "normal" in info.message
    dead = start + [{"step": s, "loss": 0.0, "grad_norm": 0.0, "frac_reward_zero_std": 1.0, "reward": 1.0} for s in (2, 3)]
    warnings = [x for x in d.grpo_signal(dead, ctx) if x.level == "warning"]
    assert len(warnings) == 1 and "no learning signal" in warnings[0].message
    assert d.grpo_signal(dead, CONTEXT) == []  # only for GRPO/RLOO


def test_dpo_both_answers_pushed_down() -> None:
    h = [{"step": s, "loss": 0.7 - 0.01 * s, "rewards/chosen": -0.1 * s, "rewards/rejected": -0.3 * s,
          "rewards/margins": 0.2 * s} for s in range(1, 11)]
    [found] = d.dpo_rewards(h, CONTEXT)
    assert "rpo_alpha" in found.message
    healthy_dpo = [{"step": s, "rewards/chosen": 0.05 * s, "rewards/rejected": -0.1 * s,
                    "rewards/margins": 0.15 * s} for s in range(1, 11)]
    assert d.dpo_rewards(healthy_dpo, CONTEXT) == []


def test_non_finite_loss_suggests_bf16_under_fp16() -> None:
    h = healthy()
    h[10]["loss"] = float("nan")
    [found] = d.non_finite(h, {**CONTEXT, "precision": "fp16"})
    assert "prefer bf16" in found.message


def test_rules_need_enough_points() -> None:
    short = [{"step": s, "loss": 5.0 + s, "grad_norm": 50.0, "learning_rate": 1e-4, "entropy": 0.0} for s in (1, 2)]
    assert d.diagnose(short, CONTEXT) == []
