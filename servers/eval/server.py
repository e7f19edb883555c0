"""MCP façade of the eval library: one tool per function of :mod:`servers.eval.api`, reports as resources."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from servers.core.settings import Settings
from servers.eval import api
from servers.eval.schemas import (
    AnswerItem,
    ChoiceItem,
    CompareResult,
    EvalResult,
    JobList,
    JobStatus,
    JudgeResult,
    KbResult,
    PairItem,
    QueryItem,
    RagSample,
    RankItem,
    ReportInfo,
    RetrievalResult,
    RunDetail,
    RunList,
    ScoreItem,
    SqlItem,
    TextItem,
    ToolCallItem,
)

INSTRUCTIONS = (
    "Measures retrieval, RAG answers, text-to-SQL, language models, LLM judges and tool calls, offline and "
    "reproducibly. Every evaluation is saved as a run with an HTML report (resource eval://reports/{run_id}); "
    "compare two runs with eval_compare (paired bootstrap CI, permutation p-value, regression gate). Files are "
    "read under the allowed roots; inline lists work for small inputs."
)

# What each kind of tool does to the world (the MCP tool annotations).
EVALUATES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False)
GENERATES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True)
READS = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)

Name = Annotated[str | None, Field(description="a label for the run (shown in listings and the report)")]
Rows = Annotated[int | None, Field(description="per-item rows to return (default from config; all are saved)", ge=0)]
Model = Annotated[str | None, Field(description="causal LM to use instead of the configured one (short name, folder)")]
Reasoning = Annotated[int | None, Field(description="cap on the judge's reasoning in characters (default from config)",
                                        ge=0, le=4000)]
Votes = Annotated[int | None, Field(description="judge votes per order (default from config; >1 samples)", ge=1, le=16)]
Background = Annotated[bool | None, Field(description="run as a job and return at once (default: only when large; "
                                                    "then follow it with eval_job_status)")]
ItemsPath = Annotated[str | None, Field(description="a JSONL, JSON or CSV file of items under the allowed roots")]


def _bridge(ctx: Context) -> Callable[[int, int, str], None]:
    """Progress from a worker thread to the client (a no-op when the client sent no progress token)."""

    def report(done: int, total: int, message: str) -> None:
        anyio.from_thread.run(ctx.report_progress, done, total, message)

    return report


async def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


def build_server(settings: Settings) -> MCPServer:
    app = MCPServer("quiver-eval", instructions=INSTRUCTIONS)

    @app.tool(
        name="eval_retrieval", title="Score a retrieval run", annotations=EVALUATES,
        description=(
            "Score a ranked retrieval run against relevance judgements: nDCG@k, Recall@k, Precision@k, Hit@k, MRR "
            "and MAP per query and on average (trec_eval's definitions), plus the score distributions of relevant "
            "vs non-relevant hits and a suggested score threshold. Give the run as a TREC file (qid Q0 docid rank "
            "score tag) or {qid: {docid: score}}, the qrels as BEIR TSV / TREC qrels or {qid: {docid: relevance}}."
        ),
    )
    async def eval_retrieval(
        qrels: Annotated[dict[str, dict[str, int]] | None, Field(description="{qid: {docid: relevance}}")] = None,
        run: Annotated[dict[str, dict[str, float]] | None, Field(description="{qid: {docid: score}}")] = None,
        qrels_path: Annotated[str | None, Field(description="BEIR qrels TSV or TREC qrels file")] = None,
        run_path: Annotated[str | None, Field(description="TREC run file")] = None,
        metrics: Annotated[list[str] | None, Field(description="e.g. ['ndcg@10', 'recall@100', 'mrr', 'map']; "
                                                   "default: ndcg, recall, precision, hit at each k, mrr, map")] = None,
        ks: Annotated[list[int] | None, Field(description="cutoffs for the default metrics, e.g. [1, 5, 10, 100]")] = None,
        name: Name = None,
        rows: Rows = None,
    ) -> RetrievalResult:
        return await _run(api.eval_retrieval, qrels, run, qrels_path, run_path, metrics, ks, name, rows,
                          settings=settings)

    @app.tool(
        name="eval_kb", title="Evaluate a knowledge base", annotations=EVALUATES,
        description=(
            "Evaluate a live Quiver knowledge base: run every query in each search mode (dense, bm25, hybrid, "
            "rerank = hybrid + reranker), score the runs against the qrels side by side, with score histograms and "
            "a suggested threshold per mode. Optionally ingest a BEIR corpus.jsonl into the knowledge base first. "
            "Each mode is saved as its own run (compare them with eval_compare)."
        ),
    )
    async def eval_kb(
        ctx: Context,
        kb: Annotated[str, Field(description="knowledge base name")],
        queries: Annotated[list[QueryItem] | None, Field(description="[{id, text}]; ids as in the qrels")] = None,
        qrels: Annotated[dict[str, dict[str, int]] | None, Field(description="{qid: {docid: relevance}}")] = None,
        queries_path: Annotated[str | None, Field(description="queries JSONL (BEIR: _id, text)")] = None,
        qrels_path: Annotated[str | None, Field(description="BEIR qrels TSV or TREC qrels file")] = None,
        corpus_path: Annotated[str | None, Field(description="BEIR corpus.jsonl to ingest first (source = _id)")] = None,
        modes: Annotated[list[Literal["dense", "bm25", "hybrid", "rerank"]] | None,
                         Field(description="search modes (default from config)")] = None,
        top_k: Annotated[int | None, Field(description="hits per query (default from config)", ge=1)] = None,
        id_field: Annotated[str, Field(description="hit field holding the qrels document id: source, doc_id, title "
                                                   "or metadata.KEY (a source path also matches by file name)")] = "source",
        metrics: Annotated[list[str] | None, Field(description="retrieval metrics (default: the standard set)")] = None,
        ks: Annotated[list[int] | None, Field(description="cutoffs for the default metrics")] = None,
        name: Name = None,
        background: Background = None,
    ) -> KbResult:
        return await _run(api.eval_kb, kb, queries, qrels, queries_path, qrels_path, corpus_path, modes, top_k, id_field,
                          metrics, ks, name, background, settings=settings, progress=_bridge(ctx))

    @app.tool(
        name="eval_compare", title="Compare two runs (significance)", annotations=EVALUATES,
        description=(
            "Is B better or worse than A? Compare two saved runs on a per-item metric (or two {item: score} maps): "
            "mean difference with a paired bootstrap confidence interval, a paired permutation p-value, McNemar's "
            "test for right/wrong scores, and a regression gate that fails only when B is significantly worse."
        ),
    )
    async def eval_compare(
        a: Annotated[str | None, Field(description="baseline run id")] = None,
        b: Annotated[str | None, Field(description="candidate run id")] = None,
        metric: Annotated[str | None, Field(description="per-item metric to compare (default: A's primary)")] = None,
        scores_a: Annotated[dict[str, float] | None, Field(description="{item: score} of system A")] = None,
        scores_b: Annotated[dict[str, float] | None, Field(description="{item: score} of system B")] = None,
        tolerance: Annotated[float, Field(description="a drop up to this much never fails the gate", ge=0)] = 0.0,
        alpha: Annotated[float | None, Field(description="significance level (default from config)", gt=0, lt=1)] = None,
        name: Name = None,
    ) -> CompareResult:
        return await _run(api.eval_compare, a, b, metric, scores_a, scores_b, tolerance, alpha, name, settings=settings)

    @app.tool(
        name="eval_rag", title="Evaluate RAG answers", annotations=GENERATES,
        description=(
            "Score RAG answers {question, answer, contexts, reference?}: faithfulness (claims supported by the "
            "contexts, with a per-claim evidence table and flags for unsupported numbers), answer relevance, "
            "similarity to the reference, context precision and recall, and citation support ([n] checked against "
            "passage n). tier 'deterministic' uses lexical + embedding support; 'judge' asks the configured model, "
            "its output constrained to JSON."
        ),
    )
    async def eval_rag(
        ctx: Context,
        samples: Annotated[list[RagSample] | None, Field(description="the samples to score")] = None,
        samples_path: ItemsPath = None,
        tier: Annotated[Literal["deterministic", "judge"], Field(description="how claims are checked")] = "deterministic",
        metrics: Annotated[list[str] | None, Field(description="subset of faithfulness, support, answer_relevance, "
                                                   "answer_similarity, answer_rouge_l, context_precision, "
                                                   "context_recall, citation_support")] = None,
        threshold: Annotated[float | None, Field(description="deterministic support threshold (0-1)", ge=0, le=1)] = None,
        model: Model = None,
        name: Name = None,
        rows: Rows = None,
        background: Background = None,
    ) -> EvalResult:
        return await _run(api.eval_rag, samples, samples_path, tier, metrics, threshold, model, name, rows,
                          background, settings=settings, progress=_bridge(ctx))

    @app.tool(
        name="eval_text2sql", title="Text-to-SQL execution accuracy", annotations=EVALUATES,
        description=(
            "Execution accuracy of SQL predictions: each prediction and gold query run read-only, results compared "
            "as multisets (order only when the gold orders; columns in any order; NULL and float tolerant), with "
            "the valid-SQL rate and an error taxonomy (syntax, unknown table/column, timeout, wrong result). Items "
            "from a CSV (defog: db_name, query, question[, predicted]) or JSONL; source 'gold' checks the harness, "
            "'pipeline' generates SQL with the text2sql pipeline."
        ),
    )
    async def eval_text2sql(
        ctx: Context,
        items: Annotated[list[SqlItem] | None, Field(description="[{database, question, gold, predicted}]")] = None,
        items_path: ItemsPath = None,
        databases: Annotated[dict[str, str] | None, Field(description="extra databases {name: SQLite path or URL}")] = None,
        source: Annotated[Literal["file", "gold", "pipeline"], Field(description="where predictions come from")] = "file",
        timeout_s: Annotated[float | None, Field(description="per-query time limit", gt=0)] = None,
        name: Name = None,
        rows: Rows = None,
        background: Background = None,
    ) -> EvalResult:
        return await _run(api.eval_text2sql, items, items_path, databases, source, timeout_s, name, rows,
                          background, settings=settings, progress=_bridge(ctx))

    @app.tool(
        name="eval_perplexity", title="Perplexity of texts", annotations=EVALUATES,
        description=(
            "Perplexity and bits per byte of texts under a local causal LM, with a sliding window for texts longer "
            "than the model's context. Per text and over the whole corpus (token-weighted)."
        ),
    )
    async def eval_perplexity(
        ctx: Context,
        texts: Annotated[list[str] | None, Field(description="the texts")] = None,
        texts_path: Annotated[str | None, Field(description="a text file, or JSONL with a 'text' field")] = None,
        model: Model = None,
        window: Annotated[int | None, Field(description="window in tokens (default: model context, <= 1024)", ge=2)] = None,
        stride: Annotated[int | None, Field(description="window step in tokens", ge=1)] = None,
        name: Name = None,
        rows: Rows = None,
        background: Background = None,
    ) -> EvalResult:
        return await _run(api.eval_perplexity, texts, texts_path, model, window, stride, name, rows, background,
                          settings=settings,
                          progress=_bridge(ctx))

    @app.tool(
        name="eval_choice", title="Multiple-choice accuracy", annotations=EVALUATES,
        description=(
            "Multiple-choice accuracy of a local causal LM from per-option log-likelihood: acc, length-normalised "
            "acc_norm, and letter scoring (acc_letter), each over several prompt formats with the spread between "
            "them reported. Items {question, choices, answer (index, letter or text)}."
        ),
    )
    async def eval_choice(
        ctx: Context,
        items: Annotated[list[ChoiceItem] | None, Field(description="the questions")] = None,
        items_path: ItemsPath = None,
        model: Model = None,
        formats: Annotated[list[str] | None, Field(description="prompt formats containing {question}")] = None,
        name: Name = None,
        rows: Rows = None,
        background: Background = None,
    ) -> EvalResult:
        return await _run(api.eval_choice, items, items_path, model, formats, name, rows, background,
                          settings=settings,
                          progress=_bridge(ctx))

    @app.tool(
        name="eval_answers", title="Closed-question accuracy", annotations=GENERATES,
        description=(
            "Ask the configured generator closed questions {question, answers} and score its answers: exact match "
            "and token F1 after extracting the answer ('answer is X', last number, a letter, or the first line) "
            "and normalising case, punctuation, articles and number formats."
        ),
    )
    async def eval_answers(
        ctx: Context,
        items: Annotated[list[AnswerItem] | None, Field(description="the questions and accepted answers")] = None,
        items_path: ItemsPath = None,
        extract: Annotated[Literal["auto", "number", "letter", "first_line", "full"],
                           Field(description="how to extract the answer from the output")] = "auto",
        max_new_tokens: Annotated[int | None, Field(description="tokens per answer", ge=1, le=4096)] = None,
        model: Model = None,
        name: Name = None,
        rows: Rows = None,
        background: Background = None,
    ) -> EvalResult:
        return await _run(api.eval_answers, items, items_path, extract, max_new_tokens, model, name, rows,
                          background, settings=settings, progress=_bridge(ctx))

    @app.tool(
        name="eval_judge_pairwise", title="LLM judge: A vs B", annotations=GENERATES,
        description=(
            "Have the configured model judge which of two answers is better, in both orders (a disagreement is a "
            "tie), reasoning before its verdict in schema-constrained JSON, with several votes if asked. Returns B's "
            "win rate and a reliability report (swap consistency, position bias, vote agreement, agreement with "
            "labels) that flags an untrustworthy judge."
        ),
    )
    async def eval_judge_pairwise(
        ctx: Context,
        items: Annotated[list[PairItem] | None, Field(description="[{prompt, a, b, reference?, label?}]")] = None,
        items_path: ItemsPath = None,
        votes: Votes = None,
        reasoning_chars: Reasoning = None,
        model: Model = None,
        name: Name = None,
        rows: Rows = None,
        background: Background = None,
    ) -> JudgeResult:
        return await _run(api.eval_judge_pairwise, items, items_path, votes, reasoning_chars, model, name, rows,
                          background, settings=settings,
                          progress=_bridge(ctx))

    @app.tool(
        name="eval_judge_score", title="LLM judge: score and pass", annotations=GENERATES,
        description=(
            "Have the configured model score answers from 1 to 10 (reasoning first, schema-constrained JSON); an "
            "answer passes from pass_score. Several votes give the variance; labels give the agreement."
        ),
    )
    async def eval_judge_score(
        ctx: Context,
        items: Annotated[list[ScoreItem] | None, Field(description="[{prompt, answer, reference?, label?}]")] = None,
        items_path: ItemsPath = None,
        votes: Votes = None,
        pass_score: Annotated[int | None, Field(description="score from which an answer passes", ge=1, le=10)] = None,
        reasoning_chars: Reasoning = None,
        model: Model = None,
        name: Name = None,
        rows: Rows = None,
        background: Background = None,
    ) -> JudgeResult:
        return await _run(api.eval_judge_score, items, items_path, votes, pass_score, reasoning_chars, model, name, rows,
                          background, settings=settings, progress=_bridge(ctx))

    @app.tool(
        name="eval_judge_rank", title="LLM judge: rank N systems", annotations=GENERATES,
        description=(
            "Rank several systems from their outputs on the same prompts: every pair judged in both orders, "
            "strengths fitted with Bradley–Terry; returns the ranking with wins, ties and losses."
        ),
    )
    async def eval_judge_rank(
        ctx: Context,
        items: Annotated[list[RankItem] | None, Field(description="[{prompt, outputs: {system: answer}}]")] = None,
        items_path: ItemsPath = None,
        votes: Votes = None,
        reasoning_chars: Reasoning = None,
        model: Model = None,
        name: Name = None,
        rows: Rows = None,
        background: Background = None,
    ) -> JudgeResult:
        return await _run(api.eval_judge_rank, items, items_path, votes, reasoning_chars, model, name, rows,
                          background, settings=settings,
                          progress=_bridge(ctx))

    @app.tool(
        name="eval_text", title="Text overlap and diversity", annotations=EVALUATES,
        description=(
            "ROUGE-L, BLEU, keyword overlap, distinct-n and repetition rate of predictions against references, with "
            "a tokenizer that handles Chinese (jieba) and Japanese (characters) as well as alphabetic scripts."
        ),
    )
    async def eval_text(
        items: Annotated[list[TextItem] | None, Field(description="[{prediction, references, keywords?}]")] = None,
        items_path: ItemsPath = None,
        cjk: Annotated[Literal["auto", "jieba", "chars"], Field(description="how to cut CJK text")] = "auto",
        name: Name = None,
        rows: Rows = None,
    ) -> EvalResult:
        return await _run(api.eval_text, items, items_path, cjk, name, rows, settings=settings)

    @app.tool(
        name="eval_tool_calls", title="Tool-call accuracy (BFCL)", annotations=EVALUATES,
        description=(
            "Score recorded tool calls as the Berkeley Function Calling Leaderboard does (AST match of names and "
            "argument values against acceptable values; 'irrelevance' items expect no call) and the valid-call rate "
            "(offered function, schema-valid arguments)."
        ),
    )
    async def eval_tool_calls(
        items: Annotated[list[ToolCallItem] | None, Field(description="[{functions, calls, expected, irrelevance?}]")] = None,
        items_path: ItemsPath = None,
        name: Name = None,
        rows: Rows = None,
    ) -> EvalResult:
        return await _run(api.eval_tool_calls, items, items_path, name, rows, settings=settings)

    @app.tool(
        name="eval_latency", title="Latency and throughput", annotations=GENERATES,
        description=(
            "Latency p50/p95/p99, QPS, time to first token and time per output token, from host transcripts "
            "(DATA_DIR/transcripts/*.jsonl) and/or a live probe of the configured generator."
        ),
    )
    async def eval_latency(
        ctx: Context,
        transcripts_path: Annotated[str | None, Field(description="a transcript .jsonl file or a folder of them")] = None,
        probe_requests: Annotated[int, Field(description="live requests to time (0: none)", ge=0, le=100)] = 0,
        prompt: Annotated[str, Field(description="the probe's prompt", min_length=1)] = "Write one sentence about the sea.",
        max_new_tokens: Annotated[int, Field(description="tokens per probe request", ge=2, le=4096)] = 32,
        model: Model = None,
        name: Name = None,
        rows: Rows = None,
    ) -> EvalResult:
        return await _run(api.eval_latency, transcripts_path, probe_requests, prompt, max_new_tokens, model, name, rows,
                          settings=settings, progress=_bridge(ctx))

    @app.tool(
        name="eval_job_status", title="Follow an evaluation job", annotations=READS,
        description=(
            "The state and progress of an evaluation that runs as a job (large ones do), and its full result once "
            "completed. wait_s blocks up to that many seconds, sending progress notifications. 'latest' names the "
            "newest job."
        ),
    )
    async def eval_job_status(
        ctx: Context,
        job_id: Annotated[str, Field(description="the job id (or 'latest')")],
        wait_s: Annotated[float, Field(description="seconds to wait for it to finish (0: answer at once)", ge=0)] = 0.0,
    ) -> JobStatus:
        return await _run(api.eval_job_status, job_id, wait_s, settings=settings, progress=_bridge(ctx))

    @app.tool(
        name="eval_cancel_job", title="Cancel an evaluation job",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False),
        description="Stop an evaluation job: a queued one at once, a running one at its next item; it saves no run.",
    )
    async def eval_cancel_job(job_id: Annotated[str, Field(description="the job id (or 'latest')")]) -> JobStatus:
        return await _run(api.eval_cancel_job, job_id, settings=settings)

    @app.tool(
        name="eval_list_jobs", title="List evaluation jobs", annotations=READS,
        description="Evaluation jobs, newest first, with their state, progress and the run each saves.",
    )
    async def eval_list_jobs(
        state: Annotated[Literal["queued", "running", "completed", "failed", "cancelled", "orphaned"] | None,
                         Field(description="only jobs in this state")] = None,
        limit: Annotated[int, Field(description="jobs to return", ge=1, le=1000)] = 50,
    ) -> JobList:
        return await _run(api.eval_list_jobs, state, limit, settings=settings)

    @app.tool(
        name="eval_list_runs", title="List evaluation runs", annotations=READS,
        description="List saved evaluation runs, newest first, with their kind, headline metrics and report URI.",
    )
    async def eval_list_runs(
        kind: Annotated[str | None, Field(description="only runs of this kind (retrieval, kb, rag, judge, ...)")] = None,
        limit: Annotated[int, Field(description="runs to return", ge=1, le=1000)] = 50,
        offset: Annotated[int, Field(description="runs to skip", ge=0)] = 0,
    ) -> RunList:
        return await _run(api.eval_list_runs, kind, limit, offset, settings=settings)

    @app.tool(
        name="eval_get_run", title="Show an evaluation run", annotations=READS,
        description=(
            "Show one saved run: its configuration, model, input hashes, metrics with confidence intervals, notes, "
            "and a page of per-item rows (unscorable items carry their reason)."
        ),
    )
    async def eval_get_run(
        run_id: Annotated[str, Field(description="the run id")],
        offset: Annotated[int, Field(description="first row to return", ge=0)] = 0,
        rows: Rows = None,
    ) -> RunDetail:
        return await _run(api.eval_get_run, run_id, offset, rows, settings=settings)

    @app.tool(
        name="eval_report", title="Where a run's report is", annotations=READS,
        description="The HTML report of a run: its file path (open in a browser) and its MCP resource URI.",
    )
    async def eval_report(run_id: Annotated[str, Field(description="the run id")]) -> ReportInfo:
        return await _run(api.eval_report, run_id, settings=settings)

    @app.resource("eval://reports", name="reports", title="Evaluation reports", mime_type="text/html",
                  description="An index of every saved evaluation run and its report URI.")
    async def reports() -> str:
        return await _run(api.reports_index, settings=settings)

    @app.resource("eval://reports/{run_id}", name="report", title="Evaluation report", mime_type="text/html",
                  description="The self-contained HTML report of one evaluation run (plots embedded as PNG).")
    async def report(run_id: str) -> str:
        return await _run(api.report_html, run_id, settings=settings)

    return app


# ---------------------------------------------------------------- protocol harness


def protocol_examples(workdir: Path) -> list[tuple[str, dict]]:
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


def concurrent_example(workdir: Path) -> tuple[str, dict]:
    """A call many clients can make at once: listing runs."""
    return ("eval_list_runs", {"limit": 3})
