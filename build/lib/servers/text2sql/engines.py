"""One small class per database engine behind one interface (:class:`Engine`).

- :class:`SqliteEngine` (a file path or ``sqlite:///path``) and :class:`DuckDbEngine`
  (``duckdb:///path``) run every query and schema read in the database's own worker processes
  (:mod:`servers.core.isolation`, functions in :mod:`servers.text2sql.sql_worker`): a memory cap
  per process, and a query that outlives its time limit is killed with its process, so none can
  pin a thread or grow the server.
- :class:`SqlAlchemyEngine` (any other SQLAlchemy URL: ``postgresql://...``, ``mysql://...``)
  runs in the server: every call is a read-only transaction that is always rolled back, and the
  database server itself enforces the time limit (Postgres ``statement_timeout``, MySQL
  ``max_execution_time``). Give the server a read-only role as well (see the README).
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from servers.core.errors import ConfigError, NotFound, Timeout, TooLarge
from servers.core.isolation import WorkerPool, WorkerSpec
from servers.text2sql import sql_worker
from servers.text2sql.results import (
    QueryResult,
    make_result,
    memory_error,
    readonly_refusal,
    rejected,
    timeout_error,
)
from servers.text2sql.schema import ColumnInfo, ForeignKeyInfo, IndexInfo, TableInfo, load_descriptions
from servers.text2sql.sql_worker import SqlLimits

SCHEMA_TTL_S = 30.0  # server databases: re-read the schema at most this often
SCHEMA_TIMEOUT_S = 60.0  # reading a file database's schema
KILL_GRACE_S = 1.0  # a worker that has not stopped its own query this long after the limit is killed
WORKERS_PER_DATABASE = 2
IDLE_S = 300.0

# sqlglot dialect names for SQLAlchemy dialect names.
DIALECTS = {
    "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "mssql": "tsql", "oracle": "oracle",
    "snowflake": "snowflake", "bigquery": "bigquery", "redshift": "redshift", "trino": "trino",
    "clickhouse": "clickhouse", "databricks": "databricks", "sqlite": "sqlite", "duckdb": "duckdb",
}


class Engine(ABC):
    """A database opened read-only: run one query, list tables, explain, and say where it is."""

    kind: ClassVar[str]
    dialect: str
    path: Path | None = None

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the database is, passwords hidden."""

    @abstractmethod
    def execute(self, sql: str, *, max_rows: int, timeout_s: float) -> QueryResult:
        """Run one statement read-only; no SQL check here (see :mod:`.sqlcheck`)."""

    @abstractmethod
    def tables(self) -> list[TableInfo]:
        """Tables and views with columns, keys and indexes."""

    @abstractmethod
    def schema_stamp(self) -> object:
        """Changes when the schema may have changed (the schema cache's key)."""

    def explain_sql(self, sql: str) -> str:
        """The statement that asks for the plan of ``sql`` (never ANALYZE: nothing runs)."""
        return f"EXPLAIN {sql}"

    def plan_text(self, result: QueryResult) -> str:
        """The plan rows as text."""
        return "\n".join(" | ".join(str(v) for v in row) for row in result.rows)

    def descriptions(self) -> dict[str, dict[str, str]]:
        """Table and column descriptions the engine knows besides the schema (none by default)."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional: most engines hold nothing to release
        """Release processes or connections."""


# ---------------------------------------------------------------- files, in worker processes

_pools: dict[tuple[str, str, SqlLimits], WorkerPool] = {}
_pools_lock = threading.Lock()


class FileEngine(Engine):
    """A database file read in its own worker processes (one pool per file and limits)."""

    preload: ClassVar[tuple[str, ...]]
    address_space_slack_mb: ClassVar[float] = 0.0
    query_function: ClassVar[Callable[..., QueryResult]]  # run in the worker: (path, sql, max_rows, timeout_s, limits)
    tables_function: ClassVar[Callable[..., list[TableInfo]]]  # run in the worker: (path, name, limits)

    def __init__(self, name: str, path: Path, limits: SqlLimits | None = None) -> None:
        self.name = name
        self.path = path
        self.limits = limits or SqlLimits()
        self.dialect = self.kind

    @property
    def location(self) -> str:
        return str(self.path)

    def pool(self) -> WorkerPool:
        key = (self.kind, str(self.path), self.limits)
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                spec = WorkerSpec(
                    f"database '{self.name}'", timeout_s=SCHEMA_TIMEOUT_S, max_memory_mb=self.limits.max_memory_mb,
                    preload=self.preload, timeout_key="text2sql.timeout_s", memory_key="text2sql.max_memory_mb",
                    address_space_slack_mb=self.address_space_slack_mb,
                )
                pool = _pools[key] = WorkerPool(spec, size=WORKERS_PER_DATABASE, idle_s=IDLE_S)
            return pool

    def _run(self, fn: Any, *args: Any, limit_s: float, timeout_s: float | None = None) -> Any:
        try:
            return self.pool().run(fn, *args, limit_s=limit_s, label=f"the query on database '{self.name}'")
        except Timeout as exc:
            raise (timeout_error(timeout_s) if timeout_s is not None else exc) from None
        except TooLarge as exc:
            raise (memory_error(self.limits.max_memory_mb) if "memory cap" in str(exc) else exc) from None

    def execute(self, sql: str, *, max_rows: int, timeout_s: float) -> QueryResult:
        return self._run(self.query_function, str(self.path), sql, max_rows, timeout_s, self.limits,
                         limit_s=timeout_s + KILL_GRACE_S, timeout_s=timeout_s)

    def tables(self) -> list[TableInfo]:
        return self._run(self.tables_function, str(self.path), self.name, self.limits, limit_s=SCHEMA_TIMEOUT_S)

    def schema_stamp(self) -> object:
        assert self.path is not None
        try:
            st = self.path.stat()
        except OSError as exc:
            raise NotFound(f"database '{self.name}': file {self.path} is missing") from exc
        return (st.st_mtime_ns, st.st_size)

    def descriptions(self) -> dict[str, dict[str, str]]:
        """``<file stem>.descriptions.json`` next to the file, if present."""
        assert self.path is not None
        sidecar = self.path.with_name(f"{self.path.stem}.descriptions.json")
        if not sidecar.is_file():
            return {}
        try:
            return load_descriptions(json.loads(sidecar.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}



class SqliteEngine(FileEngine):
    kind = "sqlite"
    preload = ("servers.text2sql.sql_worker",)
    query_function = staticmethod(sql_worker.sqlite_query)
    tables_function = staticmethod(sql_worker.sqlite_tables)

    def explain_sql(self, sql: str) -> str:
        return f"EXPLAIN QUERY PLAN {sql}"

    def plan_text(self, result: QueryResult) -> str:
        if result.columns[:2] != ["id", "parent"]:
            return super().plan_text(result)
        depth: dict[int, int] = {0: -1}
        lines = []
        for node_id, parent, _unused, detail in result.rows:
            depth[node_id] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node_id] + str(detail))
        return "\n".join(lines)


class DuckDbEngine(FileEngine):
    kind = "duckdb"
    preload = ("servers.text2sql.sql_worker", "duckdb")
    address_space_slack_mb = 1024.0  # DuckDB's threads reserve address space they never touch
    query_function = staticmethod(sql_worker.duckdb_query)
    tables_function = staticmethod(sql_worker.duckdb_tables)

    def plan_text(self, result: QueryResult) -> str:
        if len(result.columns) != 2:
            return super().plan_text(result)
        return "\n".join(str(row[1]) for row in result.rows)


# ---------------------------------------------------------------- SQLAlchemy, in the server

class SqlAlchemyEngine(Engine):
    kind = "sqlalchemy"

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        self._engine: Any = None
        self._lock = threading.Lock()
        backend = self._sqlalchemy_url().get_backend_name()
        self.dialect = DIALECTS.get(backend, backend)

    def _sqlalchemy_url(self) -> Any:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(self.url)
        except ArgumentError as exc:
            raise ConfigError(f"database '{self.name}': invalid SQLAlchemy URL ({exc})") from exc

    @property
    def location(self) -> str:
        return self._sqlalchemy_url().render_as_string(hide_password=True)

    def schema_stamp(self) -> object:
        return int(time.monotonic() // SCHEMA_TTL_S)

    def explain_sql(self, sql: str) -> str:
        return f"EXPLAIN (FORMAT TEXT) {sql}" if self.dialect == "postgres" else f"EXPLAIN {sql}"

    def _engine_(self) -> Any:
        with self._lock:
            if self._engine is None:
                from sqlalchemy import create_engine

                try:
                    self._engine = create_engine(self._sqlalchemy_url(), pool_pre_ping=True, pool_size=2, max_overflow=2)
                except Exception as exc:  # missing driver, bad options
                    raise ConfigError(f"database '{self.name}': cannot create an engine for {self.location}: {exc}") from exc
            return self._engine

    @contextmanager
    def _readonly_connection(self, timeout_s: float) -> Iterator[Any]:
        """A connection inside a read-only transaction that is always rolled back."""
        from sqlalchemy.exc import SQLAlchemyError

        engine = self._engine_()
        try:
            conn = engine.connect().execution_options(no_parameters=True)
        except SQLAlchemyError as exc:
            raise ConfigError(f"database '{self.name}' at {self.location} is unreachable: {exc}") from exc
        ms = max(1, int(timeout_s * 1000))
        try:
            backend = engine.dialect.name
            if backend == "postgresql":  # first statements of the (implicitly begun) transaction
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
            elif backend in ("mysql", "mariadb"):  # applies from the next transaction on
                conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
                conn.exec_driver_sql(f"SET SESSION max_execution_time = {ms}")
                conn.commit()
            elif backend == "oracle":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            # other dialects: the configured role must be read-only (see the README)
            yield conn
        finally:
            try:
                conn.rollback()
            finally:
                conn.close()

    def execute(self, sql: str, *, max_rows: int, timeout_s: float) -> QueryResult:
        from sqlalchemy.exc import DBAPIError

        start = time.perf_counter()
        try:
            with self._readonly_connection(timeout_s) as conn:
                result = conn.exec_driver_sql(sql)
                if not result.returns_rows:
                    return make_result([], [], max_rows, start)
                columns = list(result.keys())
                rows = result.fetchmany(max_rows + 1)
                return make_result(columns, [tuple(r) for r in rows], max_rows, start)
        except DBAPIError as exc:
            text = str(exc.orig).lower()
            if "read-only" in text or "read only" in text or "permission denied" in text:
                raise readonly_refusal(str(exc.orig).splitlines()[0]) from exc
            if "statement timeout" in text or "max_execution_time" in text or "canceling statement" in text:
                raise timeout_error(timeout_s) from exc
            raise rejected(exc.orig) from exc

    def tables(self) -> list[TableInfo]:
        from sqlalchemy import inspect
        from sqlalchemy.exc import SQLAlchemyError

        try:
            insp = inspect(self._engine_())
            names = [(n, "table") for n in insp.get_table_names()] + [(n, "view") for n in insp.get_view_names()]
            tables = []
            for name, kind in names:
                pk = set(insp.get_pk_constraint(name).get("constrained_columns") or []) if kind == "table" else set()
                columns = [
                    ColumnInfo(name=c["name"], type=str(c["type"]), nullable=bool(c.get("nullable", True)),
                               primary_key=c["name"] in pk, description=c.get("comment"))
                    for c in insp.get_columns(name)
                ]
                fks = [
                    ForeignKeyInfo(columns=fk["constrained_columns"], ref_table=fk["referred_table"],
                                   ref_columns=fk["referred_columns"])
                    for fk in (insp.get_foreign_keys(name) if kind == "table" else [])
                ]
                indexes = [
                    IndexInfo(name=ix["name"] or "", table=name, columns=[c or "<expr>" for c in ix["column_names"]],
                              unique=bool(ix.get("unique")))
                    for ix in (insp.get_indexes(name) if kind == "table" else [])
                ]
                try:
                    comment = (insp.get_table_comment(name) or {}).get("text") if kind == "table" else None
                except NotImplementedError:
                    comment = None
                tables.append(TableInfo(name=name, kind=kind, columns=columns, foreign_keys=fks, indexes=indexes,
                                        description=comment))
            return tables
        except SQLAlchemyError as exc:
            raise ConfigError(f"database '{self.name}' at {self.location}: cannot read the schema: {exc}") from exc

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


# ---------------------------------------------------------------- choosing one

def open_engine(name: str, target: str, limits: SqlLimits | None = None) -> Engine:
    """The engine for a ``text2sql.databases`` entry: a SQLite path, ``sqlite:///`` or ``duckdb:///``
    URL, or any other SQLAlchemy URL."""
    text = target.strip()
    if not text:
        raise ConfigError("empty database location in text2sql.databases: give a SQLite path or a SQLAlchemy URL")
    if "://" not in text:
        return SqliteEngine(name, Path(text).expanduser().resolve(), limits)
    scheme, _, rest = text.partition("://")
    base = scheme.split("+", 1)[0].lower()
    if base in ("sqlite", "duckdb"):
        location = rest[1:] if rest.startswith("/") else rest  # sqlite:///rel, sqlite:////abs
        location = location.split("?", 1)[0]
        if not location or location == ":memory:":
            raise ConfigError(f"database URL {text!r} has no file; in-memory databases cannot be served")
        engine_class = SqliteEngine if base == "sqlite" else DuckDbEngine
        return engine_class(name, Path(location).expanduser().resolve(), limits)
    return SqlAlchemyEngine(name, text)
