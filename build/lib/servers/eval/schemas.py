"""Typed inputs and results of the eval library (also the MCP tools' schemas)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal[
    "retrieval", "kb", "compare", "rag", "text2sql", "perplexity", "choice", "answers", "judge", "text",
    "tool_calls", "latency",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- runs


class ItemRow(BaseModel):
    """One evaluated item: its scores, the metrics it could not be scored on (with the reason), details."""

    id: str
    scores: dict[str, float] = Field(default_factory=dict)
    unscorable: dict[str, str] = Field(
        default_factory=dict, description="metric (or '*' for the whole item) -> 'unscorable: reason'"
    )
    detail: dict[str, Any] = Field(default_factory=dict)


class RunSummary(BaseModel):
    id: str
    kind: Kind
    name: str | None = None
    created: str
    model: str | None = None
    primary: str | None = Field(default=None, description="the headline metric, compared by default")
    metrics: dict[str, float] = Field(default_factory=dict)
    n_items: int = 0
    n_unscorable: int = Field(default=0, description="items with at least one unscorable metric")
    report_uri: str


class RunRecord(RunSummary):
    """A saved evaluation: everything needed to show it, compare it and reproduce it."""

    config: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict, description="input name -> sha256 of its content")
    intervals: dict[str, list[float]] = Field(default_factory=dict, description="metric -> [lo, hi] bootstrap CI of the mean")
    counts: dict[str, int] = Field(default_factory=dict, description="metric -> items scored")
    higher_is_better: dict[str, bool] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    figures: dict[str, Any] = Field(default_factory=dict, description="data behind the report's plots")
    report_path: str = ""


class EvalResult(BaseModel):
    """What every evaluation tool returns: the saved run's headline figures and the first rows."""

    run_id: str
    kind: Kind
    model: str | None = None
    primary: str | None = None
    metrics: dict[str, float]
    intervals: dict[str, list[float]] = Field(default_factory=dict)
    n_items: int
    n_unscorable: int
    rows: list[ItemRow] = Field(description="per-item rows (the first `rows`; see rows_total)")
    rows_total: int
    notes: list[str] = Field(default_factory=list)
    report_uri: str = Field(description="MCP resource with the HTML report")
    report_path: str = Field(description="the HTML report on disk (self-contained, open it in a browser)")
    job_id: str | None = Field(default=None, description="set when the evaluation runs as a job")
    state: str = Field(default="completed", description="'completed', or the job's state when it runs as a job "
                                                        "(then poll eval_job_status; the run appears under run_id)")


# ---------------------------------------------------------------- jobs


class JobStatus(BaseModel):
    job_id: str
    state: str = Field(description="queued, running, completed, failed, cancelled or orphaned")
    tool: str = Field(description="the evaluation the job runs")
    run_id: str = Field(description="the run the job saves when it completes")
    label: str = ""
    step: int | None = None
    total: int | None = None
    message: str | None = None
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    log_tail: str | None = Field(default=None, description="the job's last output lines, when it failed")
    result: dict[str, Any] | None = Field(default=None, description="the tool's result once completed")
    timed_out: bool = Field(default=False, description="the wait ended before the job did")


class JobList(BaseModel):
    jobs: list[JobStatus]
    running: int
    queued: int


# ---------------------------------------------------------------- retrieval


class Separation(BaseModel):
    """Scores of relevant vs non-relevant hits in the top ranks, and a suggested threshold."""

    depth: int
    relevant: int
    non_relevant: int
    relevant_median: float | None = None
    non_relevant_median: float | None = None
    threshold: float | None = Field(default=None, description="score from which a hit is most likely relevant (max F1)")
    f1_at_threshold: float | None = None
    reason: str | None = None


class RetrievalResult(EvalResult):
    per_query: dict[str, dict[str, float]] = Field(default_factory=dict, description="the first `rows` queries")
    missing_in_run: list[str] = Field(default_factory=list, description="qrels queries the run lacks (scored 0)")
    not_in_qrels: list[str] = Field(default_factory=list, description="run queries without judgements (ignored)")
    separation: Separation | None = None


class KbModeResult(BaseModel):
    mode: str
    run_id: str
    metrics: dict[str, float]
    intervals: dict[str, list[float]]
    separation: Separation
    seconds_per_query: float


class KbResult(BaseModel):
    run_id: str = Field(description="the side-by-side run (its report compares the modes)")
    kb: str
    queries: int
    modes: list[KbModeResult]
    best_mode: str
    primary: str
    notes: list[str] = Field(default_factory=list)
    report_uri: str
    report_path: str
    job_id: str | None = None
    state: str = "completed"


class QueryItem(Strict):
    id: str
    text: str = Field(min_length=1)


# ---------------------------------------------------------------- comparison


