"""`quiver eval ...`: the eval tools on the command line, with a progress bar; ``--json`` prints one
JSON object (the tool's result). Files named on the command line may be read wherever they are
(their folders are added to the allowed roots for this command)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from servers.core.settings import Settings

ALL_ROWS = 10**9


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help="TOML config file (default: configs/quiver.toml)")
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="override data_dir")
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    common.add_argument("--json", action="store_true", help="print the result as one JSON object")
    common.add_argument("--name", help="a label for the run")
    return common


def _ks(text: str) -> list[int]:
    try:
        return [int(k) for k in text.split(",") if k.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,5,10,100 (got {text!r})") from exc


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _pair(text: str) -> tuple[str, str]:
    name, sep, target = text.partition("=")
    if not sep or not name or not target:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH_OR_URL, got {text!r}")
    return name, target


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval`` and its subcommands to the ``quiver`` parser."""
    common = _common()
    ev = subparsers.add_parser("eval", parents=[common], help="evaluate retrieval, RAG, text2sql, models and judges")
    sub = ev.add_subparsers(dest="eval_command", required=True)

    p = sub.add_parser("retrieval", parents=[common], help="score a TREC run against qrels")
    p.add_argument("--qrels", required=True, help="BEIR qrels TSV or TREC qrels")
    p.add_argument("--run", required=True, help="TREC run file (qid Q0 docid rank score tag)")
    p.add_argument("--k", type=_ks, help="cutoffs, e.g. 1,5,10,100")
    p.add_argument("--metrics", type=_csv, help="e.g. ndcg@10,recall@100,mrr,map")
    p.set_defaults(func=_retrieval)

    p = sub.add_parser("kb", parents=[common], help="search a knowledge base with every query, score each mode")
    p.add_argument("kb")
    p.add_argument("--queries", required=True, help="queries JSONL (BEIR: _id, text)")
    p.add_argument("--qrels", required=True, help="BEIR qrels TSV or TREC qrels")
    p.add_argument("--corpus", help="BEIR corpus.jsonl to ingest into the knowledge base first")
    p.add_argument("--modes", type=_csv, help="dense,bm25,hybrid,rerank (default from config)")
    p.add_argument("--top-k", type=int)
    p.add_argument("--id-field", default="source", help="hit field holding the qrels doc id (source, doc_id, ...)")
    p.add_argument("--k", type=_ks)
    p.set_defaults(func=_kb)

    p = sub.add_parser("compare", parents=[common], help="is run B better or worse than run A?")
    p.add_argument("a", help="baseline run id")
    p.add_argument("b", help="candidate run id")
    p.add_argument("--metric")
    p.add_argument("--tolerance", type=float, default=0.0, help="a drop up to this never fails the gate")
    p.add_argument("--alpha", type=float)
    p.add_argument("--gate", action="store_true", help="exit with status 1 when B is significantly worse")
    p.set_defaults(func=_compare)

    p = sub.add_parser("rag", parents=[common], help="faithfulness, relevance, context precision/recall, citations")
    p.add_argument("samples", help="JSONL of {question, answer, contexts, reference?}")
    p.add_argument("--tier", choices=["deterministic", "judge"], default="deterministic")
    p.add_argument("--metrics", type=_csv)
    p.add_argument("--threshold", type=float)
    p.add_argument("--model")
    p.set_defaults(func=_rag)

    p = sub.add_parser("text2sql", parents=[common], help="execution accuracy of SQL predictions")
    p.add_argument("questions", help="CSV (defog: db_name, query, question[, predicted]) or JSONL")
    p.add_argument("--database", action="append", type=_pair, default=[], metavar="NAME=PATH",
                   help="a database the questions use (repeatable)")
    p.add_argument("--source", choices=["file", "gold", "pipeline"], default="file",
                   help="predictions from the file, the gold SQL (harness check) or the text2sql pipeline")
    p.add_argument("--timeout", type=float)
    p.set_defaults(func=_text2sql)

    p = sub.add_parser("perplexity", parents=[common], help="perplexity and bits per byte of texts")
    p.add_argument("texts", help="a text file, or JSONL with a 'text' field")
    p.add_argument("--model")
    p.add_argument("--window", type=int)
    p.add_argument("--stride", type=int)
    p.set_defaults(func=_perplexity)

    p = sub.add_parser("choice", parents=[common], help="multiple-choice accuracy from log-likelihoods")
    p.add_argument("items", help="JSONL of {question, choices, answer}")
    p.add_argument("--model")
    p.add_argument("--format", action="append", dest="formats", help="prompt format with {question} (repeatable)")
    p.set_defaults(func=_choice)

    p = sub.add_parser("answers", parents=[common], help="closed questions answered by the generator")
    p.add_argument("items", help="JSONL of {question, answers}")
    p.add_argument("--extract", choices=["auto", "number", "letter", "first_line", "full"], default="auto")
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--model")
    p.set_defaults(func=_answers)

    p = sub.add_parser("judge", parents=[common], help="LLM-as-judge: pairwise, score or rank")
    p.add_argument("mode", choices=["pairwise", "score", "rank"])
    p.add_argument("items", help="JSONL: pairwise {prompt, a, b}; score {prompt, answer}; rank {prompt, outputs}")
    p.add_argument("--votes", type=int)
    p.add_argument("--pass-score", type=int)
    p.add_argument("--reasoning-chars", type=int)
    p.add_argument("--model")
    p.set_defaults(func=_judge)

    p = sub.add_parser("text", parents=[common], help="ROUGE-L, BLEU, keywords, distinct-n, repetition")
    p.add_argument("items", help="JSONL of {prediction, references, keywords?}")
    p.add_argument("--cjk", choices=["auto", "jieba", "chars"], default="auto")
    p.set_defaults(func=_text)

    p = sub.add_parser("tool-calls", parents=[common], help="BFCL AST accuracy and valid-call rate")
    p.add_argument("items", help="JSONL of {functions, calls, expected, irrelevance?}")
    p.set_defaults(func=_tool_calls)

    p = sub.add_parser("latency", parents=[common], help="latency percentiles, QPS, TTFT, time per token")
    p.add_argument("--transcripts", help="a host transcript .jsonl or a folder of them")
    p.add_argument("--probe", type=int, default=0, help="live requests to the configured generator")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--model")
    p.set_defaults(func=_latency)

    p = sub.add_parser("runs", parents=[common], help="list saved runs")
    p.add_argument("--kind")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=_runs)

    p = sub.add_parser("show", parents=[common], help="show one saved run (latest: the newest)")
    p.add_argument("run_id")
    p.set_defaults(func=_show)

    p = sub.add_parser("report", parents=[common], help="print the path of a run's HTML report")
    p.add_argument("run_id")
    p.set_defaults(func=_report)


