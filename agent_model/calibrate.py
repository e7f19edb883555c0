"""Calibrate a tool-calling adapter's call threshold on validation records it never trained on.

    python -m agent_model.calibrate --adapter servers/core/adapters/agent-smollm2 --config agent_model/train_config.toml

The host's local backend calls a tool when the model's probability of opening a call, P(call), is at
least a threshold (``host.backends.local``). 0.5 is the natural boundary for a perfectly calibrated
model; a small fine-tuned one is not (run 4: mean P(call) 0.44 on requests no offered tool serves).
This picks the threshold that best separates the requests that need a call from those that do not
(the highest balanced accuracy, ties to the one nearest 0.5) on **validation records**: training-split
records of the dataset that the config's seeded selection did not train on. The held-out test split
is never read, so the bench's held-out figures stay an honest measure of the chosen threshold.

Writes ``calibration.json`` beside the adapter's weights (read by the local backend when it loads the
adapter; ``host.call_threshold`` overrides it) and prints it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import random
import statistics
import sys
from pathlib import Path
from typing import Any

from agent_model.conversation import record_tools
from agent_model.train import CONFIG, REPO, load_config, select
from host.backends.local import CALIBRATION_FILE, CALL_TAG, Calibration, LocalBackend
from host.connections import ToolInfo


def validation_records(data: Path, config: dict[str, Any], per_class: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Up to ``per_class`` training-split records the config's selection did not take that open with a
    call, and as many that answer without one, round-robin over their categories (so no one kind of
    request decides the threshold), in a seeded order."""
    chosen, _ = select(data, config)
    taken = {r["id"] for r in chosen}
    limit = int(config["data"]["max_tokens"])
    by_kind: dict[bool, dict[str, list[dict[str, Any]]]] = {True: {}, False: {}}
    for e in map(json.loads, (data / "examples" / "train.jsonl").open(encoding="utf-8")):
        if e["id"] in taken or e["n_tokens"] > limit:
            continue
        first = next(m for m in e["messages"] if m["role"] == "assistant")
        by_kind[bool(first.get("tool_calls"))].setdefault(f"{e['source']}/{e['category']}", []).append(e)
    rng = random.Random(f"{config['seed']}:calibrate")
    out: dict[bool, list[dict[str, Any]]] = {}
    for should, groups in by_kind.items():
        for name in sorted(groups):
            rng.shuffle(groups[name])
        ordered = [groups[name] for name in sorted(groups)]
        out[should] = [r for row in itertools.zip_longest(*ordered) for r in row if r is not None][:per_class]
    return out[True], out[False]


def first_turn(record: dict[str, Any]) -> tuple[list[dict[str, Any]], list[ToolInfo]]:
    """The messages before the record's first assistant turn and the tools it offered."""
    first = next(k for k, m in enumerate(record["messages"]) if m["role"] == "assistant")
    return record["messages"][:first], record_tools(record)


def balanced_accuracy(positive: list[float], negative: list[float], threshold: float) -> float:
    """Mean of the share of should-call records at or above ``threshold`` and should-not records below it."""
    hit = sum(p >= threshold for p in positive) / len(positive)
    reject = sum(n < threshold for n in negative) / len(negative)
    return (hit + reject) / 2


def best_threshold(positive: list[float], negative: list[float]) -> float:
    """The threshold in 0.05..0.95 (steps of 0.01) with the highest balanced accuracy; ties go to the one
    nearest 0.5 (the uncalibrated boundary)."""
    if not positive or not negative:
        raise ValueError("calibration needs records that call and records that do not")
    grid = [round(0.05 + 0.01 * i, 2) for i in range(91)]
    return max(grid, key=lambda t: (round(balanced_accuracy(positive, negative, t), 6), -abs(t - 0.5)))


def calibrate(backend: LocalBackend, positive_records: list[dict[str, Any]],
              negative_records: list[dict[str, Any]]) -> Calibration:
    """P(call) on each record's first turn, and the threshold that separates the two sets best."""
    scores: dict[bool, list[float]] = {True: [], False: []}
    per_category: dict[str, list[float]] = {}
    for should, records in ((True, positive_records), (False, negative_records)):
        for rec in records:
            messages, tools = first_turn(rec)
            p = backend.decoder.continuation_probability(backend.prompt(messages, tools), CALL_TAG)
            scores[should].append(p)
            per_category.setdefault(f"{rec['source']}/{rec['category']}", []).append(p)
    pos, neg = scores[True], scores[False]
    threshold = best_threshold(pos, neg)
    return Calibration(
        call_threshold=threshold,
        balanced_accuracy=round(balanced_accuracy(pos, neg, threshold), 4),
        balanced_accuracy_at_half=round(balanced_accuracy(pos, neg, 0.5), 4),
        records={"call": len(pos), "no_call": len(neg)},
        mean_p_call={k: round(statistics.mean(v), 4) for k, v in sorted(per_category.items())},
    )


def calibrate_adapter(adapter: Path, config: dict[str, Any], data: Path, per_class: int = 80) -> Calibration:
    """Calibrate the adapter folder ``adapter`` (trained with ``config`` on ``data``) and write its
    ``calibration.json``."""
    from servers.core.models import causal_lm
    from servers.core.settings import load_settings

    positive, negative = validation_records(data, config, per_class)
    lm = causal_lm(config["train"]["model"], load_settings(), adapter=str(adapter.resolve()))
    result = calibrate(LocalBackend(lm), positive, negative)
    (adapter / CALIBRATION_FILE).write_text(result.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--adapter", type=Path, required=True, help="the adapter folder (calibration.json goes there)")
    p.add_argument("--config", type=Path, default=CONFIG, help="the training config whose selection to leave out")
    p.add_argument("--data", type=Path, default=REPO / "data" / "agent_model", help="the built dataset")
    p.add_argument("--per-class", type=int, default=80, help="validation records that call, and that do not")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(calibrate_adapter(args.adapter, load_config(args.config), args.data, args.per_class).model_dump_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
