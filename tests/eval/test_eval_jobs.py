"""Long evaluations as jobs on the core job store: submitted, followed, completed into their run, cancelled."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from servers.core.errors import NotFound
from servers.eval import api
from servers.eval.schemas import SqlItem
from tests.eval.conftest import eval_settings


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("jobs")
    db = root / "tiny.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);")
    conn.commit()
    conn.close()
    return eval_settings(root, inline_items=5), str(db)


def test_a_large_evaluation_runs_as_a_job_and_saves_its_run(env) -> None:
    settings, db = env
    items = [SqlItem(id=f"i{i}", database="tiny", gold="SELECT x FROM t ORDER BY x", predicted="SELECT x FROM t")
             for i in range(600)]  # 600 executions count as 6 model-scored items: above inline_items=5
    started = api.eval_text2sql(items=items, databases={"tiny": db}, settings=settings)
    assert started.job_id and started.state in ("queued", "running") and started.metrics == {}
    status = api.eval_job_status(started.job_id, wait_s=120, settings=settings)
    assert status.state == "completed", status.error or status.log_tail
    assert status.run_id == started.run_id and status.step == status.total == 600
    assert status.result["metrics"]["execution_accuracy"] == 1.0  # unordered gold: order does not matter
    saved = api.eval_get_run(started.run_id, settings=settings)
    assert saved.run.n_items == 600 and Path(saved.run.report_path).is_file()
    assert api.eval_list_jobs(settings=settings).jobs[0].job_id == started.job_id
    inline = api.eval_text2sql(items=items[:3], databases={"tiny": db}, settings=settings)
    assert inline.job_id is None and inline.state == "completed" and inline.metrics["execution_accuracy"] == 1.0


def test_cancel_stops_at_the_next_item_and_saves_no_run(env) -> None:
    settings, db = env
    slow = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) "
            "SELECT COUNT(*) FROM c")
    items = [SqlItem(database="tiny", gold="SELECT 300000", predicted=slow) for _ in range(400)]
    started = api.eval_text2sql(items=items, databases={"tiny": db}, background=True, settings=settings)
    api.eval_job_status(started.job_id, wait_s=0, settings=settings)
    jobs = api.jobs(settings)
    deadline = time.monotonic() + 120
    while not jobs.progress(started.job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    cancelled = api.eval_cancel_job(started.job_id, settings=settings)
    assert cancelled.state in ("running", "cancelled")
    final = api.eval_job_status(started.job_id, wait_s=60, settings=settings)
    assert final.state == "cancelled" and (final.step or 0) < 400
    with pytest.raises(NotFound):
        api.eval_get_run(started.run_id, settings=settings)
    with pytest.raises(NotFound, match="no job"):
        api.eval_job_status("eval-nope", settings=settings)
