"""Text-to-SQL execution accuracy through the text2sql server's read-only executor.

A prediction is right when its result equals a gold query's result as a **multiset** of
rows (so a missing or extra DISTINCT is an error, not hidden), **in order** only when the
gold query orders its output (a top-level ORDER BY), with the columns matched in any order
(``SELECT a, b`` equals ``SELECT b, a``), NULLs equal to NULLs, numbers compared after
rounding to 6 decimals (``3`` equals ``3.0``; ``0.1 + 0.2`` equals ``0.3``).

Failures get a type: ``syntax``, ``unknown_table``, ``unknown_column``, ``timeout``,
``refused`` (would write or reach outside), ``execution_error``, ``no_sql``,
``wrong_result``. A gold query that fails makes its item unscorable with the reason.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from itertools import product
from typing import Any

import sqlglot
from sqlglot import exp

from servers.core.errors import AccessDenied, QuiverError
from servers.eval.schemas import ItemRow, SqlItem
from servers.text2sql import operations as ops
from servers.text2sql.database import Database

ERROR_TYPES = ("syntax", "unknown_table", "unknown_column", "timeout", "refused", "execution_error", "no_sql",
               "wrong_result")
Progress = Callable[[int, int, str], None]
MAX_ASSIGNMENTS = 5000


def split_gold(text: str) -> list[str]:
    """Gold queries separated by ';' outside quotes."""
    out, buf, quote = [], [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == ";":
            out.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    out.append("".join(buf).strip())
    return [q for q in out if q]


def orders_output(sql: str, dialect: str = "sqlite") -> bool:
    """True when the query's outermost SELECT has an ORDER BY."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return False
    return isinstance(tree, exp.Query) and tree.args.get("order") is not None


def normalize(value: Any) -> tuple[int, Any]:
    """A sortable, comparable form of one cell: NULLs, numbers (rounded), text, other."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, int):
        return (1, value)
    if isinstance(value, float):
        if math.isnan(value):
            return (0, 1)
        if math.isinf(value):
            return (1, value)
        rounded = round(float(f"{value:.12g}"), 6)
        return (1, int(rounded) if rounded == int(rounded) and abs(rounded) < 2**53 else rounded)
    if isinstance(value, bytes):
        return (2, value.hex())
    if isinstance(value, str):
        return (2, value)
    return (3, str(value))


def _rows(rows: list[list[Any]]) -> list[tuple]:
    return [tuple(normalize(v) for v in row) for row in rows]


def results_match(predicted: list[list[Any]], gold: list[list[Any]], *, ordered: bool) -> bool:
    """Equality of two results under the rules of the module docstring."""
    pred, ref = _rows(predicted), _rows(gold)
    if len(pred) != len(ref):
        return False
    if not ref:
        return True
    width = len(ref[0])
    if any(len(r) != width for r in pred) or len(pred[0]) != width:
        return False
    pred_cols = [sorted(col) for col in zip(*pred, strict=True)]
    gold_cols = [sorted(col) for col in zip(*ref, strict=True)]
    options = [[i for i, col in enumerate(pred_cols) if col == g] for g in gold_cols]
    if any(not o for o in options):
        return False
    target = ref if ordered else Counter(ref)
    tried = 0
    for assignment in product(*options):
        if len(set(assignment)) != width:
            continue
        tried += 1
        if tried > MAX_ASSIGNMENTS:
            return False
        permuted = [tuple(row[i] for i in assignment) for row in pred]
        if (permuted if ordered else Counter(permuted)) == target:
            return True
    return False


def classify(exc: Exception) -> str:
    """The error type of a failed prediction."""
    text = str(exc).lower()
    if isinstance(exc, AccessDenied):
        return "refused"
    if "time limit" in text or "timed out" in text:
        return "timeout"
    if "syntax" in text or "could not be parsed" in text or "statements found" in text or "is empty" in text:
        return "syntax"
    if "unknown table" in text or "no such table" in text:
        return "unknown_table"
    if "unknown column" in text or "no such column" in text or ("column '" in text and "does not exist" in text):
        return "unknown_column"
    return "execution_error"


def execute(db: Database, sql: str, *, max_rows: int, timeout_s: float) -> tuple[list[list[Any]], bool]:
    """Rows of ``sql`` through the checked read-only path, and whether they were cut at ``max_rows``."""
    result = ops.run_query(db, sql, max_rows=max_rows, timeout_s=timeout_s)
    return result.rows, result.truncated


def evaluate_item(item: SqlItem, iid: str, db: Database, predicted: str | None, *, max_rows: int,
                  timeout_s: float) -> ItemRow:
    row = ItemRow(id=iid, detail={"database": item.database, "question": item.question, "predicted": predicted})
    golds: list[tuple[list[list[Any]], bool]] = []
    gold_errors = []
    for sql in split_gold(item.gold):
        try:
            rows, truncated = execute(db, sql, max_rows=max_rows, timeout_s=timeout_s)
        except QuiverError as exc:
            gold_errors.append(f"{sql[:120]!r}: {exc}")
            continue
        if truncated:
            gold_errors.append(f"{sql[:120]!r}: more than {max_rows} rows (raise max_rows)")
            continue
        golds.append((rows, orders_output(sql, db.dialect)))
    if gold_errors:
        row.detail["gold_errors"] = gold_errors
    if not golds:
        reason = gold_errors[0] if gold_errors else "no gold query was given"
        row.unscorable["*"] = f"unscorable: the gold SQL fails: {reason}"
        return row
    if not predicted or not predicted.strip():
        row.scores.update(execution_accuracy=0.0, valid_sql=0.0)
        row.detail["error_type"] = "no_sql"
        return row
    try:
        rows, truncated = execute(db, predicted, max_rows=max_rows, timeout_s=timeout_s)
    except QuiverError as exc:
        row.scores.update(execution_accuracy=0.0, valid_sql=0.0)
        row.detail.update(error_type=classify(exc), error=str(exc)[:500])
        return row
    row.scores["valid_sql"] = 1.0
    if truncated:
        row.unscorable["execution_accuracy"] = f"unscorable: the prediction returned more than {max_rows} rows"
        return row
    ok = any(results_match(rows, gold, ordered=ordered) for gold, ordered in golds)
    row.scores["execution_accuracy"] = 1.0 if ok else 0.0
    if not ok:
        row.detail["error_type"] = "wrong_result"
        row.detail["rows_predicted"] = len(rows)
        row.detail["rows_gold"] = len(golds[0][0])
    return row


def evaluate(items: list[SqlItem], database: Callable[[str], Database],
             predict: Callable[[SqlItem, Database], str | None], *, max_rows: int = 100_000, timeout_s: float = 10.0,
             progress: Progress | None = None) -> list[ItemRow]:
    """One row per item; ``predict`` gives the SQL to score (from the item, the gold, or a generator)."""
    rows = []
    for i, item in enumerate(items, 1):
        iid = item.id or str(i)
        try:
            db = database(item.database)
        except QuiverError as exc:
            rows.append(ItemRow(id=iid, unscorable={"*": f"unscorable: {exc}"}, detail={"database": item.database}))
            continue
        rows.append(evaluate_item(item, iid, db, predict(item, db), max_rows=max_rows, timeout_s=timeout_s))
        if progress is not None:
            progress(i, len(items), f"question {i}/{len(items)}")
    return rows


def taxonomy(rows: list[ItemRow]) -> dict[str, int]:
    counts = Counter(r.detail.get("error_type") for r in rows if r.detail.get("error_type"))
    return {t: counts.get(t, 0) for t in ERROR_TYPES}
