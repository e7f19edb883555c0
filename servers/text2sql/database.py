"""Named databases opened read-only, with row and time limits enforced by the connection.

Three backends, one interface (:class:`Database`):

- **SQLite** (a file path, or ``sqlite:///path``): a fresh connection per call, opened with the
  ``file:...?mode=ro`` URI, ``PRAGMA query_only=ON``, no attached databases, a 10 MB value cap, and
  an authorizer that allows only reads (no writes, DDL, PRAGMA, ATTACH, transactions,
  ``load_extension``/file functions); a progress handler aborts queries past the time limit.
- **DuckDB** (``duckdb:///path``): ``read_only=True`` with external access (files, ATTACH, COPY,
  extension install/load) disabled and the configuration locked; a timer interrupts long queries.
- **Any other SQLAlchemy URL** (``postgresql://...``, ``mysql://...``): every call runs in a
  read-only transaction (Postgres ``SET TRANSACTION READ ONLY`` + ``statement_timeout``, MySQL
  ``START TRANSACTION READ ONLY`` + ``max_execution_time``) that is always rolled back. Give the
  server a database role that can only read as well (see the README).

Rows come back through ``fetchmany(max_rows + 1)``, so a huge result never materialises here.
The SQL check (:mod:`.sqlcheck`) sits on top of this; this module alone must already refuse writes.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from servers.core.errors import AccessDenied, ConfigError, InvalidInput, NotFound, TooLarge
from servers.text2sql.schema import (
    ColumnInfo,
    DatabaseSchema,
    ForeignKeyInfo,
    IndexInfo,
    TableInfo,
    load_descriptions,
)

Kind = Literal["sqlite", "duckdb", "sqlalchemy"]

MAX_CELL_CHARS = 2000  # longer text values are cut (and flagged) in results
SQLITE_MAX_VALUE_BYTES = 10_000_000  # no string/blob bigger than this can be built by a query
SCHEMA_TTL_S = 30.0  # server databases: re-read the schema at most this often

# sqlglot dialect names for SQLAlchemy dialect names.
DIALECTS = {
    "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "mssql": "tsql", "oracle": "oracle",
    "snowflake": "snowflake", "bigquery": "bigquery", "redshift": "redshift", "trino": "trino",
    "clickhouse": "clickhouse", "databricks": "databricks", "sqlite": "sqlite", "duckdb": "duckdb",
}

# SQLite functions that touch files or the process (the authorizer denies them even if compiled in).
SQLITE_DENIED_FUNCTIONS = frozenset(
    {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile", "sqlar_compress",
     "sqlar_uncompress", "shell", "system", "sqlite_dbpage", "fsdir", "lsmode"}
)


class QueryResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_count: int = Field(description="rows returned (at most max_rows)")
    truncated: bool = Field(description="true when the query had more rows than max_rows (or a value was cut)")
    elapsed_ms: float


# ---------------------------------------------------------------- values

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


def _result(columns: list[str], raw_rows: list[Any], max_rows: int, start: float) -> QueryResult:
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


def _timeout(timeout_s: float) -> TooLarge:
    return TooLarge(
        f"the query ran longer than the {timeout_s:g} s time limit and was stopped; "
        "add WHERE filters, avoid cross joins, aggregate, or add LIMIT"
    )


def _readonly_refusal(detail: str) -> AccessDenied:
    return AccessDenied(
        f"refused by the read-only connection ({detail}); this server only runs one read-only "
        "SELECT (or WITH ... SELECT) statement: no INSERT/UPDATE/DELETE/DDL, PRAGMA, ATTACH or file access"
    )


def _rejected(exc: Exception) -> InvalidInput:
    message = " ".join(str(exc).split())[:500]
    return InvalidInput(f"the database rejected the query: {message}; fix the SQL (sql_validate and "
                        "sql_search_schema show the real table and column names)")


# ---------------------------------------------------------------- SQLite

def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    """Allow reads only: SELECT, column reads, recursive CTEs, and functions other than file/extension ones."""
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        name = (arg2 or arg1 or "").lower()
        return sqlite3.SQLITE_DENY if name in SQLITE_DENIED_FUNCTIONS else sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def sqlite_connect(path: Path, *, guarded: bool = True) -> sqlite3.Connection:
    """A read-only connection to an existing SQLite file (``guarded`` adds the read-only authorizer)."""
    if not path.is_file():
        raise NotFound(f"SQLite file {path} does not exist; check the database path in text2sql.databases")
    uri = f"file:{quote(str(path))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=2.0)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, SQLITE_MAX_VALUE_BYTES)
        if hasattr(conn, "enable_load_extension"):
            conn.enable_load_extension(False)
        if guarded:
            conn.set_authorizer(_sqlite_authorizer)
    except BaseException:
        conn.close()
        raise
    return conn


def _sqlite_errors(exc: sqlite3.Error, timed_out: bool, timeout_s: float) -> Exception:
    text = str(exc).lower()
    if timed_out or "interrupted" in text:
        return _timeout(timeout_s)
    if "not authorized" in text or "authorization denied" in text or "readonly" in text or "read-only" in text or "query_only" in text:
        return _readonly_refusal(str(exc))
    if "too many attached" in text:
        return _readonly_refusal("ATTACH is disabled")
    if "too big" in text:
        return TooLarge(f"a value in the query grew past {SQLITE_MAX_VALUE_BYTES // 1_000_000} MB ({exc}); "
                        "build smaller strings or blobs")
    return _rejected(exc)


# ---------------------------------------------------------------- DuckDB

DUCKDB_CONFIG = {
    "enable_external_access": False,  # no files, ATTACH, COPY TO, httpfs
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,  # SET cannot undo the above
    "memory_limit": "1GB",
}


def duckdb_connect(path: Path) -> Any:
    import duckdb

    if not path.is_file():
        raise NotFound(f"DuckDB file {path} does not exist; check the database URL in text2sql.databases")
    try:
        return duckdb.connect(str(path), read_only=True, config=dict(DUCKDB_CONFIG))
    except duckdb.Error as exc:
        raise ConfigError(f"cannot open DuckDB file {path} read-only: {exc}") from exc


def _duckdb_errors(exc: Exception, timed_out: bool, timeout_s: float) -> Exception:
    import duckdb

    text = str(exc).lower()
    if timed_out or isinstance(exc, duckdb.InterruptException):
        return _timeout(timeout_s)
    if isinstance(exc, duckdb.PermissionException) or "read-only" in text or "read only" in text:
        return _readonly_refusal(str(exc).splitlines()[0])
    if isinstance(exc, duckdb.OutOfMemoryException):
        return TooLarge(f"the query needed more memory than allowed ({DUCKDB_CONFIG['memory_limit']}); aggregate or filter more")
    return _rejected(exc)


@contextmanager
def _interrupt_after(timeout_s: float, interrupt: Callable[[], None]) -> Iterator[Callable[[], bool]]:
    """Call ``interrupt`` if the block runs longer than ``timeout_s``; yields 'did it fire?'."""
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        interrupt()

    timer = threading.Timer(timeout_s, fire)
    timer.daemon = True
    timer.start()
    try:
        yield fired.is_set
    finally:
        timer.cancel()


# ---------------------------------------------------------------- the database

class Database:
    """A named database, always opened read-only. Thread-safe: every call uses a fresh connection."""

    def __init__(self, name: str, target: str, *, descriptions: dict[str, dict[str, str]] | None = None):
        self.name = name
        self.target = target
        self.kind, self.path, self.url = self._classify(target)
        self.descriptions = descriptions if descriptions is not None else self._sidecar_descriptions()
        self._engine: Any = None
        self._schema: DatabaseSchema | None = None
        self._schema_stamp: object = None
        self._lock = threading.Lock()
        if self.kind == "sqlalchemy":
            self.dialect = DIALECTS.get(self._sqlalchemy_url().get_backend_name(), self._sqlalchemy_url().get_backend_name())
        else:
            self.dialect = self.kind

    # ------------------------------------------------------------ identity
    @staticmethod
    def _classify(target: str) -> tuple[Kind, Path | None, str | None]:
        text = target.strip()
        if not text:
            raise ConfigError("empty database location in text2sql.databases: give a SQLite path or a SQLAlchemy URL")
        if "://" not in text:
            return "sqlite", Path(text).expanduser().resolve(), None
        scheme, _, rest = text.partition("://")
        base = scheme.split("+", 1)[0].lower()
        if base in ("sqlite", "duckdb"):
            location = rest[1:] if rest.startswith("/") else rest  # sqlite:///rel, sqlite:////abs
            location = location.split("?", 1)[0]
            if not location or location == ":memory:":
                raise ConfigError(f"database URL {text!r} has no file; in-memory databases cannot be served")
            return base, Path(location).expanduser().resolve(), None  # type: ignore[return-value]
        return "sqlalchemy", None, text

    def _sqlalchemy_url(self) -> Any:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(self.url or "")
        except ArgumentError as exc:
            raise ConfigError(f"database '{self.name}': invalid SQLAlchemy URL ({exc})") from exc

    @property
    def location(self) -> str:
        """Where the database is, passwords hidden."""
        if self.kind != "sqlalchemy":
            return str(self.path)
        return self._sqlalchemy_url().render_as_string(hide_password=True)

    def _sidecar_descriptions(self) -> dict[str, dict[str, str]]:
        """``<file stem>.descriptions.json`` next to a SQLite/DuckDB file, if present."""
        if self.path is None:
            return {}
        sidecar = self.path.with_name(f"{self.path.stem}.descriptions.json")
        if not sidecar.is_file():
            return {}
        try:
            return load_descriptions(json.loads(sidecar.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    # ------------------------------------------------------------ execution
    def execute(self, sql: str, *, max_rows: int, timeout_s: float) -> QueryResult:
        """Run one statement on a read-only connection; no SQL check here (see :mod:`.sqlcheck`)."""
        if max_rows < 1:
            raise InvalidInput("max_rows must be at least 1")
        if self.kind == "sqlite":
            return self._sqlite_execute(sql, max_rows, timeout_s)
        if self.kind == "duckdb":
            return self._duckdb_execute(sql, max_rows, timeout_s)
        return self._sqlalchemy_execute(sql, max_rows, timeout_s)

    def explain_sql(self, sql: str) -> str:
        """The statement that asks this database for its plan of ``sql`` (never ANALYZE: nothing runs)."""
        if self.kind == "sqlite":
            return f"EXPLAIN QUERY PLAN {sql}"
        if self.dialect == "postgres":
            return f"EXPLAIN (FORMAT TEXT) {sql}"
        return f"EXPLAIN {sql}"

    def _sqlite_execute(self, sql: str, max_rows: int, timeout_s: float) -> QueryResult:
        assert self.path is not None
        conn = sqlite_connect(self.path)
        deadline = time.monotonic() + timeout_s
        timed_out = False

        def progress() -> int:
            nonlocal timed_out
            if time.monotonic() > deadline:
                timed_out = True
                return 1
            return 0

        conn.set_progress_handler(progress, 2000)
        start = time.perf_counter()
        try:
            cursor = conn.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(max_rows + 1) if cursor.description else []
            return _result(columns, rows, max_rows, start)
        except sqlite3.Warning as exc:  # "You can only execute one statement at a time."
            raise InvalidInput(f"only one SQL statement per call is allowed ({exc})") from exc
        except sqlite3.Error as exc:
            raise _sqlite_errors(exc, timed_out, timeout_s) from exc
        finally:
            conn.close()

    def _duckdb_execute(self, sql: str, max_rows: int, timeout_s: float) -> QueryResult:
        import duckdb

        assert self.path is not None
        conn = duckdb_connect(self.path)
        start = time.perf_counter()
        try:
            with _interrupt_after(timeout_s, conn.interrupt) as fired:
                try:
                    cursor = conn.execute(sql)
                    columns = [d[0] for d in cursor.description or []]
                    rows = cursor.fetchmany(max_rows + 1) if cursor.description else []
                except duckdb.Error as exc:
                    raise _duckdb_errors(exc, fired(), timeout_s) from exc
            return _result(columns, rows, max_rows, start)
        finally:
            conn.close()

    def _sqlalchemy_engine(self) -> Any:
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
        """A SQLAlchemy connection inside a read-only transaction that is always rolled back."""
        from sqlalchemy.exc import SQLAlchemyError

        engine = self._sqlalchemy_engine()
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

    def _sqlalchemy_execute(self, sql: str, max_rows: int, timeout_s: float) -> QueryResult:
        from sqlalchemy.exc import DBAPIError

        start = time.perf_counter()
        try:
            with self._readonly_connection(timeout_s) as conn:
                result = conn.exec_driver_sql(sql)
                if not result.returns_rows:
                    return _result([], [], max_rows, start)
                columns = list(result.keys())
                rows = result.fetchmany(max_rows + 1)
                return _result(columns, [tuple(r) for r in rows], max_rows, start)
        except DBAPIError as exc:
            text = str(exc.orig).lower()
            if "read-only" in text or "read only" in text or "permission denied" in text:
                raise _readonly_refusal(str(exc.orig).splitlines()[0]) from exc
            if "statement timeout" in text or "max_execution_time" in text or "canceling statement" in text:
                raise _timeout(timeout_s) from exc
            raise _rejected(exc.orig) from exc

    # ------------------------------------------------------------ schema
    def schema(self, *, refresh: bool = False) -> DatabaseSchema:
        """The introspected schema (cached; re-read when a file changes or after a short TTL)."""
        stamp: object
        if self.path is not None:
            try:
                st = self.path.stat()
            except OSError as exc:
                raise NotFound(f"database '{self.name}': file {self.path} is missing") from exc
            stamp = (st.st_mtime_ns, st.st_size)
        else:
            stamp = int(time.monotonic() // SCHEMA_TTL_S)
        with self._lock:
            if self._schema is not None and self._schema_stamp == stamp and not refresh:
                return self._schema
        if self.kind == "sqlite":
            tables = self._sqlite_tables()
        elif self.kind == "duckdb":
            tables = self._duckdb_tables()
        else:
            tables = self._sqlalchemy_tables()
        schema = DatabaseSchema(dialect=self.dialect, tables=tables)
        schema.apply_descriptions(self.descriptions)
        with self._lock:
            self._schema, self._schema_stamp = schema, stamp
        return schema

    def _sqlite_tables(self) -> list[TableInfo]:
        assert self.path is not None
        conn = sqlite_connect(self.path, guarded=False)  # PRAGMA reads need no authorizer; still mode=ro
        try:
            objects = conn.execute(
                "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY type, name"
            ).fetchall()
            tables = []
            for name, kind in objects:
                q = '"' + name.replace('"', '""') + '"'
                columns = [
                    ColumnInfo(name=c[1], type=c[2] or "", nullable=not c[3], primary_key=bool(c[5]))
                    for c in conn.execute(f"PRAGMA table_info({q})")
                ]
                pk = [c.name for c in columns if c.primary_key]
                fks: dict[int, ForeignKeyInfo] = {}
                for fid, _seq, ref, src, dst, *_ in conn.execute(f"PRAGMA foreign_key_list({q})"):
                    fk = fks.setdefault(fid, ForeignKeyInfo(columns=[], ref_table=ref, ref_columns=[]))
                    fk.columns.append(src)
                    fk.ref_columns.append(dst or "")
                indexes = []
                for _seq, iname, unique, origin, *_ in conn.execute(f"PRAGMA index_list({q})"):
                    iq = '"' + iname.replace('"', '""') + '"'
                    cols = [r[2] or "<expr>" for r in conn.execute(f"PRAGMA index_info({iq})")]
                    indexes.append(IndexInfo(name=iname, table=name, columns=cols, unique=bool(unique)))
                    if origin == "pk" and not pk:
                        pk = cols
                tables.append(TableInfo(name=name, kind=kind, columns=columns, foreign_keys=list(fks.values()),
                                        indexes=indexes))
            by_name = {t.name.lower(): t for t in tables}
            for table in tables:  # REFERENCES t with no column list means t's primary key
                for fk in table.foreign_keys:
                    target = by_name.get(fk.ref_table.lower())
                    if target and not all(fk.ref_columns):
                        fk.ref_columns = target.primary_key or fk.ref_columns
            return tables
        except sqlite3.Error as exc:
            raise ConfigError(f"database '{self.name}' ({self.path}) is not a readable SQLite database: {exc}") from exc
        finally:
            conn.close()

    def _duckdb_tables(self) -> list[TableInfo]:
        import duckdb

        assert self.path is not None
        conn = duckdb_connect(self.path)
        try:
            def rows(sql: str) -> list[tuple]:
                return conn.execute(sql).fetchall()

            where = "database_name = current_database() AND NOT internal"

            def qualified(schema: str, name: str) -> str:
                return name if schema == "main" else f"{schema}.{name}"

            objects = [(qualified(s, n), "table") for s, n in rows(f"SELECT schema_name, table_name FROM duckdb_tables() WHERE {where}")]
            objects += [(qualified(s, n), "view") for s, n in rows(f"SELECT schema_name, view_name FROM duckdb_views() WHERE {where}")]
            columns: dict[str, list[ColumnInfo]] = {}
            for s, t, c, typ, nullable in rows(
                f"SELECT schema_name, table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
                f"WHERE {where} ORDER BY table_name, column_index"
            ):
                columns.setdefault(qualified(s, t), []).append(ColumnInfo(name=c, type=typ, nullable=bool(nullable)))
            fks: dict[str, list[ForeignKeyInfo]] = {}
            for s, t, ctype, cols, ref, refcols in rows(
                "SELECT schema_name, table_name, constraint_type, constraint_column_names, referenced_table, "
                "referenced_column_names FROM duckdb_constraints() WHERE database_name = current_database()"
            ):
                name = qualified(s, t)
                if ctype == "PRIMARY KEY":
                    for col in columns.get(name, []):
                        col.primary_key = col.primary_key or col.name in cols
                elif ctype == "FOREIGN KEY" and ref:
                    fks.setdefault(name, []).append(ForeignKeyInfo(columns=list(cols), ref_table=ref, ref_columns=list(refcols)))
            indexes: dict[str, list[IndexInfo]] = {}
            for s, iname, t, unique, exprs in rows(
                "SELECT schema_name, index_name, table_name, is_unique, expressions FROM duckdb_indexes() "
                "WHERE database_name = current_database()"
            ):
                cols = [e.strip() for e in str(exprs or "").strip("[]").split(",") if e.strip()]
                indexes.setdefault(qualified(s, t), []).append(IndexInfo(name=iname, table=qualified(s, t), columns=cols, unique=bool(unique)))
            return [
                TableInfo(name=n, kind=k, columns=columns.get(n, []), foreign_keys=fks.get(n, []), indexes=indexes.get(n, []))
                for n, k in objects
            ]
        except duckdb.Error as exc:
            raise ConfigError(f"database '{self.name}' ({self.path}): cannot read the DuckDB schema: {exc}") from exc
        finally:
            conn.close()

    def _sqlalchemy_tables(self) -> list[TableInfo]:
        from sqlalchemy import inspect
        from sqlalchemy.exc import SQLAlchemyError

        try:
            insp = inspect(self._sqlalchemy_engine())
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
