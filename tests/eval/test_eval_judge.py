"""The judge: scripted judges expose position bias and invalid output; SmolLM2 constrained is always valid."""

from __future__ import annotations

import json

import pytest

from servers.core.generate import get_generator
from servers.core.structured import chat_json
from servers.eval import api
from servers.eval.judge import bradley_terry, pair_schema
from servers.eval.schemas import PairItem, RankItem, ScoreItem
from tests.eval.conftest import Scripted

PAIRS = [PairItem(prompt="2 + 2 = ?", a="4", b="5", label="A"),
         PairItem(prompt="Capital of France?", a="Rome", b="Paris", label="B"),
         PairItem(prompt="Colour of the sky?", a="Blue.", b="Green.", label="A")]


def always(verdict: str) -> Scripted:
    return Scripted(lambda m: json.dumps({"reasoning": "looks better", "verdict": verdict}))


def fair_judge(messages: list[dict]) -> str:
    """Prefers the right answer wherever it is shown."""
    text = messages[-1]["content"]
    first = text.split("[Answer A]\n", 1)[1].split("\n\n[Answer B]", 1)[0]
    right = {"4", "Paris", "Blue."}
    return json.dumps({"reasoning": "the right one", "verdict": "A" if first in right else "B"})


def test_always_a_judge_has_zero_swap_consistency_and_is_flagged(eval_env) -> None:
    result = api.eval_judge_pairwise(items=PAIRS, settings=eval_env, generator=always("A"))
    rel = result.reliability
    assert rel.swap_consistency == 0.0 and rel.first_position_rate == 1.0
    assert any("swap consistency 0.00" in f for f in rel.flags) and any("position bias" in f for f in rel.flags)
    assert all(r.detail["verdict"] == "tie" for r in result.rows)  # the orders disagree: ties
    assert result.metrics["b_win"] == 0.5


def test_a_fair_judge_is_consistent_and_agrees_with_labels(eval_env) -> None:
    result = api.eval_judge_pairwise(items=PAIRS, votes=3, settings=eval_env, generator=Scripted(fair_judge))
    assert result.reliability.swap_consistency == 1.0 and result.reliability.label_agreement == 1.0
    assert result.reliability.vote_agreement == 1.0 and not result.reliability.flags
    assert [r.detail["verdict"] for r in result.rows] == ["A", "B", "A"]


def test_invalid_replies_are_unscorable_not_guessed(eval_env) -> None:
    result = api.eval_judge_pairwise(items=PAIRS[:1], settings=eval_env, generator=Scripted(lambda m: "A is better"))
    assert result.rows[0].unscorable["*"].startswith("unscorable: the judge's reply was unusable")
    assert result.reliability.invalid == 2 and result.n_unscorable == 1


def test_scores_and_ranking(eval_env) -> None:
    scores = api.eval_judge_score(items=[ScoreItem(prompt="2+2", answer="4", label=True),
                                         ScoreItem(prompt="2+2", answer="5", label=False)], pass_score=6,
                                  settings=eval_env, generator=Scripted(lambda m: json.dumps(
                                      {"reasoning": "r", "score": 9 if "[Answer]\n4" in m[-1]["content"] else 2})))
    assert [r.scores["passed"] for r in scores.rows] == [1.0, 0.0] and scores.reliability.label_agreement == 1.0
    items = [RankItem(prompt="2 + 2 = ?", outputs={"good": "4", "bad": "5", "meh": "22"}),
             RankItem(prompt="Capital of France?", outputs={"good": "Paris", "bad": "Rome"})]
    ranked = api.eval_judge_rank(items=items, settings=eval_env, generator=Scripted(fair_judge))
    assert ranked.ranking[0]["system"] == "good" and ranked.ranking[-1]["system"] == "bad"
    assert ranked.ranking[0]["wins"] == 3


def test_bradley_terry_recovers_the_order() -> None:
    wins = {("a", "b"): 8, ("b", "a"): 2, ("b", "c"): 7, ("c", "b"): 3, ("a", "c"): 9, ("c", "a"): 1}
    strength = bradley_terry(["a", "b", "c"], wins)
    assert strength["a"] > strength["b"] > strength["c"]
    assert strength["a"] / (strength["a"] + strength["b"]) == pytest.approx(0.8, abs=0.1)


def test_constrained_smollm2_judge_replies_are_schema_valid(eval_env) -> None:
    generator = get_generator(eval_env)
    schema = pair_schema(40)
    prompts = [("2 + 2 = ?", "4", "5"), ("Capital of France?", "Rome", "Paris")]
    from servers.eval.judge import pair_messages

    replies = [r for p, a, b in prompts for r in chat_json(generator, pair_messages(p, a, b, None), schema,
                                                          max_new_tokens=64)]
    assert all(r.ok and r.constrained for r in replies), [r.text for r in replies]
    assert {r.value["verdict"] for r in replies} <= {"A", "B", "tie"}
