"""A trivial real job for the job-store tests: counts to ``config["steps"]`` with a pause per step.

Config keys: steps, sleep_s, fail_at (raise at that step on attempt 1), ignore_term (do not stop
on SIGTERM). It resumes from ``state.json`` in its folder, the way a trainer resumes from a checkpoint.
"""

from __future__ import annotations

import json
import signal
import time

from servers.core.jobs import JobContext, child_main


def run(ctx: JobContext) -> dict:
    cfg = ctx.config
    if cfg.get("ignore_term"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    saved = ctx.folder / "state.json"
    start = json.loads(saved.read_text())["step"] + 1 if saved.exists() else 1
    total = int(cfg.get("steps", 3))
    for step in range(start, total + 1):
        if ctx.cancelled:
            return {"stopped_at": step - 1}
        time.sleep(float(cfg.get("sleep_s", 0.05)))
        if cfg.get("fail_at") == step and ctx.attempt == 1:
            raise ValueError(f"planted failure at step {step}")
        ctx.log_metrics({"step": step, "value": step * 10})
        ctx.report_progress(step, total, f"step {step}")
        saved.write_text(json.dumps({"step": step}))
    return {"counted": total, "first_step": start}


if __name__ == "__main__":
    raise SystemExit(child_main(run))
