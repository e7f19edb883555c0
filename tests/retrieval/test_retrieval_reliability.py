"""A process killed mid-ingest leaves a usable knowledge base; re-running completes it without duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servers.retrieval import manage
from servers.retrieval.ingest import ingest
from servers.retrieval.search import search
from servers.retrieval.store import get_store

from .conftest import make_settings

REPO = Path(__file__).resolve().parents[2]
N_DOCS = 60

CHILD = """
import json, sys
from servers.core.settings import load_settings
from servers.retrieval import manage
from servers.retrieval.ingest import ingest
root = sys.argv[1]
settings = load_settings(overrides={"data_dir": root + "/data", "roots": [root],
                                    "retrieval": {"ingest_batch": 4, "chunk_size": 48, "chunk_overlap": 0}})
manage.create_kb(settings, "kb", exist_ok=True)
def progress(done, total, message):
    print(json.dumps({"done": done, "total": total}), flush=True)
ingest(settings, "kb", paths=[root + "/docs"], progress=progress)
print(json.dumps({"finished": True}), flush=True)
"""


def _write_corpus(folder: Path) -> None:
    folder.mkdir(parents=True)
    for i in range(N_DOCS):
        body = " ".join(f"Document {i} sentence {j} mentions topic{i % 7} and item{i}." for j in range(6))
        (folder / f"doc{i:03d}.md").write_text(f"# Doc {i}\n\n{body}\n", encoding="utf-8")


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_completes_without_duplicates(tmp_path: Path):
    _write_corpus(tmp_path / "docs")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    killed_at = None
    deadline = time.monotonic() + 240
    assert proc.stdout is not None
    for line in proc.stdout:
        msg = json.loads(line)
        if msg.get("finished"):
            break
        if 8 <= msg["done"] < msg["total"]:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = msg["done"]
            break
        assert time.monotonic() < deadline, "the child ingest made no progress"
    proc.wait(timeout=60)
    assert killed_at is not None and proc.returncode == -signal.SIGKILL, "the ingest finished before it was killed"

    settings = make_settings(tmp_path, chunk_size=48, chunk_overlap=0)  # same chunking, one big embed batch
    store = get_store(settings)
    partial = store.count("kb")
    assert partial > 0  # what was stored before the kill is there and searchable
    assert search(settings, "kb", "topic3 item10", mode="bm25", top_k=3).hits

    report = ingest(settings, "kb", paths=[str(tmp_path / "docs")])
    assert report.failed == 0 and report.added + report.unchanged == N_DOCS and report.unchanged >= killed_at
    rows = store.query("kb", "", fields=["id", "doc_id", "version", "chunk_count"])
    assert len(rows) == len({r["id"] for r in rows}), "duplicate chunk ids"
    per_doc: dict[str, list[dict]] = {}
    for row in rows:
        per_doc.setdefault(row["doc_id"], []).append(row)
    assert len(per_doc) == N_DOCS
    assert all(len(chunks) == chunks[0]["chunk_count"] for chunks in per_doc.values()), "incomplete documents"
    assert store.count("kb") == len(rows) == sum(c[0]["chunk_count"] for c in per_doc.values())
    again = ingest(settings, "kb", paths=[str(tmp_path / "docs")])
    assert (again.unchanged, again.chunks_added) == (N_DOCS, 0)

    # exact counts: the recovered knowledge base holds precisely what one uninterrupted ingest stores
    manage.create_kb(settings, "clean")
    clean = ingest(settings, "clean", paths=[str(tmp_path / "docs")])
    assert (clean.added, clean.failed) == (N_DOCS, 0)
    clean_rows = store.query("clean", "", fields=["id", "doc_id"])
    assert store.count("kb") == store.count("clean") == clean.chunks_added == len(rows)
    assert {r["id"] for r in rows} == {r["id"] for r in clean_rows}, "the recovered chunks differ from a clean ingest"
    infos = {info.name: info for info in manage.list_kbs(settings)}
    assert (infos["kb"].documents, infos["kb"].chunks) == (infos["clean"].documents, infos["clean"].chunks) == (
        N_DOCS, clean.chunks_added)

