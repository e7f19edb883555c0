"""Retrieval metrics: agreement with pytrec-eval-terrier (trec_eval) to 1e-9, hand cases, bad input."""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter

import numpy as np
import pytest
import pytrec_eval

from servers.core.errors import AccessDenied, InvalidInput, NotFound
from servers.eval import api
from servers.eval.retrieval import evaluate, parse_qrels, parse_run, score_separation
from tests.eval.conftest import SHARED

# our name -> trec_eval measure
TREC = {"ndcg": "ndcg", "mrr": "recip_rank", "map": "map", "map@10": "map_cut_10"}
for _k in (1, 5, 10, 100):
    TREC |= {f"ndcg@{_k}": f"ndcg_cut_{_k}", f"recall@{_k}": f"recall_{_k}", f"precision@{_k}": f"P_{_k}"}
for _k in (1, 5, 10):
    TREC[f"hit@{_k}"] = f"success_{_k}"
MEASURES = {"ndcg", "ndcg_cut.1,5,10,100", "recall.1,5,10,100", "P.1,5,10,100", "success.1,5,10", "recip_rank", "map",
            "map_cut.10"}


def assert_agrees(run: dict, qrels: dict) -> int:
    ours = evaluate(run, qrels, metrics=list(TREC))
    ref = pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate(run)
    checked = 0
    for qid, values in ref.items():
        for name, measure in TREC.items():
            assert abs(ours.per_query[qid][name] - values[measure]) < 1e-9, (qid, name)
            checked += 1
    for name, measure in TREC.items():
        assert abs(ours.metrics[name] - np.mean([v[measure] for v in ref.values()])) < 1e-9, name
    return checked


def test_agrees_with_trec_eval_on_a_generated_run_with_ties_and_graded_labels() -> None:
    rnd = random.Random(7)
    qrels, run = {}, {}
    for q in range(60):
        docs = [f"d{i}" for i in range(300)]
        qrels[f"q{q}"] = {d: rnd.choice([1, 1, 2, 3]) for d in rnd.sample(docs, rnd.randint(1, 9))}
        for d in rnd.sample(docs, 4):
            qrels[f"q{q}"].setdefault(d, 0)  # judged non-relevant
        run[f"q{q}"] = {d: round(rnd.random(), 2) for d in rnd.sample(docs, rnd.randint(1, 200))}  # many ties
    assert assert_agrees(run, qrels) == 60 * len(TREC)


def _tfidf_run(limit: int, depth: int) -> tuple[dict, dict]:
    """A real lexical retrieval run on SciFact: TF-IDF cosine over all 5,183 abstracts."""
    corpus = [json.loads(line) for line in (SHARED / "beir_scifact" / "corpus.jsonl").open(encoding="utf-8")]
    queries = {}
    for line in (SHARED / "beir_scifact" / "queries.jsonl").open(encoding="utf-8"):
        q = json.loads(line)
        queries[q["_id"]] = q["text"]
    qrels = parse_qrels((SHARED / "beir_scifact" / "qrels" / "train.tsv").read_text(encoding="utf-8"))
    qids = [q for q in queries if q in qrels][:limit]
    words = re.compile(r"[a-z0-9]+")
    docs = [Counter(words.findall(f"{d.get('title', '')} {d['text']}".lower())) for d in corpus]
    df = Counter(w for d in docs for w in d)
    idf = {w: math.log(len(docs) / c) for w, c in df.items()}
    postings: dict[str, list[tuple[int, float]]] = {}
    norms = np.zeros(len(docs))
    for i, d in enumerate(docs):
        for w, c in d.items():
            postings.setdefault(w, []).append((i, c * idf[w]))
            norms[i] += (c * idf[w]) ** 2
    norms = np.sqrt(norms) + 1e-9
    arrays = {w: (np.array([i for i, _ in p]), np.array([x for _, x in p])) for w, p in postings.items()}
    run = {}
    for qid in qids:
        scores = np.zeros(len(docs))
        for w, c in Counter(words.findall(queries[qid].lower())).items():
            if w in arrays:
                idx, weight = arrays[w]
                scores[idx] += c * idf[w] * weight  # each document once per word
        scores /= norms
        top = np.argsort(-scores)[:depth]
        run[qid] = {corpus[i]["_id"]: float(scores[i]) for i in top}
    return run, {q: qrels[q] for q in qids}


@pytest.mark.skipif(not (SHARED / "beir_scifact" / "corpus.jsonl").is_file(),
                    reason="../shared/data/beir_scifact is not present (the generated-run test covers agreement)")
def test_agrees_with_trec_eval_on_a_real_scifact_run() -> None:
    run, qrels = _tfidf_run(limit=300, depth=100)
    assert assert_agrees(run, qrels) == 300 * len(TREC)
    assert evaluate(run, qrels, ["ndcg@10"]).metrics["ndcg@10"] > 0.4  # a real run, not noise


