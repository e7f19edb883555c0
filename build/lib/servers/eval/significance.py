"""Is B really better than A? Paired bootstrap confidence intervals, paired permutation tests,
McNemar's exact test for paired right/wrong outcomes, and a regression gate for CI.

Every function takes per-item scores of the two systems on the same items, in the same
order, and is deterministic for a given seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from servers.core.errors import InvalidInput

EXACT_LIMIT = 16  # up to 2**16 sign patterns the permutation test is exact


def _pair(a: list[float], b: list[float]) -> tuple[np.ndarray, np.ndarray]:
    if len(a) != len(b):
        raise InvalidInput(f"paired scores need the same items: {len(a)} score(s) for A, {len(b)} for B")
    if not a:
        raise InvalidInput("no paired scores to compare: both systems need scores on at least one shared item")
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InvalidInput("scores must be finite numbers (drop unscorable items before comparing)")
    return x, y


def paired_bootstrap(
    a: list[float], b: list[float], *, samples: int = 10000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean difference B - A and its percentile bootstrap interval (items resampled with replacement)."""
    if samples < 100:
        raise InvalidInput(f"bootstrap samples must be >= 100 (got {samples})")
    if not 0.5 <= confidence < 1:
        raise InvalidInput(f"confidence must be in [0.5, 1) (got {confidence})")
    x, y = _pair(a, b)
    diff = y - x
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    chunk = max(1, 2_000_000 // max(1, diff.size))  # bounded memory for long runs
    for start in range(0, samples, chunk):
        n = min(chunk, samples - start)
        idx = rng.integers(0, diff.size, size=(n, diff.size))
        means[start : start + n] = diff[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(diff.mean()), float(lo), float(hi)


def permutation_p_value(a: list[float], b: list[float], *, samples: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value of "A and B are exchangeable per item" (random sign flips of the differences).

    Exact over all 2**n sign patterns when n <= 16; otherwise Monte Carlo with ``samples``
    draws and the (count + 1) / (samples + 1) estimate, which is never 0.
    """
    x, y = _pair(a, b)
    diff = y - x
    observed = abs(diff.mean())
    tol = 1e-12 * max(1.0, observed)
    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        return 1.0
    if diff.size <= EXACT_LIMIT:
        patterns = ((np.arange(2**diff.size)[:, None] >> np.arange(diff.size)) & 1) * 2 - 1
        stats = np.abs((patterns * diff).mean(axis=1))
        return float(np.mean(stats >= observed - tol))
    rng = np.random.default_rng(seed)
    extreme = 0
    chunk = max(1, 2_000_000 // diff.size)
    for start in range(0, samples, chunk):
        n = min(chunk, samples - start)
        signs = rng.integers(0, 2, size=(n, diff.size)) * 2 - 1
        extreme += int(np.sum(np.abs((signs * diff).mean(axis=1)) >= observed - tol))
    return (extreme + 1) / (samples + 1)


@dataclass
class McNemar:
    only_a: int  # A right, B wrong
    only_b: int  # A wrong, B right
    p_value: float


def mcnemar(a: list[float], b: list[float]) -> McNemar:
    """McNemar's exact (binomial) test on paired right (1) / wrong (0) outcomes."""
    x, y = _pair(a, b)
    if not (np.isin(x, (0, 1)).all() and np.isin(y, (0, 1)).all()):
        raise InvalidInput("McNemar's test needs right/wrong outcomes: every score must be 0 or 1")
    only_a = int(np.sum((x == 1) & (y == 0)))
    only_b = int(np.sum((x == 0) & (y == 1)))
    n = only_a + only_b
    if n == 0:
        return McNemar(only_a, only_b, 1.0)
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1))
    return McNemar(only_a, only_b, min(1.0, 2 * tail / 2**n))


def is_binary(values: list[float]) -> bool:
    return bool(values) and all(v in (0, 1) for v in values)


@dataclass
class Gate:
    verdict: str  # "pass" or "fail"
    reason: str


def regression_gate(delta: float, ci: tuple[float, float], p_value: float, *, alpha: float = 0.05,
                    tolerance: float = 0.0, higher_is_better: bool = True) -> Gate:
    """Fail only when B is significantly worse than A by more than ``tolerance``.

    Worse means: the difference points the wrong way beyond the tolerance, the
    permutation p-value is below ``alpha``, and the whole confidence interval lies on
    the wrong side of ``-tolerance``.
    """
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be between 0 and 1 (got {alpha})")
    if tolerance < 0:
        raise InvalidInput(f"tolerance must be >= 0 (got {tolerance})")
    sign = 1.0 if higher_is_better else -1.0
    d, lo, hi = sign * delta, sign * ci[0], sign * ci[1]
    worst_plausible = min(lo, hi)
    best_plausible = max(lo, hi)
    if d < -tolerance and p_value < alpha and best_plausible < -tolerance:
        return Gate("fail", f"significantly worse: delta {delta:+.4f}, p = {p_value:.4g} < {alpha}, "
                            f"CI [{ci[0]:+.4f}, {ci[1]:+.4f}] beyond the tolerance {tolerance}")
    if d > 0 and p_value < alpha and worst_plausible > 0:
        return Gate("pass", f"significantly better: delta {delta:+.4f}, p = {p_value:.4g}")
    return Gate("pass", f"no significant regression: delta {delta:+.4f}, p = {p_value:.4g}")
