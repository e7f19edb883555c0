"""Rerank quality and speed on a BEIR folder: dense top-k first stage, then each reranker.

    python -m bench.rerank --data ../shared/data/beir_scifact --split train --llm-limit 20

Prints one JSON line per method (``none`` = the first-stage order first) with ``ndcg@10`` over
``n`` queries, ``ndcg@10_none`` (no rerank on the same queries), ``delta``, ``pairs_per_s`` and
``default: true`` on the configured default. The first stage is brute-force numpy cosine over the
configured embedder's vectors (cached under .cache/bench).

Speed: ``pairs_per_s`` is the wall time of the reranker's own ``score`` call over the first
``--speed-limit`` queries (``speed_n``), model loading excluded. Quality: methods built on the
embedder (``embedding``, ``late-interaction``) score every query through the same reranker code,
with each document's encoding memoized across queries (a document is encoded once, not once per
query that retrieves it), so all queries fit in minutes; ``cross-encoder`` and ``llm`` run live on
``--limit`` / ``--llm-limit`` queries. Fusion specs combine their components' per-query scores with
the same fusion code; their speed is that of their components together. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, doc_text, load_beir, log, ndcg
from servers.core.models import embed
from servers.core.settings import load_settings
from servers.rerank.rerankers import (
    EmbeddingReranker,
    FusionReranker,
    LateInteractionReranker,
    Reranker,
    get_reranker,
)

BASE = ["embedding", "late-interaction", "cross-encoder", "llm"]
FUSIONS = ["rrf:none+late-interaction", "minmax:none+late-interaction", "zscore:none+late-interaction"]


def corpus_vectors(ids: list[str], texts: list[str], settings, data: Path) -> tuple[np.ndarray, float | None]:
    """Normalized corpus embeddings, cached on disk; returns (vectors, docs/s when computed)."""
    model_name = settings.models.embedder
    key = hashlib.sha256(f"{data.resolve()}|{model_name}|{len(ids)}|{ids[0]}|{ids[-1]}".encode()).hexdigest()[:16]
    cache = REPO / ".cache" / "bench" / f"rerank-corpus-{key}.npy"
    if cache.is_file():
        return np.load(cache), None
    log(f"encoding {len(texts)} corpus documents (first stage; cached afterwards)")
    start = time.perf_counter()
    vecs = embed(texts, settings, batch_size=64)
    rate = len(texts) / (time.perf_counter() - start)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vecs.astype(np.float32))
    return vecs.astype(np.float32), rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--limit", type=int, default=None, help="first N queries with relevance labels")
    ap.add_argument("--llm-limit", type=int, default=20, help="queries for the (slow) llm method; 0 skips it")
    ap.add_argument("--speed-limit", type=int, default=20, help="queries timed live (no memoized encodings)")
    ap.add_argument("--depth", type=int, default=50, help="first-stage candidates per query")
    ap.add_argument("--limit-docs", type=int, default=None,
                    help="use only the first N documents plus the labelled ones (quick runs)")
    ap.add_argument("--methods", default=",".join(BASE + FUSIONS), help="comma-separated methods after 'none'")
    args = ap.parse_args()

    settings = load_settings()
    beir, queries, qrels = load_beir(args.data, args.split, args.limit)
    if args.limit_docs:
        keep = set(list(beir)[: args.limit_docs]) | {d for rels in qrels.values() for d in rels}
        beir = {d: v for d, v in beir.items() if d in keep}
    corpus = {d: doc_text(*parts) for d, parts in beir.items()}
    qids = list(queries)
    doc_ids = list(corpus)
    vecs, enc_rate = corpus_vectors(doc_ids, [corpus[d] for d in doc_ids], settings, args.data)
    qvecs = embed([queries[q] for q in qids], settings)
    t0 = time.perf_counter()
    sims = qvecs @ vecs.T
    top = np.argsort(-sims, axis=1)[:, : args.depth]
    first_stage_ms = (time.perf_counter() - t0) * 1000 / len(qids)
    candidates = {q: [doc_ids[i] for i in top[n]] for n, q in enumerate(qids)}
    base_ndcg = {q: ndcg(candidates[q], qrels[q]) for q in qids}

    default = settings.rerank.default_method
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    print(json.dumps({
        "method": "none", "ndcg@10": round(float(np.mean(list(base_ndcg.values()))), 4), "n": len(qids),
        "depth": args.depth, "pairs_per_s": None, "first_stage": f"{settings.models.embedder} dense, numpy brute force",
        "first_stage_ms_per_query": round(first_stage_ms, 2),
        "corpus_docs_per_s": round(enc_rate, 1) if enc_rate else "cached", "default": default == "none",
    }), flush=True)

    cached: dict[str, dict[str, tuple[list[float], float]]] = {}  # method -> qid -> (scores, seconds)

    def run(name: str, reranker: Reranker, ids: list[str]) -> dict[str, tuple[list[float], float]]:
        """Per-query (scores, seconds): timed live on the first --speed-limit queries, then memoized."""
        if name in cached and all(q in cached[name] for q in ids):
            return cached[name]
        out = cached.setdefault(name, {})
        reranker.score(queries[ids[0]], [corpus[candidates[ids[0]][0]]])  # load the model outside the timing
        fast = _memoized(reranker)
        for n, q in enumerate(ids, start=1):
            if q in out:
                continue
            texts = [corpus[d] for d in candidates[q]]
            live = n <= args.speed_limit or fast is None
            start = time.perf_counter()
            scores = (reranker if live else fast).score(queries[q], texts)
            out[q] = (scores, time.perf_counter() - start if live else float("nan"))
            if n % 10 == 0 or n == len(ids):
                log(f"{name}: {n}/{len(ids)} queries")
        return out

    for method in methods:
        ids = qids[: args.llm_limit] if method == "llm" else qids
        if not ids:
            continue
        try:
            reranker = get_reranker(method, settings)
            reason = reranker.unavailable_reason()
            if reason:
                print(json.dumps({"method": method, "ndcg@10": None, "pairs_per_s": None, "n": 0,
                                  "skipped": reason, "default": default == method}), flush=True)
                continue
            if isinstance(reranker, FusionReranker):
                parts = [(run(p.name, p, ids), p, w) for p, w in reranker.parts]
                results = {}
                for q in ids:
                    lists = [np.asarray(res[q][0]) for res, _, _ in parts]
                    fused = FusionReranker(settings, reranker.how, [])
                    fused.parts = [(_Fixed(s), w) for s, (_, _, w) in zip(lists, parts, strict=True)]
                    results[q] = (fused.score(queries[q], [corpus[d] for d in candidates[q]]),
                                  sum(res[q][1] for res, _, _ in parts))
            else:
                results = run(method, reranker, ids)
        except Exception as exc:  # report and go on with the other methods
            print(json.dumps({"method": method, "ndcg@10": None, "pairs_per_s": None, "n": 0,
                              "error": f"{type(exc).__name__}: {exc}", "default": default == method}), flush=True)
            continue
        scores = []
        for q in ids:
            order = np.argsort(-np.asarray(results[q][0]), kind="stable")
            scores.append(ndcg([candidates[q][i] for i in order], qrels[q]))
        timed = [q for q in ids if not math.isnan(results[q][1])]
        seconds = sum(results[q][1] for q in timed)
        pairs = sum(len(candidates[q]) for q in timed)
        none_same = float(np.mean([base_ndcg[q] for q in ids]))
        print(json.dumps({
            "method": method, "ndcg@10": round(float(np.mean(scores)), 4), "n": len(ids),
            "ndcg@10_none": round(none_same, 4), "delta": round(float(np.mean(scores)) - none_same, 4),
            "pairs_per_s": round(pairs / seconds, 1) if seconds else None, "speed_n": len(timed),
            "model": reranker.model_name(), "default": default == method,
        }), flush=True)


def _memoized(reranker: Reranker) -> Reranker | None:
    """The same reranker with per-text encodings cached across queries (embedder-based methods only)."""
    if isinstance(reranker, LateInteractionReranker):
        attr = "_tokens"
    elif isinstance(reranker, EmbeddingReranker):
        attr = "_vectors"
    else:
        return None
    encode = getattr(reranker, attr)
    memo: dict[str, object] = {}

    def cached_encode(texts: list[str]):
        missing = [t for t in dict.fromkeys(texts) if t not in memo]
        if missing:
            memo.update(zip(missing, encode(missing), strict=True))
        rows = [memo[t] for t in texts]
        return rows if attr == "_tokens" else np.stack(rows)

    clone = type(reranker)(reranker.settings)
    setattr(clone, attr, cached_encode)
    return clone


class _Fixed(Reranker):
    """Replays already computed scores (so fusions reuse their components' runs)."""

    name = "fixed"
    description = "precomputed scores"

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def _score(self, query: str, texts: list[str]) -> np.ndarray:
        return self.scores


if __name__ == "__main__":
    main()
