"""The run store: every evaluation saved under ``DATA_DIR/eval/runs/<run id>/``.

A run folder holds ``run.json`` (the :class:`RunRecord`: id, kind, config, model, input
hashes, figures), ``rows.jsonl`` (one :class:`ItemRow` per item) and ``report.html``, plus
any artefact the evaluation keeps (a TREC run file). Folders are written under a temporary
name and renamed into place, so a run is either complete or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from servers.core.errors import InvalidInput, NotFound
from servers.eval.schemas import ItemRow, Kind, RunRecord, RunSummary

RUN_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{2,80}$")
REPORT_URI = "eval://reports/{run_id}"
LATEST = "latest"


def report_uri(run_id: str) -> str:
    return REPORT_URI.format(run_id=run_id)


def digest(value: Any) -> str:
    """sha256 of bytes, text, or any JSON-able value (canonical JSON)."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8")
    else:
        data = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def mean_ci(values: list[float], *, samples: int = 1000, confidence: float = 0.95, seed: int = 0) -> list[float]:
    """Percentile bootstrap interval of the mean (both ends equal the mean for one value)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return [float(x.mean()), float(x.mean())] if x.size else []
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1) if x.size * samples <= 5e7 else np.array(
        [x[rng.integers(0, x.size, size=x.size)].mean() for _ in range(samples)]
    )
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return [float(lo), float(hi)]


def summarize(rows: list[ItemRow], names: Iterable[str] | None = None, *, confidence: float = 0.95,
              seed: int = 0) -> tuple[dict[str, float], dict[str, list[float]], dict[str, int]]:
    """Mean, bootstrap CI and count of each metric over the rows that have it."""
    if names is None:
        names = list(dict.fromkeys(k for r in rows for k in r.scores))
    metrics, intervals, counts = {}, {}, {}
    for name in names:
        values = [r.scores[name] for r in rows if name in r.scores]
        counts[name] = len(values)
        if values:
            metrics[name] = float(np.mean(values))
            intervals[name] = mean_ci(values, confidence=confidence, seed=seed)
    return metrics, intervals, counts


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunStore:
    """Runs on disk under ``root`` (``DATA_DIR/eval/runs``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> RunStore:
        return cls(data_dir / "eval" / "runs")

    def new_id(self, kind: Kind) -> str:
        return f"{kind.replace('_', '')}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"

    def folder(self, run_id: str) -> Path:
        """The run's folder; ``latest`` names the newest run."""
        if run_id == LATEST:
            runs = self.list()
            if not runs:
                raise NotFound(f"no evaluation run has been saved yet in {self.root}")
            run_id = runs[0].id
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            raise InvalidInput(f"'{run_id}' is not a run id: run ids look like 'retrieval-20250101-120000-ab12cd' "
                               "(list them with eval_list_runs)")
        return self.root / run_id

    def save(self, record: RunRecord, rows: list[ItemRow], *, files: dict[str, str | bytes] | None = None,
             render: Callable[[RunRecord, list[ItemRow]], str] | None = None) -> RunRecord:
        """Write the run (and its report, rendered by ``render``) atomically; returns the record as saved."""
        final = self.folder(record.id)
        if final.exists():
            raise InvalidInput(f"run {record.id} already exists")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{record.id}-{uuid.uuid4().hex[:6]}"
        tmp.mkdir()
        try:
            record.report_path = str(final / "report.html")
            with (tmp / "rows.jsonl").open("w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(row.model_dump_json() + "\n")
            for name, content in (files or {}).items():
                target = tmp / name
                target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content, encoding="utf-8")
            if render is not None:
                (tmp / "report.html").write_text(render(record, rows), encoding="utf-8")
            (tmp / "run.json").write_text(record.model_dump_json(indent=1), encoding="utf-8")
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return record

    def get(self, run_id: str) -> RunRecord:
        path = self.folder(run_id) / "run.json"
        if not path.is_file():
            raise NotFound(f"no evaluation run '{run_id}' in {self.root}; list the runs with eval_list_runs")
        return RunRecord.model_validate_json(path.read_text(encoding="utf-8"))

    def rows(self, run_id: str) -> list[ItemRow]:
        path = self.folder(run_id) / "rows.jsonl"
        if not path.is_file():
            raise NotFound(f"no evaluation run '{run_id}' in {self.root}; list the runs with eval_list_runs")
        with path.open(encoding="utf-8") as fh:
            return [ItemRow.model_validate_json(line) for line in fh if line.strip()]

    def file(self, run_id: str, name: str) -> Path:
        path = self.folder(run_id) / name
        if not path.is_file():
            raise NotFound(f"run '{run_id}' has no {name}")
        return path

    def list(self, kind: str | None = None) -> list[RunSummary]:
        """Saved runs, newest first."""
        if not self.root.is_dir():
            return []
        out = []
        for path in self.root.glob("*/run.json"):
            try:
                record = RunRecord.model_validate_json(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a foreign or damaged folder: not a run
            if kind is None or record.kind == kind:
                out.append(RunSummary.model_validate(record.model_dump(include=set(RunSummary.model_fields))))
        return sorted(out, key=lambda r: (r.created, r.id), reverse=True)
