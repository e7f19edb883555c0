"""Where documents come from: the one folder walker (shared with retrieval's ingest), base64
content, and raw text parsed as text (not as a file)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from servers.core.errors import InvalidInput, TooLarge
from servers.core.settings import ParseSettings
from servers.parse.documents import parse_text
from servers.parse.inputs import decode_base64, supported, walk_files


def test_walker_rules(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    for name in ("b.md", "a.txt", ".hidden.md", "sub/c.pdf", "sub/deeper/d.md", ".git/config", "data/kb.db"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("x")
    (root / "linked_dir").symlink_to(outside, target_is_directory=True)
    (root / "linked.md").symlink_to(outside / "secret.md")

    def names(**kwargs: object) -> list[str]:
        return [str(p.relative_to(root)) for p in walk_files(root, skip=root / "data", **kwargs)]

    # a folder's files first (sorted), then its subfolders'; no hidden entries, no linked folders, no data dir
    assert names() == ["a.txt", "b.md", "linked.md", "sub/c.pdf", "sub/deeper/d.md"]
    assert names(recursive=False) == ["a.txt", "b.md", "linked.md"]
    assert names(pattern="*.md") == ["b.md", "linked.md", "sub/deeper/d.md"]
    keep, skipped = supported([root / "a.txt", root / "x.exe"])
    assert keep == [root / "a.txt"] and skipped == [f"{root / 'x.exe'} (unsupported type)"]


def test_base64_content() -> None:
    assert decode_base64(base64.b64encode(b"hello").decode(), "a.txt", 1.0) == b"hello"
    with pytest.raises(InvalidInput, match="not valid base64"):
        decode_base64("!!!", "a.txt", 1.0)
    with pytest.raises(TooLarge, match="max_file_mb"):
        decode_base64("A" * 2_000_000, "big.bin", 1.0)  # refused before decoding


def test_raw_text_is_parsed_as_text() -> None:
    doc = parse_text("# Guide\n\n## Install\n\nRun make setup.\n", source="note:1")
    assert doc.format == "markdown" and doc.title == "Guide" and doc.source == "note:1"
    assert [s.heading_path for s in doc.sections] == [["Guide"], ["Guide", "Install"]]
    # text that happens to start like a PDF or a zip is still text: no format sniffing of strings
    assert parse_text("%PDF-1.7 is the version I use", source="t").markdown.startswith("%PDF-1.7")
    assert parse_text("PK\x03\x04 zip-like words", source="t").format == "markdown"
    with pytest.raises(TooLarge, match="max_file_mb"):
        parse_text("x" * 2_000_000, source="big", settings=ParseSettings(max_file_mb=1))


def test_parse_document_and_chunk_pages_return_the_whole_text(tmp_path: Path) -> None:
    from servers.parse import api
    from tests.core.helpers import make_settings

    settings = make_settings(tmp_path)
    doc = tmp_path / "long.md"
    doc.write_text("# Title\n\n" + "\n\n".join(f"Paragraph {i}: " + "word " * 30 for i in range(40)), encoding="utf-8")
    whole = api.parse_document(settings, path=str(doc), max_chars=None)
    pages, offset = [], 0
    while offset is not None:
        page = api.parse_document(settings, path=str(doc), max_chars=1000, offset=offset)
        assert page.offset == offset and len(page.markdown) <= 1000 and page.markdown_chars == len(whole.markdown)
        pages.append(page.markdown)
        offset = page.next_offset
    assert len(pages) > 3 and "".join(pages) == whole.markdown and not page.truncated
    with pytest.raises(InvalidInput, match="past the end"):
        api.parse_document(settings, path=str(doc), offset=len(whole.markdown) + 1)
    every = api.chunk(settings, path=str(doc), size=200, unit="chars", overlap=0)
    got, offset = [], 0
    while offset is not None:
        part = api.chunk(settings, path=str(doc), size=200, unit="chars", overlap=0, max_chunks=7, offset=offset)
        got += [c.id for c in part.chunks]
        offset = part.next_offset
    assert got == [c.id for c in every.chunks] and every.count == len(got) > 7
