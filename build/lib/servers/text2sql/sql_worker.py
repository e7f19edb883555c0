"""What runs inside a database's worker process (see :mod:`servers.text2sql.engines`): read-only
connections to SQLite and DuckDB files, queries under limits, schema introspection.

The worker process is itself the last line of defence: it has a memory cap (``RLIMIT_AS``) and
is killed when a query outlives its time limit. Inside it, each engine also stops queries by
itself where it can (SQLite's progress handler, DuckDB's interrupt), so most timeouts need no
kill, and SQLite's length and LIKE-pattern limits refuse the single huge function calls that a
progress handler cannot interrupt.

- **SQLite**: a fresh connection per call, ``file:...?mode=ro``, ``PRAGMA query_only=ON``, no
  attached databases, capped value and LIKE/GLOB pattern sizes, and an authorizer that allows
  only reads (no writes, DDL, PRAGMA, ATTACH, transactions, ``load_extension``/file functions).
- **DuckDB**: ``read_only=True`` with external access (files, ATTACH, COPY, extension
  install/load) disabled, a memory limit, and the configuration locked.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from servers.core.errors import ConfigError, InvalidInput, NotFound, TooLarge
from servers.text2sql.results import QueryResult, make_result, readonly_refusal, rejected, timeout_error
from servers.text2sql.schema import ColumnInfo, ForeignKeyInfo, IndexInfo, TableInfo


class SqlLimits(BaseModel):
    """Limits of one database's worker (from ``[text2sql]``)."""

    model_config = ConfigDict(frozen=True)

    max_memory_mb: float = 1024.0
    max_value_bytes: int = 1_000_000
    max_like_pattern: int = 500
    duckdb_threads: int = 2


# SQLite functions that touch files or the process (the authorizer denies them even if compiled in).
SQLITE_DENIED_FUNCTIONS = frozenset(
    {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile", "sqlar_compress",
     "sqlar_uncompress", "shell", "system", "sqlite_dbpage", "fsdir", "lsmode"}
)


# ---------------------------------------------------------------- SQLite

def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    """Allow reads only: SELECT, column reads, recursive CTEs, and functions other than file/extension ones."""
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        name = (arg2 or arg1 or "").lower()
        return sqlite3.SQLITE_DENY if name in SQLITE_DENIED_FUNCTIONS else sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def sqlite_connect(path: Path, limits: SqlLimits, *, guarded: bool = True) -> sqlite3.Connection:
    """A read-only connection to an existing SQLite file (``guarded`` adds the read-only authorizer)."""
    if not path.is_file():
        raise NotFound(f"SQLite file {path} does not exist; check the database path in text2sql.databases")
    uri = f"file:{quote(str(path))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=2.0)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, limits.max_like_pattern)
        if hasattr(conn, "enable_load_extension"):
            conn.enable_load_extension(False)
        if guarded:
            conn.set_authorizer(_sqlite_authorizer)
    except BaseException:
        conn.close()
        raise
    return conn


def _sqlite_error(exc: sqlite3.Error, timed_out: bool, timeout_s: float, limits: SqlLimits) -> Exception:
    text = str(exc).lower()
    if timed_out or "interrupted" in text:
        return timeout_error(timeout_s)
    if "not authorized" in text or "authorization denied" in text or "readonly" in text or "read-only" in text or "query_only" in text:
        return readonly_refusal(str(exc))
    if "too many attached" in text:
        return readonly_refusal("ATTACH is disabled")
    if "pattern too complex" in text:
        return TooLarge(f"a LIKE or GLOB pattern is longer than {limits.max_like_pattern} bytes "
                        "(text2sql.max_like_pattern); use a shorter pattern")
    if "too big" in text:
        return TooLarge(f"a value in the query grew past {limits.max_value_bytes:,} bytes (text2sql.max_value_bytes; "
                        f"{exc}); build smaller strings or blobs")
    return rejected(exc)


def sqlite_query(path: str, sql: str, max_rows: int, timeout_s: float, limits: SqlLimits) -> QueryResult:
    """Run one statement on a guarded read-only connection; a progress handler stops it at ``timeout_s``."""
    conn = sqlite_connect(Path(path), limits)
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
        return make_result(columns, rows, max_rows, start)
    except sqlite3.Warning as exc:  # "You can only execute one statement at a time."
        raise InvalidInput(f"only one SQL statement per call is allowed ({exc})") from exc
    except sqlite3.Error as exc:
        raise _sqlite_error(exc, timed_out, timeout_s, limits) from exc
    finally:
        conn.close()


