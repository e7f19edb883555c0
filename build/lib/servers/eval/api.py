"""The eval library's public entry points: one function per MCP tool, same names and arguments.

Every evaluation is saved as a run under ``DATA_DIR/eval/runs/`` with a self-contained
HTML report; the functions return pydantic results. Defaults come from the ``[eval]``
settings section, passed explicitly as ``settings``. ``progress(done, total, message)`` is
called as items are scored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field
from pydantic_core import to_jsonable_python

from servers.core.errors import InvalidInput, NotFound
from servers.core.jobs import JobRecord, JobState, JobStore, job_store
from servers.core.roots import resolve_under_roots
from servers.core.settings import Settings
from servers.eval import report, retrieval, significance, text, text2sql
from servers.eval.inputs import load_items, one_of, read_text, resolve
from servers.eval.runs import RunStore, digest, now_iso, report_uri, summarize
from servers.eval.schemas import (
    AnswerItem,
    ChoiceItem,
    CompareResult,
    EvalResult,
    ItemRow,
    JobList,
    JobStatus,
    JudgeReliability,
    JudgeResult,
    KbModeResult,
    KbResult,
    Kind,
    PairItem,
    QueryItem,
    RagSample,
    RankItem,
    ReportInfo,
    RetrievalResult,
    RunDetail,
    RunList,
    RunRecord,
    ScoreItem,
    Separation,
    SqlItem,
    TextItem,
    ToolCallItem,
)

if TYPE_CHECKING:  # the model-backed families import torch: loaded when a tool needs them
    from servers.eval import judge

Progress = Callable[[int, int, str], None]

# argument types shared by the tools (the MCP input schema reads their descriptions)
Name = Annotated[str | None, Field(description="a label for the run (shown in listings and the report)")]
Rows = Annotated[int | None, Field(description="per-item rows to return (default from config; all are saved)", ge=0)]
Model = Annotated[str | None, Field(description="causal LM to use instead of the configured one (short name, folder)")]
Reasoning = Annotated[int | None, Field(description="cap on the judge's reasoning in characters (default from config)",
                                        ge=0, le=4000)]
Votes = Annotated[int | None, Field(description="judge votes per order (default from config; >1 samples)", ge=1, le=16)]
Background = Annotated[bool | None, Field(description="run as a job and return at once (default: only when large; "
                                                    "then follow it with eval_job_status)")]
ItemsPath = Annotated[str | None, Field(description="a JSONL, JSON or CSV file of items under the allowed roots")]
KB_MODES = ("dense", "bm25", "hybrid", "rerank")
LOWER_IS_BETTER = {"perplexity", "bits_per_byte", "nll", "corpus_perplexity", "corpus_bits_per_byte", "repetition_rate",
                   "latency_s", "ttft_s", "tpot_s", "tool_call_s", "score_std"}


# ---------------------------------------------------------------- shared plumbing


def store(settings: Settings) -> RunStore:
    return RunStore.for_data_dir(settings.data_path)


def _rows_shown(rows: int | None, settings: Settings) -> int:
    n = settings.eval.result_rows if rows is None else rows
    if n < 0:
        raise InvalidInput(f"rows must be >= 0 (got {n})")
    return n


def _higher_is_better(metric: str) -> bool:
    return metric.split("|")[0].split("@")[0] not in LOWER_IS_BETTER and not any(
        metric.startswith(p) for p in LOWER_IS_BETTER)


def _save(settings: Settings, kind: Kind, rows: list[ItemRow], *, config: dict[str, Any], inputs: dict[str, Any],
          model: str | None = None, primary: str | None = None, name: str | None = None,
          metric_names: list[str] | None = None, extra_metrics: dict[str, float] | None = None,
          figures: dict[str, Any] | None = None, notes: list[str] | None = None,
          files: dict[str, str | bytes] | None = None, run_id: str | None = None) -> RunRecord:
    cfg = settings.eval
    metrics, intervals, counts = summarize(rows, metric_names, confidence=cfg.confidence, seed=cfg.seed)
    metrics.update(extra_metrics or {})
    runs = store(settings)
    run_id = run_id or runs.new_id(kind)
    record = RunRecord(
        id=run_id, kind=kind, name=name, created=now_iso(), model=model,
        primary=primary if primary in metrics else next(iter(metrics), None),
        metrics=metrics, n_items=len(rows), n_unscorable=sum(1 for r in rows if r.unscorable),
        report_uri=report_uri(run_id), config=config, inputs={k: digest(v) for k, v in inputs.items()},
        intervals=intervals, counts=counts, higher_is_better={m: _higher_is_better(m) for m in metrics},
        notes=notes or [], figures=figures or {},
    )
    return runs.save(record, rows, files=files,
                     render=lambda rec, rs: report.render(rec, rs, max_rows=cfg.report_rows))


def _result(record: RunRecord, rows: list[ItemRow], shown: int, cls: type[EvalResult] = EvalResult,
            **extra: Any) -> Any:
    return cls(run_id=record.id, kind=record.kind, model=record.model, primary=record.primary, metrics=record.metrics,
               intervals=record.intervals, n_items=record.n_items, n_unscorable=record.n_unscorable,
               rows=rows[:shown], rows_total=len(rows), notes=record.notes, report_uri=record.report_uri,
               report_path=record.report_path, **extra)


def _bars(title: str, values: dict[str, float], ylabel: str = "") -> dict[str, Any]:
    return {"type": "bars", "title": title, "labels": list(values), "values": list(values.values()), "ylabel": ylabel}


# ---------------------------------------------------------------- retrieval


def _separation(sep: retrieval.ScoreSeparation, depth: int) -> Separation:
    return Separation(
        depth=depth, relevant=len(sep.relevant), non_relevant=len(sep.non_relevant),
        relevant_median=float(np.median(sep.relevant)) if sep.relevant else None,
        non_relevant_median=float(np.median(sep.non_relevant)) if sep.non_relevant else None,
        threshold=sep.threshold, f1_at_threshold=sep.f1_at_threshold, reason=sep.reason,
    )


def _retrieval_figures(scores: retrieval.RetrievalScores, sep: retrieval.ScoreSeparation, ks: list[int],
                       label: str = "") -> list[dict[str, Any]]:
    plots = []
    curve = {fam: [scores.metrics[f"{fam}@{k}"] for k in ks if f"{fam}@{k}" in scores.metrics]
             for fam in ("ndcg", "recall", "precision", "hit")}
    curve = {f: v for f, v in curve.items() if len(v) == len(ks)}
    if curve and len(ks) > 1:
        plots.append({"type": "lines", "title": f"{label}metrics by cutoff k", "x": ks, "series": curve, "xlabel": "k",
                      "logx": max(ks) / min(ks) >= 20})
    if sep.relevant or sep.non_relevant:
        plots.append({"type": "hist", "title": f"{label}scores of relevant vs non-relevant hits (top 10)",
                      "series": {"relevant": sep.relevant, "non-relevant": sep.non_relevant},
                      "vline": sep.threshold, "xlabel": "retriever score"})
    return plots


def _score_run(run: retrieval.Run, qrels: retrieval.Qrels, metrics: list[str] | None, ks: list[int]
               ) -> tuple[retrieval.RetrievalScores, list[ItemRow], retrieval.ScoreSeparation, list[str]]:
    scores = retrieval.evaluate(run, qrels, metrics, ks)
    rows = [ItemRow(id=q, scores=scores.per_query[q]) if q in scores.per_query else
            ItemRow(id=q, unscorable={"*": scores.unscorable[q]}) for q in qrels]
    for row in rows:
        if row.id in scores.missing_in_run:
            row.detail["missing_in_run"] = True
    notes = []
    if scores.missing_in_run:
        notes.append(f"{len(scores.missing_in_run)} qrels quer(ies) are missing from the run and score 0")
    if scores.not_in_qrels:
        notes.append(f"{len(scores.not_in_qrels)} run quer(ies) have no judgements and are ignored")
    if scores.unscorable:
        notes.append(f"{len(scores.unscorable)} quer(ies) have no relevant document in the qrels: unscorable")
    return scores, rows, retrieval.score_separation(run, qrels), notes


def eval_retrieval(
    qrels: Annotated[dict[str, dict[str, int]] | None, Field(description="{qid: {docid: relevance}}")] = None,
    run: Annotated[dict[str, dict[str, float]] | None, Field(description="{qid: {docid: score}}")] = None,
    qrels_path: Annotated[str | None, Field(description="BEIR qrels TSV or TREC qrels file")] = None,
    run_path: Annotated[str | None, Field(description="TREC run file")] = None,
    metrics: Annotated[list[str] | None, Field(description="e.g. ['ndcg@10', 'recall@100', 'mrr', 'map']; "
                                                   "default: ndcg, recall, precision, hit at each k, mrr, map")] = None,
    ks: Annotated[list[int] | None, Field(description="cutoffs for the default metrics, e.g. [1, 5, 10, 100]")] = None,
    name: Name = None,
    rows: Rows = None,
    *,
    settings: Settings,
) -> RetrievalResult:
    """Score a run (TREC file or ``{qid: {docid: score}}``) against qrels (BEIR TSV, TREC qrels or a dict)."""
    one_of(qrels, qrels_path, "qrels", "qrels_path")
    one_of(run, run_path, "run", "run_path")
    ks = retrieval.check_ks(ks or settings.eval.ks)
    if qrels is None:
        qtext, qsrc = read_text(qrels_path or "", settings)
        qrels = retrieval.parse_qrels(qtext, qsrc.name)
    if run is None:
        rtext, rsrc = read_text(run_path or "", settings)
        run = retrieval.parse_run(rtext, rsrc.name)
    for qid, docs in run.items():
        for doc, value in docs.items():
            if not math.isfinite(value):
                raise InvalidInput(f"run query {qid!r}, document {doc!r}: the score {value} is not finite")
    scores, item_rows, sep, notes = _score_run(run, qrels, metrics, ks)
    record = _save(settings, "retrieval", item_rows, metric_names=list(scores.metrics),
                   config={"metrics": list(scores.metrics), "ks": ks, "qrels_path": qrels_path, "run_path": run_path},
                   inputs={"qrels": qrels, "run": run}, primary=_primary(settings, scores.metrics), name=name,
                   figures={"plots": _retrieval_figures(scores, sep, ks), "separation": _separation(sep, 10).model_dump()},
                   notes=notes, files={"run.trec": _trec_text(run)})
    shown = _rows_shown(rows, settings)
    per_query = dict(list(scores.per_query.items())[:shown])
    return _result(record, item_rows, shown, RetrievalResult, per_query=per_query,
                   missing_in_run=scores.missing_in_run, not_in_qrels=scores.not_in_qrels,
                   separation=_separation(sep, 10))


def _primary(settings: Settings, metrics: dict[str, float]) -> str:
    """The configured primary metric, else the nDCG with the largest cutoff up to 10, else the first metric."""
    if settings.eval.primary_metric in metrics:
        return settings.eval.primary_metric
    ndcgs = sorted((int(m.split("@")[1]), m) for m in metrics if m.startswith("ndcg@"))
    small = [m for k, m in ndcgs if k <= 10]
    return small[-1] if small else ndcgs[0][1] if ndcgs else next(iter(metrics))


def _trec_text(run: retrieval.Run, tag: str = "quiver") -> str:
    lines = [f"{qid} Q0 {doc} {rank} {scores[doc]!r} {tag}"
             for qid, scores in run.items() for rank, doc in enumerate(retrieval.ranked_ids(scores), 1)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- knowledge bases


def _doc_key(hit: Any, id_field: str) -> str:
    if id_field == "source":
        return hit.citation.source
    if id_field == "doc_id":
        return hit.citation.doc_id
    if id_field == "title":
        return hit.citation.title
    if id_field.startswith("metadata."):
        return str(hit.metadata.get(id_field.split(".", 1)[1], ""))
    raise InvalidInput(f"id_field must be source, doc_id, title or metadata.KEY (got {id_field!r})")


def _qrels_key(key: str, known: set[str]) -> str:
    """A hit's id as the qrels write it: the value itself, else a path's file name or stem."""
    if key in known:
        return key
    name = Path(key).name
    if name in known:
        return name
    return Path(key).stem if Path(key).stem in known else key


def _load_queries(queries: list[QueryItem] | None, queries_path: str | None, settings: Settings) -> list[QueryItem]:
    items, _ = load_items(queries, queries_path, QueryItem, settings, what="queries", path_arg="queries_path",
                          rename={"_id": "id", "query": "text", "question": "text"})
    return items


def eval_kb(
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
    *,
    settings: Settings,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> KbResult:
    """Search a live knowledge base with every query in each mode and score the runs side by side."""
    from servers.retrieval.search import Searcher

    one_of(qrels, qrels_path, "qrels", "qrels_path")
    modes = list(dict.fromkeys(modes or settings.eval.kb_modes))
    bad = [m for m in modes if m not in KB_MODES]
    if bad or not modes:
        raise InvalidInput(f"unknown mode(s) {bad}: choose among {', '.join(KB_MODES)}")
    ks = retrieval.check_ks(ks or settings.eval.ks)
    top_k = top_k or min(settings.eval.kb_top_k, settings.retrieval.max_top_k)
    if not 1 <= top_k <= settings.retrieval.max_top_k:
        raise InvalidInput(f"top_k must be between 1 and retrieval.max_top_k ({settings.retrieval.max_top_k}); got {top_k}")
    if qrels is None:
        qtext, qsrc = read_text(qrels_path or "", settings)
        qrels = retrieval.parse_qrels(qtext, qsrc.name)
    items = [q for q in _load_queries(queries, queries_path, settings) if q.id in qrels]
    if not items:
        raise InvalidInput("no query id appears in the qrels: the queries' ids must be the qrels' query ids")
    job = _maybe_job("eval_kb", "kb", dict(kb=kb, queries=queries, qrels=qrels, queries_path=queries_path,
                                           qrels_path=qrels_path, corpus_path=corpus_path, modes=modes, top_k=top_k,
                                           id_field=id_field, metrics=metrics, ks=ks, name=name),
                     len(items) * len(modes), background, settings, run_id)
    if job:
        return _pending(KbResult, "kb", job, len(items), settings, kb=kb)
    known = {d for docs in qrels.values() for d in docs}
    notes: list[str] = []
    if corpus_path:
        notes.append(_ingest_corpus(kb, corpus_path, settings, progress))
    searcher = Searcher(settings)
    searcher.store.require(kb)
    total = len(items) * len(modes)
    done = 0
    results: list[KbModeResult] = []
    per_mode_rows: dict[str, list[ItemRow]] = {}
    plots: list[dict[str, Any]] = []
    matched = set()
    for mode in modes:
        run: retrieval.Run = {}
        start = time.perf_counter()
        for q in items:
            res = searcher.search(kb, q.text, mode="hybrid" if mode == "rerank" else mode, top_k=top_k,
                                  rerank=mode == "rerank")
            docs: dict[str, float] = {}
            for hit in res.hits:
                key = _qrels_key(_doc_key(hit, id_field), known)
                matched.add(key in known)
                docs.setdefault(key, float(hit.score))  # a document's best chunk stands for it
            run[q.id] = docs or {"__no_hit__": 0.0}
            done += 1
            if progress is not None:
                progress(done, total, f"{mode}: query {len(run)}/{len(items)}")
        seconds = (time.perf_counter() - start) / len(items)
        sub_qrels = {q.id: qrels[q.id] for q in items}
        scores, rows, sep, mode_notes = _score_run(run, sub_qrels, metrics, ks)
        record = _save(settings, "retrieval", rows, metric_names=list(scores.metrics),
                       config={"kb": kb, "mode": mode, "top_k": top_k, "id_field": id_field, "ks": ks},
                       inputs={"qrels": sub_qrels, "queries": [q.model_dump() for q in items]},
                       model=settings.models.embedder, primary=_primary(settings, scores.metrics),
                       name=f"{name or kb} [{mode}]", notes=mode_notes,
                       figures={"plots": _retrieval_figures(scores, sep, ks, f"{mode}: ")},
                       files={"run.trec": _trec_text(run, f"quiver-{mode}")})
        results.append(KbModeResult(mode=mode, run_id=record.id, metrics=record.metrics, intervals=record.intervals,
                                    separation=_separation(sep, 10), seconds_per_query=round(seconds, 4)))
        per_mode_rows[mode] = rows
        plots.append({"type": "hist", "title": f"{mode}: scores of relevant vs non-relevant hits (top 10)",
                      "series": {"relevant": sep.relevant, "non-relevant": sep.non_relevant}, "vline": sep.threshold,
                      "xlabel": "score"})
    primary = _primary(settings, results[0].metrics)
    notes += [] if any(matched) else [
        f"no hit's {id_field} matched a qrels document id: every score is 0; set id_field (source, doc_id, title, "
        "metadata.KEY) to the field that holds the qrels ids"]
    side = [ItemRow(id=q.id, scores={f"{m}|{mode}": r.scores[m] for mode, rs in per_mode_rows.items()
                                     for r in rs if r.id == q.id for m in (primary,) if m in r.scores}) for q in items]
    shown_metrics = [m for m in results[0].metrics if m.split("@")[0] in ("ndcg", "recall", "mrr", "map")][:8]
    grouped = {"type": "grouped", "title": "modes side by side (mean, bootstrap CI)", "groups": shown_metrics,
               "series": {r.mode: [r.metrics[m] for m in shown_metrics] for r in results},
               "lo": {r.mode: [r.intervals[m][0] for m in shown_metrics] for r in results},
               "hi": {r.mode: [r.intervals[m][1] for m in shown_metrics] for r in results}}
    table = {"headers": ["mode", "run", *shown_metrics, "threshold", "s/query"],
             "rows": [[r.mode, r.run_id, *[round(r.metrics[m], 4) for m in shown_metrics],
                       r.separation.threshold if r.separation.threshold is not None else "—", r.seconds_per_query]
                      for r in results]}
    best = max(results, key=lambda r: r.metrics[primary]).mode
    summary = _save(settings, "kb", side, run_id=run_id, config={"kb": kb, "modes": modes, "top_k": top_k, "id_field": id_field},
                    inputs={"qrels": qrels, "queries": [q.model_dump() for q in items]}, model=settings.models.embedder,
                    primary=f"{primary}|{best}", name=name or kb, notes=notes,
                    figures={"plots": [grouped, *plots], "tables": {"modes": table}})
    return KbResult(run_id=summary.id, kb=kb, queries=len(items), modes=results, best_mode=best, primary=primary,
                    notes=notes, report_uri=summary.report_uri, report_path=summary.report_path)


def _ingest_corpus(kb: str, corpus_path: str, settings: Settings, progress: Progress | None) -> str:
    """Ingest a BEIR corpus.jsonl (``_id``, ``title``, ``text``) into ``kb`` with ``source = _id``."""
    from servers.eval.inputs import records
    from servers.retrieval.ingest import ingest
    from servers.retrieval.manage import create_kb

    raw, resolved = read_text(corpus_path, settings)
    docs = []
    for i, record in enumerate(records(raw, resolved.name), 1):
        doc_id, body = record.get("_id", record.get("id")), record.get("text")
        if doc_id is None or not isinstance(body, str) or not body.strip():
            raise InvalidInput(f"{resolved.name} item {i}: a corpus document needs '_id' and a non-empty 'text'")
        title = str(record.get("title") or "")
        docs.append({"text": f"# {title}\n\n{body}" if title else body, "source": str(doc_id)})
    create_kb(settings, kb, exist_ok=True)
    done = ingest(settings, kb, texts=docs, progress=(lambda d, t, m: progress(d, t, f"ingest: {m}")) if progress else None)
    return (f"corpus {resolved.name}: {done.added} document(s) added, {done.unchanged} unchanged, "
            f"{done.replaced} replaced, {done.failed} failed")


# ---------------------------------------------------------------- comparison


def eval_compare(
    a: Annotated[str | None, Field(description="baseline run id")] = None,
    b: Annotated[str | None, Field(description="candidate run id")] = None,
    metric: Annotated[str | None, Field(description="per-item metric to compare (default: A's primary)")] = None,
    scores_a: Annotated[dict[str, float] | None, Field(description="{item: score} of system A")] = None,
    scores_b: Annotated[dict[str, float] | None, Field(description="{item: score} of system B")] = None,
    tolerance: Annotated[float, Field(description="a drop up to this much never fails the gate", ge=0)] = 0.0,
    alpha: Annotated[float | None, Field(description="significance level (default from config)", gt=0, lt=1)] = None,
    name: Name = None,
    *,
    settings: Settings,
) -> CompareResult:
    """Is B better or worse than A? Two saved runs (by id) or two ``{item: score}`` maps."""
    cfg = settings.eval
    alpha = cfg.alpha if alpha is None else alpha
    runs = store(settings)
    if (a is None) != (b is None) or (scores_a is None) != (scores_b is None) or (a is None) == (scores_a is None):
        raise InvalidInput("give either two run ids (a, b) or two score maps (scores_a, scores_b)")
    higher = True
    if a is not None and b is not None:
        rec_a, rec_b = runs.get(a), runs.get(b)
        metric = metric or rec_a.primary
        if not metric or metric not in rec_a.metrics or metric not in rec_b.metrics:
            both = sorted(set(rec_a.metrics) & set(rec_b.metrics))
            raise InvalidInput(f"metric {metric!r} is not in both runs; they share: {', '.join(both) or 'nothing'}")
        higher = rec_a.higher_is_better.get(metric, True)
        map_a = {r.id: r.scores[metric] for r in runs.rows(a) if metric in r.scores}
        map_b = {r.id: r.scores[metric] for r in runs.rows(b) if metric in r.scores}
        label_a, label_b = a, b
    else:
        map_a, map_b = dict(scores_a or {}), dict(scores_b or {})
        metric = metric or "score"
        label_a, label_b = name or "A", "B"
        higher = _higher_is_better(metric)
    shared = [k for k in map_a if k in map_b]
    if not shared:
        raise InvalidInput("the two sides share no scored item id: compare runs over the same items")
    x, y = [map_a[k] for k in shared], [map_b[k] for k in shared]
    delta, lo, hi = significance.paired_bootstrap(x, y, samples=cfg.bootstrap_samples, confidence=cfg.confidence,
                                                   seed=cfg.seed)
    p = significance.permutation_p_value(x, y, samples=cfg.permutation_samples, seed=cfg.seed)
    mc = significance.mcnemar(x, y) if significance.is_binary(x) and significance.is_binary(y) else None
    gate = significance.regression_gate(delta, (lo, hi), p, alpha=alpha, tolerance=tolerance, higher_is_better=higher)
    rows = [ItemRow(id=k, scores={"a": map_a[k], "b": map_b[k], "delta": map_b[k] - map_a[k]}) for k in shared]
    dropped = len(set(map_a) ^ set(map_b))
    extra = {"mean_delta": delta, "p_value": p}
    record = _save(settings, "compare", rows, metric_names=["a", "b", "delta"], extra_metrics=extra,
                   config={"a": label_a, "b": label_b, "metric": metric, "alpha": alpha, "tolerance": tolerance,
                           "bootstrap_samples": cfg.bootstrap_samples, "permutation_samples": cfg.permutation_samples,
                           "seed": cfg.seed},
                   inputs={"a": map_a, "b": map_b}, primary="delta", name=name,
                   notes=[f"gate {gate.verdict}: {gate.reason}"] + ([f"{dropped} item(s) scored in only one run were "
                                                                      "left out"] if dropped else []),
                   figures={"plots": [{"type": "hist", "title": f"per-item {metric}: B - A", "series": {"delta": [
                       r.scores["delta"] for r in rows]}, "vline": 0.0, "xlabel": "delta"}],
                       "tables": {"test": {"headers": ["metric", "mean A", "mean B", "delta", "CI", "p", "gate"],
                                           "rows": [[metric, float(np.mean(x)), float(np.mean(y)), delta,
                                                     f"[{lo:+.4f}, {hi:+.4f}]", p, gate.verdict]]}}})
    return CompareResult(run_id=record.id, metric=metric, a=label_a, b=label_b, n=len(shared), mean_a=float(np.mean(x)),
                         mean_b=float(np.mean(y)), delta=delta, ci=[lo, hi], confidence=cfg.confidence, p_value=p,
                         mcnemar_p_value=mc.p_value if mc else None, only_a=mc.only_a if mc else None,
                         only_b=mc.only_b if mc else None, gate=gate.verdict, gate_reason=gate.reason, dropped=dropped,
                         report_uri=record.report_uri, report_path=record.report_path)


# ---------------------------------------------------------------- RAG


def _encoder(settings: Settings) -> Callable[[list[str]], np.ndarray]:
    from servers.core.models import embed

    return lambda texts: embed(texts, settings)


def _judge_model(settings: Settings, model: str | None, generator: Any = None) -> judge.JudgeModel:
    from servers.core.generate import get_generator
    from servers.eval import judge

    cfg = settings.eval
    if generator is None:
        if model:
            settings = settings.model_copy(deep=True)
            settings.models.causal_lm = model
        generator = get_generator(settings)
    return judge.JudgeModel(generator, reasoning_chars=cfg.judge_reasoning_chars, max_new_tokens=cfg.judge_max_new_tokens,
                            votes=1, temperature=cfg.judge_temperature, seed=cfg.seed)


def eval_rag(
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
    *,
    settings: Settings,
    run_id: str | None = None,
    progress: Progress | None = None,
    generator: Any = None,
) -> EvalResult:
    """Faithfulness, answer relevance and similarity, context precision and recall, citation support."""
    from servers.eval import rag

    items, source = load_items(samples, samples_path, RagSample, settings, what="samples", path_arg="samples_path")
    unknown = sorted(set(metrics or []) - set(rag.RAG_METRICS))
    if unknown:
        raise InvalidInput(f"unknown RAG metric(s) {unknown}: choose among {', '.join(rag.RAG_METRICS)}")
    if tier not in ("deterministic", "judge"):
        raise InvalidInput(f"tier must be deterministic or judge (got {tier!r})")
    threshold = settings.eval.support_threshold if threshold is None else threshold
    if not 0 <= threshold <= 1:
        raise InvalidInput(f"threshold must be between 0 and 1 (got {threshold})")
    job = _maybe_job("eval_rag", "rag", dict(samples=samples, samples_path=samples_path, tier=tier, metrics=metrics,
                                             threshold=threshold, model=model, name=name, rows=rows),
                     len(items) if tier == "judge" else len(items) // 20, background, settings, run_id)
    if job:
        return _pending(EvalResult, "rag", job, len(items), settings)
    jm = _judge_model(settings, model, generator) if tier == "judge" else None
    item_rows = rag.evaluate(items, _encoder(settings), tier=tier, threshold=threshold, metrics=metrics,
                             judge=rag.Judge(jm) if jm else None, progress=progress)
    notes = [f"tier {tier}: " + ("lexical + embedding support (MiniLM), threshold " f"{threshold}" if tier ==
                                 "deterministic" else f"judge {jm.generator.name if jm else '?'}, constrained JSON; "
                                 "answer relevance and similarity are embedding cosines")]
    if jm and jm.invalid:
        notes.append(f"{jm.invalid} judge repl(ies) were unusable: {jm.errors[0] if jm.errors else ''}")
    flagged = sum(1 for r in item_rows for c in r.detail.get("claims", []) if c.get("flags"))
    if flagged:
        notes.append(f"{flagged} claim(s) state a number found in no context")
    claims_table = {"headers": ["item", "claim", "supported", "score", "evidence", "flags"],
                    "rows": [[r.id, c["claim"][:200], c["supported"], c.get("score", "—"),
                              (c.get("evidence") or {}).get("text", "")[:200], "; ".join(c.get("flags", []))]
                             for r in item_rows[: settings.eval.report_rows] for c in r.detail.get("claims", [])]}
    record = _save(settings, "rag", item_rows, run_id=run_id, config={"tier": tier, "threshold": threshold, "metrics": metrics,
                                                       "source": source},
                   inputs={"samples": [s.model_dump() for s in items]}, primary="faithfulness", name=name,
                   model=(jm.generator.name if jm else settings.models.embedder), notes=notes,
                   figures={"tables": {"claims and evidence": claims_table}})
    return _result(record, item_rows, _rows_shown(rows, settings))


# ---------------------------------------------------------------- text2sql


def eval_text2sql(
    items: Annotated[list[SqlItem] | None, Field(description="[{database, question, gold, predicted}]")] = None,
    items_path: ItemsPath = None,
    databases: Annotated[dict[str, str] | None, Field(description="extra databases {name: SQLite path or URL}")] = None,
    source: Annotated[Literal["file", "gold", "pipeline"], Field(description="where predictions come from")] = "file",
    timeout_s: Annotated[float | None, Field(description="per-query time limit", gt=0)] = None,
    name: Name = None,
    rows: Rows = None,
    background: Background = None,
    *,
    settings: Settings,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Execution accuracy of predicted SQL (from the items, the gold itself, or the text2sql pipeline)."""
    from servers.text2sql.catalog import Catalog
    from servers.text2sql.database import Database

    rename = {"db_name": "database", "query": "gold", "predicted_sql": "predicted", "prediction": "predicted",
              "sql": "predicted"}
    loaded, where = load_items(items, items_path, SqlItem, settings, what="questions", path_arg="items_path",
                               rename=rename)
    if source not in ("file", "gold", "pipeline"):
        raise InvalidInput(f"source must be file, gold or pipeline (got {source!r})")
    if source == "file" and all(not i.predicted for i in loaded):
        raise InvalidInput("no item has a prediction ('predicted' / 'predicted_sql' column): add them, or use "
                           "source='gold' (checks the harness and the gold SQL) or source='pipeline' (generates SQL)")
    job = _maybe_job("eval_text2sql", "text2sql", dict(items=items, items_path=items_path, databases=databases,
                                                       source=source, timeout_s=timeout_s, name=name, rows=rows),
                     len(loaded) if source == "pipeline" else len(loaded) // 100, background, settings, run_id)
    if job:
        return _pending(EvalResult, "text2sql", job, len(loaded), settings)
    extra = {}
    for db_name, target in (databases or {}).items():
        extra[db_name] = target if "://" in target else str(resolve(target, settings))  # a file: under the roots
    cfg = settings.model_copy(deep=True)
    cfg.text2sql.databases = {**settings.text2sql.databases, **extra}
    catalog = Catalog(cfg)
    timeout = timeout_s or settings.text2sql.timeout_s
    pipeline = None
    model = None
    if source == "pipeline":
        from servers.text2sql.pipeline import PipelineOptions, TextToSql

        pipeline = TextToSql(cfg)
        model = pipeline.generator.name
        t2s = cfg.text2sql
        options = PipelineOptions(candidates=t2s.candidates, repair_rounds=t2s.repair_rounds, execute=True,
                                  max_rows=t2s.max_rows, timeout_s=timeout, max_new_tokens=t2s.max_new_tokens,
                                  temperature=t2s.sample_temperature, examples_k=t2s.examples_k)

    def predict(item: SqlItem, db: Database) -> str | None:
        if source == "gold":
            return text2sql.split_gold(item.gold)[0] if text2sql.split_gold(item.gold) else None
        if pipeline is not None:
            return pipeline.answer(item.question, db, None, options).sql
        return item.predicted

    item_rows = text2sql.evaluate(loaded, catalog.get, predict, timeout_s=timeout, progress=progress)
    counts = text2sql.taxonomy(item_rows)
    record = _save(settings, "text2sql", item_rows, run_id=run_id, metric_names=["execution_accuracy", "valid_sql"],
                   config={"source": source, "timeout_s": timeout, "databases": sorted({i.database for i in loaded}),
                           "items": where},
                   inputs={"items": [i.model_dump() for i in loaded]}, primary="execution_accuracy", name=name,
                   model=model if source == "pipeline" else source,
                   figures={"plots": [_bars("error taxonomy", {k: float(v) for k, v in counts.items()}, "items")],
                            "tables": {"error taxonomy": {"headers": ["type", "items"], "rows": list(counts.items())}}},
                   notes=[f"errors: {', '.join(f'{k} {v}' for k, v in counts.items() if v) or 'none'}"])
    return _result(record, item_rows, _rows_shown(rows, settings))


# ---------------------------------------------------------------- language models


def _lm(settings: Settings, model: str | None) -> Any:
    from servers.core.models import causal_lm

    return causal_lm(model or settings.models.causal_lm, settings)


def eval_perplexity(
    texts: Annotated[list[str] | None, Field(description="the texts")] = None,
    texts_path: Annotated[str | None, Field(description="a text file, or JSONL with a 'text' field")] = None,
    model: Model = None,
    window: Annotated[int | None, Field(description="window in tokens (default: model context, <= 1024)", ge=2)] = None,
    stride: Annotated[int | None, Field(description="window step in tokens", ge=1)] = None,
    name: Name = None,
    rows: Rows = None,
    background: Background = None,
    *,
    settings: Settings,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Perplexity and bits per byte of texts under a causal LM (sliding window)."""
    from servers.eval import lm

    one_of(texts, texts_path, "texts", "texts_path")
    if texts is None:
        raw, resolved = read_text(texts_path or "", settings)
        if resolved.suffix.lower() in (".jsonl", ".json"):
            from servers.eval.inputs import records

            texts = [str(r.get("text", "")) for r in records(raw, resolved.name)]
        else:
            texts = [raw]
    if not texts:
        raise InvalidInput("the texts list is empty: give at least one text")
    job = _maybe_job("eval_perplexity", "perplexity", dict(texts=texts, model=model, window=window, stride=stride,
                                                           name=name, rows=rows),
                     len(texts) // 5, background, settings, run_id)
    if job:
        return _pending(EvalResult, "perplexity", job, len(texts), settings)
    loaded = _lm(settings, model)
    win, step = lm.resolve_window(loaded, window or settings.eval.lm_window, stride or settings.eval.lm_stride)
    item_rows = lm.perplexity(loaded, texts, window=win, stride=min(step, win), progress=progress)
    corpus = lm.corpus_perplexity(item_rows)
    record = _save(settings, "perplexity", item_rows, run_id=run_id, metric_names=["perplexity", "bits_per_byte", "nll"],
                   extra_metrics=corpus, config={"window": win, "stride": step, "model": loaded.name},
                   inputs={"texts": texts}, model=loaded.name, primary="corpus_perplexity", name=name,
                   figures={"plots": [_bars("perplexity per text", {r.id: r.scores["perplexity"] for r in item_rows[:40]
                                                                    if "perplexity" in r.scores})]})
    return _result(record, item_rows, _rows_shown(rows, settings))


def eval_choice(
    items: Annotated[list[ChoiceItem] | None, Field(description="the questions")] = None,
    items_path: ItemsPath = None,
    model: Model = None,
    formats: Annotated[list[str] | None, Field(description="prompt formats containing {question}")] = None,
    name: Name = None,
    rows: Rows = None,
    background: Background = None,
    *,
    settings: Settings,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Multiple-choice accuracy from option log-likelihoods (acc, acc_norm, letter scoring) over prompt formats."""
    from servers.eval import lm

    loaded_items, where = load_items(items, items_path, ChoiceItem, settings, what="items", path_arg="items_path",
                                     rename={"options": "choices", "label": "answer", "gold": "answer"})
    formats = list(formats or lm.FORMATS)
    if any("{question}" not in f for f in formats):
        raise InvalidInput("every prompt format must contain '{question}', e.g. 'Question: {question}\\nAnswer:'")
    job = _maybe_job("eval_choice", "choice", dict(items=items, items_path=items_path, model=model, formats=formats,
                                                   name=name, rows=rows),
                     len(loaded_items) * len(formats) // 5, background, settings, run_id)
    if job:
        return _pending(EvalResult, "choice", job, len(loaded_items), settings)
    loaded = _lm(settings, model)
    win, _ = lm.resolve_window(loaded, settings.eval.lm_window, 1)
    item_rows = lm.multiple_choice(loaded, loaded_items, formats=formats, window=win, progress=progress)
    names = ["acc", "acc_norm", "acc_letter"] + [f"{m}|f{f}" for f in range(1, len(formats) + 1) for m in ("acc", "acc_norm")]
    metrics, _, _ = summarize(item_rows, names)
    spread = lm.format_spread(metrics, len(formats))
    per_format = {"headers": ["format", "acc", "acc_norm"],
                  "rows": [[f"f{i}: {fmt!r}", metrics.get(f"acc|f{i}", "—"), metrics.get(f"acc_norm|f{i}", "—")]
                           for i, fmt in enumerate(formats, 1)]}
    record = _save(settings, "choice", item_rows, run_id=run_id, metric_names=names, extra_metrics=spread,
                   config={"formats": formats, "letter_format": lm.LETTER_FORMAT, "window": win, "items": where},
                   inputs={"items": [i.model_dump() for i in loaded_items]}, model=loaded.name, primary="acc", name=name,
                   figures={"tables": {"prompt formats": per_format},
                            "plots": [_bars("accuracy by prompt format", {f"acc f{i}": metrics.get(f"acc|f{i}", 0.0)
                                                                           for i in range(1, len(formats) + 1)})]},
                   notes=[f"accuracy spread across {len(formats)} prompt formats: {spread.get('acc_spread', 0.0):.3f}"])
    return _result(record, item_rows, _rows_shown(rows, settings))


def eval_answers(
    items: Annotated[list[AnswerItem] | None, Field(description="the questions and accepted answers")] = None,
    items_path: ItemsPath = None,
    extract: Annotated[Literal["auto", "number", "letter", "first_line", "full"],
                           Field(description="how to extract the answer from the output")] = "auto",
    max_new_tokens: Annotated[int | None, Field(description="tokens per answer", ge=1, le=4096)] = None,
    model: Model = None,
    name: Name = None,
    rows: Rows = None,
    background: Background = None,
    *,
    settings: Settings,
    run_id: str | None = None,
    progress: Progress | None = None,
    generator: Any = None,
) -> EvalResult:
    """Closed questions: the generator answers, the answer is extracted and compared to the accepted ones."""
    from servers.eval import lm

    loaded_items, where = load_items(items, items_path, AnswerItem, settings, what="items", path_arg="items_path")
    job = _maybe_job("eval_answers", "answers", dict(items=items, items_path=items_path, extract=extract,
                                                     max_new_tokens=max_new_tokens, model=model, name=name, rows=rows),
                     len(loaded_items), background, settings, run_id)
    if job:
        return _pending(EvalResult, "answers", job, len(loaded_items), settings)
    gen = _judge_model(settings, model, generator).generator
    tokens = max_new_tokens or settings.eval.answer_max_new_tokens
    item_rows = lm.closed_answers(gen, loaded_items, extract=extract, max_new_tokens=tokens, progress=progress)
    record = _save(settings, "answers", item_rows, run_id=run_id, config={"extract": extract, "max_new_tokens": tokens, "items": where},
                   inputs={"items": [i.model_dump() for i in loaded_items]}, model=gen.name, primary="exact_match",
                   name=name)
    return _result(record, item_rows, _rows_shown(rows, settings))


# ---------------------------------------------------------------- judge


def _judge_result(settings: Settings, mode: str, item_rows: list[ItemRow], jm: judge.JudgeModel, *, run_id: str | None,
                  primary: str,
                  inputs: dict[str, Any], name: str | None, rows: int | None, labels: list[tuple[str, str]] | None,
                  ranking: list[dict[str, Any]] | None = None, extra_config: dict[str, Any] | None = None) -> JudgeResult:
    from servers.eval import judge

    rel = judge.reliability(item_rows, jm, labels=labels)
    plots = []
    if ranking:
        plots.append(_bars("Bradley–Terry strength", {r["system"]: r["strength"] for r in ranking}))
    verdicts = [r.detail.get("verdict") for r in item_rows if r.detail.get("verdict")]
    if verdicts:
        plots.append(_bars("verdicts", {v: float(verdicts.count(v)) for v in ("A", "B", "tie")}, "items"))
    record = _save(settings, "judge", item_rows, run_id=run_id, config={"mode": mode, "votes": jm.votes, "reasoning_chars":
                                                         jm.reasoning_chars, **(extra_config or {})},
                   inputs=inputs, model=jm.generator.name, primary=primary, name=name, notes=rel.flags,
                   figures={"plots": plots, "reliability": rel.model_dump(),
                            **({"tables": {"ranking": {"headers": list(ranking[0]),
                                                       "rows": [list(r.values()) for r in ranking]}}} if ranking else {})})
    return _result(record, item_rows, _rows_shown(rows, settings), JudgeResult, mode=mode, reliability=rel,
                   ranking=ranking or [])


def _judge_with_votes(settings: Settings, model: str | None, votes: int | None, reasoning_chars: int | None,
                      generator: Any) -> judge.JudgeModel:

    jm = _judge_model(settings, model, generator)
    jm.votes = votes or settings.eval.judge_votes
    if reasoning_chars is not None:
        if not 0 <= reasoning_chars <= 4000:
            raise InvalidInput(f"reasoning_chars must be between 0 and 4000 (got {reasoning_chars})")
        jm.reasoning_chars = reasoning_chars
    if not 1 <= jm.votes <= 16:
        raise InvalidInput(f"votes must be between 1 and 16 (got {jm.votes})")
    return jm


def eval_judge_pairwise(
    items: Annotated[list[PairItem] | None, Field(description="[{prompt, a, b, reference?, label?}]")] = None,
    items_path: ItemsPath = None,
    votes: Votes = None,
    reasoning_chars: Reasoning = None,
    model: Model = None,
    name: Name = None,
    rows: Rows = None,
    background: Background = None,
    *,
    settings: Settings,
    run_id: str | None = None,
    progress: Progress | None = None,
    generator: Any = None,
) -> JudgeResult:
    """Which of two answers is better, judged in both orders (a disagreement is a tie)."""
    from servers.eval import judge

    loaded, _ = load_items(items, items_path, PairItem, settings, what="items", path_arg="items_path")
    job = _maybe_job("eval_judge_pairwise", "judge", dict(items=items, items_path=items_path, votes=votes,
                                                          reasoning_chars=reasoning_chars, model=model, name=name,
                                                          rows=rows), len(loaded) * (votes or 1), background, settings,
                     run_id)
    if job:
        return _pending(JudgeResult, "judge", job, len(loaded), settings, mode='pairwise',
                        reliability=JudgeReliability(judged=0, invalid=0))
    jm = _judge_with_votes(settings, model, votes, reasoning_chars, generator)
    item_rows = judge.pairwise(jm, loaded, progress)
    labels = [(str(r.detail["verdict"]), str(r.detail["label"])) for r in item_rows
              if r.detail.get("verdict") and r.detail.get("label")]
    return _judge_result(settings, "pairwise", item_rows, jm, run_id=run_id, primary="b_win", name=name, rows=rows, labels=labels,
                         inputs={"items": [i.model_dump() for i in loaded]})


def eval_judge_score(
    items: Annotated[list[ScoreItem] | None, Field(description="[{prompt, answer, reference?, label?}]")] = None,
    items_path: ItemsPath = None,
    votes: Votes = None,
    pass_score: Annotated[int | None, Field(description="score from which an answer passes", ge=1, le=10)] = None,
    reasoning_chars: Reasoning = None,
    model: Model = None,
    name: Name = None,
    rows: Rows = None,
    background: Background = None,
    *,
    settings: Settings,
    run_id: str | None = None,
    progress: Progress | None = None,
    generator: Any = None,
) -> JudgeResult:
    """Score answers 1-10 with reasoning first; an answer passes from ``pass_score``."""
    from servers.eval import judge

    loaded, _ = load_items(items, items_path, ScoreItem, settings, what="items", path_arg="items_path")
    threshold = pass_score or settings.eval.judge_pass_score
    if not 1 <= threshold <= 10:
        raise InvalidInput(f"pass_score must be between 1 and 10 (got {threshold})")
    job = _maybe_job("eval_judge_score", "judge", dict(items=items, items_path=items_path, votes=votes,
                                                       pass_score=pass_score, reasoning_chars=reasoning_chars,
                                                       model=model, name=name, rows=rows),
                     len(loaded) * (votes or 1), background, settings, run_id)
    if job:
        return _pending(JudgeResult, "judge", job, len(loaded), settings, mode='score',
                        reliability=JudgeReliability(judged=0, invalid=0))
    jm = _judge_with_votes(settings, model, votes, reasoning_chars, generator)
    item_rows = judge.scored(jm, loaded, threshold, progress)
    labels = [(str(r.scores["passed"] == 1.0), str(item.label)) for r, item in zip(item_rows, loaded, strict=True)
              if item.label is not None and "passed" in r.scores]
    return _judge_result(settings, "score", item_rows, jm, run_id=run_id, primary="passed", name=name, rows=rows, labels=labels,
                         inputs={"items": [i.model_dump() for i in loaded]}, extra_config={"pass_score": threshold})


def eval_judge_rank(
    items: Annotated[list[RankItem] | None, Field(description="[{prompt, outputs: {system: answer}}]")] = None,
    items_path: ItemsPath = None,
    votes: Votes = None,
    reasoning_chars: Reasoning = None,
    model: Model = None,
    name: Name = None,
    rows: Rows = None,
    background: Background = None,
    *,
    settings: Settings,
    run_id: str | None = None,
    progress: Progress | None = None,
    generator: Any = None,
) -> JudgeResult:
    """Rank N systems from pairwise judgements of their outputs (Bradley–Terry)."""
    from servers.eval import judge

    loaded, _ = load_items(items, items_path, RankItem, settings, what="items", path_arg="items_path")
    pairs = sum(len(i.outputs) * (len(i.outputs) - 1) // 2 for i in loaded)
    job = _maybe_job("eval_judge_rank", "judge", dict(items=items, items_path=items_path, votes=votes,
                                                      reasoning_chars=reasoning_chars, model=model, name=name,
                                                      rows=rows), pairs * (votes or 1), background, settings, run_id)
    if job:
        return _pending(JudgeResult, "judge", job, len(loaded), settings, mode='rank',
                        reliability=JudgeReliability(judged=0, invalid=0))
    jm = _judge_with_votes(settings, model, votes, reasoning_chars, generator)
    item_rows, ranking = judge.rank(jm, loaded, progress)
    return _judge_result(settings, "rank", item_rows, jm, run_id=run_id, primary="consistent", name=name, rows=rows, labels=None,
                         ranking=ranking, inputs={"items": [i.model_dump() for i in loaded]})


# ---------------------------------------------------------------- text, tool calls, latency


def eval_text(
    items: Annotated[list[TextItem] | None, Field(description="[{prediction, references, keywords?}]")] = None,
    items_path: ItemsPath = None,
    cjk: Annotated[Literal["auto", "jieba", "chars"], Field(description="how to cut CJK text")] = "auto",
    name: Name = None,
    rows: Rows = None,
    *,
    settings: Settings,
) -> EvalResult:
    """ROUGE-L, BLEU, keyword overlap, distinct-n and repetition of predictions, for any script."""
    loaded, where = load_items(items, items_path, TextItem, settings, what="items", path_arg="items_path",
                               rename={"reference": "references", "output": "prediction"})
    item_rows, corpus = text.evaluate_texts(loaded, cjk=cjk)
    record = _save(settings, "text", item_rows, extra_metrics=corpus, config={"cjk": cjk, "items": where},
                   inputs={"items": [i.model_dump() for i in loaded]}, primary="rouge_l", name=name)
    return _result(record, item_rows, _rows_shown(rows, settings))


def eval_tool_calls(
    items: Annotated[list[ToolCallItem] | None, Field(description="[{functions, calls, expected, irrelevance?}]")] = None,
    items_path: ItemsPath = None,
    name: Name = None,
    rows: Rows = None,
    *,
    settings: Settings,
) -> EvalResult:
    """BFCL-style AST accuracy and valid-call rate of recorded tool calls."""
    from servers.eval import agents

    loaded, where = load_items(items, items_path, ToolCallItem, settings, what="items", path_arg="items_path",
                               rename={"function": "functions", "ground_truth": "expected"})
    item_rows = agents.score_tool_calls(loaded)
    record = _save(settings, "tool_calls", item_rows, config={"items": where},
                   inputs={"items": [i.model_dump() for i in loaded]}, primary="ast_accuracy", name=name)
    return _result(record, item_rows, _rows_shown(rows, settings))


def eval_latency(
    transcripts_path: Annotated[str | None, Field(description="a transcript .jsonl file or a folder of them")] = None,
    probe_requests: Annotated[int, Field(description="live requests to time (0: none)", ge=0, le=100)] = 0,
    prompt: Annotated[str, Field(description="the probe's prompt", min_length=1)] = "Write one sentence about the sea.",
    max_new_tokens: Annotated[int, Field(description="tokens per probe request", ge=2, le=4096)] = 32,
    model: Model = None,
    name: Name = None,
    rows: Rows = None,
    *,
    settings: Settings,
    progress: Progress | None = None,
    generator: Any = None,
) -> EvalResult:
    """Latency percentiles, QPS, TTFT and time per output token from host transcripts or a live probe."""
    from servers.eval import agents

    if not transcripts_path and probe_requests <= 0:
        raise InvalidInput("give transcripts_path (a host transcript .jsonl file or folder) and/or probe_requests >= 1")
    if probe_requests > 100 or max_new_tokens < 2:
        raise InvalidInput("probe_requests must be at most 100 and max_new_tokens at least 2")
    item_rows: list[ItemRow] = []
    source = []
    if transcripts_path:
        base = resolve_under_roots(transcripts_path, settings.root_paths())
        files = sorted(base.glob("*.jsonl")) if base.is_dir() else [base]
        if not files:
            raise NotFound(f"no transcript .jsonl file in {transcripts_path}")
        item_rows += agents.transcript_rows(files)
        source.append(f"{len(files)} transcript file(s)")
    model_name = None
    if probe_requests:
        gen = _judge_model(settings, model, generator).generator
        model_name = gen.name
        item_rows += agents.probe_rows(gen, prompt=prompt, requests=probe_requests, max_new_tokens=max_new_tokens,
                                       progress=progress)
        source.append(f"{probe_requests} probe request(s) to {gen.name}")
    if not item_rows:
        raise InvalidInput("the transcripts hold no run")
    summary = agents.latency_summary(item_rows)
    record = _save(settings, "latency", item_rows, extra_metrics=summary,
                   config={"transcripts_path": transcripts_path, "probe_requests": probe_requests,
                           "max_new_tokens": max_new_tokens, "prompt": prompt},
                   inputs={"rows": [r.model_dump() for r in item_rows]}, primary="latency_s_p50", name=name,
                   model=model_name, notes=source,
                   figures={"plots": [{"type": "hist", "title": "latency per request (s)", "series": {
                       "latency_s": [r.scores["latency_s"] for r in item_rows if "latency_s" in r.scores]},
                       "xlabel": "seconds"}]})
    return _result(record, item_rows, _rows_shown(rows, settings))


# ---------------------------------------------------------------- jobs

JOB_ENTRY = "servers.eval.job"
JOB_KIND = "eval"


def jobs(settings: Settings, *, monitor: bool = True) -> JobStore:
    """Evaluation jobs under DATA_DIR/eval/jobs (their own queue: a long training never blocks them)."""
    return job_store(settings.data_path / "eval" / "jobs", max_running=settings.eval.max_jobs, monitor=monitor)


def _maybe_job(tool: str, kind: Kind, arguments: dict[str, Any], cost: int, background: bool | None,
               settings: Settings, run_id: str | None) -> tuple[str, str] | None:
    """Submit the call as a job when asked to, or when ``cost`` (model-scored items) exceeds ``eval.inline_items``;
    returns (job id, the run id the job will save) or None to run inline."""
    if run_id is not None or background is False or (background is None and cost <= settings.eval.inline_items):
        return None
    run_id = store(settings).new_id(kind)
    config = {"tool": tool, "arguments": to_jsonable_python(arguments), "run_id": run_id,
              "settings": settings.model_dump(mode="json", exclude={"http"})}
    record = jobs(settings).submit(JOB_KIND, JOB_ENTRY, config, label=f"{tool} -> {run_id}")
    return record.job_id, run_id


def _pending(cls: type[Any], kind: Kind, job: tuple[str, str], n_items: int, settings: Settings, **extra: Any) -> Any:
    """The result a job-backed call returns at once: where its run will be, and the job to poll."""
    job_id, run_id = job
    state = str(jobs(settings, monitor=False).get(job_id, refresh=False).state)
    path = str(store(settings).root / run_id / "report.html")
    note = f"running as job {job_id}: follow it with eval_job_status (wait_s to block); the run {run_id} appears when done"
    if cls is KbResult:
        return KbResult(run_id=run_id, kb=extra["kb"], queries=n_items, modes=[], best_mode="", primary="", notes=[note],
                        report_uri=report_uri(run_id), report_path=path, job_id=job_id, state=state)
    return cls(run_id=run_id, kind=kind, metrics={}, n_items=n_items, n_unscorable=0, rows=[], rows_total=0,
               notes=[note], report_uri=report_uri(run_id), report_path=path, job_id=job_id, state=state, **extra)


def _job_status(record: JobRecord, settings: Settings, timed_out: bool = False) -> JobStatus:
    progress = jobs(settings, monitor=False).progress(record.job_id) or {}
    failed = record.state in (JobState.failed, JobState.orphaned)
    return JobStatus(
        job_id=record.job_id, state=str(record.state), tool=str(record.config.get("tool", "?")),
        run_id=str(record.config.get("run_id", "")), label=record.label, step=progress.get("step"),
        total=progress.get("total"), message=progress.get("message"), created_at=record.created_at,
        started_at=record.started_at, ended_at=record.ended_at, error=record.error,
        log_tail=jobs(settings, monitor=False).log_tail(record.job_id, 20) if failed else None,
        result=record.result, timed_out=timed_out,
    )


def _eval_job(job_id: str, settings: Settings) -> JobRecord:
    store_ = jobs(settings)
    if job_id == "latest":
        newest = store_.list(kind=JOB_KIND, limit=1)
        if not newest:
            raise NotFound("no evaluation job has been started yet")
        return newest[0]
    record = store_.get(job_id)
    if record.kind != JOB_KIND:
        raise NotFound(f"'{job_id}' is not an evaluation job (it is a {record.kind} job)")
    return record


def eval_job_status(
    job_id: Annotated[str, Field(description="the job id (or 'latest')")],
    wait_s: Annotated[float, Field(description="seconds to wait for it to finish (0: answer at once)", ge=0)] = 0.0,
    *,
    settings: Settings,
    progress: Progress | None = None,
) -> JobStatus:
    """An evaluation job's state and progress, and its result once completed; ``wait_s`` blocks up to that
    long (capped by ``eval.wait_cap_s``) while forwarding progress."""
    if wait_s < 0:
        raise InvalidInput(f"wait_s must be >= 0 (got {wait_s})")
    record = _eval_job(job_id, settings)
    if wait_s and not record.terminal:

        def on_progress(_record: JobRecord, info: dict[str, Any] | None) -> None:
            if progress is not None and info:
                progress(int(info.get("step") or 0), int(info.get("total") or 0), str(info.get("message") or ""))

        record = jobs(settings).wait(record.job_id, timeout_s=min(wait_s, settings.eval.wait_cap_s),
                                     on_progress=on_progress, poll_s=0.25)
        return _job_status(record, settings, timed_out=not record.terminal)
    return _job_status(record, settings)


def eval_cancel_job(
    job_id: Annotated[str, Field(description="the job id (or 'latest')")],
    *,
    settings: Settings,
) -> JobStatus:
    """Stop an evaluation job (a queued one at once, a running one at its next item); no run is saved."""
    record = _eval_job(job_id, settings)
    return _job_status(jobs(settings).cancel(record.job_id), settings)


def eval_list_jobs(
    state: Annotated[Literal["queued", "running", "completed", "failed", "cancelled", "orphaned"] | None,
                         Field(description="only jobs in this state")] = None,
    limit: Annotated[int, Field(description="jobs to return", ge=1, le=1000)] = 50,
    *,
    settings: Settings,
) -> JobList:
    """Evaluation jobs, newest first."""
    try:
        states = [JobState(state)] if state else None
    except ValueError as exc:
        raise InvalidInput(f"unknown state '{state}': use one of {', '.join(s.value for s in JobState)}") from exc
    store_ = jobs(settings)
    records = store_.list(kind=JOB_KIND, states=states, limit=limit)
    every = store_.list(kind=JOB_KIND, states=[JobState.running, JobState.queued], limit=1000)
    return JobList(jobs=[_job_status(r, settings) for r in records],
                   running=sum(r.state == JobState.running for r in every),
                   queued=sum(r.state == JobState.queued for r in every))


# ---------------------------------------------------------------- runs and reports


def eval_list_runs(
    kind: Annotated[str | None, Field(description="only runs of this kind (retrieval, kb, rag, judge, ...)")] = None,
    limit: Annotated[int, Field(description="runs to return", ge=1, le=1000)] = 50,
    offset: Annotated[int, Field(description="runs to skip", ge=0)] = 0,
    *,
    settings: Settings,
) -> RunList:
    """Saved runs, newest first."""
    if limit < 1 or offset < 0:
        raise InvalidInput("limit must be >= 1 and offset >= 0")
    runs = store(settings).list(kind)
    return RunList(runs=runs[offset : offset + limit], total=len(runs))


def eval_get_run(
    run_id: Annotated[str, Field(description="the run id")],
    offset: Annotated[int, Field(description="first row to return", ge=0)] = 0,
    rows: Rows = None,
    *,
    settings: Settings,
) -> RunDetail:
    """One saved run: its record (config, inputs' hashes, metrics, CIs) and a page of per-item rows."""
    if offset < 0:
        raise InvalidInput("offset must be >= 0")
    runs = store(settings)
    record = runs.get(run_id)
    all_rows = runs.rows(run_id)
    shown = _rows_shown(rows, settings)
    return RunDetail(run=record, rows=all_rows[offset : offset + shown], rows_total=len(all_rows), offset=offset)


def eval_report(
    run_id: Annotated[str, Field(description="the run id")],
    *,
    settings: Settings,
) -> ReportInfo:
    """Where a run's HTML report is (file path and MCP resource URI)."""
    path = store(settings).file(run_id, "report.html")
    real = path.parent.name  # 'latest' resolved
    return ReportInfo(run_id=real, report_uri=report_uri(real), report_path=str(path), bytes=path.stat().st_size)


def report_html(run_id: str, *, settings: Settings) -> str:
    """The report page itself (the MCP resource's content)."""
    return store(settings).file(run_id, "report.html").read_text(encoding="utf-8")


def reports_index(*, settings: Settings) -> str:
    """A small HTML page listing every run with its report URI."""
    import html

    items = "".join(f"<li><code>{html.escape(r.report_uri)}</code> {html.escape(r.kind)} {html.escape(r.name or '')} "
                    f"{html.escape(r.created)}</li>" for r in store(settings).list())
    return f"<!doctype html><html><body><h1>Quiver eval reports</h1><ul>{items}</ul></body></html>"
