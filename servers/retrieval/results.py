"""What retrieval returns: hits with citations, search results, context blocks, stored chunks and documents."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Mode = Literal["dense", "bm25", "hybrid"]
Fusion = Literal["rrf", "weighted"]
Rewrite = Literal["none", "multi_query", "hyde"]


class Citation(BaseModel):
    """Where a passage comes from."""

    source: str
    title: str
    heading_path: list[str] = Field(default_factory=list)
    page: int | None = Field(default=None, description="first page of the chunk, when the format has pages")
    doc_id: str


class Hit(BaseModel):
    chunk_id: str
    text: str
    score: float = Field(description="higher is better; its scale depends on mode, fusion and rerank")
    citation: Citation
    chunk_index: int
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SearchResult(BaseModel):
    kb: str
    query: str
    mode: Mode
    fusion: Fusion | None = None
    reranked: bool = False
    queries: list[str] = Field(description="the queries actually run (the original plus rewrites)")
    offset: int = Field(default=0, description="rank of the first hit returned (0 = the best)")
    hits: list[Hit]
    next_offset: int | None = Field(default=None, description="offset of the next page of hits; null when no more")
    took_ms: float


def hit_from_row(row: dict[str, Any], score: float) -> Hit:
    page = int(row.get("page") or 0)
    return Hit(
        chunk_id=row["id"], text=row.get("text", ""), score=round(float(score), 6),
        citation=Citation(
            source=row.get("source", ""), title=row.get("title", ""), heading_path=list(row.get("heading_path") or []),
            page=page or None, doc_id=row.get("doc_id", ""),
        ),
        chunk_index=int(row.get("chunk_index") or 0), tags=list(row.get("tags") or []),
        metadata=dict(row.get("metadata") or {}),
    )


class ContextResult(BaseModel):
    """A prompt-ready block: instruction, then numbered passages with their citations."""

    context: str = Field(description="paste this into the prompt, followed by the question")
    passages: list[Hit] = Field(description="the passages in the block, in order: passage [n] is passages[n-1]")
    truncated: bool = Field(description="true when passages were dropped or shortened to fit max_chars")

    def as_text(self) -> str:
        """The block itself, so a client that reads only text gets a prompt-ready block, not JSON."""
        return self.context


class ChunkRecord(BaseModel):
    hit: Hit
    chunk_count: int
    version: str
    created: int
    updated: int


class DocumentChunk(BaseModel):
    """Where one chunk of a document sits (its text is in the document's ``text``)."""

    chunk_id: str
    chunk_index: int
    heading_path: list[str] = Field(default_factory=list)
    page: int | None = None
    chars: int = Field(description="length of the chunk's text")


class DocumentRecord(BaseModel):
    """One page of a stored document: ``limit`` chunks from ``offset``, their texts joined once."""

    doc_id: str
    source: str
    title: str
    chunk_count: int
    created: int
    updated: int
    tags: list[str]
    metadata: dict[str, Any]
    offset: int = Field(default=0, description="index of the first chunk of this page")
    chunks: list[DocumentChunk] = Field(description="this page's chunks in order (ids, headings, pages)")
    text: str = Field(description="this page's chunk texts joined in order")
    next_offset: int | None = Field(default=None, description="offset of the next page; null when nothing is left")

    def as_text(self) -> str:
        """The page as plain text: a heading line, the text, and where the next page starts."""
        end = self.offset + len(self.chunks)
        more = f"\n\n[chunks {self.offset}-{end - 1} of {self.chunk_count}; next page: offset={self.next_offset}]" \
            if self.next_offset is not None else ""
        return f"# {self.title or self.source}\n({self.source}, doc_id {self.doc_id})\n\n{self.text}{more}"
