"""MCP façade of the retrieval library: knowledge bases on Milvus with dense, BM25 and hybrid search."""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servers.core.errors import InvalidInput
from servers.core.settings import Settings
from servers.retrieval import manage
from servers.retrieval.filters import SearchFilter
from servers.retrieval.ingest import IngestReport, TextDocument, ingest
from servers.retrieval.search import (
    ChunkRecord,
    ContextResult,
    DocumentRecord,
    Searcher,
    SearchResult,
    build_context,
    get_chunk,
    get_document,
)
from servers.retrieval.store import KnowledgeBaseInfo, get_store

INSTRUCTIONS = (
    "Knowledge bases of the user's documents, stored in Milvus. Create one with `kb_create`, add files, "
    "folders or texts with `kb_ingest`, then find passages with `kb_search` (hybrid dense + BM25 by default) "
    "or get a prompt-ready block of numbered, cited passages with `kb_context`. `kb_get_document` / "
    "`kb_get_chunk` read stored text; `kb_delete` and `kb_drop` remove documents or a whole knowledge base."
)

FILTER_HELP = (
    "optional conditions, all ANDed: sources [exact], source_prefix, doc_ids, tags_any, tags_all, "
    "created_after/created_before (document date), updated_after/updated_before (ingest time) as ISO dates "
    "or epoch seconds, metadata {key: value | [any of] | {$eq,$ne,$gt,$gte,$lt,$lte,$in,$nin,$contains,$exists}}. "
    'Example: {"tags_any": ["hr"], "created_after": "2024-01-01", "metadata": {"year": {"$gte": 2020}}}'
)

KbName = Annotated[str, Field(description="knowledge base name (letters, digits, underscores; starts with a letter)")]


class KnowledgeBaseList(BaseModel):
    knowledge_bases: list[KnowledgeBaseInfo]


class DropResult(BaseModel):
    kb: str
    dropped: bool
    chunks_deleted: int


def _method(settings: Settings, method: str | None) -> str | None:
    """The rerank method: the caller's, else the configured default, else the shipped late-interaction one."""
    if method:
        return method
    default = settings.rerank.default_method
    return default if default and default != "none" else "late-interaction"


