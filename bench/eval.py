"""The eval library against the raw tools underneath, and the quality of its RAG faithfulness tiers.

    python -m bench.eval --data ../shared/data --limit 200

One JSON line per measurement:

- ``ir_metrics``: nDCG/Recall/P/Hit/MRR/MAP of ``--ir-queries`` SciFact queries x ``--ir-hits`` hits with
  ``servers.eval.retrieval`` and with pytrec-eval-terrier (trec_eval) on the same run: seconds, the
  throughput ratio, and the largest difference between the two (it should be ~1e-16).
- ``perplexity``: tokens/s of ``servers.eval.lm.perplexity`` vs a plain transformers loop (one forward
  with ``labels`` per text) over the same abstracts, and the ratio (target >= 0.95).
- ``faithfulness``: one line per tier. A SciFact claim is the answer, its abstract the context; labels
  SUPPORT / CONTRADICT / NOT_ENOUGH_INFO. ROC AUC of "supported vs not" (deterministic: the support
  score; judge: the share of claims judged supported) and, for the judge, the accuracy of its
  three-way label. ``--claims`` / ``--corpus`` name the files (default: under ``--data``).
- ``judge_speed``: pairwise judge items/s (both orders) with the configured generator (the shipped
  SmolLM2 on CPU; ``--judge-model`` or ``models.endpoint`` for a 7B-class judge on a GPU).

Progress goes to stderr. Speeds are meaningful only on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import emit, log


def roc_auc(scores: list[float], positive: list[bool]) -> float | None:
    """Mann-Whitney AUC with ties counted half."""
    pos = [s for s, p in zip(scores, positive, strict=True) if p]
    neg = [s for s, p in zip(scores, positive, strict=True) if not p]
    if not pos or not neg:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    values = np.asarray(scores)[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos_ranks = sum(r for r, p in zip(ranks, positive, strict=True) if p)
    return float((pos_ranks - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


# ---------------------------------------------------------------- IR metrics


def ir_metrics(data: Path, queries: int, hits: int) -> None:
    import pytrec_eval

    from servers.eval.retrieval import evaluate, parse_qrels

    qrels_all = parse_qrels((data / "beir_scifact" / "qrels" / "train.tsv").read_text(encoding="utf-8"))
    doc_ids = [json.loads(line)["_id"] for line in (data / "beir_scifact" / "corpus.jsonl").open(encoding="utf-8")]
    rng = random.Random(0)
    qrels = dict(list(qrels_all.items())[:queries])
    run = {}
    for qid, rels in qrels.items():
        docs = rng.sample(doc_ids, hits - len(rels)) + list(rels)
        run[qid] = {d: rng.random() for d in docs}
    names = ["ndcg@10", "ndcg@100", "recall@10", "recall@100", "precision@10", "hit@10", "mrr", "map"]
    measures = {"ndcg_cut.10,100", "recall.10,100", "P.10", "success.10", "recip_rank", "map"}
    trec = {"ndcg@10": "ndcg_cut_10", "ndcg@100": "ndcg_cut_100", "recall@10": "recall_10",
            "recall@100": "recall_100", "precision@10": "P_10", "hit@10": "success_10", "mrr": "recip_rank",
            "map": "map"}
    ours_times, ref_times = [], []
    for _ in range(3):  # best of three, alternating
        start = time.perf_counter()
        ours = evaluate(run, qrels, names)
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        ref = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
        ref_times.append(time.perf_counter() - start)
    ours_s, ref_s = min(ours_times), min(ref_times)
    diff = max(abs(ours.per_query[q][n] - ref[q][trec[n]]) for q in qrels for n in names)
    emit({"bench": "ir_metrics", "queries": len(qrels), "hits": hits, "metrics": len(names),
          "quiver_s": round(ours_s, 4), "pytrec_eval_s": round(ref_s, 4),
          "throughput_ratio": round(ref_s / ours_s, 3), "max_abs_diff": diff})


# ---------------------------------------------------------------- perplexity


def perplexity(data: Path, texts_n: int, settings: Any, rounds: int = 2) -> None:
    import torch

    from servers.core.models import causal_lm
    from servers.eval import lm

    model = causal_lm(None, settings)
    texts = []
    for line in (data / "beir_scifact" / "corpus.jsonl").open(encoding="utf-8"):
        texts.append(json.loads(line)["text"])
        if len(texts) == texts_n:
            break
    window = 1024
    texts = [t for t in texts if len(model.tokenizer(t, add_special_tokens=False)["input_ids"]) <= window]
    lm.perplexity(model, texts[:1], window=window, stride=512)  # warm-up

    def raw() -> float:
        nll = 0.0
        with torch.inference_mode():
            for text in texts:
                ids = torch.tensor([model.tokenizer(text, add_special_tokens=False)["input_ids"]], device=model.device)
                nll += float(model.model(input_ids=ids, labels=ids).loss) * (ids.shape[1] - 1)
        return nll

    ours_times, raw_times = [], []
    for _ in range(rounds):  # alternate, keep the best of each: the same process state for both
        start = time.perf_counter()
        rows = lm.perplexity(model, texts, window=window, stride=512)
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        raw_nll = raw()
        raw_times.append(time.perf_counter() - start)
    ours_s, raw_s = min(ours_times), min(raw_times)
    tokens = sum(r.detail["tokens"] for r in rows)
    ours_nll = sum(r.detail["nll_sum"] for r in rows)
    emit({"bench": "perplexity", "model": model.name, "texts": len(texts), "tokens": tokens,
          "quiver_tokens_per_s": round(tokens / ours_s, 1), "raw_tokens_per_s": round(tokens / raw_s, 1),
          "ratio": round(raw_s / ours_s, 3), "corpus_perplexity": round(math.exp(ours_nll / tokens), 4),
          "raw_corpus_perplexity": round(math.exp(raw_nll / tokens), 4)})


# ---------------------------------------------------------------- faithfulness


def _claims(claims_path: Path, corpus_path: Path, limit: int | None) -> list[tuple[dict, str]]:
    abstracts = {}
    for line in corpus_path.open(encoding="utf-8"):
        doc = json.loads(line)
        abstracts[str(doc["_id"])] = doc["text"]
    by_label: dict[str, list[dict]] = {}
    for line in claims_path.open(encoding="utf-8"):
        claim = json.loads(line)
        if claim["doc_id"] in abstracts:
            by_label.setdefault(claim["label"], []).append(claim)
    chosen: list[dict] = []
    pools = [list(v) for v in by_label.values()]
    while pools and (limit is None or len(chosen) < limit):  # round-robin over labels: balanced small samples
        for pool in pools:
            if pool and (limit is None or len(chosen) < limit):
                chosen.append(pool.pop(0))
        pools = [p for p in pools if p]
    return [(c, abstracts[c["doc_id"]]) for c in chosen]


def faithfulness(claims_path: Path, corpus_path: Path, limit: int | None, judge_limit: int | None, tiers: list[str],
                 settings: Any) -> None:
    from servers.eval import api
    from servers.eval.schemas import RagSample

    items = _claims(claims_path, corpus_path, limit)
    log(f"faithfulness: {len(items)} claims")
    for tier in tiers:
        subset = items if tier == "deterministic" else items[: judge_limit or len(items)]
        samples = [RagSample(id=c["claim_id"], question="", answer=c["claim"], contexts=[abstract])
                   for c, abstract in subset]
        metric = "support" if tier == "deterministic" else "faithfulness"
        start = time.perf_counter()
        result = api.eval_rag(samples=samples, tier=tier, metrics=["faithfulness", "support"], rows=10**9,
                              background=False, settings=settings,
                              progress=lambda d, t, m, tier=tier: log(f"  {tier} {m}") if d % 50 == 0 else None)
        seconds = time.perf_counter() - start
        by_id = {r.id: r for r in result.rows}
        scores, positive, three = [], [], []
        for claim, _ in subset:
            row = by_id[claim["claim_id"]]
            if metric in row.scores:
                scores.append(row.scores[metric])
                positive.append(claim["label"] == "SUPPORT")
                if tier == "judge" and row.detail.get("label"):
                    three.append(row.detail["label"] == claim["label"])
        emit({"bench": "faithfulness", "tier": tier, "n": len(scores), "auc": roc_auc(scores, positive),
              "accuracy_3way": round(sum(three) / len(three), 4) if three else None,
              "unscorable": len(subset) - len(scores), "items_per_s": round(len(subset) / seconds, 3),
              "model": result.model, "run_id": result.run_id})


# ---------------------------------------------------------------- judge speed


def judge_speed(items_n: int, settings: Any) -> None:
    from servers.eval import api
    from servers.eval.schemas import PairItem

    questions = [("What is 2 + 2?", "4", "5"), ("Capital of France?", "Paris", "Rome"),
                 ("Boiling point of water at sea level in Celsius?", "100", "90"),
                 ("Largest planet of the solar system?", "Jupiter", "Mars")]
    items = [PairItem(prompt=q, a=a, b=b) for q, a, b in (questions * (items_n // len(questions) + 1))[:items_n]]
    start = time.perf_counter()
    result = api.eval_judge_pairwise(items=items, background=False, settings=settings)
    seconds = time.perf_counter() - start
    emit({"bench": "judge_speed", "model": result.model, "items": len(items), "items_per_s": round(len(items) / seconds, 4),
          "seconds_per_reply": round(seconds / (2 * len(items)), 3), "swap_consistency": result.reliability.swap_consistency,
          "invalid": result.reliability.invalid, "reasoning_chars": settings.eval.judge_reasoning_chars})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared benchmark data folder")
    ap.add_argument("--claims", type=Path, help="default: DATA/scifact_claims/train.jsonl")
    ap.add_argument("--corpus", type=Path, help="default: DATA/beir_scifact/corpus.jsonl")
    ap.add_argument("--limit", type=int, default=None, help="claims for the deterministic tier (balanced by label)")
    ap.add_argument("--judge-limit", type=int, default=60, help="claims for the judge tier")
    ap.add_argument("--tiers", default="deterministic,judge")
    ap.add_argument("--ir-queries", type=int, default=300)
    ap.add_argument("--ir-hits", type=int, default=1000)
    ap.add_argument("--ppl-texts", type=int, default=50)
    ap.add_argument("--judge-items", type=int, default=8)
    ap.add_argument("--judge-model", help="causal LM for the judge (default: models.causal_lm)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--skip", default="", help="comma list of: ir,perplexity,faithfulness,judge")
    ap.add_argument("--config", default=None)
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from servers.core.settings import load_settings

    overrides: dict[str, Any] = {"data_dir": tempfile.mkdtemp(prefix="eval-bench-"), "roots": [str(args.data.resolve())],
                                 "eval": {"inline_items": 10**6}}  # the bench times calls inline, never as jobs
    if args.judge_model:
        overrides["models"] = {"causal_lm": args.judge_model}
    settings = load_settings(args.config, overrides=overrides)
    if "ir" not in skip:
        ir_metrics(args.data, args.ir_queries, args.ir_hits)
    if "perplexity" not in skip:
        perplexity(args.data, args.ppl_texts, settings)
    if "faithfulness" not in skip:
        faithfulness(args.claims or args.data / "scifact_claims" / "train.jsonl",
                     args.corpus or args.data / "beir_scifact" / "corpus.jsonl", args.limit, args.judge_limit,
                     [t for t in args.tiers.split(",") if t], settings)
    if "judge" not in skip:
        judge_speed(args.judge_items, settings)


if __name__ == "__main__":
    main()
