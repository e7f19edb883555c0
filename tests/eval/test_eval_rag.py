"""RAG metrics: the deterministic tier with the shipped MiniLM, and the judge tier with a scripted judge."""

from __future__ import annotations

import json
import math

import pytest

from servers.core.errors import InvalidInput
from servers.eval import api
from servers.eval.rag import average_precision, claims_of, split_sentences
from servers.eval.schemas import RagSample
from tests.eval.conftest import Scripted

CONTEXTS = [
    "The Eiffel Tower is in Paris. It was completed in 1889 and is 330 metres tall.",
    "Paris is the capital of France. It lies on the Seine.",
]


def test_context_precision_by_hand() -> None:
    assert average_precision([0, 0, 1, 1, 0]) == pytest.approx(0.41667, abs=1e-5)
    assert average_precision([1, 0, 1]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([0, 0]) == 0.0


def test_claims_and_sentences() -> None:
    assert split_sentences("It rose 3.5% in 2024. Then it fell! 然后。好的") == ["It rose 3.5% in 2024.", "Then it fell!",
                                                                             "然后。", "好的"]
    assert claims_of("The tower is tall [1][2]. Yes.") == [("The tower is tall.", [1, 2])]


def test_deterministic_tier(eval_env) -> None:
    samples = [
        RagSample(id="copied", question="When was the Eiffel Tower completed?",
                  answer="It was completed in 1889 and is 330 metres tall [1].", contexts=CONTEXTS,
                  reference="The tower was completed in 1889."),
        RagSample(id="number", question="When was the Eiffel Tower completed?",
                  answer="The Eiffel Tower was completed in 1925 [1].", contexts=CONTEXTS),
        RagSample(id="labels", question="Where is the tower?", answer="The Eiffel Tower is in Paris [3].",
                  contexts=["a", "b", "The Eiffel Tower is in Paris.", "Paris is in France.", "c"],
                  context_relevance=[0, 0, 1, 1, 0]),
        RagSample(id="empty", question="q", answer="", contexts=CONTEXTS),
    ]
    result = api.eval_rag(samples=samples, rows=10, settings=eval_env)
    rows = {r.id: r for r in result.rows}
    copied = rows["copied"]
    assert copied.scores["faithfulness"] == 1.0 and copied.scores["citation_support"] == 1.0
    assert copied.scores["context_recall"] == 1.0 and copied.detail["claims"][0]["evidence"]["context"] == 1
    number = rows["number"]
    assert number.scores["faithfulness"] == 0.0
    assert number.detail["claims"][0]["flags"] == ["number 1925 is not in any context"]
    assert number.unscorable["context_recall"] == "unscorable: no reference answer (with a claim) was given"
    labels = rows["labels"]
    assert labels.scores["context_precision"] == pytest.approx(0.41667, abs=1e-5)
    assert labels.scores["citation_support"] == 1.0
    assert rows["empty"].unscorable["*"] == "unscorable: the answer is empty"
    assert all(not math.isnan(v) for v in result.metrics.values())
    assert any("state a number found in no context" in n for n in result.notes)


def test_citation_of_a_missing_passage(eval_env) -> None:
    result = api.eval_rag(samples=[RagSample(question="q", answer="Paris is the capital of France [7].",
                                             contexts=CONTEXTS)], metrics=["citation_support"], settings=eval_env)
    row = result.rows[0]
    assert row.scores == {"citation_support": 0.0}
    assert row.detail["citations"][0]["reason"] == "cites [7] but only 2 passage(s) were given"


def test_judge_tier_with_a_scripted_judge(eval_env) -> None:
    def judge(messages: list[dict]) -> str:
        claim = messages[-1]["content"].rsplit("Claim: ", 1)[-1]
        verdict = "contradicted" if "1925" in claim else "supported"
        return json.dumps({"reasoning": "checked against the passages", "verdict": verdict})

    gen = Scripted(judge)
    samples = [RagSample(question="When?", answer="It was completed in 1889. It was finished in 1925.",
                         contexts=CONTEXTS)]
    result = api.eval_rag(samples=samples, tier="judge", metrics=["faithfulness"], settings=eval_env, generator=gen)
    assert result.rows[0].scores["faithfulness"] == 0.5 and result.rows[0].detail["label"] == "CONTRADICT"
    assert result.model == "scripted" and len(gen.calls) == 2
    broken = api.eval_rag(samples=samples, tier="judge", metrics=["faithfulness"], settings=eval_env,
                          generator=Scripted(lambda m: "I think it is supported."))
    assert broken.rows[0].unscorable["faithfulness"] == "unscorable: every judge reply was unusable"
    assert any("unusable" in n for n in broken.notes)


def test_bad_input(eval_env) -> None:
    with pytest.raises(InvalidInput, match="list is empty"):
        api.eval_rag(samples=[], settings=eval_env)
    with pytest.raises(InvalidInput, match="unknown RAG metric"):
        api.eval_rag(samples=[RagSample(question="q", answer="a", contexts=[])], metrics=["bleu"], settings=eval_env)
    with pytest.raises(InvalidInput, match="samples_path"):
        api.eval_rag(settings=eval_env)
