"""Significance: planted differences are found, identical runs are not, McNemar and the gate by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from servers.core.errors import InvalidInput
from servers.eval import api
from servers.eval.significance import mcnemar, paired_bootstrap, permutation_p_value, regression_gate


def planted(n: int = 200, shift: float = 0.05, seed: int = 1) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.2, 0.8, n)
    b = np.clip(a + shift + rng.normal(0, 0.05, n), 0, 1)
    return a.tolist(), b.tolist()


def test_planted_difference_is_significant_and_identical_runs_are_not() -> None:
    a, b = planted()
    assert permutation_p_value(a, b, samples=5000) < 0.01
    delta, lo, hi = paired_bootstrap(a, b, samples=2000)
    assert 0 < lo < delta < hi and delta == pytest.approx(np.mean(b) - np.mean(a))
    assert permutation_p_value(a, a, samples=5000) == 1.0
    same = paired_bootstrap(a, a, samples=500)
    assert same == (0.0, 0.0, 0.0)
    noise_a, noise_b = planted(shift=0.0, seed=3)
    assert permutation_p_value(noise_a, noise_b, samples=5000) > 0.05


def test_small_samples_use_the_exact_permutation_distribution() -> None:
    a, b = [0.1, 0.5, 0.3, 0.9, 0.4], [0.3, 0.6, 0.2, 1.0, 0.8]
    diff = np.array(b) - np.array(a)
    stats = [abs(np.mean(diff * np.array(s))) for s in itertools.product([-1, 1], repeat=5)]
    expected = np.mean([s >= abs(diff.mean()) - 1e-12 for s in stats])
    assert permutation_p_value(a, b) == pytest.approx(expected)
    assert permutation_p_value(a, b, seed=5) == permutation_p_value(a, b, seed=9)  # exact: no randomness


def test_mcnemar_exact_by_hand() -> None:
    a = [1] * 10 + [0] * 6 + [1] * 2
    b = [1] * 10 + [1] * 6 + [0] * 2
    result = mcnemar(a, b)
    # 6 vs 2 discordant pairs: p = 2 * P(X <= 2), X ~ Binomial(8, 0.5) = 2 * (1 + 8 + 28) / 256
    assert (result.only_a, result.only_b) == (2, 6)
    assert result.p_value == pytest.approx(2 * 37 / 256)
    assert mcnemar([1, 0], [1, 0]).p_value == 1.0
    with pytest.raises(InvalidInput, match="0 or 1"):
        mcnemar([0.5], [1])


def test_regression_gate() -> None:
    a, b = planted()
    worse_delta, lo, hi = paired_bootstrap(b, a, samples=2000)
    p = permutation_p_value(b, a, samples=2000)
    assert regression_gate(worse_delta, (lo, hi), p).verdict == "fail"
    assert regression_gate(worse_delta, (lo, hi), p, tolerance=0.2).verdict == "pass"
    assert regression_gate(0.0, (0.0, 0.0), 1.0).verdict == "pass"
    # lower is better (perplexity): an increase is the regression
    assert regression_gate(-worse_delta, (-hi, -lo), p, higher_is_better=False).verdict == "fail"


def test_bad_pairs() -> None:
    with pytest.raises(InvalidInput, match="same items"):
        permutation_p_value([1.0], [1.0, 2.0])
    with pytest.raises(InvalidInput, match="at least one"):
        paired_bootstrap([], [])
    with pytest.raises(InvalidInput, match="finite"):
        paired_bootstrap([float("nan")], [1.0])


def test_compare_two_saved_runs_and_score_maps(eval_env) -> None:
    qrels = {f"q{i}": {"rel": 1} for i in range(30)}
    good = {q: {"rel": 2.0, "x": 1.0} for q in qrels}
    bad = {q: {"x": 2.0, "y": 1.5, "rel": 1.0} for q in qrels}
    run_good = api.eval_retrieval(qrels=qrels, run=good, ks=[1, 10], settings=eval_env)
    run_bad = api.eval_retrieval(qrels=qrels, run=bad, ks=[1, 10], settings=eval_env)
    worse = api.eval_compare(run_good.run_id, run_bad.run_id, "hit@1", settings=eval_env)
    assert worse.delta == -1.0 and worse.p_value < 0.01 and worse.gate == "fail"
    assert worse.mcnemar_p_value is not None and worse.mcnemar_p_value < 0.01 and worse.only_a == 30
    same = api.eval_compare(run_good.run_id, run_good.run_id, settings=eval_env)
    assert same.metric == "ndcg@10" and same.p_value == 1.0 and same.gate == "pass"
    maps = api.eval_compare(scores_a={"1": 0.5, "2": 0.6}, scores_b={"1": 0.7, "3": 0.1}, settings=eval_env)
    assert maps.n == 1 and maps.dropped == 2
    with pytest.raises(InvalidInput, match="not in both runs"):
        api.eval_compare(run_good.run_id, run_bad.run_id, "bleu", settings=eval_env)
    with pytest.raises(InvalidInput, match="either two run ids"):
        api.eval_compare(run_good.run_id, None, settings=eval_env)
