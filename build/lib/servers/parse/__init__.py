"""The parse server's library: files → Markdown + structure, and chunking.

:mod:`.api` holds the public functions, one per tool (:mod:`.server` declares them); the names
below are the building blocks other packages import (retrieval's ingest)."""

from servers.parse.chunking import Chunk, chunk_document, chunk_text
from servers.parse.documents import parse_bytes, parse_path, parse_text
from servers.parse.schema import DocMetadata, PageSpan, ParsedDocument, SectionInfo, TableInfo

__all__ = [
    "Chunk",
    "DocMetadata",
    "PageSpan",
    "ParsedDocument",
    "SectionInfo",
    "TableInfo",
    "chunk_document",
    "chunk_text",
    "parse_bytes",
    "parse_path",
    "parse_text",
]
