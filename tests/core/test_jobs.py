"""The persistent job store with a real (trivial) subprocess job: states, queue, cancel, restart, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from servers.core.errors import InvalidInput, NotFound
from servers.core.jobs import JobState, JobStore, process_alive, read_metrics

ENTRY = "tests.core.job_counter"
REPO = Path(__file__).resolve().parents[2]


def _wait_for(predicate, timeout: float = 30.0, poll: float = 0.05):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "jobs", max_running=1, poll_s=0.1)


def test_job_runs_to_completion_with_metrics_progress_log_and_result(store: JobStore) -> None:
    job = store.submit("demo", ENTRY, {"steps": 3}, label="count to 3")
    assert job.state in (JobState.queued, JobState.running)
    assert job.command[-3:] == ["-m", ENTRY, job.folder]
    done = store.wait(job.job_id, timeout_s=60, poll_s=0.05)
    assert done.state == JobState.completed, done.error
    assert done.exit_code == 0 and done.attempt == 1 and done.result == {"counted": 3, "first_step": 1}
    assert [m["step"] for m in store.metrics(job.job_id)] == [1, 2, 3]
    assert [m["value"] for m in store.metrics(job.job_id, since_step=1)] == [20, 30]
    assert store.progress(job.job_id)["step"] == 3
    assert "attempt 1 started" in store.log_tail(job.job_id)
    assert json.loads((done.path / "config.json").read_text()) == {"steps": 3}
    assert [j.job_id for j in store.list(kind="demo")] == [job.job_id]
    assert store.list(kind="other") == []


def test_wait_reports_progress_changes(store: JobStore) -> None:
    seen: list[int] = []
    job = store.submit("demo", ENTRY, {"steps": 4, "sleep_s": 0.2})
    store.wait(job.job_id, timeout_s=60, poll_s=0.05, on_progress=lambda _r, p: seen.append(p["step"]))
    assert seen and seen[-1] == 4 and seen == sorted(seen)


def test_concurrency_limit_queues_then_runs_in_order(store: JobStore) -> None:
    first = store.submit("demo", ENTRY, {"steps": 5, "sleep_s": 0.1})
    second = store.submit("demo", ENTRY, {"steps": 1})
    assert store.get(first.job_id).state == JobState.running
    assert store.get(second.job_id).state == JobState.queued
    store.start_monitor()  # queued work starts without anyone calling
    try:
        done = _wait_for(lambda: (r := store.get(second.job_id, refresh=False)).terminal and r, timeout=60)
    finally:
        store.stop_monitor()
    a = store.get(first.job_id)
    assert a.state == done.state == JobState.completed
    assert done.started_at >= a.ended_at


def test_cancel_running_and_queued(store: JobStore) -> None:
    running = store.submit("demo", ENTRY, {"steps": 500, "sleep_s": 0.05})
    queued = store.submit("demo", ENTRY, {"steps": 1})
    _wait_for(lambda: store.progress(running.job_id))
    assert store.cancel(queued.job_id).state == JobState.cancelled
    store.cancel(running.job_id)
    t0 = time.monotonic()
    done = store.wait(running.job_id, timeout_s=30, poll_s=0.05)
    assert done.state == JobState.cancelled and time.monotonic() - t0 < 10
    assert done.result and done.result["stopped_at"] < 500
    assert store.get(queued.job_id).started_at is None


def test_cancel_escalates_to_sigkill_when_the_job_ignores_sigterm(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs", poll_s=0.1, kill_after_s=0.5)
    job = store.submit("demo", ENTRY, {"steps": 500, "sleep_s": 0.05, "ignore_term": True})
    _wait_for(lambda: store.progress(job.job_id))
    store.cancel(job.job_id)
    done = store.wait(job.job_id, timeout_s=30, poll_s=0.1)
    assert done.state == JobState.cancelled and done.exit_code == -signal.SIGKILL


def test_failure_is_recorded_and_requeue_resumes(store: JobStore) -> None:
    job = store.submit("demo", ENTRY, {"steps": 4, "fail_at": 3})
    failed = store.wait(job.job_id, timeout_s=60, poll_s=0.05)
    assert failed.state == JobState.failed
    assert "planted failure at step 3" in failed.error
    assert "ValueError" in store.log_tail(job.job_id)
    with pytest.raises(InvalidInput, match="only a failed, cancelled or orphaned"):
        store.requeue(store.submit("demo", ENTRY, {"steps": 1}, job_id="other").job_id)
    resumed = store.requeue(job.job_id)
    assert resumed.state in (JobState.queued, JobState.running) and resumed.error is None
    done = store.wait(job.job_id, timeout_s=60, poll_s=0.05)
    assert done.state == JobState.completed and done.attempt == 2
    assert done.result == {"counted": 4, "first_step": 3}
    assert [m["step"] for m in store.metrics(job.job_id)] == [1, 2, 3, 4]


def test_bad_input_errors(store: JobStore) -> None:
    with pytest.raises(NotFound, match="no job 'nope'"):
        store.get("nope")
    with pytest.raises(InvalidInput, match="not a dotted module"):
        store.submit("demo", "not a module!", {})
    with pytest.raises(InvalidInput, match="not valid"):
        store.submit("demo", ENTRY, {}, job_id="../escape")
    store.submit("demo", ENTRY, {"steps": 500, "sleep_s": 0.05}, job_id="same")
    with pytest.raises(InvalidInput, match="already exists"):
        store.submit("demo", ENTRY, {"steps": 1}, job_id="same")
    with pytest.raises(InvalidInput, match="cancel it before"):
        store.remove("same")
    store.cancel("same")
    store.wait("same", timeout_s=30, poll_s=0.05)
    folder = store.folder("same")
    store.remove("same")
    assert not folder.exists()
    with pytest.raises(NotFound):
        store.get("same")


def test_process_identity_is_pid_and_start_time() -> None:
    me = psutil.Process(os.getpid())
    assert process_alive(me.pid, me.create_time())
    assert not process_alive(me.pid, me.create_time() - 3600)  # same pid, another process
    assert not process_alive(None, None)


def test_torn_metrics_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    assert read_metrics(path) == [{"step": 1, "loss": 2.0}]


SERVER = textwrap.dedent(
    """
    import sys, time
    from servers.core.jobs import JobStore
    store = JobStore(sys.argv[1], poll_s=0.1)
    job = store.submit("demo", "tests.core.job_counter", {"steps": int(sys.argv[2]), "sleep_s": 0.1})
    print(job.job_id, flush=True)
    time.sleep(600)
    """
)


def _server_that_dies(root: Path, steps: int) -> tuple[str, int]:
    """A 'server' process that starts a job and is then SIGKILLed; returns the job id and job pid."""
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(root), str(steps)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout
    job_id = server.stdout.readline().strip()
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    store = JobStore(root, poll_s=0.1)
    pid = store.get(job_id).pid
    assert pid
    return job_id, pid


def test_restarted_server_reattaches_to_a_live_job_and_orphans_a_dead_one(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    live_id, live_pid = _server_that_dies(root, steps=8)
    restarted = JobStore(root, poll_s=0.1)
    job = restarted.get(live_id)
    assert job.state == JobState.running and process_alive(live_pid, None)  # re-attached, really running
    done = restarted.wait(live_id, timeout_s=60, poll_s=0.1)
    assert done.state == JobState.completed and done.result == {"counted": 8, "first_step": 1}

    dead_id, dead_pid = _server_that_dies(root, steps=500)
    _wait_for(lambda: restarted.progress(dead_id))
    os.kill(dead_pid, signal.SIGKILL)  # the machine "crashes" under the job too
    _wait_for(lambda: not process_alive(dead_pid, None), timeout=10)
    ghost = JobStore(root, poll_s=0.1).get(dead_id)
    assert ghost.state == JobState.orphaned and "no server was watching" in ghost.error
    assert [j.job_id for j in restarted.list(states=[JobState.running])] == []
    resumed = restarted.requeue(dead_id, {"steps": 6, "sleep_s": 0.01})
    done = restarted.wait(resumed.job_id, timeout_s=60, poll_s=0.05)
    first_after = done.result["first_step"]
    assert done.state == JobState.completed and first_after > 1  # continued after its last saved step
