"""Run CPU-heavy or untrusted work where a runaway can be stopped: warm worker processes with a
wall-clock timeout and a memory cap per call.

A :class:`WorkerPool` keeps up to ``size`` child processes (``python -m
servers.core.worker_process``, a fresh interpreter that imports only the modules its
:class:`WorkerSpec` names: no torch, no MCP server) and runs picklable functions in them::

    pool = WorkerPool(WorkerSpec("the parser", timeout_s=60, max_memory_mb=1024, preload=("servers.parse.documents",)))
    doc = pool.run(parse_bytes, data, "a.pdf", label="parsing a.pdf")

The caller's thread waits on a socket, so it holds no interpreter lock while the work runs: one
request that spins for minutes does not freeze the server's other requests. The memory cap is
enforced twice: ``RLIMIT_AS`` in the child (its address space after start-up plus the cap; an
allocation past it raises MemoryError there) and a watchdog here that kills a child whose
resident memory passes its start-up size plus the cap (for native code that ignores
MemoryError). A call past its time limit or cap is killed and raises :class:`Timeout` or
:class:`TooLarge`; the next call starts a fresh process. Exceptions raised in the child (e.g. a
``QuiverError`` from the parser) are re-raised here unchanged.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from servers.core.errors import QuiverError, Timeout, TooLarge

log = logging.getLogger("quiver.isolation")
T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]
WATCH_INTERVAL_S = 0.05
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class WorkerSpec:
    """What a pool's workers import and the limits each call runs under."""

    name: str  # who does the work, in messages: "the parser", "database 'shop'"
    timeout_s: float
    max_memory_mb: float
    preload: tuple[str, ...] = ()
    timeout_key: str = ""  # config key that sets timeout_s, named in the error
    memory_key: str = ""  # config key that sets max_memory_mb
    address_space_slack_mb: float = 0.0  # extra virtual memory the child may reserve (DuckDB's threads)


class WorkerDied(QuiverError):
    """The worker process ended while running a call (crashed on the input, or was killed)."""


def _rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _child_stdout() -> int:
    """Where a child's stdout goes: our stderr (stdout may carry the MCP stdio protocol)."""
    try:
        return sys.__stderr__.fileno() if sys.__stderr__ is not None else subprocess.DEVNULL
    except (OSError, ValueError):
        return subprocess.DEVNULL


# Children are started from one long-lived thread: the kernel's parent-death signal (which the
# child asks for) fires when the *thread* that started it ends, and request threads come and go.
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quiver-spawner")


