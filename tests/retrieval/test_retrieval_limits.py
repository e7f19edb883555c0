"""Hardening of ingest and reads: metadata size caps, replies that do not multiply what was stored,
exact knowledge-base names, per-file errors for impossible paths, Quiver's own files off limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servers.core.errors import InvalidInput, TooLarge
from servers.retrieval import api, manage
from servers.retrieval.store import validate_kb_name

from .conftest import make_settings


def test_metadata_is_capped_and_given_once_per_document(tmp_path: Path) -> None:
    """Defect 6: metadata had no cap and was copied onto every chunk: a 0.15 MB ingest produced an 83 MB
    kb_get_document reply. Now metadata past retrieval.max_metadata_bytes is refused, and a document's
    reply carries its tags and metadata once, not once per chunk."""
    settings = make_settings(tmp_path, chunk_size=16, chunk_overlap=0)
    manage.create_kb(settings, "kb")
    big = {"blob": "x" * (settings.retrieval.max_metadata_bytes + 1)}
    with pytest.raises(TooLarge, match="retrieval.max_metadata_bytes"):
        api.ingest(settings, "kb", texts=[{"text": "a b c", "source": "s"}], metadata=big)
    report = api.ingest(settings, "kb", texts=[{"text": "a b c", "source": "per-text", "metadata": big}])
    assert report.failed == 1 and "retrieval.max_metadata_bytes" in report.errors[0].error
    with pytest.raises(InvalidInput, match="plain JSON"):
        api.ingest(settings, "kb", texts=[{"text": "a", "source": "nan"}], metadata={"x": float("nan")})

    meta = {"note": "m" * 4000, "tags_in_meta": list(range(100))}
    text = " ".join(f"word{i}" for i in range(3000))  # ~0.02 MB of text, hundreds of 16-token chunks
    report = api.ingest(settings, "kb", texts=[{"text": text, "source": "doc", "metadata": meta, "tags": ["t"]}])
    assert report.failed == 0 and report.chunks_added > 100
    doc = api.get_document(settings, "kb", source="doc")
    assert doc.metadata == meta and doc.tags == ["t"] and doc.chunk_count == report.chunks_added
    assert all(not {"metadata", "tags"} & set(c.model_dump()) for c in doc.chunks)
    reply, per_chunk = len(doc.model_dump_json()), 400  # ids, citation and score of one chunk
    bound = 2 * len(text) + per_chunk * doc.chunk_count + 2 * len(json.dumps(meta))
    assert reply < bound, f"reply of {reply:,} bytes (metadata copied per chunk would be ~{len(json.dumps(meta)) * doc.chunk_count:,})"
    hit = api.search(settings, "kb", "word10", mode="bm25", top_k=1).hits[0]  # a single chunk still has them
    assert hit.metadata == meta and hit.tags == ["t"]


def test_kb_names_match_whole(tmp_path: Path) -> None:
    """Defect 10: 'docs\\n' passed the name check (re.match with $), creating a look-alike knowledge base."""
    for bad in ("docs\n", "docs\n\n", "\ndocs", "docs "):
        with pytest.raises(InvalidInput):
            validate_kb_name(bad)
    assert validate_kb_name("docs") == "docs"


def test_impossible_paths_are_per_file_errors(tmp_path: Path) -> None:
    """Defect 10: an over-long path returned an unexplained 'Error executing tool' and logged the whole
    10 MB path; now each bad path is one short per-file error and the rest of the ingest goes on."""
    settings = make_settings(tmp_path)
    (tmp_path / "ok.md").write_text("# Fine\n\nA good file.\n", encoding="utf-8")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    internal = settings.data_path / "milvus.db"
    paths = ["a/" * 2_000_000, "x" * 300 + ".md", "loop/x.md", str(tmp_path / "ok.md"), str(internal),
             "\x1b[31mred\x00.md"]
    report = api.ingest(settings, "kb", paths=paths)
    assert report.added == 1 and report.failed == len(paths) - 1, report.errors
    assert len(json.dumps(report.model_dump())) < 20_000
    errors = " | ".join(e.error for e in report.errors)
    assert "characters long" in errors and "255 bytes" in errors and "loop" in errors and "keeps for itself" in errors
    assert "\x1b" not in errors and "\x00" not in errors


def test_an_ingest_past_its_time_limit_stops_cleanly_and_a_rerun_continues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: one kb_ingest call could run without bound (a 570 KB text took > 300 s). Past
    retrieval.ingest_timeout_s it stops with a Timeout naming the setting; the batches stored before
    are complete and the same ingest again finishes the rest."""
    from servers.core.errors import Timeout
    from servers.retrieval import ingest as ingest_module

    settings = make_settings(tmp_path, ingest_batch=4, chunk_size=64, chunk_overlap=0)
    manage.create_kb(settings, "kb")
    texts = [{"text": f"Document number {i} talks about topic {i} and nothing else.", "source": f"doc{i}"}
             for i in range(12)]
    now = [0.0]
    monkeypatch.setattr(ingest_module, "clock", lambda: now[0])

    def progress(done: int, total: int | None, message: str) -> None:
        if "chunks added" in message and done > 0:
            now[0] += settings.retrieval.ingest_timeout_s + 1  # the first stored batch used up the budget

    with pytest.raises(Timeout, match="retrieval.ingest_timeout_s") as err:
        api.ingest(settings, "kb", texts=texts, progress=progress)
    stored = api.describe(settings, "kb")
    assert 0 < stored.documents < len(texts) and f"{stored.documents} document(s) stored" in str(err.value)
    now[0] = 0.0
    report = api.ingest(settings, "kb", texts=texts)
    assert report.failed == 0 and report.unchanged == stored.documents and report.added == len(texts) - stored.documents
    assert api.describe(settings, "kb").documents == len(texts)
