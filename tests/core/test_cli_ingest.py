"""`quiver ingest`: files into a knowledge base from the command line, idempotent on re-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servers.core.cli import main


def test_cli_ingest_then_reingest_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nQuiver parses files into Markdown.\n")
    (docs / "b.txt").write_text("Milvus Lite stores the vectors in one local file.\n")
    argv = ["ingest", "notes", str(docs), "--data-dir", str(tmp_path / "data"), "--root", str(tmp_path), "--tag", "cli"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["added"] == 2 and first["chunks_added"] >= 2 and first["failed"] == 0
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["unchanged"] == 2 and second["chunks_added"] == 0


def test_cli_ingest_outside_roots_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ingest", "notes", "/etc/hostname", "--data-dir", str(tmp_path / "data"), "--root", str(tmp_path)]
    assert main(argv) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == 1 and "outside the allowed roots" in report["errors"][0]["error"]