def test_hand_cases() -> None:
    qrels = {"q": {"c": 1}}
    first_hit_third = evaluate({"q": {"a": 3.0, "b": 2.0, "c": 1.0}}, qrels, ["mrr", "hit@2", "hit@3", "precision@3"])
    assert first_hit_third.metrics == pytest.approx({"mrr": 1 / 3, "hit@2": 0.0, "hit@3": 1.0, "precision@3": 1 / 3})
    # two relevant (gains 2 and 1) at ranks 1 and 3: DCG = 2 + 1/2, IDCG = 2 + 1/log2(3)
    graded = evaluate({"q": {"a": 3.0, "b": 2.0, "c": 1.0}}, {"q": {"a": 2, "c": 1}}, ["ndcg@3", "map", "recall@2"])
    assert graded.metrics["ndcg@3"] == pytest.approx(2.5 / (2 + 1 / math.log2(3)))
    assert graded.metrics["map"] == pytest.approx((1 + 2 / 3) / 2)
    assert graded.metrics["recall@2"] == 0.5


def test_missing_queries_score_zero_and_empty_qrels_are_unscorable() -> None:
    scores = evaluate({"q1": {"a": 1.0}}, {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}, ["mrr"])
    assert scores.per_query["q2"]["mrr"] == 0.0 and scores.missing_in_run == ["q2", "q3"]
    assert "q3" not in scores.per_query and scores.unscorable["q3"].startswith("unscorable:")
    assert scores.metrics["mrr"] == 0.5 and not any(math.isnan(v) for v in scores.metrics.values())


@pytest.mark.parametrize(("call", "message"), [
    (lambda: evaluate({"x": {"a": 1.0}}, {"q": {"a": 1}}), "share no query id"),
    (lambda: evaluate({"q": {"a": 1.0}}, {"q": {"a": 1}}, ["ndcg@10", "f1"]), "unknown retrieval metric 'f1'"),
    (lambda: evaluate({"q": {"a": 1.0}}, {"q": {"a": 1}}, ["ndcg@0"]), "positive integer"),
    (lambda: evaluate({"q": {"a": 1.0}}, {"q": {"a": 1}}, ["recall"]), "needs a cutoff"),
    (lambda: evaluate({"q": {"a": 1.0}}, {"q": {"a": 1}}, ks=[10, -1]), "positive integer"),
    (lambda: parse_run("q Q0 d 1 0.5 t\nq Q0 d2 2 x t\n", "r.trec"), "r.trec line 2"),
    (lambda: parse_run("q d 0.5\n", "r.trec"), "6 columns"),
    (lambda: parse_qrels("q\t0\td\t1\nq\td\n", "q.tsv"), "q.tsv line 2"),
])
def test_bad_input_is_a_clear_error(call, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call()


def test_formats_and_threshold() -> None:
    assert parse_qrels("query-id\tcorpus-id\tscore\n1\td1\t1\n") == {"1": {"d1": 1}}
    assert parse_qrels("1 0 d1 2\n1 0 d2 0\n") == {"1": {"d1": 2, "d2": 0}}
    assert parse_run("1 Q0 d1 1 0.9 tag\n1 Q0 d2 2 0.1 tag\n") == {"1": {"d1": 0.9, "d2": 0.1}}
    sep = score_separation({"q": {"a": 0.9, "b": 0.8, "c": 0.3, "d": 0.2}}, {"q": {"a": 1, "b": 1}})
    assert sep.threshold == 0.8 and sep.f1_at_threshold == 1.0
    assert score_separation({"q": {"a": 0.9}}, {"q": {"a": 1}}).reason.startswith("unscorable")


def test_tool_saves_a_run_with_its_trec_file(eval_env) -> None:
    result = api.eval_retrieval(qrels={"q1": {"a": 1}, "q2": {"b": 1}}, run={"q1": {"a": 2.0, "c": 1.0},
                                "q2": {"c": 2.0, "b": 1.0}}, ks=[1, 10], rows=1, settings=eval_env)
    assert result.metrics["mrr"] == 0.75 and result.rows_total == 2 and len(result.per_query) == 1
    folder = eval_env.data_path / "eval" / "runs" / result.run_id
    assert parse_run((folder / "run.trec").read_text()) == {"q1": {"a": 2.0, "c": 1.0}, "q2": {"c": 2.0, "b": 1.0}}
    with pytest.raises(NotFound, match="no file at"):
        api.eval_retrieval(qrels_path="missing.tsv", run={"q": {"a": 1.0}}, settings=eval_env)
    with pytest.raises(AccessDenied, match="outside the allowed roots"):
        api.eval_retrieval(qrels_path="/etc/passwd", run={"q": {"a": 1.0}}, settings=eval_env)
    with pytest.raises(InvalidInput, match="not both"):
        api.eval_retrieval(qrels={"q": {"a": 1}}, qrels_path="x.tsv", run={"q": {"a": 1.0}}, settings=eval_env)
