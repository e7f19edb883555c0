"""Score fusion: reciprocal rank fusion (RRF) and weighted sums of min-max or z-score normalized scores.

Used two ways: :func:`fuse` merges ranked lists from different systems (BM25 from one, dense
from another), and fusion reranker specs (``rrf:none+late-interaction``) combine methods over
the same candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from servers.core.errors import InvalidInput
from servers.rerank.schemas import FusedItem, FuseResponse, RankedItem

RRF_K = 60
Normalization = Literal["minmax", "zscore"]


def normalize(scores: np.ndarray, how: str) -> np.ndarray:
    """Min-max to [0, 1] (a constant list maps to 1) or z-score (a constant list maps to 0)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    if how == "minmax":
        lo, hi = scores.min(), scores.max()
        return np.ones_like(scores) if hi == lo else (scores - lo) / (hi - lo)
    if how == "zscore":
        std = scores.std()
        return np.zeros_like(scores) if std == 0 else (scores - scores.mean()) / std
    raise InvalidInput(f"unknown normalization '{how}': use 'minmax' or 'zscore'")


def rrf_scores(
    orders: Sequence[Sequence[int]], n: int, k: int = RRF_K, weights: Sequence[float] | None = None
) -> np.ndarray:
    """RRF over ``n`` items: each order lists item indices best first; item at 1-based rank r gets w/(k+r)."""
    out = np.zeros(n, dtype=np.float64)
    for j, order in enumerate(orders):
        w = 1.0 if weights is None else weights[j]
        for rank, item in enumerate(order, start=1):
            out[item] += w / (k + rank)
    return out


def _check_weights(weights: list[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0] * count
    if len(weights) != count:
        raise InvalidInput(f"weights has {len(weights)} values but there are {count} rankings: give one weight per ranking")
    if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise InvalidInput("weights must be finite, >= 0, and not all 0")
    return list(weights)


def fuse(
    rankings: list[list[RankedItem]],
    method: Literal["rrf", "weighted"] = "rrf",
    weights: list[float] | None = None,
    normalization: Normalization = "minmax",
    k: int = RRF_K,
    top_n: int | None = None,
) -> FuseResponse:
    """One ranking from several ranked lists (each best first).

    ``rrf``: score = sum over lists of weight / (k + rank). ``weighted``: score = sum of weight ×
    normalized score; every item needs a score, and a document missing from a list gets that
    list's lowest normalized value. Ties keep first-seen order.
    """
    if not rankings or any(len(r) == 0 for r in rankings):
        raise InvalidInput("rankings must hold at least one non-empty list of {id, score} items (best first)")
    if method not in ("rrf", "weighted"):
        raise InvalidInput(f"unknown fusion method '{method}': use 'rrf' or 'weighted'")
    if k < 0:
        raise InvalidInput("k must be >= 0 (60 is the usual RRF constant)")
    w = _check_weights(weights, len(rankings))
    ids: dict[str, int] = {}
    for j, ranking in enumerate(rankings):
        seen: set[str] = set()
        for item in ranking:
            if item.id in seen:
                raise InvalidInput(f"rankings[{j}] lists id '{item.id}' twice: each id once per ranking")
            seen.add(item.id)
            ids.setdefault(item.id, len(ids))
            if method == "weighted" and item.score is None:
                raise InvalidInput(
                    f"weighted fusion needs a score on every item; rankings[{j}] item '{item.id}' has none "
                    "(use method 'rrf' for rank-only lists)"
                )
    n = len(ids)
    ranks: list[list[int | None]] = [[None] * len(rankings) for _ in range(n)]
    for j, ranking in enumerate(rankings):
        for rank, item in enumerate(ranking, start=1):
            ranks[ids[item.id]][j] = rank
    if method == "rrf":
        total = rrf_scores([[ids[it.id] for it in r] for r in rankings], n, k=k, weights=w)
    else:
        total = np.zeros(n, dtype=np.float64)
        for j, ranking in enumerate(rankings):
            norm = normalize(np.array([it.score for it in ranking], dtype=np.float64), normalization)
            column = np.full(n, norm.min())
            column[[ids[it.id] for it in ranking]] = norm
            total += w[j] * column
    order = np.argsort(-total, kind="stable")
    names = list(ids)
    limit = len(order) if top_n is None else top_n
    results = [
        FusedItem(id=names[i], rank=pos, score=float(total[i]), ranks=ranks[i])
        for pos, i in enumerate(order[:limit], start=1)
    ]
    return FuseResponse(
        method=method, normalization=normalization if method == "weighted" else None, weights=w, results=results
    )