def sqlite_tables(path: str, name: str, limits: SqlLimits) -> list[TableInfo]:
    """Tables and views with columns, keys and indexes (PRAGMA reads: no authorizer, still ``mode=ro``)."""
    conn = sqlite_connect(Path(path), limits, guarded=False)
    try:
        objects = conn.execute(
            "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY type, name"
        ).fetchall()
        tables = []
        for table, kind in objects:
            q = '"' + table.replace('"', '""') + '"'
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
                indexes.append(IndexInfo(name=iname, table=table, columns=cols, unique=bool(unique)))
                if origin == "pk" and not pk:
                    pk = cols
            tables.append(TableInfo(name=table, kind=kind, columns=columns, foreign_keys=list(fks.values()),
                                    indexes=indexes))
        by_name = {t.name.lower(): t for t in tables}
        for table_info in tables:  # REFERENCES t with no column list means t's primary key
            for fk in table_info.foreign_keys:
                target = by_name.get(fk.ref_table.lower())
                if target and not all(fk.ref_columns):
                    fk.ref_columns = target.primary_key or fk.ref_columns
        return tables
    except sqlite3.Error as exc:
        raise ConfigError(f"database '{name}' ({path}) is not a readable SQLite database: {exc}") from exc
    finally:
        conn.close()


# ---------------------------------------------------------------- DuckDB

def duckdb_config(limits: SqlLimits) -> dict[str, Any]:
    return {
        "enable_external_access": False,  # no files, ATTACH, COPY TO, httpfs
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "memory_limit": f"{int(limits.max_memory_mb)}MB",
        "threads": limits.duckdb_threads,
        "lock_configuration": True,  # SET cannot undo the above
    }


def duckdb_connect(path: Path, limits: SqlLimits) -> Any:
    import duckdb

    if not path.is_file():
        raise NotFound(f"DuckDB file {path} does not exist; check the database URL in text2sql.databases")
    try:
        return duckdb.connect(str(path), read_only=True, config=duckdb_config(limits))
    except duckdb.Error as exc:
        raise ConfigError(f"cannot open DuckDB file {path} read-only: {exc}") from exc


def _duckdb_error(exc: Exception, timed_out: bool, timeout_s: float, limits: SqlLimits) -> Exception:
    import duckdb

    text = str(exc).lower()
    if timed_out or isinstance(exc, duckdb.InterruptException):
        return timeout_error(timeout_s)
    if isinstance(exc, duckdb.PermissionException) or "read-only" in text or "read only" in text:
        return readonly_refusal(str(exc).splitlines()[0])
    if isinstance(exc, duckdb.OutOfMemoryException) or "out of memory" in text:
        return TooLarge(f"the query needed more memory than allowed ({limits.max_memory_mb:g} MB, "
                        "text2sql.max_memory_mb); aggregate or filter more, and build smaller strings")
    return rejected(exc)


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


def duckdb_query(path: str, sql: str, max_rows: int, timeout_s: float, limits: SqlLimits) -> QueryResult:
    import duckdb

    conn = duckdb_connect(Path(path), limits)
    start = time.perf_counter()
    try:
        with _interrupt_after(timeout_s, conn.interrupt) as fired:
            try:
                cursor = conn.execute(sql)
                columns = [d[0] for d in cursor.description or []]
                rows = cursor.fetchmany(max_rows + 1) if cursor.description else []
            except duckdb.Error as exc:
                raise _duckdb_error(exc, fired(), timeout_s, limits) from exc
        return make_result(columns, rows, max_rows, start)
    finally:
        conn.close()


def duckdb_tables(path: str, name: str, limits: SqlLimits) -> list[TableInfo]:
    import duckdb

    conn = duckdb_connect(Path(path), limits)
    try:
        def rows(sql: str) -> list[tuple]:
            return conn.execute(sql).fetchall()

        where = "database_name = current_database() AND NOT internal"

        def qualified(schema: str, table: str) -> str:
            return table if schema == "main" else f"{schema}.{table}"

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
            table = qualified(s, t)
            if ctype == "PRIMARY KEY":
                for col in columns.get(table, []):
                    col.primary_key = col.primary_key or col.name in cols
            elif ctype == "FOREIGN KEY" and ref:
                fks.setdefault(table, []).append(ForeignKeyInfo(columns=list(cols), ref_table=ref, ref_columns=list(refcols)))
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
        raise ConfigError(f"database '{name}' ({path}): cannot read the DuckDB schema: {exc}") from exc
    finally:
        conn.close()
