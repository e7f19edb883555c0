"""Text-to-SQL execution accuracy on a defog-style folder, plus the oracle check of the harness.

    python -m bench.text2sql --data ../shared/data/text2sql --limit 12 --candidates 1 5

The folder holds ``questions.csv`` (db_name, query_category, query = acceptable gold queries
separated by ';', question, instructions), ``databases/<db>.sqlite`` and optionally
``metadata/<db>.json`` (column descriptions, used for linking and the prompt).

JSON lines on stdout (progress on stderr):

- ``scope: oracle`` — every gold query through the server's check + read-only execute path; ``ex``
  is the share of questions whose gold queries all pass and return what plain ``sqlite3`` returns
  (must be 1.0), with the latency of both paths (``exec_ms_p50`` vs ``raw_exec_ms_p50``).
- ``scope: overall`` / ``<category>`` per ``--candidates`` value, ``pipeline: quiver`` — the full
  text_to_sql pipeline; ``pipeline: raw`` — the same generator called directly (whole schema as
  DDL, the question, no linking, examples, check, repair or vote) and its SQL run on plain sqlite3.

``ex`` (execution accuracy): the predicted rows equal one gold query's rows — as ordered lists if
that gold query has a top-level ORDER BY, else as multisets; numbers compared rounded to 4 places.
``ex_relaxed`` (defog's rule): every gold column appears among the predicted columns.
Questions are taken round-robin over categories so that ``--limit`` keeps every category.
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from bench.common import emit, log
from servers.core.errors import QuiverError
from servers.core.settings import load_settings
from servers.eval.text2sql import orders_output as ordered
from servers.eval.text2sql import results_match, split_gold
from servers.text2sql import operations as ops
from servers.text2sql.database import Database
from servers.text2sql.pipeline import PipelineOptions, TextToSql
from servers.text2sql.prompting import STOP, extract_sql
from servers.text2sql.schema import load_descriptions

BIG = 100_000  # rows fetched for comparison


def norm(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return round(float(value), 4)
    return value


def rows_of(rows: list) -> list[tuple]:
    return [tuple(norm(v) for v in r) for r in rows]


def same(pred: list[tuple], gold: list[tuple], keep_order: bool) -> bool:
    return results_match(pred, gold, ordered=keep_order)


def relaxed(pred: list[tuple], gold: list[tuple]) -> bool:
    """Every gold column (as a multiset of values) appears among the predicted columns."""
    if len(pred) != len(gold):
        return False
    if not gold:
        return True
    pcols = [sorted(map(repr, col)) for col in zip(*pred, strict=True)] if pred else []
    return all(sorted(map(repr, col)) in pcols for col in zip(*gold, strict=True))


def raw_run(path: Path, sql: str, timeout_s: float) -> tuple[list[tuple] | None, float]:
    """Plain sqlite3 (read-only URI), with a progress-handler time limit like ours for fairness."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    deadline = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 2000)
    start = time.perf_counter()
    try:
        return rows_of(conn.execute(sql).fetchall()), (time.perf_counter() - start) * 1000
    except (sqlite3.Error, sqlite3.Warning):
        return None, (time.perf_counter() - start) * 1000
    finally:
        conn.close()


def pick(rows: list[dict], limit: int | None) -> list[dict]:
    by_cat: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_cat[row["query_category"]].append(row)
    out: list[dict] = []
    queues = list(by_cat.values())
    while any(queues) and (limit is None or len(out) < limit):
        for queue in queues:
            if queue and (limit is None or len(out) < limit):
                out.append(queue.pop(0))
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


# Held-out questions on the demo shop database (none is in its seeded example store).
SHOP_QUESTIONS = [
    ("Which 3 customers spent the most?",
     "SELECT c.name, SUM(i.quantity * i.unit_price) AS s FROM customers c JOIN orders o ON o.customer_id = c.customer_id "
     "JOIN order_items i ON i.order_id = o.order_id GROUP BY c.customer_id ORDER BY s DESC LIMIT 3"),
    ("How many products are in the Books category?", "SELECT COUNT(*) FROM products WHERE category = 'Books'"),
    ("How many orders are pending?", "SELECT COUNT(*) FROM orders WHERE status = 'pending'"),
    ("Which city has the most customers?",
     "SELECT city FROM customers GROUP BY city ORDER BY COUNT(*) DESC LIMIT 1"),
    ("List the names of customers from Spain.", "SELECT name FROM customers WHERE country = 'Spain'"),
    ("How many orders were placed in 2024?", "SELECT COUNT(*) FROM orders WHERE strftime('%Y', order_date) = '2024'"),
    ("What is the most expensive product in the Electronics category?",
     "SELECT name FROM products WHERE category = 'Electronics' ORDER BY price DESC LIMIT 1"),
    ("What is the average price of products in the Toys category?",
     "SELECT AVG(price) FROM products WHERE category = 'Toys'"),
    ("How many customers signed up in each country?", "SELECT country, COUNT(*) FROM customers GROUP BY country"),
    ("Which 5 products have the lowest stock?", "SELECT name FROM products ORDER BY stock ASC LIMIT 5"),
]