def build_server(settings: Settings) -> MCPServer:
    app = MCPServer("quiver-retrieval", instructions=INSTRUCTIONS)
    searcher_box: dict[str, Searcher] = {}

    def searcher() -> Searcher:
        if "s" not in searcher_box:
            searcher_box["s"] = Searcher(settings)
        return searcher_box["s"]

    async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))

    @app.tool(
        name="kb_create",
        description=(
            "Create an empty knowledge base (one Milvus collection) that records the embedding model it uses. "
            "Call once before kb_ingest (or let kb_ingest create it). Returns its description."
        ),
    )
    async def kb_create(
        name: KbName,
        description: Annotated[str, Field(description="what the knowledge base holds (optional)", max_length=1000)] = "",
        exist_ok: Annotated[bool, Field(description="return the existing one instead of failing")] = False,
    ) -> KnowledgeBaseInfo:
        return await run(manage.create_kb, settings, name, description=description, exist_ok=exist_ok)

    @app.tool(
        name="kb_list",
        description="List the knowledge bases with their chunk and document counts, embedding model and size.",
        annotations=ToolAnnotations(readOnlyHint=True),
    )
    async def kb_list() -> KnowledgeBaseList:
        return KnowledgeBaseList(knowledge_bases=await run(manage.list_kbs, settings))

    @app.tool(
        name="kb_describe",
        description="Describe one knowledge base: counts, embedding model and dimension, index type, metric.",
        annotations=ToolAnnotations(readOnlyHint=True),
    )
    async def kb_describe(name: KbName) -> KnowledgeBaseInfo:
        return await run(lambda: get_store(settings).info(name))

    @app.tool(
        name="kb_drop",
        description="Delete a knowledge base and everything in it (irreversible).",
        annotations=ToolAnnotations(destructiveHint=True),
    )
    async def kb_drop(name: KbName) -> DropResult:
        def drop() -> DropResult:
            store = get_store(settings)
            n = store.count(name)
            store.drop(name)
            return DropResult(kb=name, dropped=True, chunks_deleted=n)

        return await run(drop)

    @app.tool(
        name="kb_ingest",
        description=(
            "Add documents to a knowledge base: files, folders (recursively) or file:// URIs under the allowed "
            "roots (PDF, DOCX, PPTX, XLSX, HTML, Markdown, CSV, JSON, text), and/or raw texts with metadata. "
            "Parses, chunks, embeds and stores them; unchanged documents are skipped and changed ones replace "
            "their old chunks. Returns counts, timings and per-file errors; sends progress notifications."
        ),
    )
    async def kb_ingest(
        ctx: Context,
        kb: KbName,
        paths: Annotated[list[str], Field(description="files, folders or file:// URIs under the allowed roots")] = [],  # noqa: B006
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
    ) -> IngestReport:
        def progress(done: int, total: int, message: str) -> None:
            with contextlib.suppress(Exception):  # a client that went away must not stop the ingest
                anyio.from_thread.run(ctx.report_progress, done, total, message)

        def work() -> IngestReport:
            if not paths and not texts:
                raise InvalidInput("nothing to ingest: give `paths` (files, folders, file:// URIs) and/or `texts`")
            if create:
                manage.create_kb(settings, kb, exist_ok=True)
            return ingest(
                settings, kb, paths=paths, texts=texts, strategy=strategy, chunk_size=chunk_size,
                chunk_overlap=chunk_overlap, tags=tags, metadata=metadata, progress=progress,
            )

        return await anyio.to_thread.run_sync(work)

    @app.tool(
        name="kb_search",
        description=(
            "Search a knowledge base and return the best chunks with scores and citations (source, title, "
            "heading path, page). mode: hybrid (dense + BM25, default), dense (meaning) or bm25 (exact words). "
            "Optional metadata filter, reranking of the top candidates and query rewriting."
        ),
        annotations=ToolAnnotations(readOnlyHint=True),
    )
    async def kb_search(
        kb: KbName,
        query: Annotated[str, Field(description="the question or keywords")],
        top_k: Annotated[int, Field(description="hits to return (1 to retrieval.max_top_k, 100 by default)")] = 5,
        mode: Annotated[Literal["hybrid", "dense", "bm25"], Field(description="retrieval mode")] = "hybrid",
        fusion: Annotated[
            Literal["rrf", "weighted"] | None,
            Field(description="hybrid fusion: rrf (reciprocal rank) or weighted (normalized scores); default from config"),
        ] = None,
        filter: Annotated[SearchFilter | None, Field(description=FILTER_HELP)] = None,
        rerank: Annotated[bool, Field(description="rescore the top candidates with the rerank library")] = False,
        rerank_method: Annotated[
            str | None, Field(description="rerank method (e.g. late-interaction, cross-encoder); default from config")
        ] = None,
        rewrite: Annotated[
            Literal["none", "multi_query", "hyde"],
            Field(description="query rewriting with the language model: multi_query (paraphrases, fused) or hyde "
                  "(search with a generated answer passage); slower"),
        ] = "none",
    ) -> SearchResult:
        return await run(
            searcher().search, kb, query, mode=mode, fusion=fusion, top_k=top_k, filter=filter, rerank=rerank,
            rerank_method=_method(settings, rerank_method) if rerank else None, rewrite=rewrite,
        )

    @app.tool(
        name="kb_context",
        description=(
            "Search a knowledge base and return one prompt-ready block: an instruction to answer only from the "
            "passages and cite them by number, then the numbered passages with their citations. Use it to "
            "ground an answer; put the block in the prompt before answering."
        ),
        annotations=ToolAnnotations(readOnlyHint=True),
    )
    async def kb_context(
        kb: KbName,
        question: Annotated[str, Field(description="the user's question")],
        top_k: Annotated[int, Field(description="passages to include")] = 5,
        mode: Annotated[Literal["hybrid", "dense", "bm25"], Field(description="retrieval mode")] = "hybrid",
        filter: Annotated[SearchFilter | None, Field(description=FILTER_HELP)] = None,
        rerank: Annotated[bool, Field(description="rescore the top candidates with the rerank library")] = False,
        max_chars: Annotated[int, Field(description="size budget of the block in characters", ge=500, le=200_000)] = 8000,
    ) -> ContextResult:
        result = await run(
            searcher().search, kb, question, mode=mode, top_k=top_k, filter=filter, rerank=rerank,
            rerank_method=_method(settings, None) if rerank else None,
        )
        return build_context(result, max_chars=max_chars)

    @app.tool(
        name="kb_get_chunk",
        description=(
            "Read one stored chunk with its citation: by chunk_id (from a search hit), or by doc_id/source and "
            "chunk index (e.g. the neighbours of a hit: its chunk_index ± 1)."
        ),
        annotations=ToolAnnotations(readOnlyHint=True),
    )
    async def kb_get_chunk(
        kb: KbName,
        chunk_id: Annotated[str | None, Field(description="chunk id from a search hit")] = None,
        doc_id: Annotated[str | None, Field(description="document id (with index)")] = None,
        source: Annotated[str | None, Field(description="document source (with index)")] = None,
        index: Annotated[int | None, Field(description="0-based chunk index within the document", ge=0)] = None,
    ) -> ChunkRecord:
        def work() -> ChunkRecord:
            store = get_store(settings)
            if chunk_id:
                return get_chunk(store, kb, chunk_id)
            if index is None or bool(doc_id) == bool(source):
                raise InvalidInput("give chunk_id, or index with exactly one of doc_id or source")
            from servers.retrieval.ingest import doc_id_for
            from servers.retrieval.store import quote, validate_id

            did = validate_id(doc_id, "doc_id") if doc_id else doc_id_for(source or "")
            rows = store.query(kb, f"doc_id == {quote(did)} and chunk_index == {int(index)}", fields=["id"], limit=1)
            if not rows:
                raise InvalidInput(f"no chunk {index} for that document in '{kb}' (check the id/source and the index)")
            return get_chunk(store, kb, rows[0]["id"])

        return await run(work)

    @app.tool(
        name="kb_get_document",
        description="Read a whole stored document: its chunks in order with citations, and their joined text.",
        annotations=ToolAnnotations(readOnlyHint=True),
    )
    async def kb_get_document(
        kb: KbName,
        doc_id: Annotated[str | None, Field(description="document id (citation.doc_id of a hit)")] = None,
        source: Annotated[str | None, Field(description="or the document's source path/name")] = None,
    ) -> DocumentRecord:
        return await run(lambda: get_document(get_store(settings), kb, doc_id=doc_id, source=source))

    @app.tool(
        name="kb_delete",
        description=(
            "Delete documents (all their chunks) from a knowledge base, selected by doc ids, sources and/or a "
            "filter. Returns how many chunks were deleted."
        ),
        annotations=ToolAnnotations(destructiveHint=True),
    )
    async def kb_delete(
        kb: KbName,
        doc_ids: Annotated[list[str], Field(description="document ids")] = [],  # noqa: B006
        sources: Annotated[list[str], Field(description="document sources (paths as stored, or text sources)")] = [],  # noqa: B006
        filter: Annotated[SearchFilter | None, Field(description="ANDed with the ids/sources. " + FILTER_HELP)] = None,
    ) -> manage.DeleteResult:
        return await run(manage.delete_documents, settings, kb, doc_ids=doc_ids, sources=sources, filter=filter)

    return app


