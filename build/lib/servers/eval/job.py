"""The job entry for long evaluations: ``python -m servers.eval.job JOB_DIR`` (started by the job store).

The config names an :mod:`servers.eval.api` function, its arguments, the run id to save under and the
settings of the server that submitted it. Progress goes to the job's progress.json; a cancel request
stops the evaluation at its next item, and no run is saved.
"""

from __future__ import annotations

from typing import Any

from servers.core.jobs import JobContext, child_main
from servers.core.settings import Settings

TOOLS = frozenset({"eval_kb", "eval_rag", "eval_text2sql", "eval_perplexity", "eval_choice", "eval_answers",
                   "eval_judge_pairwise", "eval_judge_score", "eval_judge_rank"})


class Cancelled(Exception):
    """Raised from the progress callback once the job was asked to stop."""


def run(ctx: JobContext) -> dict[str, Any]:
    from servers.eval import api

    tool = ctx.config["tool"]
    if tool not in TOOLS:
        raise ValueError(f"{tool!r} is not an evaluation that runs as a job")
    settings = Settings.model_validate(ctx.config["settings"])

    def progress(done: int, total: int, message: str) -> None:
        if ctx.cancelled:
            raise Cancelled("cancelled")
        ctx.report_progress(done, total, message)

    result = getattr(api, tool)(**ctx.config["arguments"], background=False, settings=settings,
                                run_id=ctx.config["run_id"], progress=progress)
    return result.model_dump(mode="json")


if __name__ == "__main__":
    raise SystemExit(child_main(run))