def shop_eval(pipeline: TextToSql, settings: Any, n_cand: int, options_for: Any, model: str) -> None:
    """The demo database with its seeded example store: what the bundled host's demo relies on."""
    from servers.text2sql.demo_db import ensure_demo_database
    from servers.text2sql.examples import store_for

    db = Database("shop", str(ensure_demo_database(settings.data_path)))
    store = store_for(settings.data_path, "shop")
    recs = []
    for question, gold_sql in SHOP_QUESTIONS:
        expected, _ = raw_run(db.path, gold_sql, 10)
        start = time.perf_counter()
        out = pipeline.answer(question, db, store, options_for(n_cand, None))
        pred = rows_of(out.result.rows) if out.result is not None else None
        ok = pred is not None and same(pred, expected or [], ordered(gold_sql))
        rel = pred is not None and relaxed(pred, expected or [])
        recs.append((ok, rel, out.ok, time.perf_counter() - start))
        log(f"shop N={n_cand} ex={ok} relaxed={rel} {recs[-1][3]:.1f}s {(out.sql or '')[:120]!r}")
    lat = [r[3] for r in recs]
    emit({"scope": "shop", "ex": round(sum(r[0] for r in recs) / len(recs), 4),
          "ex_relaxed": round(sum(r[1] for r in recs) / len(recs), 4), "n": len(recs), "candidates": n_cand,
          "model": model, "pipeline": "quiver", "valid": round(sum(r[2] for r in recs) / len(recs), 4),
          "latency_s_p50": pct(lat, 0.5), "latency_s_p90": pct(lat, 0.9), "latency_s_mean": round(statistics.fmean(lat), 3)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None, help="questions for the model runs (round-robin over categories)")
    ap.add_argument("--candidates", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--repair-rounds", type=int, default=None, help="default: text2sql.repair_rounds")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: text2sql.max_new_tokens")
    ap.add_argument("--timeout", type=float, default=10.0, help="query time limit, seconds")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is much faster on a busy machine)")
    ap.add_argument("--no-raw", action="store_true", help="skip the raw-generator baseline")
    ap.add_argument("--shop", action="store_true", help="also run 10 held-out questions on the demo shop database")
    ap.add_argument("--skip-data", action="store_true", help="only the oracle (and --shop): no model runs on --data")
    ap.add_argument("--config", default=None)
    args = ap.parse_args()

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows = list(csv.DictReader((args.data / "questions.csv").open(encoding="utf-8")))
    dbs: dict[str, Database] = {}
    for name in sorted({r["db_name"] for r in rows}):
        meta = args.data / "metadata" / f"{name}.json"
        descriptions = load_descriptions(json.loads(meta.read_text(encoding="utf-8"))) if meta.is_file() else {}
        dbs[name] = Database(name, str(args.data / "databases" / f"{name}.sqlite"), descriptions=descriptions)

    # ---------------------------------------------------------------- oracle + gold results
    gold: dict[int, list[tuple[list[tuple], bool]]] = {}
    oracle_ok, ours_ms, raw_ms, failures = 0, [], [], []
    for i, row in enumerate(rows):
        db = dbs[row["db_name"]]
        results, good = [], True
        for sql in split_gold(row["query"]):
            expected, ms = raw_run(db.path, sql, args.timeout)
            raw_ms.append(ms)
            start = time.perf_counter()
            try:
                ours = ops.run_query(db, sql, max_rows=BIG, timeout_s=args.timeout)  # check + guarded execute
            except QuiverError as exc:
                good = False
                failures.append({"question": i, "sql": sql[:200], "error": str(exc)[:300]})
                continue
            ours_ms.append((time.perf_counter() - start) * 1000)
            got = rows_of(ours.rows)
            if expected is None or got != expected:
                good = False
                failures.append({"question": i, "sql": sql[:200], "error": "result differs from sqlite3"})
            results.append((expected or [], ordered(sql)))
        gold[i] = results
        oracle_ok += good
    emit({"scope": "oracle", "ex": round(oracle_ok / len(rows), 4), "n": len(rows), "candidates": 0, "model": "gold",
          "gold_queries": len(ours_ms) + sum(1 for f in failures if f["error"] != "result differs from sqlite3"),
          "exec_ms_p50": pct(ours_ms, 0.5), "raw_exec_ms_p50": pct(raw_ms, 0.5),
          "exec_ms_p90": pct(ours_ms, 0.9), "raw_exec_ms_p90": pct(raw_ms, 0.9), "failures": failures[:5]})

    # ---------------------------------------------------------------- model runs
    settings = load_settings(args.config, overrides={"data_dir": tempfile.mkdtemp(prefix="t2s-bench-")})
    cfg = settings.text2sql
    pipeline = TextToSql(settings)
    chosen = pick(rows, args.limit)
    index = {id(r): i for i, r in enumerate(rows)}
    model = str(pipeline.generator.name)
    log(f"model {model}; {len(chosen)} questions; candidates {args.candidates}")

    def score(i: int, pred: list[tuple] | None) -> tuple[bool, bool]:
        if pred is None:
            return False, False
        return (any(same(pred, g, keep) for g, keep in gold[i]), any(relaxed(pred, g) for g, _ in gold[i]))

    def report(tag: str, n_cand: int, per_q: list[dict]) -> None:
        groups: dict[str, list[dict]] = defaultdict(list)
        for rec in per_q:
            groups["overall"].append(rec)
            groups[rec["category"]].append(rec)
        for scope, recs in groups.items():
            lat = [r["latency_s"] for r in recs]
            emit({"scope": scope, "ex": round(sum(r["ex"] for r in recs) / len(recs), 4),
                  "ex_relaxed": round(sum(r["relaxed"] for r in recs) / len(recs), 4), "n": len(recs),
                  "candidates": n_cand, "model": model, "pipeline": tag,
                  "valid": round(sum(r["valid"] for r in recs) / len(recs), 4),
                  "latency_s_p50": pct(lat, 0.5), "latency_s_p90": pct(lat, 0.9),
                  "latency_s_mean": round(statistics.fmean(lat), 3)})

    if not args.no_raw and not args.skip_data:
        per_q = []
        for row in chosen:
            i = index[id(row)]
            db = dbs[row["db_name"]]
            ddl = "\n".join(r[0] for r in sqlite3.connect(f"file:{db.path}?mode=ro", uri=True).execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL"))
            prompt = f"Schema:\n{ddl}\n\nWrite one SQLite query for: {row['question']} {row['instructions']}".strip()
            start = time.perf_counter()
            text = pipeline.generator.chat([{"role": "user", "content": prompt}],
                                           max_new_tokens=args.max_new_tokens or cfg.max_new_tokens, stop=STOP)[0]
            sql = extract_sql(text)
            pred, _ = raw_run(db.path, sql, args.timeout) if sql else (None, 0)
            ex, rel = score(i, pred)
            per_q.append({"category": row["query_category"], "ex": ex, "relaxed": rel, "valid": pred is not None,
                          "latency_s": time.perf_counter() - start})
            log(f"raw  q{i} ex={ex} {time.perf_counter() - start:.1f}s {sql[:100]!r}")
        report("raw", 1, per_q)

    def options_for(n_cand: int, instructions: str | None) -> PipelineOptions:
        return PipelineOptions(
            candidates=n_cand, repair_rounds=cfg.repair_rounds if args.repair_rounds is None else args.repair_rounds,
            execute=True, max_rows=BIG, timeout_s=args.timeout,
            max_new_tokens=args.max_new_tokens or cfg.max_new_tokens, temperature=cfg.sample_temperature,
            examples_k=cfg.examples_k, instructions=instructions,
        )

    # schema linking alone: do the linked tables cover the tables of the first gold query?
    covered, sizes, totals = 0, [], []
    for row in rows:
        db = dbs[row["db_name"]]
        schema = db.schema()
        needed = {t.name.lower() for t in sqlglot.parse_one(split_gold(row["query"])[0], read="sqlite").find_all(exp.Table)
                  if schema.table(t.name)}
        linked = pipeline.linker.link(row["question"], schema, pipeline.values_for(db))
        covered += needed <= {n.lower() for n in linked.table_names}
        sizes.append(len(linked.table_names))
        totals.append(len(schema.tables))
    emit({"scope": "linking", "recall": round(covered / len(rows), 4), "n": len(rows), "candidates": 0,
          "model": settings.models.embedder, "tables_linked_mean": round(statistics.fmean(sizes), 2),
          "tables_total_mean": round(statistics.fmean(totals), 2)})

    if args.shop:
        for n_cand in args.candidates:
            shop_eval(pipeline, settings, n_cand, options_for, model)
    if args.skip_data:
        return
    for n_cand in args.candidates:
        per_q = []
        for row in chosen:
            i = index[id(row)]
            options = options_for(n_cand, row["instructions"] or None)
            start = time.perf_counter()
            out = pipeline.answer(row["question"], dbs[row["db_name"]], None, options)
            pred = rows_of(out.result.rows) if out.result is not None else None
            ex, rel = score(i, pred)
            per_q.append({"category": row["query_category"], "ex": ex, "relaxed": rel, "valid": out.ok,
                          "latency_s": time.perf_counter() - start})
            log(f"N={n_cand} q{i} ex={ex} {per_q[-1]['latency_s']:.1f}s "
                f"{[c.status for c in out.candidates]} {(out.sql or '')[:100]!r}"
                + ("" if out.ok else f" first error: {(out.candidates[0].error or '')[:160]}"))
        report("quiver", n_cand, per_q)


if __name__ == "__main__":
    main()
