"""Retrieval quality and speed: Quiver's retrieval library and MCP server against the raw stack
(sentence-transformers + pymilvus with default settings), in the same run.

    python -m bench.retrieval --data ../shared/data/beir_scifact --split train [--limit-queries N]

Prints one JSON line per result (figures only; progress on stderr):

* quality: ``{"system": "quiver"|"raw", "mode": ..., "ndcg@10", "recall@100", "n"}`` for dense, bm25 and
  hybrid (Quiver's configured default fusion over 100 candidates per list), plus weighted fusion at each
  ``--weights`` (``hybrid_weighted_W``) and RRF at each ``--rrf-candidates`` depth (``hybrid_rrf_cN``). The corpus goes through Quiver's real ingest (parse → chunk → embed → upsert;
  a document is ``# title`` + text); chunk hits are mapped to documents (best chunk first). The raw stack
  embeds ``title + " " + text`` with ``SentenceTransformer.encode``, stores it in a default Milvus Lite
  collection (AUTOINDEX/COSINE, standard-analyzer BM25) and searches it with ``search`` / ``hybrid_search``
  + ``RRFRanker()``.
* ingest throughput: ``{"metric": "ingest_chunks_per_s", "system": "quiver"|"raw_encode", "value"}`` —
  Quiver's end-to-end ingest of ``--throughput-docs`` documents into a fresh knowledge base, against
  ``SentenceTransformer.encode`` of the same chunk texts; plus their ``ratio``.
* search latency: ``{"metric": "search_latency_ms", "system", "mode", "chunks", "p50", "p99", "value"}``
  at each ``--scales`` size (synthetic chunks: random unit vectors + random words), through MCP over
  stdio and streamable HTTP (``quiver serve retrieval``), the library in-process, and direct pymilvus
  (search only, and query encode + search).

``--workdir DIR`` keeps the knowledge bases between runs (a re-run skips the unchanged corpus: the
ingest is idempotent), which makes trying fusion settings cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import SHARED_DATA, doc_text, emit, load_beir, log, ndcg, recall
from protocol_tests.harness import http_server, stdio_client
from servers.core.models import embedder
from servers.core.settings import Settings, load_settings
from servers.retrieval import manage
from servers.retrieval.ingest import embed_input, ingest
from servers.retrieval.search import Searcher
from servers.retrieval.store import close_stores, get_store

# ------------------------------------------------------------ metrics

def quality_line(system: str, mode: str, runs: dict[str, list[str]], qrels: dict, **extra: Any) -> dict:
    n = len(runs)
    return {
        "system": system, "mode": mode, "n": n,
        "ndcg@10": round(sum(ndcg(runs[q], qrels[q]) for q in runs) / n, 4),
        "recall@100": round(sum(recall(runs[q], qrels[q]) for q in runs) / n, 4),
        **extra,
    }


def percentiles(samples: list[float]) -> tuple[float, float]:
    arr = np.array(samples) * 1000
    return round(float(np.percentile(arr, 50)), 2), round(float(np.percentile(arr, 99)), 2)


# ------------------------------------------------------------ quiver quality

def quiver_settings(root: Path, **retrieval: Any) -> Settings:
    return load_settings(overrides={
        "data_dir": str(root / "data"), "roots": [str(root)],
        "retrieval": {"max_top_k": 300, **retrieval},
    })


def quiver_quality(args: argparse.Namespace, corpus: dict, queries: dict, qrels: dict, work: Path) -> None:
    settings = quiver_settings(work / "quiver")
    manage.create_kb(settings, "scifact", exist_ok=True)
    texts = [{"text": f"# {title}\n\n{text}" if title else text, "source": did} for did, (title, text) in corpus.items()]
    log(f"quiver: ingesting {len(texts)} documents")
    last = [0.0]

    def progress(done: int, total: int, message: str) -> None:
        if time.monotonic() - last[0] > 10 or done == total:
            last[0] = time.monotonic()
            log(f"  ingest {message}")

    report = ingest(settings, "scifact", texts=texts, progress=progress)
    log(f"quiver: ingest done {report.model_dump(exclude={'errors'})}")
    emit({"metric": "ingest_report", "system": "quiver", "value": report.chunks_added,
          "documents": report.documents, "added": report.added, "unchanged": report.unchanged,
          "chunks_in_kb": get_store(settings).count("scifact"), "timings": report.timings})
    searcher = Searcher(settings)
    configs = [("dense", {"mode": "dense"}), ("bm25", {"mode": "bm25"}),
               ("hybrid", {"mode": "hybrid", "fusion": settings.retrieval.fusion})]
    configs += [(f"hybrid_weighted_{w}", {"mode": "hybrid", "fusion": "weighted", "dense_weight": w})
                for w in args.weights]
    configs += [(f"hybrid_rrf_c{c}", {"mode": "hybrid", "fusion": "rrf", "candidates": c}) for c in args.rrf_candidates]
    for name, opts in configs:
        runs, took = {}, []
        for qid, text in queries.items():
            res = searcher.search("scifact", text, top_k=args.depth, **opts)
            took.append(res.took_ms)
            runs[qid] = list(dict.fromkeys(h.citation.source for h in res.hits))
        p50 = float(np.percentile(took, 50))
        emit(quality_line("quiver", name, runs, qrels, search_ms_p50=round(p50, 2), **_opts(opts)))


def _opts(opts: dict) -> dict:
    return {k: v for k, v in opts.items() if k != "mode"}


# ------------------------------------------------------------ raw stack

def raw_model(settings: Settings) -> Any:
    """The same weights loaded straight with sentence-transformers (no Quiver layer)."""
    from sentence_transformers import SentenceTransformer

    from servers.core.models import resolve

    return SentenceTransformer(resolve(settings.models.embedder, "embedder").location, device="cpu")


def raw_quality(args: argparse.Namespace, corpus: dict, queries: dict, qrels: dict, work: Path, model: Any) -> None:
    from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, RRFRanker

    client = MilvusClient(str(work / "raw.db"))
    name = "scifact_raw"
    ids = list(corpus)
    if not client.has_collection(name) or client.query(name, output_fields=["count(*)"])[0]["count(*)"] != len(ids):
        if client.has_collection(name):
            client.drop_collection(name)
        log(f"raw: encoding {len(ids)} documents with SentenceTransformer.encode")
        docs = [doc_text(*corpus[i]) for i in ids]
        start = time.perf_counter()
        vectors = model.encode(docs, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        encode_s = time.perf_counter() - start
        emit({"metric": "raw_corpus_encode_docs_per_s", "system": "raw", "value": round(len(docs) / encode_s, 1)})
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                     output_field_names=["sparse"]))
        index = client.prepare_index_params()
        index.add_index("dense", index_type="AUTOINDEX", metric_type="COSINE")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(name, schema=schema, index_params=index)
        rows = [{"id": i, "text": d[:60000], "dense": v.tolist()} for i, d, v in zip(ids, docs, vectors, strict=True)]
        for k in range(0, len(rows), 1000):
            client.insert(name, rows[k : k + 1000])
        client.flush(name)
    client.load_collection(name)
    qids = list(queries)
    qvecs = model.encode([queries[q] for q in qids], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    dense, bm25, hybrid = {}, {}, {}
    for k in range(0, len(qids), 50):
        part = qids[k : k + 50]
        res = client.search(name, data=[v.tolist() for v in qvecs[k : k + 50]], anns_field="dense", limit=100,
                            output_fields=["id"])
        dense.update({q: [h["id"] for h in hits] for q, hits in zip(part, res, strict=True)})
        res = client.search(name, data=[queries[q] for q in part], anns_field="sparse", limit=100, output_fields=["id"])
        bm25.update({q: [h["id"] for h in hits] for q, hits in zip(part, res, strict=True)})
    for q, v in zip(qids, qvecs, strict=True):
        reqs = [AnnSearchRequest([v.tolist()], "dense", {}, 100), AnnSearchRequest([queries[q]], "sparse", {}, 100)]
        res = client.hybrid_search(name, reqs, RRFRanker(), limit=100, output_fields=["id"])
        hybrid[q] = [h["id"] for h in res[0]]
    client.close()
    emit(quality_line("raw", "dense", dense, qrels))
    emit(quality_line("raw", "bm25", bm25, qrels))
    emit(quality_line("raw", "hybrid", hybrid, qrels, fusion="RRFRanker() default"))


# ------------------------------------------------------------ ingest throughput

def throughput(args: argparse.Namespace, corpus: dict, work: Path, model: Any) -> None:
    settings = quiver_settings(work / "quiver")
    store = get_store(settings)
    if store.exists("throughput"):
        store.drop("throughput")
    manage.create_kb(settings, "throughput")
    items = list(corpus.items())[: args.throughput_docs]
    texts = [{"text": f"# {t}\n\n{x}" if t else x, "source": did} for did, (t, x) in items]
    # the exact inputs Quiver embeds for these documents (same chunker, same title/heading context)
    probe = ingest(settings, "throughput", texts=texts)
    rows = list(store.iter_query("throughput", "", fields=["text", "title", "heading_path"]))
    inputs = [embed_input(r["title"], r["heading_path"], r["text"], settings.retrieval.embed_title) for r in rows]
    store.drop("throughput")
    manage.create_kb(settings, "throughput")

    def raw_encode() -> float:
        start = time.perf_counter()
        model.encode(inputs, batch_size=settings.models.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return len(inputs) / (time.perf_counter() - start)

    before = raw_encode()
    report = ingest(settings, "throughput", texts=texts)
    after = raw_encode()
    raw = (before + after) / 2
    assert report.chunks_added == probe.chunks_added == len(inputs)
    emit({"metric": "ingest_chunks_per_s", "system": "quiver", "value": report.chunks_per_s,
          "chunks": report.chunks_added, "documents": report.documents, "timings": report.timings})
    emit({"metric": "ingest_chunks_per_s", "system": "raw_encode", "value": round(raw, 1), "chunks": len(inputs),
          "before": round(before, 1), "after": round(after, 1)})
    emit({"metric": "ingest_throughput_ratio", "system": "quiver/raw_encode", "value": round(report.chunks_per_s / raw, 3)})
    store.drop("throughput")


# ------------------------------------------------------------ latency

WORDS = [f"w{i}" for i in range(5000)]


def synth_rows(start: int, n: int, dim: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rows = []
    for k in range(n):
        i = start + k
        words = " ".join(random.choices(WORDS, k=60))
        rows.append({
            "id": f"s{i}", "doc_id": f"d{i // 4}", "version": "v", "chunk_index": i % 4, "chunk_count": 4,
            "text": f"synthetic chunk {i} {words}", "dense": vecs[k].tolist(), "source": f"synth:{i // 4}",
            "title": f"Synthetic {i // 4}", "heading_path": [], "page": 0, "tags": ["synthetic"],
            "created": 0, "updated": 0, "metadata": {"i": i},
        })
    return rows


def grow_synthetic(settings: Settings, target: int, dim: int) -> None:
    store = get_store(settings)
    manage.create_kb(settings, "synth", exist_ok=True)
    have = store.count("synth")
    rng = np.random.default_rng(have)
    random.seed(have)
    start = time.perf_counter()
    for k in range(have, target, 2000):
        store.upsert("synth", synth_rows(k, min(2000, target - k), dim, rng))
    store.flush("synth")
    log(f"latency: {target - have} synthetic chunks added in {time.perf_counter() - start:.1f}s")


async def mcp_latency(client_factory: Any, queries: list[str], modes: list[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    async with client_factory() as client:
        warm = await client.call_tool("kb_search", {"kb": "synth", "query": "warm up", "top_k": 10})
        assert not warm.is_error, warm.content
        for mode in modes:
            samples = []
            for q in queries:
                start = time.perf_counter()
                res = await client.call_tool("kb_search", {"kb": "synth", "query": q, "mode": mode, "top_k": 10})
                samples.append(time.perf_counter() - start)
                assert not res.is_error, res.content
            out[mode] = samples
    return out


def latency(args: argparse.Namespace, queries: list[str], work: Path, model: Any) -> None:
    root = work / "latency"
    settings = quiver_settings(root)
    dim = int(model.get_embedding_dimension())
    qs = (queries * (1 + args.latency_queries // max(1, len(queries))))[: args.latency_queries]
    modes = ["dense", "bm25", "hybrid"]
    for scale in args.scales:
        grow_synthetic(settings, scale, dim)
        # in-process library
        searcher = Searcher(settings)
        for mode in modes:
            searcher.search("synth", "warm up", mode=mode, top_k=10)
            samples = []
            for q in qs:
                start = time.perf_counter()
                searcher.search("synth", q, mode=mode, top_k=10)
                samples.append(time.perf_counter() - start)
            emit_latency("quiver_library", mode, scale, samples)
        close_stores()  # hand the Milvus Lite file to the server processes
        # direct pymilvus on the same collection
        from pymilvus import MilvusClient

        client = MilvusClient(str(root / "data" / "milvus.db"))
        client.load_collection("quiver_synth")
        search_only, encode_search = [], []
        for q in qs:
            start = time.perf_counter()
            vec = model.encode([q], normalize_embeddings=True, convert_to_numpy=True)[0].tolist()
            mid = time.perf_counter()
            client.search("quiver_synth", data=[vec], anns_field="dense", limit=10, output_fields=["text", "source"])
            end = time.perf_counter()
            search_only.append(end - mid)
            encode_search.append(end - start)
        bm25 = []
        for q in qs:
            start = time.perf_counter()
            client.search("quiver_synth", data=[q], anns_field="sparse", limit=10, output_fields=["text", "source"])
            bm25.append(time.perf_counter() - start)
        client.close()
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(str(root / "data" / "milvus.db"))
        emit_latency("raw_pymilvus_search_only", "dense", scale, search_only)
        emit_latency("raw_encode_plus_pymilvus", "dense", scale, encode_search)
        emit_latency("raw_pymilvus_search_only", "bm25", scale, bm25)
        # MCP over stdio
        res = asyncio.run(mcp_latency(partial(stdio_client, "retrieval", root), qs, modes))
        for mode, samples in res.items():
            emit_latency("quiver_mcp_stdio", mode, scale, samples)
        # MCP over streamable HTTP
        with http_server("retrieval", root) as server:
            res = asyncio.run(mcp_latency(partial(server.client, server.url()), qs, modes))
        for mode, samples in res.items():
            emit_latency("quiver_mcp_http", mode, scale, samples)


def emit_latency(system: str, mode: str, chunks: int, samples: list[float]) -> None:
    p50, p99 = percentiles(samples)
    emit({"metric": "search_latency_ms", "system": system, "mode": mode, "chunks": chunks, "p50": p50, "p99": p99,
          "value": p50, "n": len(samples)})


# ------------------------------------------------------------ main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "beir_scifact")
    parser.add_argument("--split", default="train")
    parser.add_argument("--limit-queries", type=int, default=None)
    parser.add_argument("--limit-docs", type=int, default=None, help="use only the first N documents (quick runs)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep knowledge bases here between runs")
    parser.add_argument("--depth", type=int, default=200, help="chunks retrieved per query for the metrics")
    parser.add_argument("--weights", type=float, nargs="*", default=[0.3, 0.5],
                        help="dense weights tried for weighted fusion")
    parser.add_argument("--rrf-candidates", type=int, nargs="*", default=[],
                        help="extra RRF candidate depths to report (the default is retrieval.candidates)")
    parser.add_argument("--throughput-docs", type=int, default=1000)
    parser.add_argument("--scales", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["quality", "raw", "throughput", "latency"])
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    corpus, queries, qrels = load_beir(args.data, args.split, args.limit_queries)
    if args.limit_docs:
        keep = set(list(corpus)[: args.limit_docs]) | {d for rels in qrels.values() for d in rels}
        corpus = {d: v for d, v in corpus.items() if d in keep}
    log(f"{len(corpus)} documents, {len(queries)} queries with qrels ({args.split})")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="quiver-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    settings = quiver_settings(work / "quiver")
    model = raw_model(settings)
    embedder(settings.models.embedder, settings)  # load once, outside the timings
    try:
        if "quality" not in args.skip:
            quiver_quality(args, corpus, queries, qrels, work)
        if "raw" not in args.skip:
            raw_quality(args, corpus, queries, qrels, work, model)
        if "throughput" not in args.skip:
            throughput(args, corpus, work, model)
        close_stores()
        if "latency" not in args.skip:
            latency(args, list(queries.values()), work, model)
    finally:
        close_stores()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    emit({"metric": "environment", "value": os.cpu_count(), "threads": _threads(),
          "loadavg_1m": round(os.getloadavg()[0], 2)})


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