def protocol_examples(workdir: Path) -> list[tuple[str, dict]]:
    docs = workdir / "kb_docs"
    docs.mkdir(parents=True, exist_ok=True)
    guide = docs / "guide.md"
    guide.write_text(
        "# Quiver guide\n\n## Installation\n\nRun `make setup` to create the virtual environment and install "
        "the shipped models.\n\n## Search\n\nHybrid search fuses dense vectors and BM25 keyword scores with "
        "reciprocal rank fusion.\n",
        encoding="utf-8",
    )
    (docs / "notes.txt").write_text("Milvus Lite stores a knowledge base in a local folder.\n", encoding="utf-8")
    source = str(guide.resolve())
    return [
        ("kb_create", {"name": "protocol_kb", "description": "protocol harness"}),
        ("kb_ingest", {
            "kb": "protocol_kb", "paths": [str(docs)],
            "texts": [{"text": "Reranking reorders candidates by relevance.", "source": "note:rerank",
                       "tags": ["notes"], "metadata": {"year": 2024}}],
        }),
        ("kb_list", {}),
        ("kb_describe", {"name": "protocol_kb"}),
        ("kb_search", {"kb": "protocol_kb", "query": "how do I install it?", "top_k": 3}),
        ("kb_search", {"kb": "protocol_kb", "query": "reranking", "mode": "bm25",
                       "filter": {"tags_any": ["notes"], "metadata": {"year": {"$gte": 2020}}}}),
        ("kb_context", {"kb": "protocol_kb", "question": "What does hybrid search fuse?", "top_k": 2}),
        ("kb_get_document", {"kb": "protocol_kb", "source": source}),
        ("kb_get_chunk", {"kb": "protocol_kb", "source": source, "index": 0}),
        ("kb_delete", {"kb": "protocol_kb", "sources": ["note:rerank"]}),
        ("kb_drop", {"name": "protocol_kb"}),
    ]


def concurrent_example(workdir: Path) -> tuple[str, dict]:
    """A call many clients can make at once: listing knowledge bases."""
    return ("kb_list", {})
