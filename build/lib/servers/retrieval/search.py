"""Search a knowledge base: dense, BM25 or hybrid (RRF or weighted fusion of normalized scores,
computed by the rerank library's fusion), with filters, optional reranking of the top candidates
and optional query rewriting (multi-query, HyDE)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from servers.core.errors import InvalidInput
from servers.core.models import embed, embedding_dimension
from servers.core.settings import Settings
from servers.rerank import api as rerank_api
from servers.rerank.fusion import fuse_ranked
from servers.retrieval.filters import SearchFilter, to_expression
from servers.retrieval.results import Fusion, Mode, Rewrite, SearchResult, hit_from_row
from servers.retrieval.rewrite import MAX_QUERY_CHARS, hyde, multi_query
from servers.retrieval.store import Store, get_store

Ranked = list[tuple[str, float, dict[str, Any]]]  # (chunk id, score, stored row), best first


def fuse_lists(lists: Sequence[Ranked], method: Fusion, *, k: int = 60, weights: Sequence[float] | None = None) -> Ranked:
    """One ranking from several: RRF, or a weighted sum of min-max normalized scores where a chunk
    missing from a list counts 0 there. Ties keep first-seen order."""
    rows: dict[str, dict[str, Any]] = {}
    for ranked in lists:
        for cid, _, row in ranked:
            rows.setdefault(cid, row)
    ids, scores = fuse_ranked([[(cid, s) for cid, s, _ in r] for r in lists], method, weights=weights, k=k,
                             absent="zero")
    return [(ids[i], float(scores[i]), rows[ids[i]]) for i in np.argsort(-scores, kind="stable")]


def _rerank(query: str, ranked: Ranked, method: str | None, settings: Settings) -> Ranked:
    """``ranked`` reordered by the rerank library (``method`` None: rerank's configured default)."""
    if not ranked:
        return ranked
    documents = [{"id": str(i), "text": row.get("text", "")} for i, (_, _, row) in enumerate(ranked)]
    results = rerank_api.rerank(settings, query, documents, method=method).results
    return [(ranked[int(r.id)][0], float(r.score), ranked[int(r.id)][2]) for r in results]


# ------------------------------------------------------------ search

class Searcher:
    """Searches over one store with the configured embedder (loaded on first use)."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or get_store(settings)

    def embed(self, kb: str, texts: list[str]) -> list[list[float]]:
        """Query vectors, after checking that ``kb`` was built with the configured embedder."""
        model = self.settings.models.embedder
        self.store.check_model(kb, model, embedding_dimension(self.settings))
        return [v.tolist() for v in embed(texts, self.settings)]

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
        offset: int = 0,
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
        if offset < 0 or offset + top_k > cfg.max_top_k:
            raise InvalidInput(f"offset + top_k must stay within {cfg.max_top_k} (retrieval.max_top_k); got "
                               f"offset {offset} + top_k {top_k}: narrow the query or add a filter instead")
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

        depth = offset + top_k + 1  # one more than the page: is anything left after it?
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
            lists = [fuse_lists([dense_lists[i], bm25_lists[min(i, len(bm25_lists) - 1)]], "weighted", weights=[w, 1 - w])
                     for i in range(len(dense_lists))]
        else:
            lists = dense_lists + bm25_lists
        ranked = lists[0] if len(lists) == 1 else fuse_lists(lists, "rrf", k=cfg.rrf_k)
        reranked = False
        if rerank:
            ranked = _rerank(query, ranked[:depth], rerank_method, self.settings)
            reranked = True
        end = offset + top_k
        hits = [hit_from_row(row, score) for _, score, row in ranked[offset:end]]
        more = len(ranked) > end and end < cfg.max_top_k
        return SearchResult(
            kb=kb, query=query, mode=mode, fusion=fusion if mode == "hybrid" else None, reranked=reranked,
            queries=queries, hits=hits, offset=offset, next_offset=end if more else None,
            took_ms=round((time.perf_counter() - start) * 1000, 2),
        )


def search(settings: Settings, kb: str, query: str, **kwargs: Any) -> SearchResult:
    """Search ``kb`` (see :meth:`Searcher.search` for the options)."""
    return Searcher(settings).search(kb, query, **kwargs)
