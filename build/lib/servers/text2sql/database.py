"""Named databases opened read-only, with row, time and memory limits.

A :class:`Database` is a name, an :class:`~servers.text2sql.engines.Engine` (SQLite, DuckDB or
any SQLAlchemy URL: one small class each) and a cached schema with descriptions. SQLite and
DuckDB files are queried in worker processes of their own, killed when a query outlives its
limit (see :mod:`servers.text2sql.engines` and :mod:`servers.text2sql.sql_worker`).

Rows come back through ``fetchmany(max_rows + 1)``, so a huge result never materialises. The
SQL check (:mod:`.sqlcheck`) sits on top of this; the connections alone already refuse writes.
"""

from __future__ import annotations

import threading
from pathlib import Path

from servers.core.errors import InvalidInput
from servers.text2sql.engines import Engine, open_engine
from servers.text2sql.results import MAX_CELL_CHARS, QueryResult, json_cell
from servers.text2sql.schema import DatabaseSchema
from servers.text2sql.sql_worker import SqlLimits

__all__ = ["MAX_CELL_CHARS", "Database", "QueryResult", "SqlLimits", "json_cell"]


class Database:
    """A named database, always opened read-only. Thread-safe."""

    def __init__(self, name: str, target: str, *, descriptions: dict[str, dict[str, str]] | None = None,
                 limits: SqlLimits | None = None) -> None:
        self.name = name
        self.target = target
        self.engine: Engine = open_engine(name, target, limits)
        self.descriptions = descriptions if descriptions is not None else self.engine.descriptions()
        self._schema: DatabaseSchema | None = None
        self._schema_stamp: object = None
        self._lock = threading.Lock()

    @property
    def dialect(self) -> str:
        """The sqlglot dialect to write for this database: sqlite, duckdb, postgres, ..."""
        return self.engine.dialect

    @property
    def path(self) -> Path | None:
        """The database file (SQLite, DuckDB); None for server databases."""
        return self.engine.path

    @property
    def location(self) -> str:
        """Where the database is, passwords hidden."""
        return self.engine.location

    def execute(self, sql: str, *, max_rows: int, timeout_s: float) -> QueryResult:
        """Run one statement read-only within the limits; no SQL check here (see :mod:`.sqlcheck`)."""
        if max_rows < 1:
            raise InvalidInput("max_rows must be at least 1")
        return self.engine.execute(sql, max_rows=max_rows, timeout_s=timeout_s)

    def explain_sql(self, sql: str) -> str:
        """The statement that asks this database for its plan of ``sql`` (never ANALYZE: nothing runs)."""
        return self.engine.explain_sql(sql)

    def plan_text(self, result: QueryResult) -> str:
        """An EXPLAIN result as readable text."""
        return self.engine.plan_text(result)

    def schema(self, *, refresh: bool = False) -> DatabaseSchema:
        """The introspected schema (cached; re-read when a file changes or after a short TTL)."""
        stamp = self.engine.schema_stamp()
        with self._lock:
            if self._schema is not None and self._schema_stamp == stamp and not refresh:
                return self._schema
        schema = DatabaseSchema(dialect=self.dialect, tables=self.engine.tables())
        schema.apply_descriptions(self.descriptions)
        with self._lock:
            self._schema, self._schema_stamp = schema, stamp
        return schema

    def close(self) -> None:
        self.engine.close()
