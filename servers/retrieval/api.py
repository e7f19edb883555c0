"""The retrieval capability's public functions, one per MCP tool (same names and arguments).

``server.py`` exposes them as tools (``kb_create`` → :func:`create`, ...); the CLI's ``quiver
ingest`` and other packages call them directly. Defaults come from ``settings.retrieval``
(and ``settings.rerank`` for the rerank method).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from servers.core.errors import InvalidInput
from servers.core.progress import Progress
from servers.core.settings import Settings
from servers.retrieval import browse, manage
from servers.retrieval.context import build_context
from servers.retrieval.filters import SearchFilter
from servers.retrieval.ingest import IngestReport, TextDocument
from servers.retrieval.ingest import ingest as run_ingest
from servers.retrieval.results import (
    ChunkRecord,
    ContextResult,
    DocumentRecord,
    Fusion,
    Mode,
    Rewrite,
    SearchResult,
)
from servers.retrieval.search import Searcher
from servers.retrieval.store import NAME_RE, KnowledgeBaseInfo, get_store

# The pattern is published in the schema (clients and constrained decoding see which names can exist)
# but not enforced by pydantic: store.validate_kb_name rejects a bad name with a message that says how to fix it.
KbName = Annotated[str, Field(description="knowledge base name (letters, digits, underscores; starts with a letter)",
                              json_schema_extra={"pattern": NAME_RE.pattern})]
FILTER_HELP = (
    "optional conditions, all ANDed: sources [exact], source_prefix, doc_ids, tags_any, tags_all, "
    "created_after/created_before (document date), updated_after/updated_before (ingest time) as ISO dates "
    "or epoch seconds, metadata {key: value | [any of] | {$eq,$ne,$gt,$gte,$lt,$lte,$in,$nin,$contains,$exists}}. "
    'Example: {"tags_any": ["hr"], "created_after": "2024-01-01", "metadata": {"year": {"$gte": 2020}}}'
)
Filter = Annotated[SearchFilter | None, Field(description=FILTER_HELP)]
ModeArg = Annotated[Mode, Field(description="retrieval mode: hybrid (dense + BM25), dense (meaning) or bm25 (exact words)")]
RerankArg = Annotated[bool, Field(description="rescore the top candidates with the rerank library")]


class KnowledgeBaseList(BaseModel):
    knowledge_bases: list[KnowledgeBaseInfo]


class DropResult(BaseModel):
    kb: str
    dropped: bool
    chunks_deleted: int


def create(
    settings: Settings,
    name: KbName,
    description: Annotated[str, Field(description="what the knowledge base holds (optional)", max_length=1000)] = "",
    exist_ok: Annotated[bool, Field(description="return the existing one instead of failing")] = False,
) -> KnowledgeBaseInfo:
    """An empty knowledge base recording the configured embedding model and its dimension."""
    return manage.create_kb(settings, name, description=description, exist_ok=exist_ok)


def list_kbs(settings: Settings) -> KnowledgeBaseList:
    """Every knowledge base with its counts, embedding model and vector size."""
    return KnowledgeBaseList(knowledge_bases=manage.list_kbs(settings))


def describe(settings: Settings, name: KbName) -> KnowledgeBaseInfo:
    """One knowledge base: counts, embedding model and dimension, index type, metric."""
    return get_store(settings).info(name)


def drop(settings: Settings, name: KbName) -> DropResult:
    """Delete a knowledge base and everything in it."""
    store = get_store(settings)
    n = store.count(name)
    store.drop(name)
    return DropResult(kb=name, dropped=True, chunks_deleted=n)


def ingest(
    settings: Settings,
    kb: KbName,
    paths: Annotated[list[str], Field(description="files, folders or file:// URIs under the allowed roots, or "
                                                  "http(s):// URLs")] = [],  # noqa: B006 - never mutated
    texts: Annotated[
        list[TextDocument], Field(description="raw texts {text, source?, title?, tags?, metadata?, created?}")
    ] = [],  # noqa: B006
    strategy: Annotated[
        Literal["structure", "fixed", "recursive", "semantic"] | None,
        Field(description="chunking strategy (default from config: structure = split by headings)"),
    ] = None,
    chunk_size: Annotated[int | None, Field(description="chunk size in tokens", ge=16, le=8192)] = None,
    chunk_overlap: Annotated[int | None, Field(description="overlap between chunks in tokens", ge=0, le=4096)] = None,
    tags: Annotated[list[str], Field(description="tags stored on every chunk (filter with tags_any/tags_all)")] = [],  # noqa: B006
    metadata: Annotated[dict[str, Any], Field(description="JSON metadata stored on every chunk")] = {},  # noqa: B006
    create: Annotated[bool, Field(description="create the knowledge base if it does not exist")] = True,
    progress: Progress | None = None,
) -> IngestReport:
    """Parse, chunk, embed and store files, folders and raw texts; unchanged documents are skipped,
    changed ones replace their old chunks. Creates the knowledge base first when ``create``."""
    if not paths and not texts:
        raise InvalidInput("nothing to ingest: give `paths` (files, folders, file:// URIs) and/or `texts`")
    if create:
        manage.create_kb(settings, kb, exist_ok=True)
    return run_ingest(settings, kb, paths=paths, texts=texts, strategy=strategy, chunk_size=chunk_size,
                      chunk_overlap=chunk_overlap, tags=tags, metadata=metadata, progress=progress)


def search(
    settings: Settings,
    kb: KbName,
    query: Annotated[str, Field(description="the question or keywords")],
    top_k: Annotated[int, Field(description="hits to return (1 to retrieval.max_top_k, 100 by default)")] = 5,
    offset: Annotated[int, Field(description="skip this many best hits (the previous call's next_offset)", ge=0)] = 0,
    mode: ModeArg = "hybrid",
    fusion: Annotated[
        Fusion | None,
        Field(description="hybrid fusion: rrf (reciprocal rank) or weighted (normalized scores); default from config"),
    ] = None,
    filter: Filter = None,
    rerank: RerankArg = False,
    rerank_method: Annotated[
        str | None, Field(description="rerank method (e.g. late-interaction, cross-encoder); default from config")
    ] = None,
    rewrite: Annotated[
        Rewrite,
        Field(description="query rewriting with the language model: multi_query (paraphrases, fused) or hyde "
              "(search with a generated answer passage); slower"),
    ] = "none",
) -> SearchResult:
    """The best chunks for a query, with scores and citations."""
    return Searcher(settings).search(kb, query, mode=mode, fusion=fusion, top_k=top_k, filter=filter, rerank=rerank,
                                     rerank_method=rerank_method, rewrite=rewrite, offset=offset)


def context(
    settings: Settings,
    kb: KbName,
    question: Annotated[str, Field(description="the user's question")],
    top_k: Annotated[int, Field(description="passages to include")] = 5,
    mode: ModeArg = "hybrid",
    filter: Filter = None,
    rerank: RerankArg = False,
    max_chars: Annotated[int, Field(description="size budget of the block in characters", ge=500, le=200_000)] = 8000,
) -> ContextResult:
    """Search, then one prompt-ready block of numbered, cited passages under an answer-only-from-these instruction."""
    result = Searcher(settings).search(kb, question, mode=mode, top_k=top_k, filter=filter, rerank=rerank)
    return build_context(result, max_chars=max_chars)


def get_chunk(
    settings: Settings,
    kb: KbName,
    chunk_id: Annotated[str | None, Field(description="chunk id from a search hit")] = None,
    doc_id: Annotated[str | None, Field(description="document id (with index)")] = None,
    source: Annotated[str | None, Field(description="document source (with index)")] = None,
    index: Annotated[int | None, Field(description="0-based chunk index within the document", ge=0)] = None,
) -> ChunkRecord:
    """One stored chunk with its citation: by id, or by document (id or source) and index."""
    store = get_store(settings)
    if chunk_id:
        return browse.get_chunk(store, kb, chunk_id)
    if index is None or bool(doc_id) == bool(source):
        raise InvalidInput("give chunk_id, or index with exactly one of doc_id or source")
    return browse.chunk_at(store, kb, index, doc_id=doc_id, source=source)


def get_document(
    settings: Settings,
    kb: KbName,
    doc_id: Annotated[str | None, Field(description="document id (citation.doc_id of a hit)")] = None,
    source: Annotated[str | None, Field(description="or the document's source path/name")] = None,
    offset: Annotated[int, Field(description="first chunk of the page (the previous call's next_offset)", ge=0)] = 0,
    limit: Annotated[int, Field(description="chunks per page", ge=1, le=1000)] = 50,
) -> DocumentRecord:
    """A stored document, one page of chunks at a time: their ids and headings, and their texts joined."""
    return browse.get_document(get_store(settings), kb, doc_id=doc_id, source=source, offset=offset, limit=limit)


def delete(
    settings: Settings,
    kb: KbName,
    doc_ids: Annotated[list[str], Field(description="document ids")] = [],  # noqa: B006
    sources: Annotated[list[str], Field(description="document sources (paths as stored, or text sources)")] = [],  # noqa: B006
    filter: Annotated[SearchFilter | None, Field(description="ANDed with the ids/sources. " + FILTER_HELP)] = None,
) -> manage.DeleteResult:
    """Delete documents (all their chunks) selected by ids, sources and/or a filter."""
    return manage.delete_documents(settings, kb, doc_ids=doc_ids, sources=sources, filter=filter)
