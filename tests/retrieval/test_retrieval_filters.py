"""The filter language: translation, escaping, clear errors, and execution against real Milvus Lite."""

from __future__ import annotations

import pytest

from servers.core.errors import InvalidInput
from servers.retrieval.filters import parse_filter, to_epoch, to_expression
from servers.retrieval.search import search


def test_translation_and_escaping():
    expr = to_expression({
        "sources": ['a"b', "c\\d"], "tags_any": ["x"], "created_after": "2024-01-01",
        "metadata": {"team": ["a", "b"], "year": {"$gte": 2020, "$ne": 2021}, "ok": True},
    })
    assert 'source in ["a\\"b", "c\\\\d"]' in expr
    assert 'ARRAY_CONTAINS_ANY(tags, ["x"])' in expr
    assert "created >= 1704067200" in expr
    assert '(metadata["team"] == "a" or metadata["team"] == "b")' in expr
    assert 'metadata["year"] >= 2020' in expr and 'metadata["year"] != 2021' in expr
    assert 'metadata["ok"] == true' in expr
    assert to_expression(None) == "" and to_expression("") == "" and to_expression({}) == ""
    doc = "0123456789abcdef0123456789abcdef"
    assert to_expression(f'{{"doc_ids": ["{doc}"]}}') == f'(doc_id in ["{doc}"])'
    assert to_expression({"metadata": {"a.b": 1}}) == '(metadata["a"]["b"] == 1)'


def test_dates():
    assert to_epoch("2024-01-01", "f") == 1704067200
    assert to_epoch("2024-01-01T01:00:00Z", "f") == 1704070800
    assert to_epoch("2024-01-01T03:00:00+02:00", "f") == 1704070800
    assert to_epoch(1704067200, "f") == 1704067200


@pytest.mark.parametrize(("flt", "needle"), [
    ({"colour": "red"}, "'colour': Extra inputs are not permitted"),
    ({"tags_any": "hr"}, "'tags_any'"),
    ('{"tags_any": [', "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ({"created_after": "last tuesday"}, "'created_after': 'last tuesday' is not a date"),
    ({"metadata": {"bad key!": 1}}, "metadata key 'bad key!'"),
    ({"metadata": {"year": {"$regex": "x"}}}, "unknown operator '$regex'"),
    ({"metadata": {"year": {"$gt": [1]}}}, "$gt needs a number or string"),
    ({"metadata": {"year": {}}}, "empty operator object"),
    ({"metadata": {"year": {"$in": []}}}, "non-empty list"),
    ({"metadata": {"x": None}}, "must be a string, number or boolean"),
    ({"sources": []}, "'sources' is an empty list"),
    ({"source_prefix": ""}, "'source_prefix' is empty"),
    ({"doc_ids": ["x' or id != '"]}, "invalid doc_id"),
])
def test_bad_filters_are_clear(flt, needle):
    with pytest.raises(InvalidInput) as err:
        to_expression(flt)
    assert needle in str(err.value)


def test_parse_filter_accepts_json_string():
    assert parse_filter('{"tags_all": ["a", "b"]}').tags_all == ["a", "b"]


def _sources(settings, flt, mode="bm25", query="pricing revenue bananas planet pasta install"):
    return {h.citation.source for h in search(settings, "docs", query, mode=mode, top_k=20, filter=flt).hits}


def test_filters_run_on_milvus(filled):
    settings, folder = filled
    assert _sources(settings, {"tags_any": ["finance"]}) == {"memo:q3", "memo:old"}
    assert _sources(settings, {"tags_all": ["finance", "2024"]}) == {"memo:q3"}
    assert _sources(settings, {"metadata": {"year": {"$lt": 2020}}}) == {"memo:old"}
    assert _sources(settings, {"metadata": {"team": ["sales", "nobody"]}}) == {"memo:q3"}
    assert _sources(settings, {"metadata": {"team": {"$nin": ["sales"]}}, "tags_any": ["finance"]}) == {"memo:old"}
    assert _sources(settings, {"metadata": {"path": "a_b%c"}}) == {"memo:q3"}
    assert _sources(settings, {"metadata": {"path": {"$exists": True}}}) == {"memo:q3"}
    assert _sources(settings, {"created_after": "2024-01-01", "created_before": "2025-01-01"}) == {"memo:q3"}
    assert _sources(settings, {"sources": ["memo:old"]}, mode="dense") == {"memo:old"}
    # prefix: '_' and '%' are literal characters, not LIKE wildcards
    sub = str(folder / "sub_dir")
    assert _sources(settings, {"source_prefix": sub}, mode="hybrid") == {f"{sub}/cooking.md"}
    assert _sources(settings, {"source_prefix": str(folder / "subXdir")}) == set()
    assert _sources(settings, {"source_prefix": str(folder) + "/"}, mode="dense") == {
        str(folder / n) for n in ("install.md", "fruit.txt", "space.md", "sub_dir/cooking.md")
    }
    assert _sources(settings, {"updated_after": "2000-01-01", "sources": ['no"such\\source']}) == set()
