"""Model-backed rerankers through the real model layer: a tiny local cross-encoder, MiniLM, SmolLM2."""

from __future__ import annotations

from pathlib import Path

import pytest

from servers.core.models import resolve
from servers.core.settings import load_settings
from servers.rerank.api import list_rerankers, rerank
from servers.rerank.rerankers import get_reranker

QUERY = "How do plants make energy from sunlight?"
RELEVANT = "Photosynthesis lets plants convert light from the sun into chemical energy stored as sugar."
IRRELEVANT = "The stock market fell sharply on Tuesday after the central bank raised interest rates."


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    """A random-weight BERT cross-encoder (num_labels=1) with few positions, saved to a temp folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-ce")
    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm", "embedder").location)
    tokenizer.model_max_length = 100_000  # no usable limit: the reranker must cap at the position embeddings
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_cross_encoder_loads_scores_and_truncates(tiny_cross_encoder, tmp_path):
    s = load_settings(overrides={"data_dir": str(tmp_path), "models": {"cross_encoder": str(tiny_cross_encoder)}})
    reranker = get_reranker("cross-encoder", s)
    assert reranker.unavailable_reason() is None
    long_text = "word " * 2000  # far beyond 64 positions
    scores = reranker.score(QUERY, [RELEVANT, IRRELEVANT, long_text])
    assert len(scores) == 3 and all(isinstance(x, float) and 0.0 < x < 1.0 for x in scores)  # sigmoid
    assert reranker.score(QUERY, [IRRELEVANT, RELEVANT]) == pytest.approx([scores[1], scores[0]], abs=1e-5)
    out = rerank(s, QUERY, [{"id": "r", "text": RELEVANT}, {"id": "i", "text": IRRELEVANT}], method="cross-encoder")
    assert out.model == str(tiny_cross_encoder)
    assert {r.id: r.score for r in out.results} == pytest.approx({"r": scores[0], "i": scores[1]}, abs=1e-5)
    info = {r.name: r for r in list_rerankers(s).rerankers}["cross-encoder"]
    assert info.available and info.model == str(tiny_cross_encoder)


@pytest.mark.parametrize("method", ["embedding", "late-interaction", "rrf:embedding+late-interaction"])
def test_embedding_methods_rank_relevant_first(settings, method):
    out = rerank(settings, QUERY, [{"id": "i", "text": IRRELEVANT}, {"id": "r", "text": RELEVANT}], method=method)
    assert [r.id for r in out.results] == ["r", "i"]
    assert out.results[0].original_rank == 2


def test_late_interaction_is_maxsim(settings):
    reranker = get_reranker("late-interaction", settings)
    # A document made of the query's own words matches every query token exactly: MaxSim = 1.
    assert reranker.score("plants sunlight", ["plants sunlight"])[0] == pytest.approx(1.0, abs=1e-4)
    assert reranker.score(QUERY, [RELEVANT])[0] < 0.95


def test_llm_reranker_prefers_relevant(settings):
    reranker = get_reranker("llm", settings)
    scores = reranker.score(QUERY, [IRRELEVANT, RELEVANT, IRRELEVANT + " " + IRRELEVANT])
    assert all(0.0 < x < 1.0 for x in scores)
    assert scores[1] > scores[0] and scores[1] > scores[2]
    # batched with left padding: a text scored alone gets the same probability as in the batch
    assert reranker.score(QUERY, [RELEVANT])[0] == pytest.approx(scores[1], abs=1e-3)
