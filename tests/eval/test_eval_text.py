"""Text metrics for every script: Chinese and Japanese are tokenized, not dropped."""

from __future__ import annotations

import math

import pytest

from servers.eval import api
from servers.eval.schemas import TextItem
from servers.eval.text import bleu, distinct_n, repetition_rate, rouge_l, tokenize


def test_identical_chinese_strings_score_rouge_l_one() -> None:
    zh = "我们今天去北京大学参观，天气很好。"
    tokens = tokenize(zh)
    assert tokens and "北京大学" in tokens  # jieba words, not dropped characters
    assert rouge_l(tokens, tokens) == 1.0
    assert tokenize(zh, cjk="chars")[:3] == ["我", "们", "今"]
    ja = tokenize("東京は日本の首都です")
    assert ja[:3] == ["東", "京", "は"]  # Japanese: characters
    assert rouge_l(tokenize("今天天气很好"), tokenize("今天天气不好")) < 1.0


def test_tokenizer_keeps_numbers_and_accents() -> None:
    assert tokenize("Revenue grew 3.5% to 1,200 in Zürich!") == ["revenue", "grew", "3.5%", "to", "1,200", "in", "zürich"]


def test_rouge_and_bleu_by_hand() -> None:
    pred, ref = ["the", "cat", "sat"], ["the", "cat", "sat", "on", "the", "mat"]
    assert rouge_l(pred, ref) == pytest.approx(2 * 1 * 0.5 / 1.5)  # LCS 3: P 1, R 0.5
    same = ["a", "b", "c", "d", "e"]
    assert bleu([same], [[same]]) == 1.0
    # unigram 3/3, bigram 2/2, trigram 1/1, no 4-gram → 0 without smoothing; brevity penalty exp(1 - 6/3)
    assert bleu([pred], [[ref]]) == 0.0
    assert bleu([pred], [[ref]], smooth=True) == pytest.approx(math.exp(1 - 2) * (1 * 1 * 1 * (1 / 1)) ** 0.25)


def test_diversity() -> None:
    assert distinct_n([["a", "b", "a", "b"]], 2) == pytest.approx(2 / 3)
    assert repetition_rate(["a", "b", "c", "a", "b", "c"], 3) == pytest.approx(1 - 3 / 4)
    assert repetition_rate(["a"], 3) == 0.0


def test_eval_text_tool(eval_env) -> None:
    result = api.eval_text(items=[
        TextItem(prediction="我们今天去北京大学参观", references=["我们今天去北京大学参观"]),
        TextItem(prediction="the cat sat on a mat", references=["a cat sat on the mat"], keywords=["cat", "the mat"]),
        TextItem(prediction="", references=["x"]),
    ], settings=eval_env)
    rows = {r.id: r for r in result.rows}
    assert rows["1"].scores["rouge_l"] == 1.0 and rows["1"].scores["bleu"] == 1.0
    assert rows["2"].scores["keyword_overlap"] == 0.5  # "the mat" is not in the prediction as a phrase
    assert rows["3"].unscorable["*"] == "unscorable: the prediction is empty"
    assert result.n_unscorable == 1 and all(not math.isnan(v) for v in result.metrics.values())
