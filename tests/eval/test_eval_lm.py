"""Language-model evaluation with the shipped SmolLM2 (loaded by the core model layer)."""

from __future__ import annotations

import math

import pytest
import torch

from servers.core.errors import InvalidInput
from servers.core.models import LoadedLM, causal_lm
from servers.eval import api, lm
from servers.eval.schemas import AnswerItem, ChoiceItem
from tests.eval.conftest import Scripted

TEXT = "The quick brown fox jumps over the lazy dog. It was a sunny day in the small village by the sea."


@pytest.fixture(scope="module")
def smol(eval_env) -> LoadedLM:
    return causal_lm("smollm2", eval_env)


def plain_nll(model, ids: list[int]) -> tuple[float, int]:
    """The reference: transformers' own loss over the whole sequence (mean NLL of ids[1:])."""
    with torch.inference_mode():
        x = torch.tensor([ids])
        loss = model(input_ids=x, labels=x).loss
    return float(loss), len(ids) - 1


def test_perplexity_equals_exp_mean_nll_of_a_plain_loop(smol: LoadedLM) -> None:
    ids = smol.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    mean_nll, n = plain_nll(smol.model, ids)
    score = lm.score_text(smol, TEXT, window=512, stride=256)
    assert score.tokens == n
    assert abs(score.perplexity - math.exp(mean_nll)) < 1e-4 * math.exp(mean_nll)
    assert score.bits_per_byte == pytest.approx(mean_nll * n / math.log(2) / len(TEXT.encode()), rel=1e-4)


def test_sliding_window_scores_every_token_once(smol: LoadedLM) -> None:
    ids = smol.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    window, stride = 8, 5
    # reference: each window predicts only the tokens no earlier window predicted
    total, done = 0.0, 1
    for begin in range(0, len(ids), stride):
        end = min(begin + window, len(ids))
        with torch.inference_mode():
            logits = smol.model(input_ids=torch.tensor([ids[begin:end]])).logits[0, :-1].double()
        nll = -torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[begin + 1 : end])[:, None]).squeeze(1)
        total += float(nll[done - begin - 1 :].sum())
        done = end
        if end == len(ids):
            break
    score = lm.score_text(smol, TEXT, window=window, stride=stride)
    assert score.tokens == len(ids) - 1 and score.nll == pytest.approx(total, rel=1e-5)
    assert lm.score_text(smol, "a", window=8, stride=4) is None  # one token: nothing to predict
    with pytest.raises(InvalidInput, match="stride"):
        lm.resolve_window(smol, 8, 9)
    with pytest.raises(InvalidInput, match="longer than the model's context"):
        lm.resolve_window(smol, 10**7, 1)


def test_multiple_choice_matches_log_likelihoods_by_hand(smol: LoadedLM) -> None:
    item = ChoiceItem(question="What colour is the sky on a clear day?", choices=["blue", "bright green"], answer="A")
    fmt = "Question: {question}\nAnswer:"
    rows = lm.multiple_choice(smol, [item], formats=[fmt], window=512)
    by_hand = []
    for choice in item.choices:
        ctx = smol.tokenizer(fmt.replace("{question}", item.question), add_special_tokens=False)["input_ids"]
        cont = smol.tokenizer(f" {choice}", add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logp = torch.log_softmax(smol.model(input_ids=torch.tensor([ctx + cont])).logits[0].double(), -1)
        by_hand.append(sum(float(logp[len(ctx) - 1 + i, t]) for i, t in enumerate(cont)))
    assert rows[0].detail["loglik"] == pytest.approx([round(x, 4) for x in by_hand], abs=1e-4)
    pick = max(range(2), key=lambda j: by_hand[j])
    pick_norm = max(range(2), key=lambda j: by_hand[j] / len(f" {item.choices[j]}"))
    assert rows[0].scores["acc"] == float(pick == 0) and rows[0].scores["acc_norm"] == float(pick_norm == 0)
    assert "acc_letter" in rows[0].scores
    too_long = lm.multiple_choice(smol, [item], formats=[fmt], window=8)
    assert too_long[0].unscorable["acc|f1"].startswith("unscorable: prompt and option exceed")


def test_tools_save_runs(smol: LoadedLM, eval_env) -> None:
    ppl = api.eval_perplexity(texts=[TEXT, "x"], window=64, stride=32, settings=eval_env)
    assert ppl.metrics["corpus_perplexity"] > 1 and ppl.n_unscorable == 1
    items = [ChoiceItem(question="2 + 2 =", choices=["4", "5", "22"], answer=0),
             ChoiceItem(question="The capital of France is", choices=["Paris", "Rome"], answer="Paris"),
             ChoiceItem(question="bad", choices=["a", "b"], answer=7)]
    choice = api.eval_choice(items=items, formats=["{question}", "Q: {question}\nA:"], settings=eval_env)
    assert {"acc", "acc_norm", "acc_letter", "acc|f2", "acc_spread"} <= set(choice.metrics)
    assert choice.rows[2].unscorable["*"].startswith("unscorable: answer index 7")
    with pytest.raises(InvalidInput, match="{question}"):
        api.eval_choice(items=items[:1], formats=["no placeholder"], settings=eval_env)


def test_closed_answers_extraction_and_scoring(eval_env) -> None:
    assert lm.extract_answer("Let me think. The answer is 42.\nMore text") == "42"
    assert lm.extract_answer("It is 3 then 7", "number") == "7"
    assert lm.extract_answer("I pick (B) here", "letter") == "B"
    assert lm.normalize_answer("The Eiffel Tower!") == "eiffel tower"
    assert lm.normalize_answer("1,000.0") == "1000"
    gen = Scripted(lambda m: "The answer is 1,000." if "thousand" in m[-1]["content"] else "Lyon\nbecause")
    result = api.eval_answers(items=[AnswerItem(question="What is a thousand?", answers=["1000"]),
                                     AnswerItem(question="Capital of France?", answers=["Paris"])],
                              settings=eval_env, generator=gen)
    assert [r.scores["exact_match"] for r in result.rows] == [1.0, 0.0]
    assert result.model == "scripted"
