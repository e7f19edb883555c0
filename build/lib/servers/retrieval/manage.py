"""Knowledge-base management: create (recording the embedder), list, describe, drop, delete documents."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from servers.core.models import embedding_dimension
from servers.core.settings import Settings
from servers.retrieval.filters import SearchFilter, to_expression
from servers.retrieval.store import KnowledgeBaseInfo, Store, documents_expr, get_store


class DeleteResult(BaseModel):
    kb: str
    chunks_deleted: int
    expression: str = Field(description="the Milvus expression that selected the chunks")


def create_kb(settings: Settings, name: str, *, description: str = "", exist_ok: bool = False,
              store: Store | None = None) -> KnowledgeBaseInfo:
    """Create a knowledge base recording the configured embedder and its dimension."""
    store = store or get_store(settings)
    store.collection(name)  # validates the name before loading a model
    dim = embedding_dimension(settings)
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
    expr = documents_expr(doc_ids, sources, to_expression(filter))
    n = store.delete(kb, expr)
    if n:
        store.flush(kb)
    return DeleteResult(kb=kb, chunks_deleted=n, expression=expr)