# ---------------------------------------------------------------- plumbing


def _with_roots(settings: Settings, *paths: str | None) -> Settings:
    """The folders of the files named on the command line become readable for this command."""
    resolved = [Path(p).expanduser().resolve() for p in paths if p]
    folders = [str(p if p.is_dir() else p.parent) for p in resolved]
    if folders:
        settings = settings.model_copy(deep=True)
        settings.roots = [*settings.roots, *folders]
    return settings


def _progress_run(label: str, fn: Callable[[Callable[[int, int, str], None]], Any]) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def progress(done: int, total: int, message: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{label}: {message}"[:80])

        return fn(progress)


def _emit(args: argparse.Namespace, result: Any) -> None:
    if args.json:
        print(result.model_dump_json())
        return
    data = result.model_dump()
    for key in ("run_id", "kind", "model", "n_items", "n_unscorable", "metric", "delta", "ci", "p_value", "gate",
                "gate_reason", "best_mode"):
        if data.get(key) is not None:
            print(f"{key}: {data[key]}")
    for name, value in (data.get("metrics") or {}).items():
        ci = (data.get("intervals") or {}).get(name)
        print(f"  {name:<28} {value:.4f}" + (f"  [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""))
    for mode in data.get("modes") or []:
        print(f"  {mode['mode']:<8} " + "  ".join(f"{k} {v:.4f}" for k, v in list(mode["metrics"].items())[:6]))
    for note in data.get("notes") or []:
        print(f"note: {note}")
    if data.get("report_path"):
        print(f"report: {data['report_path']}")


# ---------------------------------------------------------------- commands


def _retrieval(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api  # here, not at import: `quiver --help` stays fast

    s = _with_roots(settings, args.qrels, args.run)
    _emit(args, api.eval_retrieval(qrels_path=args.qrels, run_path=args.run, metrics=args.metrics, ks=args.k,
                                   name=args.name, rows=ALL_ROWS, settings=s))
    return 0


def _kb(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    s = _with_roots(settings, args.queries, args.qrels, args.corpus)
    result = _progress_run(f"eval kb {args.kb}", lambda progress: api.eval_kb(
        args.kb, queries_path=args.queries, qrels_path=args.qrels, corpus_path=args.corpus, modes=args.modes,
        top_k=args.top_k, id_field=args.id_field, ks=args.k, name=args.name, settings=s, progress=progress))
    _emit(args, result)
    return 0


def _compare(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    result = api.eval_compare(args.a, args.b, args.metric, tolerance=args.tolerance, alpha=args.alpha, name=args.name,
                              settings=settings)
    _emit(args, result)
    return 1 if args.gate and result.gate == "fail" else 0


def _rag(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    s = _with_roots(settings, args.samples)
    _emit(args, _progress_run("eval rag", lambda progress: api.eval_rag(
        samples_path=args.samples, tier=args.tier, metrics=args.metrics, threshold=args.threshold, model=args.model,
        name=args.name, rows=ALL_ROWS, settings=s, progress=progress)))
    return 0


def _text2sql(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    s = _with_roots(settings, args.questions, *[target for _, target in args.database if "://" not in target])
    _emit(args, _progress_run("eval text2sql", lambda progress: api.eval_text2sql(
        items_path=args.questions, databases=dict(args.database), source=args.source, timeout_s=args.timeout,
        name=args.name, rows=ALL_ROWS, settings=s, progress=progress)))
    return 0


def _perplexity(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    s = _with_roots(settings, args.texts)
    _emit(args, _progress_run("eval perplexity", lambda progress: api.eval_perplexity(
        texts_path=args.texts, model=args.model, window=args.window, stride=args.stride, name=args.name,
        rows=ALL_ROWS, settings=s, progress=progress)))
    return 0


def _choice(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    s = _with_roots(settings, args.items)
    _emit(args, _progress_run("eval choice", lambda progress: api.eval_choice(
        items_path=args.items, model=args.model, formats=args.formats, name=args.name, rows=ALL_ROWS, settings=s,
        progress=progress)))
    return 0


def _answers(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    s = _with_roots(settings, args.items)
    _emit(args, _progress_run("eval answers", lambda progress: api.eval_answers(
        items_path=args.items, extract=args.extract, max_new_tokens=args.max_new_tokens, model=args.model,
        name=args.name, rows=ALL_ROWS, settings=s, progress=progress)))
    return 0


def _judge(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    s = _with_roots(settings, args.items)
    fn = {"pairwise": api.eval_judge_pairwise, "score": api.eval_judge_score, "rank": api.eval_judge_rank}[args.mode]
    extra = {"pass_score": args.pass_score} if args.mode == "score" else {}
    _emit(args, _progress_run(f"eval judge {args.mode}", lambda progress: fn(
        items_path=args.items, votes=args.votes, reasoning_chars=args.reasoning_chars, model=args.model,
        name=args.name, rows=ALL_ROWS, settings=s, progress=progress, **extra)))
    return 0


def _text(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    s = _with_roots(settings, args.items)
    _emit(args, api.eval_text(items_path=args.items, cjk=args.cjk, name=args.name, rows=ALL_ROWS, settings=s))
    return 0


def _tool_calls(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    s = _with_roots(settings, args.items)
    _emit(args, api.eval_tool_calls(items_path=args.items, name=args.name, rows=ALL_ROWS, settings=s))
    return 0


def _latency(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    s = _with_roots(settings, args.transcripts)
    _emit(args, _progress_run("eval latency", lambda progress: api.eval_latency(
        transcripts_path=args.transcripts, probe_requests=args.probe, max_new_tokens=args.max_new_tokens,
        model=args.model, name=args.name, rows=ALL_ROWS, settings=s, progress=progress)))
    return 0


def _runs(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    listing = api.eval_list_runs(args.kind, args.limit, settings=settings)
    if args.json:
        print(listing.model_dump_json())
        return 0
    for run in listing.runs:
        headline = f"{run.primary} {run.metrics[run.primary]:.4f}" if run.primary in run.metrics else ""
        print(f"{run.id:<40} {run.kind:<10} {run.created}  {headline}  {run.name or ''}")
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    detail = api.eval_get_run(args.run_id, rows=ALL_ROWS if args.json else 10, settings=settings)
    if args.json:
        print(detail.model_dump_json())
        return 0
    print(json.dumps(detail.run.model_dump(exclude={"figures"}), indent=1, ensure_ascii=False, default=str))
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from servers.eval import api

    info = api.eval_report(args.run_id, settings=settings)
    print(info.model_dump_json() if args.json else info.report_path)
    return 0
