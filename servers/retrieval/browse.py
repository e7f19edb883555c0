"""Reading what a knowledge base stores: one chunk, or a whole document with its chunks in order."""

from __future__ import annotations

from servers.core.errors import InvalidInput, NotFound
from servers.retrieval.ingest import doc_id_for
from servers.retrieval.results import ChunkRecord, DocumentRecord, hit_from_row
from servers.retrieval.store import Store, quote


def get_chunk(store: Store, kb: str, chunk_id: str) -> ChunkRecord:
    rows = store.get(kb, [chunk_id]) if chunk_id.strip() else []
    if not rows:
        raise NotFound(f"no chunk '{chunk_id}' in knowledge base '{kb}'; chunk ids come from kb_search hits")
    row = rows[0]
    return ChunkRecord(
        hit=hit_from_row(row, 1.0), chunk_count=int(row["chunk_count"]), version=row["version"],
        created=int(row["created"]), updated=int(row["updated"]),
    )


def get_document(store: Store, kb: str, *, doc_id: str | None = None, source: str | None = None) -> DocumentRecord:
    if bool(doc_id) == bool(source):
        raise InvalidInput("give exactly one of doc_id or source")
    expr = f"doc_id == {quote(doc_id)}" if doc_id else f"source == {quote(source or '')}"
    rows = list(store.iter_query(kb, expr, fields=["id", "doc_id", "version", "chunk_index", "chunk_count", "text",
                                                    "source", "title", "heading_path", "page", "tags", "created",
                                                    "updated", "metadata"]))
    if not rows:
        what = f"doc_id '{doc_id}'" if doc_id else f"source '{source}'"
        raise NotFound(f"no document with {what} in knowledge base '{kb}'; ids and sources come from search hits")
    rows.sort(key=lambda r: int(r["chunk_index"]))
    first = rows[0]
    hits = [hit_from_row(r, 1.0) for r in rows]
    return DocumentRecord(
        doc_id=first["doc_id"], source=first["source"], title=first["title"], chunk_count=len(rows),
        created=int(first["created"]), updated=int(first["updated"]), tags=list(first.get("tags") or []),
        metadata=dict(first.get("metadata") or {}), chunks=hits, text="\n\n".join(h.text for h in hits),
    )


def chunk_at(store: Store, kb: str, index: int, *, doc_id: str | None = None, source: str | None = None) -> ChunkRecord:
    """The chunk at ``index`` of a document named by id or source (a hit's neighbours: its index ± 1)."""
    did = doc_id or doc_id_for(source or "")
    rows = store.query(kb, f"doc_id == {quote(did)} and chunk_index == {int(index)}", fields=["id"], limit=1)
    if not rows:
        raise InvalidInput(f"no chunk {index} for that document in '{kb}' (check the id/source and the index)")
    return get_chunk(store, kb, rows[0]["id"])
