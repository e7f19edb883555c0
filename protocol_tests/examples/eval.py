"""Protocol-harness calls for the eval server: one call (at least) for every tool."""

from __future__ import annotations

from pathlib import Path

# a Milvus Lite knowledge base and three judge generations (~25 s); over HTTP the other tools run
STDIO_ONLY = {"eval_kb", "eval_judge_pairwise", "eval_judge_score", "eval_judge_rank"}


def calls(workdir: Path) -> list[tuple[str, dict]]:
    """A call for every tool: small inline inputs, plus a four-document corpus for eval_kb."""
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = workdir / "eval_corpus.jsonl"
    corpus.write_text("\n".join([
        '{"_id": "d1", "title": "Photosynthesis", "text": "Plants turn sunlight, water and carbon dioxide into sugar."}',
        '{"_id": "d2", "title": "Rates", "text": "The central bank raised interest rates by half a point."}',
        '{"_id": "d3", "title": "Tides", "text": "The moon pulls on the oceans and causes the tides."}',
        '{"_id": "d4", "title": "Volcanoes", "text": "Magma rises through the crust and erupts as lava."}',
    ]) + "\n", encoding="utf-8")
    qrels = {"q1": {"d1": 1}, "q2": {"d3": 1}}
    run_a = {"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d4": 2.0, "d3": 1.0}}
    fn = {"name": "get_weather", "description": "Weather for a city",
          "parameters": {"type": "dict", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    tiny = 0  # verdicts without reasoning: the shipped 135M model on CPU, twice per transport
    return [
        ("eval_retrieval", {"qrels": qrels, "run": run_a, "ks": [1, 10], "name": "a"}),
        ("eval_kb", {"kb": "eval_protocol", "corpus_path": str(corpus), "qrels": qrels, "top_k": 3, "ks": [1, 3],
                     "queries": [{"id": "q1", "text": "how do plants make sugar from light"},
                                 {"id": "q2", "text": "what causes the tides"}], "modes": ["dense", "bm25"]}),
        ("eval_compare", {"scores_a": {"x": 0.1, "y": 0.4, "z": 0.5}, "scores_b": {"x": 0.3, "y": 0.5, "z": 0.9}}),
        ("eval_rag", {"samples": [{"question": "What causes tides?", "answer": "The moon causes the tides [1].",
                                   "contexts": ["The moon pulls on the oceans and causes the tides."],
                                   "reference": "Tides are caused by the moon."}]}),
        ("eval_text2sql", {"items": [{"database": "shop", "gold": "SELECT COUNT(*) FROM products",
                                      "predicted": "SELECT count(*) AS n FROM products"}]}),
        ("eval_perplexity", {"texts": ["The cat sat on the mat."], "window": 64, "stride": 32}),
        ("eval_choice", {"items": [{"question": "What color is the sky on a clear day?", "choices": ["blue", "green"],
                                    "answer": 0}], "formats": ["Question: {question}\nAnswer:"]}),
        ("eval_answers", {"items": [{"question": "What is 2 + 2?", "answers": ["4"]}], "max_new_tokens": 8}),
        ("eval_judge_pairwise", {"items": [{"prompt": "2 + 2 = ?", "a": "4", "b": "5"}], "reasoning_chars": tiny}),
        ("eval_judge_score", {"items": [{"prompt": "2 + 2 = ?", "answer": "4"}], "reasoning_chars": tiny}),
        ("eval_judge_rank", {"items": [{"prompt": "2 + 2 = ?", "outputs": {"x": "4", "y": "5"}}], "reasoning_chars": tiny}),
        ("eval_text", {"items": [{"prediction": "我们今天去北京", "references": ["我们今天去北京"]}]}),
        ("eval_tool_calls", {"items": [{"functions": [fn], "calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
                                        "expected": [{"get_weather": {"city": ["Oslo"]}}]}]}),
        ("eval_latency", {"probe_requests": 1, "max_new_tokens": 4}),
        ("eval_text2sql", {"items": [{"database": "shop", "gold": "SELECT COUNT(*) FROM orders"}], "source": "gold",
                           "background": True}),
        ("eval_job_status", {"job_id": "latest", "wait_s": 120}),
        ("eval_list_jobs", {"limit": 5}),
        ("eval_cancel_job", {"job_id": "latest"}),
        ("eval_list_runs", {"limit": 5}),
        ("eval_get_run", {"run_id": "latest"}),
        ("eval_report", {"run_id": "latest"}),
    ]


def concurrent_call(workdir: Path) -> tuple[str, dict]:
    """A call many clients can make at once: listing runs."""
    return ("eval_list_runs", {"limit": 3})
