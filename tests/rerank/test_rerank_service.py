"""The rerank entry point (api.rerank): ordering, boosts, explanations, bad input, the default method."""

from __future__ import annotations

import pytest

from servers.core.errors import ConfigError, InvalidInput, TooLarge
from servers.core.settings import load_settings
from servers.rerank.api import default_method, list_rerankers, rerank
from servers.rerank.rerankers import get_reranker

DOCS = [
    {"id": "old", "text": "first", "metadata": {"date": "2023-01-01", "tags": ["news"]}},
    {"id": "new", "text": "second", "metadata": {"date": "2024-01-01"}},
    {"id": "faq", "text": "third", "metadata": {"date": "2024-01-01", "tags": ["faq"]}},
]


def test_none_keeps_order_and_top_n(settings):
    out = rerank(settings, "q", DOCS, method="none", top_n=2)
    assert [r.id for r in out.results] == ["old", "new"]
    assert [r.score for r in out.results] == [3.0, 2.0]
    assert [r.original_rank for r in out.results] == [1, 2]
    assert out.candidates == 3 and out.results[0].score_before_boosts is None


def test_boosts_reorder_and_explain(settings):
    boosts = [
        {"type": "recency", "field": "date", "half_life_days": 365, "now": "2024-01-01"},
        {"type": "match", "field": "tags", "value": "faq", "multiply": 2},
    ]
    out = rerank(settings, "q", DOCS, method="none", boosts=boosts, return_text=True)
    # old: 3 * 0.5 = 1.5 ; new: 2 ; faq: 1 * 2 = 2 (tie with new: input order wins)
    assert [(r.id, r.score) for r in out.results] == [("new", 2.0), ("faq", 2.0), ("old", pytest.approx(1.5))]
    faq = out.results[1]
    assert faq.score_before_boosts == 1.0 and faq.original_rank == 3 and faq.text == "third"
    assert faq.explanation[0].startswith("none score 1.0000 (input rank 3)")
    assert any("x2" in line for line in faq.explanation)
    assert any("365.0 days old" in line for line in out.results[2].explanation)


def test_ids_default_to_position(settings):
    out = rerank(settings, "q", [{"text": "a"}, {"text": "b"}], method="none")
    assert [r.id for r in out.results] == ["0", "1"]


def test_default_method_from_settings(tmp_path):
    s = load_settings(overrides={"data_dir": str(tmp_path), "rerank": {"default_method": "none"}})
    assert rerank(s, "q", DOCS).method == "none"
    assert default_method(s) == "none" and default_method(s, "embedding") == "embedding"
    reranker = get_reranker(default_method(s), s)
    assert reranker.score("q", ["a", "b", "c"]) == [3.0, 2.0, 1.0] and reranker.score("q", []) == []


def test_bad_input(settings):
    small = settings.model_copy(update={"rerank": settings.rerank.model_copy(update={"max_documents": 2})})
    cases = [
        (lambda: rerank(settings, "q", []), InvalidInput, "documents is empty"),
        (lambda: rerank(settings, "", DOCS), InvalidInput, "query is empty"),
        (lambda: rerank(small, "q", DOCS), TooLarge, "exceed the cap of 2"),
        (lambda: rerank(settings, "q", [{"id": "x"}]), InvalidInput, r"documents\[0\] has no 'text'"),
        (lambda: rerank(settings, "q", [{"text": "a", "size": 3}]), InvalidInput, "Extra inputs"),
        (lambda: rerank(settings, "q", DOCS, method="magic"), InvalidInput, "unknown rerank method 'magic'"),
        (lambda: rerank(settings, "q", DOCS, top_n=0), InvalidInput, "top_n"),
        (lambda: rerank(settings, "q", [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]), InvalidInput, "more than once"),
        (lambda: rerank(settings, "q", DOCS, boosts=[{"type": "match", "field": "t", "value": 1}]), InvalidInput, "exactly one"),
        (lambda: rerank(settings, "q", DOCS, method="cross-encoder"), ConfigError, "no cross-encoder is configured"),
        (lambda: get_reranker("none", settings).score("q", ["a", None]), InvalidInput, r"texts\[1\]"),
    ]
    for call, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            call()


def test_thousands_beyond_cap(settings):
    docs = [{"text": f"doc {i}"} for i in range(settings.rerank.max_documents + 4000)]
    with pytest.raises(TooLarge, match="max_documents"):
        rerank(settings, "q", docs)


def test_list_rerankers(settings):
    out = list_rerankers(settings)
    by_name = {r.name: r for r in out.rerankers}
    assert set(by_name) >= {"none", "embedding", "late-interaction", "cross-encoder", "llm"}
    assert by_name["cross-encoder"].available is False and "cross_encoder" in by_name["cross-encoder"].reason
    assert by_name["late-interaction"].model == "minilm" and by_name["llm"].model == "smollm2"
    assert by_name["embedding"].device == "cpu"
    assert sum(r.default for r in out.rerankers) == 1
    assert out.default_method == settings.rerank.default_method
