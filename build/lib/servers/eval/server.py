"""MCP façade of the eval library: one tool per function of :mod:`servers.eval.api`, reports as resources."""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

from servers.core.boundary import Tools, in_thread, new_server
from servers.core.settings import Settings
from servers.eval import api

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
CANCELS = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False)


def build_server(settings: Settings) -> MCPServer:
    app = new_server("eval", title="Quiver eval", instructions=INSTRUCTIONS,
                     description="Offline evaluation: retrieval, RAG, text-to-SQL, LMs, judges; runs, significance, reports")
    tools = Tools(app, settings)
    tools.add(
        api.eval_retrieval, name="eval_retrieval", title="Score a retrieval run", annotations=EVALUATES,
        description=(
            "Score a ranked retrieval run against relevance judgements: nDCG@k, Recall@k, Precision@k, Hit@k, MRR "
            "and MAP per query and on average (trec_eval's definitions), plus the score distributions of relevant "
            "vs non-relevant hits and a suggested score threshold. Give the run as a TREC file (qid Q0 docid rank "
            "score tag) or {qid: {docid: score}}, the qrels as BEIR TSV / TREC qrels or {qid: {docid: relevance}}."
        ),
    )
    tools.add(
        api.eval_kb, name="eval_kb", title="Evaluate a knowledge base", annotations=EVALUATES,
        description=(
            "Evaluate a live Quiver knowledge base: run every query in each search mode (dense, bm25, hybrid, "
            "rerank = hybrid + reranker), score the runs against the qrels side by side, with score histograms and "
            "a suggested threshold per mode. Optionally ingest a BEIR corpus.jsonl into the knowledge base first. "
            "Each mode is saved as its own run (compare them with eval_compare)."
        ),
    )
    tools.add(
        api.eval_compare, name="eval_compare", title="Compare two runs (significance)", annotations=EVALUATES,
        description=(
            "Is B better or worse than A? Compare two saved runs on a per-item metric (or two {item: score} maps): "
            "mean difference with a paired bootstrap confidence interval, a paired permutation p-value, McNemar's "
            "test for right/wrong scores, and a regression gate that fails only when B is significantly worse."
        ),
    )
    tools.add(
        api.eval_rag, name="eval_rag", title="Evaluate RAG answers", annotations=GENERATES,
        description=(
            "Score RAG answers {question, answer, contexts, reference?}: faithfulness (claims supported by the "
            "contexts, with a per-claim evidence table and flags for unsupported numbers), answer relevance, "
            "similarity to the reference, context precision and recall, and citation support ([n] checked against "
            "passage n). tier 'deterministic' uses lexical + embedding support; 'judge' asks the configured model, "
            "its output constrained to JSON."
        ),
    )
    tools.add(
        api.eval_text2sql, name="eval_text2sql", title="Text-to-SQL execution accuracy", annotations=EVALUATES,
        description=(
            "Execution accuracy of SQL predictions: each prediction and gold query run read-only, results compared "
            "as multisets (order only when the gold orders; columns in any order; NULL and float tolerant), with "
            "the valid-SQL rate and an error taxonomy (syntax, unknown table/column, timeout, wrong result). Items "
            "from a CSV (defog: db_name, query, question[, predicted]) or JSONL; source 'gold' checks the harness, "
            "'pipeline' generates SQL with the text2sql pipeline."
        ),
    )
    tools.add(
        api.eval_perplexity, name="eval_perplexity", title="Perplexity of texts", annotations=EVALUATES,
        description=(
            "Perplexity and bits per byte of texts under a local causal LM, with a sliding window for texts longer "
            "than the model's context. Per text and over the whole corpus (token-weighted)."
        ),
    )
    tools.add(
        api.eval_choice, name="eval_choice", title="Multiple-choice accuracy", annotations=EVALUATES,
        description=(
            "Multiple-choice accuracy of a local causal LM from per-option log-likelihood: acc, length-normalised "
            "acc_norm, and letter scoring (acc_letter), each over several prompt formats with the spread between "
            "them reported. Items {question, choices, answer (index, letter or text)}."
        ),
    )
    tools.add(
        api.eval_answers, name="eval_answers", title="Closed-question accuracy", annotations=GENERATES,
        description=(
            "Ask the configured generator closed questions {question, answers} and score its answers: exact match "
            "and token F1 after extracting the answer ('answer is X', last number, a letter, or the first line) "
            "and normalising case, punctuation, articles and number formats."
        ),
    )
    tools.add(
        api.eval_judge_pairwise, name="eval_judge_pairwise", title="LLM judge: A vs B", annotations=GENERATES,
        description=(
            "Have the configured model judge which of two answers is better, in both orders (a disagreement is a "
            "tie), reasoning before its verdict in schema-constrained JSON, with several votes if asked. Returns B's "
            "win rate and a reliability report (swap consistency, position bias, vote agreement, agreement with "
            "labels) that flags an untrustworthy judge."
        ),
    )
    tools.add(
        api.eval_judge_score, name="eval_judge_score", title="LLM judge: score and pass", annotations=GENERATES,
        description=(
            "Have the configured model score answers from 1 to 10 (reasoning first, schema-constrained JSON); an "
            "answer passes from pass_score. Several votes give the variance; labels give the agreement."
        ),
    )
    tools.add(
        api.eval_judge_rank, name="eval_judge_rank", title="LLM judge: rank N systems", annotations=GENERATES,
        description=(
            "Rank several systems from their outputs on the same prompts: every pair judged in both orders, "
            "strengths fitted with Bradley–Terry; returns the ranking with wins, ties and losses."
        ),
    )
    tools.add(
        api.eval_text, name="eval_text", title="Text overlap and diversity", annotations=EVALUATES,
        description=(
            "ROUGE-L, BLEU, keyword overlap, distinct-n and repetition rate of predictions against references, with "
            "a tokenizer that handles Chinese (jieba) and Japanese (characters) as well as alphabetic scripts."
        ),
    )
    tools.add(
        api.eval_tool_calls, name="eval_tool_calls", title="Tool-call accuracy (BFCL)", annotations=EVALUATES,
        description=(
            "Score recorded tool calls as the Berkeley Function Calling Leaderboard does (AST match of names and "
            "argument values against acceptable values; 'irrelevance' items expect no call) and the valid-call rate "
            "(offered function, schema-valid arguments)."
        ),
    )
    tools.add(
        api.eval_latency, name="eval_latency", title="Latency and throughput", annotations=GENERATES,
        description=(
            "Latency p50/p95/p99, QPS, time to first token and time per output token, from host transcripts "
            "(DATA_DIR/transcripts/*.jsonl) and/or a live probe of the configured generator."
        ),
    )
    tools.add(
        api.eval_job_status, name="eval_job_status", title="Follow an evaluation job", annotations=READS,
        description=(
            "The state and progress of an evaluation that runs as a job (large ones do), and its full result once "
            "completed. wait_s blocks up to that many seconds, sending progress notifications. 'latest' names the "
            "newest job."
        ),
    )
    tools.add(
        api.eval_cancel_job, name="eval_cancel_job", title="Cancel an evaluation job", annotations=CANCELS,
        description="Stop an evaluation job: a queued one at once, a running one at its next item; it saves no run.",
    )
    tools.add(
        api.eval_list_jobs, name="eval_list_jobs", title="List evaluation jobs", annotations=READS,
        description="Evaluation jobs, newest first, with their state, progress and the run each saves.",
    )
    tools.add(
        api.eval_list_runs, name="eval_list_runs", title="List evaluation runs", annotations=READS,
        description="List saved evaluation runs, newest first, with their kind, headline metrics and report URI.",
    )
    tools.add(
        api.eval_get_run, name="eval_get_run", title="Show an evaluation run", annotations=READS,
        description=(
            "Show one saved run: its configuration, model, input hashes, metrics with confidence intervals, notes, "
            "and a page of per-item rows (unscorable items carry their reason)."
        ),
    )
    tools.add(
        api.eval_report, name="eval_report", title="Where a run's report is", annotations=READS,
        description="The HTML report of a run: its file path (open in a browser) and its MCP resource URI.",
    )

    @app.resource("eval://reports", name="reports", title="Evaluation reports", mime_type="text/html",
                  description="An index of every saved evaluation run and its report URI.")
    async def reports() -> str:
        return await in_thread(api.reports_index, settings=settings)

    @app.resource("eval://reports/{run_id}", name="report", title="Evaluation report", mime_type="text/html",
                  description="The self-contained HTML report of one evaluation run (plots embedded as PNG).")
    async def report(run_id: str) -> str:
        return await in_thread(api.report_html, run_id, settings=settings)

    return app
