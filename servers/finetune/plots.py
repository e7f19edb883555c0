"""Training curves as PNG files (matplotlib, Agg backend: no display, no browser)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

PANELS: dict[str, list[tuple[str, list[str]]]] = {
    "default": [("loss", ["loss", "eval_loss"]), ("learning_rate", ["learning_rate"]), ("grad_norm", ["grad_norm"])],
    "grpo": [("loss", ["loss"]), ("reward", ["reward", "reward_std"]), ("kl_entropy", ["kl", "entropy"])],
    "dpo": [("loss", ["loss", "eval_loss"]), ("rewards", ["rewards/chosen", "rewards/rejected", "rewards/margins"])],
}


def _points(history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for record in history:
        value = record.get(key)
        if record.get("summary") or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if key == "loss" and "eval_loss" in record:
            continue
        if math.isfinite(float(value)):
            xs.append(int(record.get("step", len(xs))))
            ys.append(float(value))
    return xs, ys


def render(history: list[dict[str, Any]], method: str, folder: Path) -> list[Path]:
    """Write one PNG per panel that has data; returns their paths (rewritten when the metrics change)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kind = "grpo" if method in ("grpo", "rloo") else "dpo" if method in ("dpo", "kto") else "default"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, keys in PANELS[kind]:
        series = [(key, *_points(history, key)) for key in keys]
        series = [s for s in series if s[1]]
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
        for key, xs, ys in series:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=key)
        ax.set_xlabel("step")
        ax.set_title(name.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"{name}.png"
        tmp = folder / f".{name}.tmp.png"
        fig.savefig(tmp)
        plt.close(fig)
        tmp.replace(path)
        written.append(path)
    return written
