"""Retrieval metrics with trec_eval's semantics: nDCG@k, Recall@k, Precision@k, Hit@k, MRR, MAP.

A run is ``{qid: {docid: score}}`` and qrels ``{qid: {docid: relevance}}`` (the shapes
pytrec_eval uses). As in trec_eval, each query's documents are ranked by score,
descending, ties broken by document id, descending (the rank column of a run file is
ignored); a document is relevant when its label is >= 1; nDCG uses the label as a
linear gain and ``1 / log2(rank + 1)`` as the discount; ``precision@k`` divides by k
even when fewer documents were retrieved; ``map`` and ``mrr`` look at the whole list.

Queries of the qrels that the run lacks score 0 (trec_eval's ``-c``) and are counted;
queries whose qrels hold no relevant document cannot be scored and are reported as
``unscorable`` rows with the reason, never as NaN.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from servers.core.errors import InvalidInput

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]

METRIC_FAMILIES = ("ndcg", "recall", "precision", "hit", "mrr", "map")
CUTOFF_REQUIRED = ("recall", "precision", "hit")
DEFAULT_KS = (1, 5, 10, 100)
_METRIC = re.compile(r"^(ndcg|recall|precision|hit|mrr|map)(?:@(-?\d+))?$")
ALIASES = {"p": "precision", "success": "hit", "recip_rank": "mrr", "r": "recall"}


@dataclass(frozen=True)
class Metric:
    """One parsed metric name: a family and an optional cutoff k."""

    family: str
    k: int | None = None

    @property
    def name(self) -> str:
        return f"{self.family}@{self.k}" if self.k is not None else self.family


def parse_metric(name: str) -> Metric:
    """``"ndcg@10"`` → Metric("ndcg", 10); raises InvalidInput naming the accepted forms."""
    text = name.strip().lower()
    family, _, k = text.partition("@")
    text = ALIASES.get(family, family) + (f"@{k}" if k else "")
    match = _METRIC.fullmatch(text)
    if not match:
        raise InvalidInput(
            f"unknown retrieval metric '{name}': use ndcg, ndcg@k, recall@k, precision@k, hit@k, mrr, mrr@k, "
            "map or map@k (k a positive integer)"
        )
    family, k = match.group(1), match.group(2)
    if k is not None and int(k) <= 0:
        raise InvalidInput(f"metric '{name}': the cutoff k must be a positive integer (got {k})")
    if k is None and family in CUTOFF_REQUIRED:
        raise InvalidInput(f"metric '{name}' needs a cutoff, e.g. '{family}@10'")
    return Metric(family, int(k) if k is not None else None)


def default_metrics(ks: Iterable[int] = DEFAULT_KS) -> list[str]:
    """nDCG, Recall, Precision and Hit at each k, then MRR and MAP."""
    ks = check_ks(ks)
    names = [f"{family}@{k}" for family in ("ndcg", "recall", "precision", "hit") for k in ks]
    return names + ["mrr", "map"]


def check_ks(ks: Iterable[int]) -> list[int]:
    out = []
    for k in ks:
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise InvalidInput(f"every cutoff k must be a positive integer (got {k!r})")
        if k not in out:
            out.append(k)
    if not out:
        raise InvalidInput("give at least one cutoff k, e.g. [1, 5, 10, 100]")
    return out


# ---------------------------------------------------------------- scoring one query


def ranked_ids(scores: dict[str, float]) -> list[str]:
    """Document ids best first: score descending, ties by id descending (trec_eval's order)."""
    return [d for d, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def relevant_ranks(scores: dict[str, float], rels: dict[str, int]) -> list[tuple[int, int]]:
    """``(rank, label)`` of each relevant document the run retrieved, best first, ranks as in
    :func:`ranked_ids` (1-based) without sorting the whole list: a document's rank is one plus the
    number of documents ahead of it (higher score, or the same score and a greater id)."""
    mine = [(d, r) for d, r in rels.items() if r >= 1 and d in scores]
    if not mine:
        return []
    values = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    keys: list[str] | None = None  # built only when a relevant document shares its score
    out = []
    for doc, label in mine:
        s = scores[doc]
        ahead = int(np.count_nonzero(values > s))
        ties = np.flatnonzero(values == s)
        if ties.size > 1:
            keys = keys or list(scores)
            ahead += sum(1 for i in ties if keys[i] > doc)
        out.append((ahead + 1, label))
    out.sort()
    return out


def score_ranks(ranks: list[tuple[int, int]], rels: dict[str, int], metrics: list[Metric]) -> dict[str, float]:
    """Every metric for one query from the ``(rank, label)`` of its retrieved relevant documents
    (best first); ``rels`` must hold a relevant document."""
    labels = sorted((r for r in rels.values() if r >= 1), reverse=True)
    num_rel = len(labels)
    rank = np.array([r for r, _ in ranks], dtype=np.float64)
    gain = np.array([g for _, g in ranks], dtype=np.float64)
    ideal = np.array(labels, dtype=np.float64)
    ideal_discount = np.log2(np.arange(2, num_rel + 2, dtype=np.float64))
    first = int(rank[0]) if rank.size else None
    out: dict[str, float] = {}
    for m in metrics:
        k = m.k
        within = rank.size if k is None else int(np.searchsorted(rank, k, side="right"))
        if m.family == "ndcg":
            n_ideal = num_rel if k is None else min(k, num_rel)
            dcg = float(np.sum(gain[:within] / np.log2(rank[:within] + 1)))
            out[m.name] = dcg / float(np.sum(ideal[:n_ideal] / ideal_discount[:n_ideal]))
        elif m.family == "recall":
            out[m.name] = within / num_rel
        elif m.family == "precision":
            out[m.name] = within / k
        elif m.family == "hit":
            out[m.name] = 1.0 if first is not None and first <= k else 0.0
        elif m.family == "mrr":
            out[m.name] = 1.0 / first if first is not None and (k is None or first <= k) else 0.0
        elif m.family == "map":
            out[m.name] = float(np.sum(np.arange(1, within + 1) / rank[:within])) / num_rel if within else 0.0
    return out


def score_query(ranking: list[str], rels: dict[str, int], metrics: list[Metric]) -> dict[str, float]:
    """Every metric for one query given its ranked document ids (best first); ``rels`` must hold at
    least one relevant document."""
    ranks = [(i, rels[d]) for i, d in enumerate(ranking, 1) if rels.get(d, 0) >= 1]
    return score_ranks(ranks, rels, metrics)


# ---------------------------------------------------------------- whole runs


@dataclass
class RetrievalScores:
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    unscorable: dict[str, str] = field(default_factory=dict)
    missing_in_run: list[str] = field(default_factory=list)
    not_in_qrels: list[str] = field(default_factory=list)

    @property
    def scored(self) -> int:
        return len(self.per_query)


def evaluate(run: Run, qrels: Qrels, metrics: list[str] | None = None, ks: Iterable[int] = DEFAULT_KS) -> RetrievalScores:
    """Per-query and mean metrics of ``run`` against ``qrels``.

    Raises InvalidInput when the run and the qrels share no query id (the usual cause:
    a run for another collection, or ids written differently).
    """
    names = metrics or default_metrics(ks)
    parsed = [parse_metric(n) for n in names]
    if not qrels:
        raise InvalidInput("the qrels are empty: give at least one (query, document, relevance) judgement")
    if not run:
        raise InvalidInput("the run is empty: give at least one (query, document, score) line")
    shared = [q for q in qrels if q in run]
    if not shared:
        raise InvalidInput(
            f"the run and the qrels share no query id (run: {_sample(run)}; qrels: {_sample(qrels)}); "
            "check that both are for the same queries and write ids the same way"
        )
    per_query: dict[str, dict[str, float]] = {}
    unscorable: dict[str, str] = {}
    missing = [q for q in qrels if q not in run]
    for qid, rels in qrels.items():
        if not any(r >= 1 for r in rels.values()):
            unscorable[qid] = "unscorable: the qrels hold no relevant document for this query"
            continue
        per_query[qid] = score_ranks(relevant_ranks(run.get(qid, {}), rels), rels, parsed)
    if not per_query:
        raise InvalidInput("no query in the qrels has a relevant document (relevance >= 1); nothing can be scored")
    means = {m.name: float(np.mean([row[m.name] for row in per_query.values()])) for m in parsed}
    return RetrievalScores(
        metrics=means, per_query=per_query, unscorable=unscorable, missing_in_run=missing,
        not_in_qrels=[q for q in run if q not in qrels],
    )


def _sample(d: dict, n: int = 3) -> str:
    ids = list(d)[:n]
    return ", ".join(repr(i) for i in ids) + (" ..." if len(d) > n else "")


# ---------------------------------------------------------------- files


def parse_run(text: str, source: str = "run") -> Run:
    """TREC run lines ``qid Q0 docid rank score tag`` → ``{qid: {docid: score}}``."""
    run: Run = {}
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or line.lstrip().startswith("#"):
            continue
        if len(parts) != 6:
            raise InvalidInput(
                f"{source} line {n}: expected 6 columns 'qid Q0 docid rank score tag' (TREC run format), "
                f"got {len(parts)}: {line.strip()[:120]!r}"
            )
        qid, _, docid, _, score, _ = parts
        try:
            value = float(score)
        except ValueError as exc:
            raise InvalidInput(f"{source} line {n}: the score {score!r} is not a number") from exc
        if not math.isfinite(value):
            raise InvalidInput(f"{source} line {n}: the score {score!r} is not finite")
        run.setdefault(qid, {})[docid] = value
    if not run:
        raise InvalidInput(f"{source} holds no run lines ('qid Q0 docid rank score tag')")
    return run


def parse_qrels(text: str, source: str = "qrels") -> Qrels:
    """BEIR TSV (``query-id corpus-id score``, header optional) or TREC qrels (``qid 0 docid rel``)."""
    qrels: Qrels = {}
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split("\t") if "\t" in line else line.split()
        parts = [p.strip() for p in parts]
        if not parts or not parts[0] or line.lstrip().startswith("#"):
            continue
        if len(parts) == 3:
            qid, docid, rel = parts
        elif len(parts) == 4:
            qid, _, docid, rel = parts
        else:
            raise InvalidInput(
                f"{source} line {n}: expected 'query-id corpus-id score' (BEIR TSV) or 'qid 0 docid relevance' "
                f"(TREC qrels), got {len(parts)} columns: {line.strip()[:120]!r}"
            )
        try:
            value = int(float(rel))
        except ValueError as exc:
            if n == 1:
                continue  # a header line
            raise InvalidInput(f"{source} line {n}: the relevance {rel!r} is not a number") from exc
        qrels.setdefault(qid, {})[docid] = value
    if not qrels:
        raise InvalidInput(f"{source} holds no judgements")
    return qrels


def write_run(run: Run, path: Path, tag: str = "quiver") -> None:
    """Save a run in TREC format (ranks follow trec_eval's order)."""
    lines = []
    for qid, scores in run.items():
        for rank, docid in enumerate(ranked_ids(scores), 1):
            lines.append(f"{qid} Q0 {docid} {rank} {scores[docid]!r} {tag}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- score distributions


@dataclass
class ScoreSeparation:
    """How the retriever's scores separate relevant from non-relevant hits."""

    relevant: list[float]
    non_relevant: list[float]
    threshold: float | None
    f1_at_threshold: float | None
    reason: str | None = None


def score_separation(run: Run, qrels: Qrels, depth: int = 10) -> ScoreSeparation:
    """Scores of the top-``depth`` hits split by relevance, and the threshold that maximises F1 of
    "score >= t means relevant" over those hits (None with a reason when one side is empty)."""
    rel_scores: list[float] = []
    other: list[float] = []
    for qid, scores in run.items():
        if qid not in qrels:
            continue
        for docid in ranked_ids(scores)[:depth]:
            (rel_scores if qrels[qid].get(docid, 0) >= 1 else other).append(float(scores[docid]))
    if not rel_scores or not other:
        side = "relevant" if not rel_scores else "non-relevant"
        return ScoreSeparation(rel_scores, other, None, None, f"unscorable: no {side} hit in the top {depth}")
    values = np.array(rel_scores + other)
    labels = np.array([1] * len(rel_scores) + [0] * len(other))
    order = np.argsort(-values, kind="stable")
    values, labels = values[order], labels[order]
    tp = np.cumsum(labels)
    predicted = np.arange(1, len(values) + 1)
    f1 = 2 * tp / (predicted + len(rel_scores))
    # only cut between distinct scores
    distinct = np.append(values[1:] != values[:-1], True)
    best = int(np.argmax(np.where(distinct, f1, -1.0)))
    return ScoreSeparation(rel_scores, other, float(values[best]), float(f1[best]))
