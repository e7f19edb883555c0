"""Evaluating a live knowledge base (Milvus Lite, MiniLM): modes side by side, ids mapped, runs comparable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servers.core.errors import InvalidInput
from servers.eval import api
from servers.eval.schemas import QueryItem
from tests.eval.conftest import eval_settings

DOCS = {
    "d1": ("Photosynthesis", "Plants turn sunlight, water and carbon dioxide into sugar and oxygen."),
    "d2": ("Interest rates", "The central bank raised interest rates by half a point to fight inflation."),
    "d3": ("Tides", "The gravity of the moon pulls on the oceans and causes the tides."),
    "d4": ("Volcanoes", "Magma rises through the crust and erupts as lava from volcanoes."),
    "d5": ("Honey bees", "Bees collect nectar from flowers and turn it into honey in the hive."),
}
QUERIES = [QueryItem(id="q1", text="how do plants make sugar from sunlight"),
           QueryItem(id="q2", text="why are there tides in the ocean"),
           QueryItem(id="q3", text="what do bees make from nectar")]
QRELS = {"q1": {"d1": 1}, "q2": {"d3": 1}, "q3": {"d5": 1}}


@pytest.fixture(scope="module")
def kb_env(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("kb")
    corpus = root / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps({"_id": k, "title": t, "text": x}) for k, (t, x) in DOCS.items()) + "\n")
    return eval_settings(root), corpus


def test_modes_side_by_side(kb_env) -> None:
    settings, corpus = kb_env
    result = api.eval_kb("scifact_mini", queries=QUERIES, qrels=QRELS, corpus_path=str(corpus),
                         modes=["dense", "bm25", "rerank"], top_k=5, ks=[1, 5], settings=settings)
    assert [m.mode for m in result.modes] == ["dense", "bm25", "rerank"]
    dense = result.modes[0]
    assert dense.metrics["hit@5"] == 1.0 and dense.metrics["ndcg@5"] > 0.8  # the obvious documents are found
    assert dense.separation.relevant == 3 and dense.separation.non_relevant == 12
    assert dense.separation.threshold is not None
    assert any("5 document(s) added" in n for n in result.notes)
    shown = api.eval_get_run(result.run_id, settings=settings)
    assert shown.run.kind == "kb" and "modes" in shown.run.figures["tables"]
    # each mode is a retrieval run that eval_compare can use
    compared = api.eval_compare(result.modes[0].run_id, result.modes[1].run_id, settings=settings)
    assert compared.n == 3
    again = api.eval_kb("scifact_mini", queries=QUERIES, qrels=QRELS, corpus_path=str(corpus), modes=["dense"],
                        top_k=5, ks=[1, 5], settings=settings)
    assert any("5 unchanged" in n for n in again.notes) and again.modes[0].metrics == dense.metrics


def test_wrong_id_field_says_so_and_bad_input(kb_env) -> None:
    settings, _ = kb_env
    result = api.eval_kb("scifact_mini", queries=QUERIES, qrels=QRELS, modes=["bm25"], top_k=3, id_field="doc_id",
                         ks=[1], settings=settings)
    assert result.modes[0].metrics["hit@1"] == 0.0 and "no hit's doc_id matched" in result.notes[0]
    with pytest.raises(InvalidInput, match="unknown mode"):
        api.eval_kb("scifact_mini", queries=QUERIES, qrels=QRELS, modes=["sparse"], settings=settings)
    with pytest.raises(InvalidInput, match="no query id appears in the qrels"):
        api.eval_kb("scifact_mini", queries=[QueryItem(id="zz", text="x")], qrels=QRELS, settings=settings)
    with pytest.raises(InvalidInput, match="top_k must be between"):
        api.eval_kb("scifact_mini", queries=QUERIES, qrels=QRELS, top_k=10_000, settings=settings)


def test_beir_files(kb_env, tmp_path: Path) -> None:
    settings, _ = kb_env
    queries = Path(settings.roots[0]) / "queries.jsonl"
    queries.write_text("\n".join(json.dumps({"_id": q.id, "text": q.text}) for q in QUERIES) + "\n")
    qrels = Path(settings.roots[0]) / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, r in QRELS.items() for d in r))
    result = api.eval_kb("scifact_mini", queries_path=str(queries), qrels_path=str(qrels), modes=["dense"], top_k=5,
                         ks=[5], settings=settings)
    assert result.queries == 3 and result.modes[0].metrics["recall@5"] == 1.0
