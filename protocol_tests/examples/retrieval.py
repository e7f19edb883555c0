"""Protocol-harness calls for the retrieval server: one call (at least) for every tool."""

from __future__ import annotations

from pathlib import Path


def calls(workdir: Path) -> list[tuple[str, dict]]:
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


def concurrent_call(workdir: Path) -> tuple[str, dict]:
    """A call many clients can make at once: listing knowledge bases."""
    return ("kb_list", {})
