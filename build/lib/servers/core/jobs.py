"""The persistent job store: long work (training, evaluations) in subprocesses that outlive a server.

A job is a *kind* (``finetune``, ``eval``, ...), a JSON *config* and an *entry module*
run as ``python -m ENTRY JOB_DIR`` in its own process (its own session, so a launcher
such as ``accelerate launch`` and its workers are signalled together). The store keeps
one SQLite database and one folder per job under ``root`` (normally ``DATA_DIR/jobs``)::

    root/jobs.sqlite
    root/JOB_ID/config.json      the config the entry reads
    root/JOB_ID/job.log          the process's stdout and stderr
    root/JOB_ID/metrics.jsonl    one JSON object per logged step (``JobContext.log_metrics``)
    root/JOB_ID/progress.json    the latest progress (``JobContext.report_progress``)
    root/JOB_ID/outcome.json     written by the process as it ends: state, error, result

States: ``queued → running → completed | failed | cancelled``; ``orphaned`` when the
process ended while no server watched it and left no outcome. A concurrency limit
(``max_running``, counted over the whole store, across processes) keeps the rest
queued; a monitor thread starts them in order. Liveness is the pid *and* its start
time, so a reused pid is never mistaken for the job: a restarted server re-attaches
to a job whose process is still alive and marks dead ones orphaned, and nothing
shows as running that is not. ``cancel`` sends SIGTERM to the job's process group;
a cooperative entry (``ctx.cancelled``) saves and stops, and the store escalates to
SIGKILL after ``kill_after_s``. ``requeue`` runs a finished job again (resume).

Entry modules end with::

    if __name__ == "__main__":
        raise SystemExit(child_main(run))   # run(ctx: JobContext) -> dict | None
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import psutil
from pydantic import BaseModel, Field

from servers.core.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

SRC_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the `servers` package
JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
CONFIG_FILE, LOG_FILE, METRICS_FILE, PROGRESS_FILE, OUTCOME_FILE = (
    "config.json", "job.log", "metrics.jsonl", "progress.json", "outcome.json",
)


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    orphaned = "orphaned"


TERMINAL = frozenset({JobState.completed, JobState.failed, JobState.cancelled, JobState.orphaned})


class JobRecord(BaseModel):
    """One job as the store knows it."""

    job_id: str
    kind: str
    entry: str = Field(description="module run as `python -m ENTRY JOB_DIR`")
    state: JobState
    label: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    folder: str
    command: list[str] = Field(default_factory=list, description="the argv the job runs (or will run)")
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    pid: int | None = None
    attempt: int = Field(default=0, description="how many times the job has been started")
    slot: int | None = Field(default=None, description="concurrency slot while running (0-based)")
    exit_code: int | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    cancel_requested: bool = False

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def path(self) -> Path:
        return Path(self.folder)


# ---------------------------------------------------------------- the child side


@dataclass
class JobContext:
    """What an entry module's ``run`` gets: its folder, config, and ways to report."""

    job_id: str
    folder: Path
    config: dict[str, Any]
    attempt: int
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
        """True once the store asked this job to stop (SIGTERM): save what matters and return."""
        return self.cancel_event.is_set()

    def log_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line (``time`` added) to metrics.jsonl."""
        line = json.dumps({"time": round(time.time(), 3), **record}, default=_json_default)
        with (self.folder / METRICS_FILE).open("a", encoding="utf-8") as sink:
            sink.write(line + "\n")

    def report_progress(self, step: int, total: int | None, message: str = "", **extra: Any) -> None:
        """Replace progress.json atomically with the current step of ``total``."""
        payload = {"step": step, "total": total, "message": message, "updated_at": time.time(), **extra}
        write_json_atomic(self.folder / PROGRESS_FILE, payload)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, default=_json_default, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def child_main(run: Callable[[JobContext], dict[str, Any] | None], argv: list[str] | None = None) -> int:
    """Run an entry's ``run(ctx)`` in the job process and record how it ended in outcome.json.

    SIGTERM sets ``ctx.cancelled`` (a second SIGTERM exits at once). A run that returns
    completes (or is cancelled, if a stop was asked); an exception fails the job with
    its message and the traceback goes to job.log.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ENTRY JOB_DIR", file=sys.stderr)
        return 2
    folder = Path(args[0]).resolve()
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    ctx = JobContext(
        job_id=folder.name, folder=folder, config=config, attempt=int(os.environ.get("QUIVER_JOB_ATTEMPT", "1"))
    )

    def on_term(signum: int, _frame: Any) -> None:
        if ctx.cancel_event.is_set():
            raise SystemExit(128 + signum)
        ctx.cancel_event.set()
        print(f"quiver-job: received signal {signum}; stopping at the next safe point", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, on_term)
    with contextlib.suppress(FileNotFoundError):
        (folder / OUTCOME_FILE).unlink()
    try:
        result = run(ctx)
    except BaseException as exc:  # noqa: BLE001 - every ending is recorded
        traceback.print_exc()
        cancelled = ctx.cancelled or isinstance(exc, KeyboardInterrupt)
        state = JobState.cancelled if cancelled else JobState.failed
        error = None if cancelled else f"{type(exc).__name__}: {exc}".strip()
        write_json_atomic(folder / OUTCOME_FILE, {"state": state, "error": error, "result": None})
        return 1 if state == JobState.failed else 0
    state = JobState.cancelled if ctx.cancelled else JobState.completed
    write_json_atomic(folder / OUTCOME_FILE, {"state": state, "error": None, "result": result})
    return 0


