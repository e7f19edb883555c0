"""Compressed-PDF memory bombs (defect 2): refused before any PDF library inflates them, and a bomb
that gets past the stream caps is stopped by the parse worker's memory cap."""

from __future__ import annotations

import pytest

from servers.core.errors import QuiverError, TooLarge
from servers.core.settings import ParseSettings
from servers.parse.documents import parse_bytes
from servers.parse.isolated import parse_bytes_isolated
from tests.parse.pdf_bombs import deflate_zeros, pdf_with_stream


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return pdf_with_stream(deflate_zeros(400))  # ~0.4 MB inflating to 400 MB


def test_a_genuine_compressed_pdf_still_parses() -> None:
    doc = parse_bytes(pdf_with_stream(deflate_zeros(2)), "fine.pdf")
    assert "Hello bomb" in doc.markdown and doc.pages == 1


def test_stream_bomb_refused_before_inflating(bomb: bytes) -> None:
    assert len(bomb) < 600_000
    with pytest.raises(TooLarge, match=r"decompression bomb.*|parse\.max_stream_mb"):
        parse_bytes(bomb, "bomb.pdf")


def test_nested_flate_bomb_refused() -> None:
    nested = pdf_with_stream(deflate_zeros(400, layers=2), filters=2)
    assert len(nested) < 5_000
    with pytest.raises(TooLarge, match="parse.max_stream_mb"):
        parse_bytes(nested, "nested.pdf")


def test_document_total_cap() -> None:
    with pytest.raises(TooLarge, match="parse.max_uncompressed_mb"):
        parse_bytes(pdf_with_stream(deflate_zeros(60)), "big.pdf", ParseSettings(max_stream_mb=100, max_uncompressed_mb=50))


def test_past_the_stream_caps_the_worker_memory_cap_stops_it(bomb: bytes) -> None:
    settings = ParseSettings(max_stream_mb=10_000, max_uncompressed_mb=10_000, max_memory_mb=300, workers=1)
    with pytest.raises(QuiverError, match=r"300 MB memory cap \(parse\.max_memory_mb"):
        parse_bytes_isolated(bomb, "bomb.pdf", settings)
    fine = parse_bytes_isolated(pdf_with_stream(deflate_zeros(2)), "fine.pdf", settings)
    assert "Hello bomb" in fine.markdown
