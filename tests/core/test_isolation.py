"""The shared worker facility: results and errors come back, runaways are killed on time or memory,
crashes are reported, and a fresh worker takes over each time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from servers.core.errors import InvalidInput, Timeout, TooLarge
from servers.core.isolation import WorkerDied, WorkerPool, WorkerSpec
from tests.core import isolation_tasks as tasks


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    spec = WorkerSpec("the test worker", timeout_s=20, max_memory_mb=200, timeout_key="test.timeout_s",
                      memory_key="test.max_memory_mb")
    pool = WorkerPool(spec, size=2)
    yield pool
    pool.close()


def test_results_and_quiver_errors_come_back(pool: WorkerPool) -> None:
    assert pool.run(tasks.add, 2, 3) == 5
    with pytest.raises(InvalidInput, match="bad table name"):
        pool.run(tasks.refuse, "bad table name")
    first = pool.run(tasks.pid)
    assert pool.run(tasks.pid) == first  # warm: the same process answers again


def test_a_runaway_is_killed_at_its_time_limit_and_replaced(pool: WorkerPool) -> None:
    before = set(pool.pids())
    with pytest.raises(Timeout, match=r"spinning was stopped after 1 s.*test\.timeout_s"):
        pool.run(tasks.spin, limit_s=1, label="spinning")
    assert pool.run(tasks.add, 1, 1) == 2
    assert set(pool.pids()) != before or len(before) < 2


def test_memory_past_the_cap_is_refused_and_the_next_call_works(pool: WorkerPool) -> None:
    with pytest.raises(TooLarge, match=r"200 MB memory cap.*test\.max_memory_mb"):
        pool.run(tasks.hog, 600, label="allocating")
    assert pool.run(tasks.hog, 20) == 20


def test_a_crash_is_reported_and_the_next_call_works(pool: WorkerPool) -> None:
    with pytest.raises(WorkerDied, match="crashed"):
        pool.run(tasks.crash, label="crashing")
    assert pool.run(tasks.add, 4, 4) == 8


def test_the_caller_waits_without_holding_the_interpreter(pool: WorkerPool) -> None:
    """While one worker spins, this process keeps running Python and the other worker answers."""
    counter = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    def runaway() -> None:
        with pytest.raises(Timeout):
            pool.run(tasks.spin, limit_s=3)

    spinner = threading.Thread(target=runaway)
    counting = threading.Thread(target=count)
    spinner.start()
    counting.start()
    time.sleep(1.0)
    assert pool.run(tasks.nap, 0.01) == 0.01  # the second worker serves meanwhile
    seen = counter
    time.sleep(0.5)
    assert counter > seen  # the interpreter was never frozen
    stop.set()
    spinner.join()
    counting.join()


def test_idle_workers_are_reaped() -> None:
    pool = WorkerPool(WorkerSpec("reaped", timeout_s=20, max_memory_mb=100), size=1, idle_s=0.0)
    try:
        assert pool.run(tasks.add, 1, 2) == 3
        assert pool.reap_idle(time.monotonic() + 1) == 1 and pool.pids() == []
        assert pool.run(tasks.add, 2, 2) == 4  # started again on demand
    finally:
        pool.close()
