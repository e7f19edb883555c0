"""Query results and the errors every engine reports in the same words (shared by the server
process and the database worker processes)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import time
import uuid
from typing import Any

from pydantic import BaseModel, Field

from servers.core.errors import AccessDenied, InvalidInput, Timeout, TooLarge

MAX_CELL_CHARS = 2000  # longer text values are cut (and flagged) in results


class QueryResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_count: int = Field(description="rows returned (at most max_rows)")
    truncated: bool = Field(description="true when the query had more rows than max_rows (or a value was cut)")
    elapsed_ms: float
    offset: int = Field(default=0, description="rows skipped before the first row returned")
    next_offset: int | None = Field(default=None, description="offset of the next page of rows; null when none is left")


def json_cell(value: Any) -> tuple[Any, bool]:
    """A JSON-safe version of a database value, and whether it was cut."""
    if value is None or isinstance(value, bool | int):
        return value, False
    if isinstance(value, float):
        return (value if math.isfinite(value) else str(value)), False
    if isinstance(value, str):
        if len(value) > MAX_CELL_CHARS:
            return value[:MAX_CELL_CHARS] + "…", True
        return value, False
    if isinstance(value, decimal.Decimal):
        return (float(value) if value.is_finite() else str(value)), False
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat(), False
    if isinstance(value, dt.timedelta):
        return str(value), False
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        text = "base64:" + base64.b64encode(raw[:MAX_CELL_CHARS]).decode()
        return text, len(raw) > MAX_CELL_CHARS
    if isinstance(value, uuid.UUID):
        return str(value), False
    if isinstance(value, list | tuple):
        items = [json_cell(v) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    if isinstance(value, dict):
        items = {str(k): json_cell(v) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, any(c for _, c in items.values())
    return json_cell(str(value))


def make_result(columns: list[str], raw_rows: list[Any], max_rows: int, start: float) -> QueryResult:
    truncated = len(raw_rows) > max_rows
    rows: list[list[Any]] = []
    for raw in raw_rows[:max_rows]:
        row = []
        for value in raw:
            cell, cut = json_cell(value)
            truncated = truncated or cut
            row.append(cell)
        rows.append(row)
    return QueryResult(columns=columns, rows=rows, row_count=len(rows), truncated=truncated,
                       elapsed_ms=round((time.perf_counter() - start) * 1000, 2))


def timeout_error(timeout_s: float) -> Timeout:
    return Timeout(
        f"the query ran longer than the {timeout_s:g} s time limit (text2sql.timeout_s) and was stopped; "
        "add WHERE filters, avoid cross joins, aggregate, or add LIMIT"
    )


def memory_error(max_memory_mb: float) -> TooLarge:
    return TooLarge(
        f"the query needed more than its {max_memory_mb:g} MB memory cap (text2sql.max_memory_mb) and was stopped; "
        "aggregate or filter more, and build smaller strings"
    )


def readonly_refusal(detail: str) -> AccessDenied:
    return AccessDenied(
        f"refused by the read-only connection ({detail}); this server only runs one read-only "
        "SELECT (or WITH ... SELECT) statement: no INSERT/UPDATE/DELETE/DDL, PRAGMA, ATTACH or file access"
    )


def rejected(exc: Exception) -> InvalidInput:
    message = " ".join(str(exc).split())[:500]
    return InvalidInput(f"the database rejected the query: {message}; fix the SQL (sql_validate and "
                        "sql_search_schema show the real table and column names)")
