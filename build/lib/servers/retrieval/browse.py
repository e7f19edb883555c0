"""Reading what a knowledge base stores: one chunk, or a whole document with its chunks in order."""

from __future__ import annotations

from servers.core.errors import InvalidInput, NotFound
from servers.retrieval.results import ChunkRecord, DocumentChunk, DocumentRecord, hit_from_row
from servers.retrieval.store import Store, doc_id_for, validate_id


def get_chunk(store: Store, kb: str, chunk_id: str) -> ChunkRecord:
    rows = store.get(kb, [validate_id(chunk_id, "chunk_id")])
    if not rows:
        raise NotFound(f"no chunk '{chunk_id}' in knowledge base '{kb}'; chunk ids come from kb_search hits")
    row = rows[0]
    return ChunkRecord(
        hit=hit_from_row(row, 1.0), chunk_count=int(row["chunk_count"]), version=row["version"],
        created=int(row["created"]), updated=int(row["updated"]),
    )


def get_document(store: Store, kb: str, *, doc_id: str | None = None, source: str | None = None, offset: int = 0,
                 limit: int | None = None) -> DocumentRecord:
    """A page of a stored document: ``limit`` chunks (all when None) from ``offset``, texts joined once."""
    rows = store.document_rows(kb, doc_id=doc_id, source=source)
    if not rows:
        what = f"doc_id '{doc_id}'" if doc_id else f"source '{source}'"
        raise NotFound(f"no document with {what} in knowledge base '{kb}'; ids and sources come from search hits")
    if offset >= len(rows):
        raise InvalidInput(f"offset {offset} is past the document's last chunk ({len(rows) - 1})")
    end = len(rows) if limit is None else min(len(rows), offset + limit)
    first, page = rows[0], rows[offset:end]
    chunks = [DocumentChunk(chunk_id=r["id"], chunk_index=int(r.get("chunk_index") or 0),
                            heading_path=list(r.get("heading_path") or []), page=int(r.get("page") or 0) or None,
                            chars=len(r.get("text", ""))) for r in page]
    return DocumentRecord(
        doc_id=first["doc_id"], source=first["source"], title=first["title"], chunk_count=len(rows),
        created=int(first["created"]), updated=int(first["updated"]), tags=list(first.get("tags") or []),
        metadata=dict(first.get("metadata") or {}), offset=offset, chunks=chunks,
        text="\n\n".join(r.get("text", "") for r in page), next_offset=end if end < len(rows) else None,
    )


def chunk_at(store: Store, kb: str, index: int, *, doc_id: str | None = None, source: str | None = None) -> ChunkRecord:
    """The chunk at ``index`` of a document named by id or source (a hit's neighbours: its index ± 1)."""
    chunk_id = store.chunk_id_at(kb, doc_id or doc_id_for(source or ""), index)
    if chunk_id is None:
        raise InvalidInput(f"no chunk {index} for that document in '{kb}' (check the id/source and the index)")
    return get_chunk(store, kb, chunk_id)
