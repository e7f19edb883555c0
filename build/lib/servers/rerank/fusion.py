"""Score fusion: reciprocal rank fusion (RRF) and weighted sums of min-max or z-score normalized scores.

The one implementation, used three ways: :func:`servers.rerank.api.fuse` merges ranked lists
from different systems, fusion reranker specs (``rrf:none+late-interaction``) combine methods
over the same candidates, and retrieval fuses its dense and BM25 lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from servers.core.errors import InvalidInput

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


def fuse_ranked(
    rankings: Sequence[Sequence[tuple[str, float | None]]],
    method: Literal["rrf", "weighted"],
    *,
    weights: Sequence[float] | None = None,
    normalization: Normalization = "minmax",
    k: int = RRF_K,
    absent: Literal["lowest", "zero"] = "lowest",
) -> tuple[list[str], np.ndarray]:
    """Fuse ranked lists of ``(id, score)`` (each best first, ids unique within a list): the ids in
    first-seen order and their fused scores. ``rrf``: sum of weight / (k + rank). ``weighted``: sum
    of weight × normalized score, an id absent from a list counting as that list's ``lowest``
    normalized value or ``zero``. No validation here: callers check their inputs."""
    index: dict[str, int] = {}
    for ranking in rankings:
        for item_id, _ in ranking:
            index.setdefault(item_id, len(index))
    n = len(index)
    w = [1.0] * len(rankings) if weights is None else list(weights)
    if method == "rrf":
        return list(index), rrf_scores([[index[i] for i, _ in r] for r in rankings], n, k=k, weights=w)
    total = np.zeros(n, dtype=np.float64)
    for j, ranking in enumerate(rankings):
        if not ranking:
            continue
        norm = normalize(np.array([s for _, s in ranking], dtype=np.float64), normalization)
        column = np.full(n, norm.min() if absent == "lowest" else 0.0)
        column[[index[i] for i, _ in ranking]] = norm
        total += w[j] * column
    return list(index), total


def check_weights(weights: list[float] | None, count: int) -> list[float]:
    """One finite weight >= 0 per ranking (equal weights when None), not all 0."""
    if weights is None:
        return [1.0] * count
    if len(weights) != count:
        raise InvalidInput(f"weights has {len(weights)} values but there are {count} rankings: give one weight per ranking")
    if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise InvalidInput("weights must be finite, >= 0, and not all 0")
    return list(weights)
