"""Typed results of parsing: a document as Markdown plus its structure."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

FORMATS = (
    "pdf", "docx", "pptx", "xlsx", "xls", "odt", "ods", "odp", "rtf", "epub", "csv", "html", "markdown", "json",
    "notebook", "feed", "xml", "zip", "eml", "msg", "image", "text",
)


class PageSpan(BaseModel):
    """Character span ``[start, end)`` of one page (1-based) inside ``ParsedDocument.markdown``."""

    page: int
    start: int
    end: int


class SectionInfo(BaseModel):
    """A heading and the text it governs: ``[start, end)`` runs from the heading to the next heading of the same or a higher level."""

    heading_path: list[str] = Field(description="headings from the top level down to this one")
    level: int = Field(description="1 for '#', 2 for '##', ...")
    start: int
    end: int


class TableInfo(BaseModel):
    """A table rendered as Markdown and where it sits in the document's Markdown."""

    markdown: str
    page: int | None = None
    start: int
    end: int


class DocMetadata(BaseModel):
    size: int = Field(description="file size in bytes")
    sha256: str
    author: str | None = None
    created: str | None = None
    modified: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class ParsedDocument(BaseModel):
    """A parsed file: Markdown text plus title, pages, sections, tables, metadata and warnings."""

    doc_id: str = Field(description="sha256 hex digest of the file bytes")
    source: str = Field(description="path or filename the document came from")
    title: str | None = None
    format: str = Field(description="one of " + ", ".join(FORMATS))
    markdown: str
    pages: int | None = Field(default=None, description="page or slide count where the format has pages")
    page_spans: list[PageSpan] = Field(default_factory=list)
    sections: list[SectionInfo] = Field(default_factory=list)
    tables: list[TableInfo] = Field(default_factory=list)
    metadata: DocMetadata
    warnings: list[str] = Field(default_factory=list)

    def page_of(self, offset: int) -> int | None:
        """The page holding character ``offset`` of the Markdown, if pages are known."""
        for span in self.page_spans:
            if span.start <= offset < span.end:
                return span.page
        return None


class Chunk(BaseModel):
    """One chunk of a document: its text, where it came from and a stable id."""

    id: str = Field(description="sha256 hex of doc_id + text (disambiguated if the text repeats)")
    text: str
    doc_id: str
    index: int = Field(description="position of the chunk in the document, from 0")
    heading_path: list[str] = Field(default_factory=list)
    pages: list[int] = Field(default_factory=list)
    start: int = Field(description="character offset of the chunk in the source Markdown")
    end: int


class ParseResult(ParsedDocument):
    """A parsed document; ``markdown`` may be cut to ``max_chars`` (spans refer to the full text)."""

    markdown_chars: int = Field(description="length of the full Markdown in characters")
    offset: int = Field(default=0, description="where this page of markdown starts in the full Markdown")
    truncated: bool = Field(default=False, description="true when more Markdown follows this page")
    next_offset: int | None = Field(default=None, description="offset of the next page; null when nothing is left")


class FileSummary(BaseModel):
    path: str
    ok: bool
    error: str | None = Field(default=None, description="why this file failed (the others still parsed)")
    doc_id: str | None = None
    title: str | None = None
    format: str | None = None
    pages: int | None = None
    sections: int = 0
    tables: int = 0
    markdown_chars: int = 0
    warnings: list[str] = Field(default_factory=list)
    markdown: str | None = Field(default=None, description="when include_markdown is true, cut to max_chars")


class ParseFilesResult(BaseModel):
    files: list[FileSummary]
    parsed: int
    failed: int
    skipped: list[str] = Field(default_factory=list, description="files not attempted (unsupported type, over max_files)")


class ChunkResult(BaseModel):
    doc_id: str
    strategy: str
    unit: str
    size: int
    count: int = Field(description="number of chunks produced")
    offset: int = Field(default=0, description="index of the first chunk returned")
    chunks: list[Chunk] = Field(description="chunks in document order, from offset (at most max_chunks)")
    truncated: bool = Field(default=False, description="true when more chunks follow this page")
    next_offset: int | None = Field(default=None, description="offset of the next page; null when nothing is left")