class CompareResult(BaseModel):
    run_id: str
    metric: str
    a: str = Field(description="run id or label of the baseline")
    b: str = Field(description="run id or label of the candidate")
    n: int = Field(description="items scored in both")
    mean_a: float
    mean_b: float
    delta: float = Field(description="mean(B) - mean(A)")
    ci: list[float] = Field(description="bootstrap confidence interval of the delta")
    confidence: float
    p_value: float = Field(description="two-sided paired permutation test")
    mcnemar_p_value: float | None = Field(default=None, description="McNemar's exact test, for right/wrong scores")
    only_a: int | None = Field(default=None, description="items A gets right and B wrong (binary scores)")
    only_b: int | None = None
    gate: Literal["pass", "fail"]
    gate_reason: str
    dropped: int = Field(default=0, description="items scored in only one of the two runs")
    report_uri: str
    report_path: str


# ---------------------------------------------------------------- RAG


class RagSample(Strict):
    id: str | None = None
    question: str
    answer: str
    contexts: list[str] = Field(description="the passages the answer was generated from, in order ([1] is the first)")
    reference: str | None = Field(default=None, description="a reference answer (enables similarity and context recall)")
    context_relevance: list[int] | None = Field(
        default=None, description="optional gold 0/1 relevance of each context (context precision uses them)"
    )


# ---------------------------------------------------------------- text2sql


class SqlItem(Strict):
    id: str | None = None
    database: str = Field(description="a database name the text2sql catalog knows")
    question: str = ""
    gold: str = Field(description="gold SQL; several acceptable queries separated by ';'")
    predicted: str | None = Field(default=None, description="the SQL to score (source='file')")


# ---------------------------------------------------------------- language models


class ChoiceItem(Strict):
    id: str | None = None
    question: str
    choices: list[str] = Field(min_length=2)
    answer: int | str = Field(description="index of the right choice (0-based), its letter, or its text")


class AnswerItem(Strict):
    id: str | None = None
    question: str
    answers: list[str] = Field(min_length=1, description="acceptable answers")


class TextItem(Strict):
    id: str | None = None
    prediction: str
    references: list[str] = Field(default_factory=list)
    keywords: list[str] | None = Field(default=None, description="expected keywords or phrases (default: the references' content words)")


# ---------------------------------------------------------------- judge


class PairItem(Strict):
    id: str | None = None
    prompt: str
    a: str = Field(description="answer of system A")
    b: str = Field(description="answer of system B")
    reference: str | None = None
    label: Literal["A", "B", "tie"] | None = Field(default=None, description="human preference, for agreement")


class ScoreItem(Strict):
    id: str | None = None
    prompt: str
    answer: str
    reference: str | None = None
    label: bool | None = Field(default=None, description="human pass/fail, for agreement")


class RankItem(Strict):
    id: str | None = None
    prompt: str
    outputs: dict[str, str] = Field(description="system name -> its answer (two or more systems)")
    reference: str | None = None


class JudgeReliability(BaseModel):
    judged: int
    invalid: int = Field(description="replies that were unusable (schema, cut off)")
    swap_consistency: float | None = Field(default=None, description="share of pairs judged the same in both orders")
    first_position_rate: float | None = Field(default=None, description="share of decisive votes for the answer shown first")
    vote_agreement: float | None = Field(default=None, description="mean share of votes agreeing with the majority")
    label_agreement: float | None = None
    label_kappa: float | None = None
    flags: list[str] = Field(default_factory=list)


class JudgeResult(EvalResult):
    mode: Literal["pairwise", "score", "rank"]
    reliability: JudgeReliability
    ranking: list[dict[str, Any]] = Field(default_factory=list, description="rank mode: systems by Bradley-Terry strength")


# ---------------------------------------------------------------- agents


class ToolCallItem(Strict):
    id: str | None = None
    functions: list[dict[str, Any]] = Field(description="the offered functions {name, description, parameters} (BFCL or JSON Schema types)")
    calls: list[dict[str, Any]] = Field(default_factory=list, description="the calls made: [{name, arguments}]")
    expected: list[dict[str, Any]] = Field(
        default_factory=list, description="BFCL ground truth: [{function: {argument: [acceptable values]}}]; '' = may be omitted"
    )
    irrelevance: bool = Field(default=False, description="true when the right behaviour is to call nothing")
    parse_error: str | None = Field(default=None, description="set when the model's output could not be parsed into calls")


# ---------------------------------------------------------------- listing


class RunList(BaseModel):
    runs: list[RunSummary]
    total: int


class RunDetail(BaseModel):
    run: RunRecord
    rows: list[ItemRow]
    rows_total: int
    offset: int


class ReportInfo(BaseModel):
    run_id: str
    report_uri: str
    report_path: str
    bytes: int
