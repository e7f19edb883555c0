"""Search a knowledge base: dense, BM25 or hybrid (RRF or weighted fusion of normalized scores),
with filters, optional reranking of the top candidates, optional query rewriting (multi-query, HyDE),
and a prompt-ready context block of numbered, cited passages.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from servers.core.errors import ConfigError, InvalidInput, NotFound
from servers.core.settings import Settings
from servers.retrieval.filters import SearchFilter, to_expression
from servers.retrieval.store import Store, get_store

Mode = Literal["dense", "bm25", "hybrid"]
Fusion = Literal["rrf", "weighted"]
Rewrite = Literal["none", "multi_query", "hyde"]
Ranked = list[tuple[str, float, dict[str, Any]]]

MAX_QUERY_CHARS = 4000


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
    hits: list[Hit]
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


# ------------------------------------------------------------ fusion

def rrf(lists: Sequence[Ranked], k: int = 60) -> Ranked:
    """Reciprocal rank fusion: score = Σ 1 / (k + rank), rank from 1."""
    scores: dict[str, float] = {}
    rows: dict[str, dict[str, Any]] = {}
    for ranked in lists:
        for rank, (cid, _, row) in enumerate(ranked, start=1):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k + rank)
            rows.setdefault(cid, row)
    return sorted(((cid, s, rows[cid]) for cid, s in scores.items()), key=lambda t: -t[1])


def _minmax(ranked: Ranked) -> dict[str, float]:
    if not ranked:
        return {}
    values = [s for _, s, _ in ranked]
    lo, hi = min(values), max(values)
    span = hi - lo
    return {cid: (s - lo) / span if span > 0 else 1.0 for cid, s, _ in ranked}


def weighted(dense: Ranked, bm25: Ranked, dense_weight: float = 0.5) -> Ranked:
    """Weighted sum of min-max normalized scores (a chunk missing from a list gets 0 there)."""
    nd, nb = _minmax(dense), _minmax(bm25)
    rows = {cid: row for cid, _, row in (*dense, *bm25)}
    fused = {cid: dense_weight * nd.get(cid, 0.0) + (1 - dense_weight) * nb.get(cid, 0.0) for cid in rows}
    return sorted(((cid, s, rows[cid]) for cid, s in fused.items()), key=lambda t: -t[1])


# ------------------------------------------------------------ query rewriting

REWRITE_SYSTEM = "You rewrite search queries for a document search engine. Answer with the rewrites only."


def _generator(settings: Settings) -> Any:
    from servers.core.generate import get_generator

    return get_generator(settings)


def multi_query(query: str, settings: Settings, n: int = 3) -> list[str]:
    """``n`` alternative phrasings of ``query`` from the core generator (one per line)."""
    prompt = (
        f"Write {n} different search queries that would find documents answering the question below. "
        f"Use other words and synonyms. One query per line, no numbering.\n\nQuestion: {query}"
    )
    out = _generator(settings).chat(
        [{"role": "system", "content": REWRITE_SYSTEM}, {"role": "user", "content": prompt}],
        max_new_tokens=settings.retrieval.rewrite_max_tokens, temperature=0.0,
    )[0]
    lines = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip().strip('"') for line in out.splitlines()]
    seen = {query.strip().lower()}
    rewrites = []
    for line in lines:
        if line and line.lower() not in seen and len(line) <= MAX_QUERY_CHARS:
            seen.add(line.lower())
            rewrites.append(line)
    return rewrites[:n]


def hyde(query: str, settings: Settings) -> str:
    """A short hypothetical passage answering ``query`` (HyDE), embedded in place of the question."""
    out = _generator(settings).chat(
        [
            {"role": "system", "content": "You write short factual passages."},
            {"role": "user", "content": f"Write a short passage (2-3 sentences) that answers: {query}"},
        ],
        max_new_tokens=settings.retrieval.rewrite_max_tokens, temperature=0.0,
    )[0]
    return out.strip()[:MAX_QUERY_CHARS]


# ------------------------------------------------------------ rerank

def rerank_available() -> bool:
    """Whether the rerank library (``servers.rerank.api``) is installed and importable."""
    try:
        import servers.rerank.api  # noqa: F401
    except ImportError:
        return False
    return True


def _rerank(query: str, ranked: Ranked, method: str | None, settings: Settings) -> Ranked:
    if not rerank_available():
        raise ConfigError(
            "rerank=true needs the rerank server's library (servers.rerank), which is not installed in this "
            "build; search without rerank"
        )
    from servers.rerank.api import score

    if not ranked:
        return ranked
    scores = score(query, [row.get("text", "") for _, _, row in ranked], method=method, settings=settings)
    return sorted(((cid, float(s), row) for (cid, _, row), s in zip(ranked, scores, strict=True)), key=lambda t: -t[1])


# ------------------------------------------------------------ search

class Searcher:
    """Searches over one store with the configured embedder (loaded on first use)."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or get_store(settings)

    def _model(self, kb: str) -> Any:
        from servers.core.models import embedder

        model = embedder(self.settings.models.embedder, self.settings)
        self.store.check_model(kb, self.settings.models.embedder, int(model.get_embedding_dimension()))
        return model

    def embed(self, kb: str, texts: list[str]) -> list[list[float]]:
        model = self._model(kb)
        vectors = model.encode(
            texts, batch_size=self.settings.models.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [v.tolist() for v in vectors]

    def search(
        self,
        kb: str,
        query: str,
        *,
        mode: Mode = "hybrid",
        fusion: Fusion | None = None,
        top_k: int = 5,
        filter: SearchFilter | dict[str, Any] | str | None = None,
        rerank: bool = False,
        rerank_method: str | None = None,
        rewrite: Rewrite = "none",
        dense_weight: float | None = None,
        candidates: int | None = None,
    ) -> SearchResult:
        start = time.perf_counter()
        cfg = self.settings.retrieval
        query = (query or "").strip()
        if not query:
            raise InvalidInput("empty query: give the question or keywords to search for")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInput(f"query is {len(query)} characters; at most {MAX_QUERY_CHARS}")
        if not 1 <= top_k <= cfg.max_top_k:
            raise InvalidInput(f"top_k must be between 1 and {cfg.max_top_k} (got {top_k})")
        if mode not in ("dense", "bm25", "hybrid"):
            raise InvalidInput(f"mode must be dense, bm25 or hybrid (got {mode!r})")
        if rewrite not in ("none", "multi_query", "hyde"):
            raise InvalidInput(f"rewrite must be none, multi_query or hyde (got {rewrite!r})")
        fusion = fusion or cfg.fusion
        if fusion not in ("rrf", "weighted"):
            raise InvalidInput(f"fusion must be rrf or weighted (got {fusion!r})")
        w = cfg.dense_weight if dense_weight is None else dense_weight
        if not 0.0 <= w <= 1.0:
            raise InvalidInput(f"dense_weight must be between 0 and 1 (got {w})")
        expr = to_expression(filter)
        self.store.require(kb)
        if rerank and not rerank_available():
            _rerank(query, [], rerank_method, self.settings)  # raises the clear error

        depth = top_k
        if rerank:
            depth = max(depth, cfg.rerank_depth)
        fused_depth = max(depth, candidates or cfg.candidates) if (mode == "hybrid" or rewrite != "none") else depth

        queries = [query]
        dense_queries = [query]
        if rewrite == "multi_query":
            queries += multi_query(query, self.settings)
            dense_queries = list(queries)
        elif rewrite == "hyde":
            passage = hyde(query, self.settings)
            if passage:
                queries.append(passage)
                dense_queries = [query, passage]

        lists: list[Ranked] = []
        dense_lists: list[Ranked] = []
        bm25_lists: list[Ranked] = []
        if mode in ("dense", "hybrid"):
            vectors = self.embed(kb, dense_queries)
            dense_lists = self.store.search_dense(
                kb, vectors, limit=fused_depth, expr=expr, search_params=cfg.search_params
            )
        if mode in ("bm25", "hybrid"):
            bm25_texts = [query] if rewrite == "hyde" else queries
            bm25_lists = self.store.search_bm25(kb, bm25_texts, limit=fused_depth, expr=expr)

        if mode == "hybrid" and fusion == "weighted":
            # weighted per query (dense and BM25 of the same query), then RRF across queries
            lists = [weighted(dense_lists[i], bm25_lists[min(i, len(bm25_lists) - 1)], w) for i in range(len(dense_lists))]
        else:
            lists = dense_lists + bm25_lists
        ranked = lists[0] if len(lists) == 1 else rrf(lists, cfg.rrf_k)
        reranked = False
        if rerank:
            ranked = _rerank(query, ranked[:depth], rerank_method, self.settings)
            reranked = True
        hits = [hit_from_row(row, score) for _, score, row in ranked[:top_k]]
        return SearchResult(
            kb=kb, query=query, mode=mode, fusion=fusion if mode == "hybrid" else None, reranked=reranked,
            queries=queries, hits=hits, took_ms=round((time.perf_counter() - start) * 1000, 2),
        )


def search(settings: Settings, kb: str, query: str, **kwargs: Any) -> SearchResult:
    """Search ``kb`` (see :meth:`Searcher.search` for the options)."""
    return Searcher(settings).search(kb, query, **kwargs)


# ------------------------------------------------------------ context

CONTEXT_INSTRUCTION = (
    "Answer the question using only the numbered passages below. Cite the passages you use by their "
    "number in square brackets, e.g. [1] or [2][3]. If the passages do not contain the answer, say that "
    "you do not know."
)


class ContextResult(BaseModel):
    """A prompt-ready block: instruction, then numbered passages with their citations."""

    context: str = Field(description="paste this into the prompt, followed by the question")
    passages: list[Hit] = Field(description="the passages in the block, in order: passage [n] is passages[n-1]")
    truncated: bool = Field(description="true when passages were dropped or shortened to fit max_chars")


def cite(c: Citation) -> str:
    parts = [c.title or c.source]
    if c.heading_path:
        parts.append(" > ".join(h for h in c.heading_path if h != c.title) or None)
    if c.page:
        parts.append(f"page {c.page}")
    parts.append(f"source: {c.source}")
    return "; ".join(p for p in parts if p)


def build_context(result: SearchResult, *, max_chars: int = 8000) -> ContextResult:
    """Number the hits as passages [1..n] with citations under an answer-only-from-these instruction."""
    blocks: list[str] = []
    kept: list[Hit] = []
    used = len(CONTEXT_INSTRUCTION) + len(result.query) + 20
    truncated = False
    for hit in result.hits:
        header = f"[{len(kept) + 1}] ({cite(hit.citation)})\n"
        room = max_chars - used - len(header) - 2
        if room < 200:
            truncated = True
            break
        text = hit.text
        if len(text) > room:
            text = text[: room - 3].rstrip() + "..."
            truncated = True
        blocks.append(header + text)
        kept.append(hit)
        used += len(header) + len(text) + 2
    body = "(no passages matched the question)" if not kept else "\n\n".join(blocks)
    context = f"{CONTEXT_INSTRUCTION}\n\nQuestion: {result.query}\n\nPassages:\n\n{body}\n"
    return ContextResult(context=context, passages=kept, truncated=truncated or len(kept) < len(result.hits))


# ------------------------------------------------------------ browsing

class ChunkRecord(BaseModel):
    hit: Hit
    chunk_count: int
    version: str
    created: int
    updated: int


class DocumentRecord(BaseModel):
    doc_id: str
    source: str
    title: str
    chunk_count: int
    created: int
    updated: int
    tags: list[str]
    metadata: dict[str, Any]
    chunks: list[Hit] = Field(description="the document's chunks in order")
    text: str = Field(description="the chunks' texts joined in order")


def get_chunk(store: Store, kb: str, chunk_id: str) -> ChunkRecord:
    from servers.retrieval.store import validate_id

    rows = store.get(kb, [validate_id(chunk_id, "chunk_id")])
    if not rows:
        raise NotFound(f"no chunk '{chunk_id}' in knowledge base '{kb}'; chunk ids come from kb_search hits")
    row = rows[0]
    return ChunkRecord(
        hit=hit_from_row(row, 1.0), chunk_count=int(row["chunk_count"]), version=row["version"],
        created=int(row["created"]), updated=int(row["updated"]),
    )


def get_document(store: Store, kb: str, *, doc_id: str | None = None, source: str | None = None) -> DocumentRecord:
    from servers.retrieval.store import quote, validate_id

    if bool(doc_id) == bool(source):
        raise InvalidInput("give exactly one of doc_id or source")
    expr = f"doc_id == {quote(validate_id(doc_id, 'doc_id'))}" if doc_id else f"source == {quote(source or '')}"
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
