"""Knowledge-base management: create (recording the embedder), list, describe, drop, delete documents."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from servers.core.errors import InvalidInput
from servers.core.settings import Settings
from servers.retrieval.filters import SearchFilter, to_expression
from servers.retrieval.ingest import doc_id_for
from servers.retrieval.store import KnowledgeBaseInfo, Store, get_store, quote, validate_id


class DeleteResult(BaseModel):
    kb: str
    chunks_deleted: int
    expression: str = Field(description="the Milvus expression that selected the chunks")


def create_kb(settings: Settings, name: str, *, description: str = "", exist_ok: bool = False,
              store: Store | None = None) -> KnowledgeBaseInfo:
    """Create a knowledge base recording the configured embedder and its dimension."""
    from servers.core.models import embedder

    store = store or get_store(settings)
    store.collection(name)  # validates the name before loading a model
    model = embedder(settings.models.embedder, settings)
    dim = int(model.get_embedding_dimension())
    return store.create(name, embedder=settings.models.embedder, dim=dim, settings=settings,
                        description=description, exist_ok=exist_ok)


def list_kbs(settings: Settings, store: Store | None = None) -> list[KnowledgeBaseInfo]:
    store = store or get_store(settings)
    return [store.info(name) for name in store.list_names()]


def delete_documents(
    settings: Settings, kb: str, *, doc_ids: list[str] | None = None, sources: list[str] | None = None,
    filter: SearchFilter | dict[str, Any] | str | None = None, store: Store | None = None,
) -> DeleteResult:
    """Delete every chunk of the documents selected by ids, sources (ORed), and/or a filter (ANDed)."""
    store = store or get_store(settings)
    store.require(kb)
    ors = []
    if doc_ids:
        ors.append(f"doc_id in [{', '.join(quote(validate_id(d, 'doc_id')) for d in doc_ids)}]")
    if sources:
        # a source's doc id covers rows whatever source string they carry (stored sources are truncated)
        ids = [doc_id_for(s) for s in sources]
        ors.append(f"doc_id in [{', '.join(quote(d) for d in ids)}]")
        ors.append(f"source in [{', '.join(quote(s) for s in sources)}]")
    flt = to_expression(filter)
    if not ors and not flt:
        raise InvalidInput("say what to delete: doc_ids, sources and/or a filter (to remove everything, use kb_drop)")
    parts = []
    if ors:
        parts.append("(" + " or ".join(ors) + ")")
    if flt:
        parts.append(f"({flt})")
    expr = " and ".join(parts)
    n = store.delete(kb, expr)
    if n:
        store.flush(kb)
    return DeleteResult(kb=kb, chunks_deleted=n, expression=expr)