# ---------------------------------------------------------------- the store

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    entry TEXT NOT NULL,
    state TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL,
    folder TEXT NOT NULL,
    launcher TEXT NOT NULL,
    env TEXT NOT NULL,
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    pid INTEGER,
    pid_created REAL,
    attempt INTEGER NOT NULL DEFAULT 0,
    slot INTEGER,
    exit_code INTEGER,
    error TEXT,
    result TEXT,
    cancel_requested_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, queued_at);
"""


def process_alive(pid: int | None, created: float | None) -> bool:
    """Whether ``pid`` is running and is the same process (same start time) as recorded."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if created is not None and abs(proc.create_time() - created) > 1.0:
            return False  # the pid was reused by another process
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return False


class JobStore:
    """Jobs under ``root``: submit, inspect, cancel, requeue; a monitor thread runs the queue.

    Several processes (a stdio and an HTTP server, the CLI) may open the same root: the
    limit ``max_running`` is counted over every running job in the store, and each
    scheduling pass is one SQLite write transaction, so no job starts twice.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        max_running: int = 1,
        poll_s: float = 1.0,
        kill_after_s: float = 60.0,
        slot_devices: bool = False,
    ) -> None:
        if max_running < 1:
            raise InvalidInput(f"max_running must be at least 1 (got {max_running})")
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "jobs.sqlite"
        self.max_running = max_running
        self.poll_s = poll_s
        self.kill_after_s = kill_after_s
        self.slot_devices = slot_devices  # give each job CUDA_VISIBLE_DEVICES=<its slot>
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.RLock()
        self._monitor: threading.Thread | None = None
        self._stop = threading.Event()
        with self._db() as db:
            db.executescript(SCHEMA)
        self.refresh()

    # ------------------------------------------------------------ database

    @contextlib.contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            if write:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            else:
                yield db
        finally:
            db.close()

    def _record(self, row: sqlite3.Row) -> JobRecord:
        folder = Path(row["folder"])
        launcher = json.loads(row["launcher"])
        return JobRecord(
            job_id=row["job_id"], kind=row["kind"], entry=row["entry"], state=JobState(row["state"]),
            label=row["label"], config=json.loads(row["config"]), folder=str(folder),
            command=[*launcher, "-m", row["entry"], str(folder)],
            created_at=row["created_at"], started_at=row["started_at"], ended_at=row["ended_at"], pid=row["pid"],
            attempt=row["attempt"], slot=row["slot"], exit_code=row["exit_code"], error=row["error"],
            result=json.loads(row["result"]) if row["result"] else None,
            cancel_requested=row["cancel_requested_at"] is not None,
        )

    def _row(self, db: sqlite3.Connection, job_id: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no job '{job_id}' in {self.root}: list the jobs to see their ids")
        return row

    # ------------------------------------------------------------ public API

    def submit(
        self,
        kind: str,
        entry: str,
        config: dict[str, Any],
        *,
        job_id: str | None = None,
        label: str = "",
        launcher: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> JobRecord:
        """Record a queued job (folder + config.json) and start it if a slot is free.

        ``launcher`` is the argv before ``-m ENTRY JOB_DIR`` (default: this Python);
        e.g. ``[python, "-m", "accelerate.commands.launch", "--num_processes", "2"]``.
        ``env`` adds environment variables for the job's process.
        """
        if not MODULE_RE.match(entry):
            raise InvalidInput(f"entry '{entry}' is not a dotted module name")
        if not kind or not MODULE_RE.match(kind):
            raise InvalidInput(f"job kind '{kind}' must be a short identifier such as 'finetune'")
        job_id = job_id or f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        if not JOB_ID_RE.match(job_id):
            raise InvalidInput(
                f"job id '{job_id}' is not valid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        folder = self.root / job_id
        launcher = list(launcher or [sys.executable])
        now = time.time()
        with self._lock, self._db(write=True) as db:
            if db.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job_id,)).fetchone():
                raise InvalidInput(f"a job '{job_id}' already exists: choose another id or omit it")
            folder.mkdir(parents=True, exist_ok=True)
            write_json_atomic(folder / CONFIG_FILE, config)
            db.execute(
                "INSERT INTO jobs (job_id, kind, entry, state, label, config, folder, launcher, env, created_at, "
                "queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, kind, entry, JobState.queued, label, json.dumps(config, default=_json_default),
                 str(folder), json.dumps(launcher), json.dumps(env or {}), now, now),
            )
        self.refresh()
        return self.get(job_id, refresh=False)

    def get(self, job_id: str, *, refresh: bool = True) -> JobRecord:
        """The job's current record; raises NotFound for an unknown id."""
        if refresh:
            self.refresh()
        with self._db() as db:
            return self._record(self._row(db, job_id))

    def list(self, kind: str | None = None, states: list[JobState] | None = None, limit: int = 100) -> list[JobRecord]:
        """Jobs, newest first, optionally of one kind and in given states."""
        self.refresh()
        sql, params = "SELECT * FROM jobs WHERE 1=1", []
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            params += [str(s) for s in states]
        sql += " ORDER BY created_at DESC LIMIT ?"
        params.append(limit)
        with self._db() as db:
            return [self._record(row) for row in db.execute(sql, params)]

    def cancel(self, job_id: str) -> JobRecord:
        """Stop a job: a queued one is cancelled at once; a running one gets SIGTERM (SIGKILL after
        ``kill_after_s``). A finished job is returned unchanged."""
        with self._lock, self._db(write=True) as db:
            row = self._row(db, job_id)
            state = JobState(row["state"])
            now = time.time()
            if state == JobState.queued:
                db.execute("UPDATE jobs SET state = ?, ended_at = ?, cancel_requested_at = ? WHERE job_id = ?",
                           (JobState.cancelled, now, now, job_id))
            elif state == JobState.running:
                if row["cancel_requested_at"] is None:
                    db.execute("UPDATE jobs SET cancel_requested_at = ? WHERE job_id = ?", (now, job_id))
                self._signal(row, signal.SIGTERM)
        self.refresh()
        return self.get(job_id, refresh=False)

    def requeue(self, job_id: str, config: dict[str, Any] | None = None) -> JobRecord:
        """Queue a failed, cancelled or orphaned job again (same id, folder and metrics), optionally with a
        new config; the entry sees ``attempt`` + 1. Used to resume from a checkpoint."""
        with self._lock, self._db(write=True) as db:
            row = self._row(db, job_id)
            state = JobState(row["state"])
            if state not in (JobState.failed, JobState.cancelled, JobState.orphaned):
                raise InvalidInput(
                    f"job '{job_id}' is {state}: only a failed, cancelled or orphaned job can be resumed"
                    + (" (a completed one is finished; start a new job to train further)" if state == JobState.completed else "")
                )
            folder = Path(row["folder"])
            new_config = config if config is not None else json.loads(row["config"])
            write_json_atomic(folder / CONFIG_FILE, new_config)
            with contextlib.suppress(FileNotFoundError):
                (folder / OUTCOME_FILE).unlink()
            db.execute(
                "UPDATE jobs SET state = ?, config = ?, queued_at = ?, ended_at = NULL, pid = NULL, pid_created = NULL, "
                "slot = NULL, exit_code = NULL, error = NULL, result = NULL, cancel_requested_at = NULL WHERE job_id = ?",
                (JobState.queued, json.dumps(new_config, default=_json_default), time.time(), job_id),
            )
        self.refresh()
        return self.get(job_id, refresh=False)

    def remove(self, job_id: str) -> None:
        """Delete a finished job's record and folder."""
        import shutil

        with self._lock, self._db(write=True) as db:
            row = self._row(db, job_id)
            if JobState(row["state"]) not in TERMINAL:
                raise InvalidInput(f"job '{job_id}' is {row['state']}: cancel it before removing it")
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
        shutil.rmtree(row["folder"], ignore_errors=True)

    def wait(
        self,
        job_id: str,
        timeout_s: float | None = None,
        on_progress: Callable[[JobRecord, dict[str, Any] | None], None] | None = None,
        poll_s: float = 0.5,
    ) -> JobRecord:
        """Block until the job ends or ``timeout_s`` passes; ``on_progress(record, progress)`` is called
        whenever progress.json changes. Returns the record (check ``terminal``)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        seen: Any = None
        while True:
            record = self.get(job_id)
            progress = self.progress(job_id)
            if on_progress and progress and progress != seen:
                seen = progress
                on_progress(record, progress)
            if record.terminal or (deadline is not None and time.monotonic() >= deadline):
                return record
            time.sleep(poll_s if deadline is None else max(0.0, min(poll_s, deadline - time.monotonic())))

    # ------------------------------------------------------------ job files

    def folder(self, job_id: str) -> Path:
        with self._db() as db:
            return Path(self._row(db, job_id)["folder"])

    def progress(self, job_id: str) -> dict[str, Any] | None:
        """The latest progress.json of the job, or None before its first report."""
        path = self.folder(job_id) / PROGRESS_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def metrics(self, job_id: str, since_step: int | None = None) -> list[dict[str, Any]]:
        """The metrics.jsonl records (those with ``step`` > ``since_step`` when given); a torn last line is skipped."""
        return read_metrics(self.folder(job_id) / METRICS_FILE, since_step)

    def log_tail(self, job_id: str, lines: int = 50) -> str:
        """The last ``lines`` lines of the job's stdout/stderr."""
        return tail(self.folder(job_id) / LOG_FILE, lines)

    # ------------------------------------------------------------ monitoring and scheduling

    def start_monitor(self) -> None:
        """Run ``refresh`` every ``poll_s`` in a daemon thread (idempotent): queued jobs start without a call."""
        with self._lock:
            if self._monitor and self._monitor.is_alive():
                return
            self._stop.clear()
            self._monitor = threading.Thread(target=self._monitor_loop, name="quiver-jobs", daemon=True)
            self._monitor.start()

    def stop_monitor(self) -> None:
        self._stop.set()
        if self._monitor:
            self._monitor.join(timeout=5)

    def _monitor_loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.refresh()
            except Exception:  # the monitor must keep going; the next pass retries
                log.exception("job monitor pass failed")

    def refresh(self) -> None:
        """Settle every running job (ended? orphaned? overdue cancel?) and start queued ones up to the limit."""
        with self._lock, self._db(write=True) as db:
            for row in db.execute("SELECT * FROM jobs WHERE state = ?", (JobState.running,)).fetchall():
                self._settle(db, row)
            running = db.execute("SELECT slot FROM jobs WHERE state = ?", (JobState.running,)).fetchall()
            used = {r["slot"] for r in running}
            free = self.max_running - len(running)
            queued = db.execute(
                "SELECT * FROM jobs WHERE state = ? ORDER BY queued_at LIMIT ?", (JobState.queued, max(free, 0))
            ).fetchall()
            for row in queued:
                slot = next(i for i in range(len(used) + 1) if i not in used)
                used.add(slot)
                self._launch(db, row, slot)

    def _settle(self, db: sqlite3.Connection, row: sqlite3.Row) -> None:
        job_id, pid = row["job_id"], row["pid"]
        child = self._children.get(job_id)
        exit_code: int | None = None
        if child is not None:
            exit_code = child.poll()
            alive = exit_code is None
        else:  # started by another (or a previous) server process: judge by pid + start time
            alive = process_alive(pid, row["pid_created"])
        if alive:
            asked = row["cancel_requested_at"]
            if asked is not None and time.time() - asked > self.kill_after_s:
                log.warning("job %s ignored SIGTERM for %.0fs; sending SIGKILL", job_id, self.kill_after_s)
                self._signal(row, signal.SIGKILL)
            return
        self._children.pop(job_id, None)
        folder = Path(row["folder"])
        outcome = _read_json(folder / OUTCOME_FILE)
        result = None
        if outcome and outcome.get("state") in {s.value for s in TERMINAL}:
            state, error, result = JobState(outcome["state"]), outcome.get("error"), outcome.get("result")
        elif row["cancel_requested_at"] is not None:
            state, error = JobState.cancelled, None
        elif exit_code is not None:
            state = JobState.failed
            how = f"was killed by signal {-exit_code}" if exit_code < 0 else f"exited with code {exit_code}"
            error = f"the job process {how} without recording an outcome; last log lines:\n{tail(folder / LOG_FILE, 15)}"
        else:
            state = JobState.orphaned
            error = (
                f"the job process (pid {pid}) ended while no server was watching and recorded no outcome "
                "(killed, or the machine restarted); resume it to continue from its last checkpoint"
            )
        db.execute(
            "UPDATE jobs SET state = ?, ended_at = ?, exit_code = ?, error = ?, result = ?, slot = NULL WHERE job_id = ?",
            (state, time.time(), exit_code, error, json.dumps(result, default=_json_default) if result is not None else None,
             job_id),
        )
        log.info("job %s ended: %s", job_id, state)

    def _launch(self, db: sqlite3.Connection, row: sqlite3.Row, slot: int) -> None:
        job_id, folder = row["job_id"], Path(row["folder"])
        attempt = row["attempt"] + 1
        command = [*json.loads(row["launcher"]), "-m", row["entry"], str(folder)]
        env = {**os.environ, **json.loads(row["env"])}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC_ROOT), env.get("PYTHONPATH", "")) if p)
        env["QUIVER_JOB_ID"], env["QUIVER_JOB_ATTEMPT"], env["QUIVER_JOB_SLOT"] = job_id, str(attempt), str(slot)
        if self.slot_devices and "CUDA_VISIBLE_DEVICES" not in json.loads(row["env"]):
            env["CUDA_VISIBLE_DEVICES"] = str(slot)
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (folder / OUTCOME_FILE).unlink()
        try:
            with (folder / LOG_FILE).open("ab") as sink:
                sink.write(f"\n== attempt {attempt} started {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                           f"{' '.join(command)}\n".encode())
                sink.flush()
                child = subprocess.Popen(
                    command, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            db.execute(
                "UPDATE jobs SET state = ?, attempt = ?, ended_at = ?, error = ? WHERE job_id = ?",
                (JobState.failed, attempt, time.time(), f"could not start {command[0]}: {exc}", job_id),
            )
            return
        self._children[job_id] = child
        try:
            created = psutil.Process(child.pid).create_time()
        except psutil.NoSuchProcess:  # it already ended; settled on the next pass
            created = None
        db.execute(
            "UPDATE jobs SET state = ?, started_at = ?, pid = ?, pid_created = ?, attempt = ?, slot = ? WHERE job_id = ?",
            (JobState.running, time.time(), child.pid, created, attempt, slot, job_id),
        )
        log.info("job %s started (pid %s, slot %s)", job_id, child.pid, slot)

    def _signal(self, row: sqlite3.Row, sig: signal.Signals) -> None:
        pid = row["pid"]
        if not pid or not process_alive(pid, row["pid_created"]):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), sig)  # the job runs in its own session: launcher and workers together


# ---------------------------------------------------------------- helpers


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def read_metrics(path: Path, since_step: int | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written right now
        if since_step is not None and not (isinstance(record.get("step"), int) and record["step"] > since_step):
            continue
        out.append(record)
    return out


def tail(path: Path, lines: int = 50) -> str:
    try:
        with path.open("rb") as source:
            source.seek(0, os.SEEK_END)
            size = source.tell()
            source.seek(max(0, size - 256 * max(lines, 1) - 4096))
            data = source.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


_stores: dict[Path, JobStore] = {}
_stores_lock = threading.Lock()


def job_store(root: Path | str, *, max_running: int = 1, monitor: bool = True, slot_devices: bool = False) -> JobStore:
    """The process-wide store for ``root`` (opened once), with its monitor thread running when ``monitor``."""
    key = Path(root).expanduser().resolve()
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = JobStore(key, max_running=max_running, slot_devices=slot_devices)
        store.max_running = max_running
    if monitor:
        store.start_monitor()
    return store
