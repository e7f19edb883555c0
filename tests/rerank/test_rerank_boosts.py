"""Business boosts against hand-computed values, and bad boost specs."""

from __future__ import annotations

import pytest

from servers.core.dates import parse_datetime as parse_date
from servers.core.errors import InvalidInput
from servers.rerank.boosts import apply_boosts
from servers.rerank.inputs import coerce_boosts, coerce_documents

NOW = "2024-03-01T00:00:00Z"


def run(scores, metas, boosts):
    docs = coerce_documents([{"id": str(i), "text": "t", "metadata": m} for i, m in enumerate(metas)])
    return apply_boosts(scores, docs, [d.id for d in docs], coerce_boosts(boosts))


def test_recency_half_life():
    # 2024-02-01 is 29 days before NOW; 2023-03-02 is 365 days before.
    scores, notes = run(
        [1.0, 1.0, 1.0],
        [{"date": "2024-02-01"}, {"date": "2023-03-02"}, {}],
        [{"type": "recency", "field": "date", "half_life_days": 29, "now": NOW}],
    )
    assert scores[0] == pytest.approx(0.5)
    assert scores[1] == pytest.approx(0.5 ** (365 / 29))
    assert scores[2] == 1.0
    assert "29.0 days old" in notes[0][0] and "x0.5000" in notes[0][0]
    assert "no 'date'" in notes[2][0]


def test_recency_weight_future_and_epoch():
    epoch = parse_date("2024-02-01").timestamp()
    scores, _ = run(
        [2.0, 2.0],
        [{"meta": {"published": epoch}}, {"meta": {"published": "2030-01-01"}}],
        [{"type": "recency", "field": "meta.published", "half_life_days": 29, "weight": 0.5, "now": NOW}],
    )
    assert scores[0] == pytest.approx(2.0 * (0.5 + 0.5 * 0.5))
    assert scores[1] == pytest.approx(2.0)  # a future date counts as age 0


def test_match_multiply_add_in_order():
    boosts = [
        {"type": "match", "field": "tags", "value": ["FAQ", "howto"], "multiply": 2.0},
        {"type": "match", "field": "lang", "value": "en", "add": 0.25},
    ]
    scores, notes = run(
        [1.0, 1.0, -1.0, 1.0],
        [{"tags": ["faq", "x"], "lang": "en"}, {"tags": ["other"]}, {"tags": "howto"}, {"lang": "fr"}],
        boosts,
    )
    assert scores == pytest.approx([2.25, 1.0, -0.5, 1.0])  # (1*2)+.25; none; -1/2; none
    assert notes[0] == ["match: 'tags' has 'faq' -> x2", "match: 'lang' has 'en' -> +0.25"]
    assert notes[1] == [] and notes[3] == []


def test_bad_date_and_bad_specs():
    with pytest.raises(InvalidInput, match="not a date"):
        run([1.0], [{"date": "last tuesday"}], [{"type": "recency", "field": "date", "half_life_days": 3}])
    with pytest.raises(InvalidInput, match="not an ISO 8601 date"):
        run([1.0], [{}], [{"type": "recency", "field": "date", "half_life_days": 3, "now": "soon"}])
    bad = [
        ([{"type": "recency", "field": "date", "half_life_days": 0}], "greater than 0"),
        ([{"type": "match", "field": "tags", "value": "a"}], "exactly one of 'multiply' or 'add'"),
        ([{"type": "match", "field": "tags", "value": "a", "multiply": 2, "add": 1}], "exactly one"),
        ([{"type": "popularity", "field": "x"}], "does not match any of the expected tags"),
        ([{"type": "match", "field": "t", "value": "a", "add": 1, "colour": "red"}], "Extra inputs"),
    ]
    for spec, msg in bad:
        with pytest.raises(InvalidInput, match=msg) as info:
            coerce_boosts(spec)
        assert "boosts[0]" in str(info.value)
