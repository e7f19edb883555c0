"""The SQL check on top of the read-only connection: parse with sqlglot, then refuse anything but
one read-only query over tables and columns that exist.

Refused: several statements; any statement that is not a query (DML, DDL, PRAGMA, ATTACH, SET,
COPY, VACUUM, EXPLAIN, transactions, ...); writes nested anywhere (``WITH d AS (DELETE ...)``,
``SELECT ... INTO``, ``FOR UPDATE``); file, extension and server-side functions; table functions
other than a few harmless generators; unknown tables, aliases and columns (with suggestions).
"""

from __future__ import annotations

import difflib
import logging

import sqlglot
from pydantic import BaseModel, Field
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from servers.core.errors import AccessDenied, InvalidInput
from servers.core.text import one_line
from servers.text2sql.schema import DatabaseSchema

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to Command" warnings are ours to report

MAX_SQL_CHARS = 20_000

# Statement and clause nodes that write, change settings or touch the outside world.
_FORBIDDEN_NAMES = (
    "DML", "DDL", "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable",
    "Command", "Pragma", "Attach", "Detach", "Copy", "Set", "Transaction", "Commit", "Rollback", "Use",
    "Into", "LoadData", "Grant", "Revoke", "Analyze", "Lock", "Install", "Cache", "Uncache", "Refresh",
    "Kill", "Export", "Execute", "Summarize", "Describe", "Show", "ToFile", "ReadCSV", "ReadParquet",
)
FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, n) for n in _FORBIDDEN_NAMES if isinstance(getattr(exp, n, None), type)
)

# Functions that read/write files, load code, sleep, change settings or state (any dialect).
DENIED_FUNCTIONS = frozenset({
    # SQLite
    "load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile", "sqlar_compress",
    "sqlar_uncompress", "fsdir",
    # DuckDB
    "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json", "read_json_auto",
    "read_json_objects", "read_ndjson", "read_ndjson_objects", "read_text", "read_blob", "glob",
    "sniff_csv", "parquet_metadata", "parquet_schema", "iceberg_scan", "delta_scan", "sqlite_scan",
    "postgres_scan", "mysql_scan", "query_table", "query",
    # PostgreSQL
    "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_sleep", "pg_sleep_for",
    "pg_sleep_until", "lo_import", "lo_export", "lo_unlink", "lo_create", "lo_put", "lo_from_bytea",
    "dblink", "dblink_exec", "dblink_connect", "set_config", "nextval", "setval", "pg_terminate_backend",
    "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_advisory_lock", "pg_advisory_xact_lock",
    "txid_current", "pg_logical_emit_message",
    # MySQL
    "load_file", "sleep", "benchmark", "get_lock",
})
# Table-valued functions allowed in FROM (they read no files and write nothing).
# (SQLite's json_each/json_tree are refused by the read-only authorizer anyway.)
ALLOWED_TABLE_FUNCTIONS = frozenset({"generate_series", "unnest", "range", "generatedateseries", "generate_subscripts"})
# Columns every row has without being declared.
IMPLICIT_COLUMNS = {"sqlite": {"rowid", "oid", "_rowid_"}, "postgres": {"ctid", "xmin", "xmax", "oid"}}
READ_ONLY_HINT = "only one read-only SELECT (or WITH ... SELECT) statement is allowed"


class CheckReport(BaseModel):
    ok: bool
    problems: list[str] = Field(default_factory=list, description="empty when ok; each says what to fix")
    read_only_violation: bool = Field(default=False, description="true when the SQL would write or reach outside")
    statement_type: str | None = None
    tables: list[str] = Field(default_factory=list, description="real tables and views the query reads")
    dialect: str


def _func_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name.lower(), [o.lower() for o in options], n=3, cutoff=0.6)
    lookup = {o.lower(): o for o in options}
    return f" (did you mean {', '.join(lookup[c] for c in close)}?)" if close else ""


def _listing(names: list[str], limit: int = 40) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def parse_single(sql: str, dialect: str) -> tuple[exp.Expression | None, list[str]]:
    """Parse ``sql`` as exactly one statement; returns the tree or the problems."""
    if not sql or not sql.strip():
        return None, ["the SQL is empty: write one SELECT statement"]
    if len(sql) > MAX_SQL_CHARS:
        return None, [f"the SQL is {len(sql)} characters long; the limit is {MAX_SQL_CHARS}"]
    if "\x00" in sql:
        return None, ["the SQL contains a NUL byte"]
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except (ParseError, TokenError) as exc:
        detail = one_line(exc, 300)
        return None, [f"syntax error for the {dialect} dialect: {detail}"]
    except (RecursionError, ValueError) as exc:
        return None, [f"the SQL could not be parsed ({type(exc).__name__}); simplify it"]
    if not statements:
        return None, ["the SQL holds no statement (only comments or semicolons): write one SELECT"]
    if len(statements) > 1:
        return None, [f"{len(statements)} statements found; {READ_ONLY_HINT} (no stacked statements after ';')"]
    return statements[0], []


