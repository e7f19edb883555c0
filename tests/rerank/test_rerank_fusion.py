"""Fusion against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from servers.core.errors import InvalidInput
from servers.rerank.api import fuse
from servers.rerank.fusion import normalize, rrf_scores
from servers.rerank.rerankers import FusionReranker, get_reranker
from servers.rerank.schemas import RankedItem


def items(*pairs):
    return [RankedItem(id=i, score=s) for i, s in pairs]


def test_rrf_hand_computed():
    out = fuse([items(("a", None), ("b", None)), items(("b", None), ("c", None))], method="rrf", k=60)
    got = {r.id: r.score for r in out.results}
    assert got["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert got["a"] == pytest.approx(1 / 61)
    assert got["c"] == pytest.approx(1 / 62)
    assert [r.id for r in out.results] == ["b", "a", "c"]
    assert [r.ranks for r in out.results] == [[2, 1], [1, None], [None, 2]]
    assert [r.rank for r in out.results] == [1, 2, 3]


def test_rrf_weights_and_top_n():
    out = fuse([items(("a", None), ("b", None)), items(("b", None), ("a", None))], weights=[3, 1], k=0, top_n=1)
    assert [r.id for r in out.results] == ["a"]
    assert out.results[0].score == pytest.approx(3 / 1 + 1 / 2)


def test_weighted_minmax_hand_computed():
    # list 1: a=10 b=5 c=0 -> 1, .5, 0 ; list 2: c=4 a=2 (b missing -> list min 0) -> c 1, a 0
    out = fuse([items(("a", 10), ("b", 5), ("c", 0)), items(("c", 4), ("a", 2))],
               method="weighted", weights=[0.75, 0.25], normalization="minmax")
    got = {r.id: r.score for r in out.results}
    assert got == pytest.approx({"a": 0.75, "b": 0.375, "c": 0.25})
    assert [r.id for r in out.results] == ["a", "b", "c"]


def test_weighted_zscore_hand_computed():
    # list 1: scores 3, 1 -> mean 2, std 1 -> z +1, -1; list 2: b=10 alone -> constant -> 0
    out = fuse([items(("a", 3), ("b", 1)), items(("b", 10),)], method="weighted", normalization="zscore")
    got = {r.id: r.score for r in out.results}
    assert got["a"] == pytest.approx(1.0 + 0.0)  # a missing from list 2 -> that list's min z (0)
    assert got["b"] == pytest.approx(-1.0 + 0.0)


def test_normalize_edges():
    assert normalize(np.array([2.0, 2.0]), "minmax").tolist() == [1.0, 1.0]
    assert normalize(np.array([2.0, 2.0]), "zscore").tolist() == [0.0, 0.0]
    z = normalize(np.array([1.0, 2.0, 3.0]), "zscore")
    assert z.tolist() == pytest.approx([-math.sqrt(1.5), 0.0, math.sqrt(1.5)])
    assert rrf_scores([[1, 0]], 2, k=1).tolist() == pytest.approx([1 / 3, 1 / 2])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rankings": []}, "at least one non-empty"),
        ({"rankings": [[]]}, "at least one non-empty"),
        ({"rankings": [items(("a", None))], "method": "weighted"}, "needs a score"),
        ({"rankings": [items(("a", 1), ("a", 2))]}, "twice"),
        ({"rankings": [items(("a", 1))], "weights": [1, 2]}, "one weight per ranking"),
        ({"rankings": [items(("a", 1))], "weights": [-1]}, ">= 0"),
        ({"rankings": [items(("a", 1))], "method": "borda"}, "unknown fusion method"),
    ],
)
def test_fuse_bad_input(kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        fuse(**kwargs)


def test_fusion_method_spec(settings):
    rr = get_reranker("minmax:none=0.3+none=0.7", settings)
    assert isinstance(rr, FusionReranker)
    assert rr.score("q", ["x", "y", "z"]) == pytest.approx([1.0, 0.5, 0.0])
    rrf = get_reranker("rrf:none+none", settings)
    assert rrf.score("q", ["x", "y"]) == pytest.approx([2 / 61, 2 / 62])
    for bad, msg in [("rrf:none", "at least two"), ("rrf:none+bogus", "not a base method"),
                     ("minmax:none=x+none", "not a number"), ("minmax:none=0+none=0", "> 0"),
                     ("magic:none+none", "unknown rerank method")]:
        with pytest.raises(InvalidInput, match=msg):
            get_reranker(bad, settings)
