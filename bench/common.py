"""What the benchmarks share: output, the BEIR data loader, and the eval server's ranking metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from servers.eval.retrieval import Metric, score_query

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def log(msg: str) -> None:
    """Progress, on stderr (stdout carries the JSON lines)."""
    print(msg, file=sys.stderr, flush=True)


def emit(obj: dict[str, Any]) -> None:
    """One result as a JSON line on stdout."""
    print(json.dumps(obj), flush=True)


def load_beir(
    folder: Path, split: str, limit: int | None = None
) -> tuple[dict[str, tuple[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    """A BEIR folder: corpus ``{doc id: (title, text)}``, the queries that have relevance labels in
    ``split`` (the first ``limit``), and their labels ``{query id: {doc id: grade > 0}}``."""
    corpus = {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            corpus[str(d["_id"])] = (d.get("title") or "", d.get("text") or "")
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            queries[str(q["_id"])] = q["text"]
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(qid, {})[did] = int(score)
    ids = [q for q in queries if q in qrels][:limit]
    return corpus, {q: queries[q] for q in ids}, {q: qrels[q] for q in ids}


def doc_text(title: str, text: str) -> str:
    """A BEIR document as one string (title, then text)."""
    return f"{title} {text}".strip()


def ndcg(ranked: list[str], rels: dict[str, int], k: int = 10) -> float:
    """nDCG@k as the eval server computes it (linear gain, trec_eval's definition)."""
    return score_query(ranked, rels, [Metric("ndcg", k)])[f"ndcg@{k}"]


def recall(ranked: list[str], rels: dict[str, int], k: int = 100) -> float:
    return score_query(ranked, rels, [Metric("recall", k)])[f"recall@{k}"]
