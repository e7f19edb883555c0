"""The parse server's library: files → Markdown + structure, and chunking."""

from servers.parse.chunking import Chunk, chunk_document, chunk_text
from servers.parse.documents import parse_bytes, parse_path
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
]
