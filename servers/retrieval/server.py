"""MCP façade of the retrieval capability: the tools are :mod:`servers.retrieval.api`'s functions."""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

from servers.core.boundary import Tools, add_completions, in_thread, new_server, resource_text
from servers.core.settings import Settings
from servers.retrieval import api

INSTRUCTIONS = (
    "Knowledge bases of the user's documents, stored in Milvus. Create one with `kb_create`, add files, "
    "folders or texts with `kb_ingest`, then find passages with `kb_search` (hybrid dense + BM25 by default) "
    "or get a prompt-ready block of numbered, cited passages with `kb_context`. `kb_get_document` / "
    "`kb_get_chunk` read stored text; `kb_delete` and `kb_drop` remove documents or a whole knowledge base."
)
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
# kb_create adds an empty collection (again: nothing more happens).
CREATES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False)
# kb_ingest adds documents; a changed document replaces only its own older version, the same input again is
# skipped (idempotent); http(s) URLs are fetched (open world).
INGESTS = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=True)
DESTRUCTIVE = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False)


def build_server(settings: Settings) -> MCPServer:
    app = new_server("retrieval", title="Quiver retrieval", instructions=INSTRUCTIONS,
                     description="Knowledge bases on Milvus: ingest, dense/BM25/hybrid search, cited context")
    tools = Tools(app, settings)
    tools.add(
        api.create, name="kb_create", title="Create a knowledge base", annotations=CREATES,
        description="Create an empty knowledge base (one Milvus collection) that records the embedding model it uses. "
                    "Call once before kb_ingest (or let kb_ingest create it). Returns its description.",
    )
    tools.add(
        api.list_kbs, name="kb_list", title="List knowledge bases", annotations=READ_ONLY,
        description="List the knowledge bases with their chunk and document counts, embedding model and size.",
    )
    tools.add(
        api.describe, name="kb_describe", title="Describe a knowledge base", annotations=READ_ONLY,
        description="Describe one knowledge base: counts, embedding model and dimension, index type, metric.",
    )
    tools.add(
        api.drop, name="kb_drop", title="Delete a knowledge base", annotations=DESTRUCTIVE,
        description="Delete a knowledge base and everything in it (irreversible).",
    )
    tools.add(
        api.ingest, name="kb_ingest", title="Add documents", annotations=INGESTS,
        description="Add documents to a knowledge base: files, folders (recursively) or file:// URIs under the allowed "
                    "roots (PDF, DOCX, PPTX, XLSX, HTML, Markdown, CSV, JSON, text), and/or raw texts with metadata. "
                    "Parses, chunks, embeds and stores them; unchanged documents are skipped and changed ones replace "
                    "their old chunks. Returns counts, timings and per-file errors; sends progress notifications.",
    )
    tools.add(
        api.search, name="kb_search", title="Search a knowledge base", annotations=READ_ONLY,
        description="Search a knowledge base and return the best chunks with scores and citations (source, title, "
                    "heading path, page). mode: hybrid (dense + BM25, default), dense (meaning) or bm25 (exact words). "
                    "Optional metadata filter, reranking of the top candidates and query rewriting.",
    )
    tools.add(
        api.context, name="kb_context", title="Cited context for a question", annotations=READ_ONLY,
        description="Search a knowledge base and return one prompt-ready block: an instruction to answer only from the "
                    "passages and cite them by number, then the numbered passages with their citations. Use it to "
                    "ground an answer; put the block in the prompt before answering.",
    )
    tools.add(
        api.get_chunk, name="kb_get_chunk", title="Read a chunk", annotations=READ_ONLY,
        description="Read one stored chunk with its citation: by chunk_id (from a search hit), or by doc_id/source and "
                    "chunk index (e.g. the neighbours of a hit: its chunk_index ± 1).",
    )
    tools.add(
        api.get_document, name="kb_get_document", title="Read a document", annotations=READ_ONLY,
        description="Read a whole stored document: its chunks in order with citations, and their joined text.",
    )
    tools.add(
        api.delete, name="kb_delete", title="Delete documents", annotations=DESTRUCTIVE,
        description="Delete documents (all their chunks) from a knowledge base, selected by doc ids, sources and/or a "
                    "filter. Returns how many chunks were deleted.",
    )

    @app.resource("quiver://kb", name="knowledge_bases", title="Knowledge bases", mime_type="application/json",
                  description="Every knowledge base with its chunk and document counts, model and vector size.")
    async def knowledge_bases() -> str:
        return await resource_text(lambda: api.list_kbs(settings).model_dump_json(indent=1))

    @app.resource("quiver://kb/{name}", name="knowledge_base", title="A knowledge base", mime_type="application/json",
                  description="One knowledge base: counts, embedding model and dimension, index type, metric.")
    async def knowledge_base(name: str) -> str:
        return await resource_text(lambda: api.describe(settings, name).model_dump_json(indent=1))

    @app.prompt(name="rag_answer", title="Answer from a knowledge base",
                description="Search a knowledge base for the question and ask for an answer grounded only in the "
                            "numbered passages found, citing them as [n].")
    async def rag_answer(kb: str, question: str) -> str:
        found = await in_thread(api.context, settings, kb, question)
        return f"{found.context}\n\nQuestion: {question}"

    def kb_names(_prefix: str, _given: dict[str, str]) -> list[str]:
        return [info.name for info in api.list_kbs(settings).knowledge_bases]

    add_completions(app, {("rag_answer", "kb"): kb_names, ("quiver://kb/{name}", "name"): kb_names})
    return app