def _read_only_problems(tree: exp.Expression) -> list[str]:
    problems = []
    if not isinstance(tree, exp.Query | exp.Values):
        kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
        problems.append(f"{kind} statements are not allowed; {READ_ONLY_HINT}")
    for node in tree.walk():
        if node is not tree and isinstance(node, FORBIDDEN_NODES):
            what = "SELECT ... INTO" if isinstance(node, exp.Into) else (
                "FOR UPDATE/SHARE locks" if isinstance(node, exp.Lock) else node.key.upper())
            problems.append(f"{what} inside the query is not allowed; {READ_ONLY_HINT}")
        elif isinstance(node, exp.Func) and _func_name(node) in DENIED_FUNCTIONS:
            problems.append(f"function {_func_name(node)}() is not allowed (it touches files, settings or server state)")
        elif isinstance(node, exp.Table) and isinstance(node.this, exp.Func):
            name = _func_name(node.this)
            if name not in ALLOWED_TABLE_FUNCTIONS and name not in DENIED_FUNCTIONS:
                problems.append(f"table function {name}() is not allowed; query the database's tables")
        elif isinstance(node, exp.Placeholder | exp.Parameter | exp.SessionParameter):
            problems.append("query parameters/placeholders are not supported: write the values into the SQL as literals")
    return list(dict.fromkeys(problems))


def _reference_problems(tree: exp.Expression, schema: DatabaseSchema) -> tuple[list[str], list[str]]:
    """Unknown tables, aliases and columns; returns (problems, real tables read)."""
    problems: list[str] = []
    table_names = [t.name for t in schema.tables]
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    aliases: dict[str, str | None] = {}  # alias or name -> real table name, or None for CTE/subquery
    real: list[str] = []
    for node in tree.find_all(exp.Table):
        if not isinstance(node.this, exp.Identifier):  # a table function: its columns are unknown here
            name = node.alias or (_func_name(node.this) if isinstance(node.this, exp.Func) else "")
            aliases[name.lower()] = None
            continue
        name = node.name
        qualified = f"{node.db}.{name}" if node.db else name
        if not node.db and name.lower() in cte_names:
            aliases[node.alias_or_name.lower()] = None
            continue
        info = schema.table(qualified) or (schema.table(name) if node.db.lower() in ("main", "public", "") else None)
        if info is None:
            problems.append(f"unknown table '{qualified}'{_suggest(name, table_names)}; tables: {_listing(table_names)}")
            aliases[node.alias_or_name.lower()] = None
            continue
        real.append(info.name)
        aliases[name.lower()] = info.name
        if node.alias:
            aliases[node.alias.lower()] = info.name
    for node in tree.find_all(exp.Subquery):
        if node.alias:
            aliases[node.alias.lower()] = None
    # Names a query may refer to without a table: select aliases, CTE/derived column lists.
    output_names = {a.alias.lower() for a in tree.find_all(exp.Alias) if a.alias}
    for table_alias in tree.find_all(exp.TableAlias):
        output_names.update(c.name.lower() for c in table_alias.columns)
    lambda_args = {a.name.lower() for lam in tree.find_all(exp.Lambda) for a in lam.expressions}
    read_tables = [schema.table(n) for n in dict.fromkeys(real)]
    read_columns = {c.name.lower() for t in read_tables if t for c in t.columns}
    read_columns |= IMPLICIT_COLUMNS.get(schema.dialect, set())
    derived = any(v is None for v in aliases.values())
    for col in tree.find_all(exp.Column):
        if isinstance(col.this, exp.Star):
            continue
        name = col.name
        low = name.lower()
        if col.table:
            qualifier = col.table.lower()
            if qualifier not in aliases:
                if low in lambda_args or col.find_ancestor(exp.Lambda):
                    continue
                problems.append(f"unknown table or alias '{col.table}' in {col.table}.{name}; "
                                f"the query defines: {', '.join(sorted(aliases)) or 'none'}")
                continue
            target = aliases[qualifier]
            info = schema.table(target) if target else None
            if info is not None and info.column(name) is None and low not in IMPLICIT_COLUMNS.get(schema.dialect, set()):
                names = [c.name for c in info.columns]
                problems.append(f"column '{name}' does not exist in table {info.name}{_suggest(name, names)}; "
                                f"its columns: {_listing(names)}")
            continue
        if low in read_columns or low in output_names or low in lambda_args:
            continue
        if derived and not read_tables:
            continue  # only CTEs/subqueries of unknown shape: their columns were checked inside them
        if derived and any(low == n.lower() for t in schema.tables for n in (c.name for c in t.columns)):
            continue
        hint = " (for a text value use single quotes: 'text')" if col.this.quoted else ""
        known = sorted({f"{t.name}.{c.name}" for t in read_tables if t for c in t.columns})
        problems.append(f"unknown column '{name}'{hint}{_suggest(name, [k.split('.', 1)[1] for k in known])}; "
                        f"columns of the tables in the query: {_listing(known)}")
    return list(dict.fromkeys(problems)), list(dict.fromkeys(real))


def check_sql(sql: str, schema: DatabaseSchema) -> CheckReport:
    """Parse and check ``sql`` for ``schema``'s dialect; ``ok`` only if it is one read-only query over known names."""
    tree, problems = parse_single(sql, schema.dialect)
    if tree is None:
        violation = bool(problems) and "statements found" in problems[0]
        return CheckReport(ok=False, problems=problems, read_only_violation=violation, dialect=schema.dialect)
    statement = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
    ro = _read_only_problems(tree)
    if ro:
        return CheckReport(ok=False, problems=ro, read_only_violation=True, statement_type=statement,
                           dialect=schema.dialect)
    refs, tables = _reference_problems(tree, schema)
    return CheckReport(ok=not refs, problems=refs, statement_type=statement, tables=tables, dialect=schema.dialect)


def require_valid(sql: str, schema: DatabaseSchema) -> CheckReport:
    """:func:`check_sql`, raising AccessDenied (would write / reach out) or InvalidInput (other problems)."""
    report = check_sql(sql, schema)
    if not report.ok:
        text = "; ".join(report.problems)
        if report.read_only_violation:
            raise AccessDenied(f"SQL refused: {text}")
        raise InvalidInput(f"SQL invalid: {text}")
    return report
