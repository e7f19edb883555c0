"""Ingest: idempotency, replacement without stale chunks, per-file errors, model mismatch, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from servers.core.errors import AccessDenied, ConfigError, InvalidInput, NotFound
from servers.core.models import SHIPPED, _package_dir
from servers.retrieval import manage
from servers.retrieval.ingest import ingest
from servers.retrieval.search import search
from servers.retrieval.store import doc_id_for, get_store, validate_kb_name

from .conftest import make_settings, write_docs


def _rows(settings, kb):
    store = get_store(settings)
    return store.query(kb, "", fields=["id", "doc_id", "version", "chunk_count", "source", "text"])


def test_idempotent_ingest_and_replacement(tmp_path: Path):
    settings = make_settings(tmp_path, chunk_size=32, chunk_overlap=4)
    folder = write_docs(tmp_path / "docs")
    long_doc = folder / "long.md"
    long_doc.write_text("# Long\n\n" + "\n\n".join(f"Paragraph {i} talks about topic {i} at length." * 3 for i in range(12)))
    manage.create_kb(settings, "kb")
    calls = []
    first = ingest(settings, "kb", paths=[str(folder)], progress=lambda d, t, m: calls.append((d, t, m)))
    assert (first.documents, first.added, first.unchanged, first.failed) == (5, 5, 0, 0)
    assert first.chunks_added == len(_rows(settings, "kb")) > 5
    assert calls[0][0] == 0 and calls[-1][:2] == (5, 5) and "chunks added" in calls[-1][2]
    assert set(first.timings) == {"read_parse", "embed", "store", "total"}

    again = ingest(settings, "kb", paths=[str(folder)])
    assert (again.added, again.replaced, again.unchanged, again.chunks_added) == (0, 0, 5, 0)
    assert again.chunks_skipped == first.chunks_added and again.timings["embed"] == 0

    long_doc.write_text("# Long\n\nNow the document is short and speaks of zebras.")
    changed = ingest(settings, "kb", paths=[str(folder)])
    assert (changed.added, changed.replaced, changed.unchanged) == (0, 1, 4)
    rows = _rows(settings, "kb")
    mine = [r for r in rows if r["source"] == str(long_doc)]
    assert len({r["version"] for r in mine}) == 1 and len(mine) == mine[0]["chunk_count"]
    assert changed.chunks_removed > 0 and all("Paragraph" not in r["text"] for r in mine)
    assert len(rows) == len({r["id"] for r in rows}) == sum(1 for _ in rows)
    hits = search(settings, "kb", "zebras", mode="bm25", top_k=3).hits
    assert hits and hits[0].citation.source == str(long_doc)

    # changing the chunking options is a new version of every document
    rechunked = ingest(settings, "kb", paths=[str(folder)], chunk_size=64)
    assert rechunked.replaced == 5


def test_raw_texts_identity_tags_and_metadata(tmp_path: Path):
    settings = make_settings(tmp_path)
    manage.create_kb(settings, "notes")
    r1 = ingest(settings, "notes", texts=[{"text": "Alpha version of the note.", "source": "note:1", "tags": ["x"]},
                                          {"text": "A note without a source."}])
    assert r1.added == 2
    r2 = ingest(settings, "notes", texts=[{"text": "Beta version of the note.", "source": "note:1", "tags": ["x"]}])
    assert (r2.replaced, r2.chunks_removed) == (1, 1)
    r3 = ingest(settings, "notes", texts=[{"text": "Beta version of the note.", "source": "note:1", "tags": ["y"]}])
    assert r3.replaced == 1  # tags are part of the version
    doc = get_store(settings).query("notes", f'doc_id == "{doc_id_for("note:1")}"')
    assert [d["text"] for d in doc] == ["Beta version of the note."] and doc[0]["tags"] == ["y"]
    assert get_store(settings).info("notes").documents == 2


def test_per_file_errors_do_not_abort(tmp_path: Path):
    settings = make_settings(tmp_path / "root")
    folder = write_docs(tmp_path / "root" / "docs", {"good.md": "# Good\n\nA readable document about owls."})
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a pdf")
    (folder / "broken.docx").write_bytes(b"PK\x03\x04 not a zip")
    (folder / ".hidden.md").write_text("never ingested")
    (folder / "empty.md").write_text("   \n\n")
    outside = tmp_path / "outside.md"
    outside.write_text("# Secret\n\nOutside the roots.")
    os.symlink(outside, folder / "link.md")
    manage.create_kb(settings, "kb")
    report = ingest(settings, "kb", paths=[str(folder), str(tmp_path / "root" / "missing.md"), str(outside)])
    assert report.added == 1
    by_source = {Path(e.source).name: e.error for e in report.errors}
    assert "broken.pdf" in by_source and "broken.docx" in by_source
    assert "no text to index" in by_source["empty.md"]
    assert "missing.md" in by_source and "no file" in by_source["missing.md"]
    assert "outside the allowed roots" in by_source["outside.md"]
    assert report.failed == len(report.errors) == 6
    assert get_store(settings).count("kb") >= 1
    assert {r["source"] for r in _rows(settings, "kb")} == {str(folder / "good.md")}


def test_bad_input_is_clear(tmp_path: Path):
    settings = make_settings(tmp_path)
    with pytest.raises(InvalidInput, match="invalid knowledge base name"):
        validate_kb_name("bad-name!")
    with pytest.raises(InvalidInput, match="invalid knowledge base name"):
        manage.create_kb(settings, "1abc")
    with pytest.raises(NotFound, match="no knowledge base named 'nope'.*kb_create"):
        ingest(settings, "nope", texts=[{"text": "x"}])
    manage.create_kb(settings, "kb")
    with pytest.raises(InvalidInput, match="already exists"):
        manage.create_kb(settings, "kb")
    assert manage.create_kb(settings, "kb", exist_ok=True).name == "kb"
    with pytest.raises(InvalidInput, match="nothing to ingest"):
        ingest(settings, "kb")
    with pytest.raises(InvalidInput, match="chunk_overlap"):
        ingest(settings, "kb", texts=[{"text": "x"}], chunk_size=32, chunk_overlap=32)
    with pytest.raises(AccessDenied):
        from servers.core.roots import resolve_under_roots

        resolve_under_roots("/etc/passwd", settings.root_paths())
    report = ingest(settings, "kb", paths=["/etc/passwd"])
    assert report.added == 0 and "outside the allowed roots" in report.errors[0].error


def test_model_mismatch_is_refused(tmp_path: Path):
    settings = make_settings(tmp_path)
    manage.create_kb(settings, "kb")
    ingest(settings, "kb", texts=[{"text": "Owls hunt at night.", "source": "owl"}])
    # the same weights under another name (a local folder) is another model as far as the KB knows
    folder = str(_package_dir(SHIPPED["minilm"].package) / SHIPPED["minilm"].member)
    other = settings.model_copy(update={"models": settings.models.model_copy(update={"embedder": folder})})
    with pytest.raises(ConfigError, match="built with embedding model 'minilm'.*set models.embedder = 'minilm'"):
        ingest(other, "kb", texts=[{"text": "More owls."}])
    with pytest.raises(ConfigError, match="built with embedding model 'minilm'"):
        search(other, "kb", "owls")
    assert search(settings, "kb", "owls").hits  # the right model still works