class Worker:
    """One child process; used by one caller at a time (the pool hands it out)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.base_rss = 0
        self.last_used = time.monotonic()
        self.calls = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env.setdefault("MALLOC_ARENA_MAX", "2")  # fewer malloc arenas: address space close to what is used
        cmd = [sys.executable, "-m", "servers.core.worker_process", str(os.getpid()), str(child.fileno()),
               str(self.spec.max_memory_mb), str(self.spec.address_space_slack_mb), *self.spec.preload]
        try:
            self.process = _spawner.submit(
                subprocess.Popen, cmd, pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=_child_stdout(),
                env=env, cwd=str(REPO_ROOT), start_new_session=True,
            ).result()
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        if not self.conn.poll(START_TIMEOUT_S):
            self.kill()
            raise WorkerDied(f"{self.spec.name}: the worker process did not start within {START_TIMEOUT_S:g} s")
        try:
            status, detail = self.conn.recv()
        except EOFError:
            status, detail = "failed", f"exit status {self.process.wait()}"
        if status != "ready":
            self.kill()
            raise WorkerDied(f"{self.spec.name}: the worker process could not start ({detail})")
        self.base_rss = _rss_bytes(self.process.pid) or 0
        log.debug("%s: worker %s started", self.spec.name, self.process.pid)

    def kill(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: children go too
            with contextlib.suppress(Exception):
                self.process.wait(timeout=10)
        if self.conn is not None:
            self.conn.close()
        self.process = self.conn = None

    def call(
        self, fn: Callable[..., T], args: tuple, kwargs: dict, *, timeout_s: float, label: str,
        limit_s: float | None = None,
    ) -> T:
        """Run one call; ``timeout_s`` is the time left, ``limit_s`` the whole limit (for the message)."""
        limit_s = timeout_s if limit_s is None else limit_s
        if not self.alive:
            self.kill()
            self.start()
        assert self.conn is not None and self.process is not None
        self.calls += 1
        cap = self.spec.max_memory_mb * 1024 * 1024
        try:
            self.conn.send((fn, args, kwargs))
        except (BrokenPipeError, ConnectionResetError, EOFError):  # died while idle: once more on a fresh one
            self.kill()
            self.start()
            self.conn.send((fn, args, kwargs))
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    key = f" ({self.spec.timeout_key} = {limit_s:g})" if self.spec.timeout_key else ""
                    raise Timeout(
                        f"{label} was stopped after {limit_s:g} s, its time limit{key}: the input is too large "
                        "or too complex; split it, simplify the request, or raise the limit in the config"
                    )
                if self.conn.poll(min(WATCH_INTERVAL_S, left)):
                    break
                rss = _rss_bytes(self.process.pid)
                if cap > 0 and rss is not None and rss - self.base_rss > cap:
                    self.kill()
                    raise self._too_large(label)
            try:
                status, value = self.conn.recv()
            except (EOFError, ConnectionResetError, OSError):
                code = self.process.wait(timeout=10)
                self.kill()
                if code == -signal.SIGKILL:  # the kernel's out-of-memory killer
                    raise self._too_large(label, died=code) from None
                how = f"signal {-code}" if code < 0 else f"exit status {code}"
                key = f" ({self.spec.memory_key})" if self.spec.memory_key else ""
                raise WorkerDied(f"{label} failed: the worker process crashed ({how}); the input may be malformed, "
                                 f"or need more than the {self.spec.max_memory_mb:g} MB memory cap{key}") from None
        finally:
            self.last_used = time.monotonic()
        if status == "ok":
            return value
        if status == "memory":
            self.kill()
            raise self._too_large(label)
        raise value

    def _too_large(self, label: str, died: int | None = None) -> TooLarge:
        key = f" ({self.spec.memory_key} = {self.spec.max_memory_mb:g})" if self.spec.memory_key else ""
        how = f"; the worker process ended with signal {-died}" if died else ""
        return TooLarge(
            f"{label} needed more than its {self.spec.max_memory_mb:g} MB memory cap{key} and was stopped{how}: "
            "the input is too large or a decompression bomb; split it or raise the limit in the config"
        )


class WorkerPool:
    """Up to ``size`` warm workers for one :class:`WorkerSpec`; :meth:`run` blocks until one is free."""

    def __init__(self, spec: WorkerSpec, size: int = 1, idle_s: float | None = None) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.spec = spec
        self.size = size
        self.idle_s = idle_s
        self._idle: list[Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        _register(self)

    def run(self, fn: Callable[..., T], *args: Any, limit_s: float | None = None, label: str | None = None,
            **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker, within ``limit_s`` (default: the spec's ``timeout_s``) of
        wall time, waiting for a free worker included; ``label`` names the work in error messages."""
        limit = self.spec.timeout_s if limit_s is None else limit_s
        label = label or f"{self.spec.name} ({getattr(fn, '__name__', 'call')})"
        start = time.monotonic()
        worker = self._acquire(limit, label)
        try:
            left = max(0.001, limit - (time.monotonic() - start))
            return worker.call(fn, args, kwargs, timeout_s=left, label=label, limit_s=limit)
        finally:
            self._release(worker)

    def _acquire(self, limit: float, label: str) -> Worker:
        deadline = time.monotonic() + limit
        with self._cond:
            while True:
                if self._closed:
                    raise WorkerDied(f"{self.spec.name}: the worker pool is closed")
                if self._idle:
                    return self._idle.pop()
                if self._count < self.size:
                    self._count += 1
                    return Worker(self.spec)
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    key = f" ({self.spec.timeout_key})" if self.spec.timeout_key else ""
                    raise Timeout(f"{label}: every {self.spec.name} worker stayed busy for the whole "
                                  f"{limit:g} s time limit{key}; retry later")

    def _release(self, worker: Worker) -> None:
        with self._cond:
            if self._closed:
                worker.kill()
                return
            self._idle.append(worker)
            self._cond.notify()

    def warm(self) -> None:
        """Start one worker now (in the background) so the first call does not pay the start-up."""
        def start() -> None:
            with contextlib.suppress(Exception):
                self.run(_noop, limit_s=START_TIMEOUT_S, label=f"{self.spec.name} start-up")

        threading.Thread(target=start, name=f"warm-{self.spec.name}", daemon=True).start()

    def reap_idle(self, now: float | None = None) -> int:
        """Stop workers idle for longer than ``idle_s``; returns how many."""
        if self.idle_s is None:
            return 0
        now = time.monotonic() if now is None else now
        with self._cond:
            stale = [w for w in self._idle if w.alive and now - w.last_used > self.idle_s]
        for worker in stale:
            worker.kill()
        return len(stale)

    def pids(self) -> list[int]:
        """Process ids of the live idle workers (tests, diagnostics)."""
        with self._cond:
            return [w.process.pid for w in self._idle if w.process is not None and w.alive]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            worker.kill()


def _noop() -> None:
    return None


_pools: weakref.WeakSet[WorkerPool] = weakref.WeakSet()
_reaper_started = False
_registry_lock = threading.Lock()


def _reaper() -> None:
    while True:
        time.sleep(30)
        for pool in list(_pools):
            with contextlib.suppress(Exception):
                pool.reap_idle()


def _register(pool: WorkerPool) -> None:
    """Track ``pool`` for the idle reaper (started with the first pool) and for :func:`close_all`."""
    global _reaper_started
    with _registry_lock:
        _pools.add(pool)
        if not _reaper_started:
            _reaper_started = True
            threading.Thread(target=_reaper, name="quiver-worker-reaper", daemon=True).start()


@atexit.register
def close_all() -> None:
    """Stop every worker of every pool (at exit; tests)."""
    for pool in list(_pools):
        pool.close()
