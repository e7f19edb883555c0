"""The text2sql capability's public functions, one per MCP tool (same names and arguments).

``server.py`` exposes them as tools; their defaults (which database, row caps, time limits,
candidates, repair rounds) come from ``settings.text2sql``. The open databases and the
text_to_sql pipeline (its loaded models and caches) are kept per configuration.
"""

from __future__ import annotations

import threading
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from servers.core.progress import Progress
from servers.core.settings import Settings
from servers.text2sql import operations as ops
from servers.text2sql.catalog import DEMO_NAME, Catalog, DatabaseEntry
from servers.text2sql.database import Database, QueryResult
from servers.text2sql.examples import Example, store_for
from servers.text2sql.pipeline import PipelineOptions, TextToSql, TextToSqlResult
from servers.text2sql.sqlcheck import CheckReport, require_valid

DbArg = Annotated[
    str | None,
    Field(description="database name from sql_list_databases (default: the first configured database, else the "
          "demo 'shop')", min_length=1, max_length=64),
]
SqlArg = Annotated[
    str, Field(description="one SELECT (or WITH ... SELECT) statement in the database's dialect", min_length=1,
               max_length=20_000),
]


MAX_OFFSET = 100_000  # rows a page may skip (they are read and dropped in the database's worker)


class DatabaseList(BaseModel):
    databases: list[DatabaseEntry]
    default: str = Field(description="database used when a tool is called without one")


class ExampleList(BaseModel):
    database: str
    examples: list[Example]


class ExampleChange(BaseModel):
    database: str
    example: Example
    action: Literal["added", "removed"]


# ---------------------------------------------------------------- state per configuration

_catalogs: dict[str, Catalog] = {}
_pipelines: dict[str, TextToSql] = {}
_state_lock = threading.Lock()


def catalog(settings: Settings) -> Catalog:
    """The databases of this configuration (opened once, kept open)."""
    key = settings.data_path.as_posix() + repr(sorted(settings.text2sql.databases.items()))
    with _state_lock:
        if key not in _catalogs:
            _catalogs[key] = Catalog(settings)
        return _catalogs[key]


def pipeline(settings: Settings) -> TextToSql:
    """The text_to_sql pipeline of this configuration (its models load on first use)."""
    key = settings.model_dump_json(include={"data_dir", "models", "text2sql"})
    with _state_lock:
        if key not in _pipelines:
            _pipelines[key] = TextToSql(settings)
        return _pipelines[key]


def default_database(settings: Settings) -> str:
    """The database a call without one uses: the first configured, else the demo."""
    return next(iter(settings.text2sql.databases), DEMO_NAME)


def _open(settings: Settings, database: str | None) -> tuple[str, Database]:
    name = database or default_database(settings)
    return name, catalog(settings).get(name)


# ---------------------------------------------------------------- the tools

def list_databases(settings: Settings) -> DatabaseList:
    """The databases this server can query, with dialect, location and table names."""
    return DatabaseList(databases=catalog(settings).entries(), default=default_database(settings))


def search_schema(
    settings: Settings,
    database: DbArg = None,
    pattern: Annotated[str, Field(description="substring (also searched in descriptions), or a wildcard pattern "
                                              "with * or % such as 'order*'; empty = everything", max_length=200)] = "",
    object_type: Annotated[Literal["any", "table", "view", "column", "index"],
                           Field(description="kind of object to return")] = "any",
    detail: Annotated[Literal["names", "summary", "full"], Field(description="how much to return per object")] = "names",
    limit: Annotated[int, Field(description="maximum objects returned", ge=1, le=1000)] = 100,
) -> ops.SchemaSearchResult:
    """Tables, views, columns and indexes whose name (or description) matches ``pattern``."""
    name, db = _open(settings, database)
    return ops.search_schema(name, db.schema(), pattern, object_type, detail, limit)


def describe_table(
    settings: Settings,
    table: Annotated[str, Field(description="table or view name", min_length=1, max_length=200)],
    database: DbArg = None,
    sample_rows: Annotated[int, Field(description="sample rows to include", ge=0, le=50)] = 3,
) -> ops.TableDescription:
    """One table or view: columns, keys, indexes, row count, sample rows, low-cardinality values."""
    _, db = _open(settings, database)
    return ops.describe_table(db, table, sample_rows=sample_rows, timeout_s=settings.text2sql.timeout_s)


def validate(settings: Settings, sql: SqlArg, database: DbArg = None) -> CheckReport:
    """Check SQL without running it: one read-only query over tables and columns that exist."""
    _, db = _open(settings, database)
    return ops.validate(db, sql)


def execute(
    settings: Settings,
    sql: SqlArg,
    database: DbArg = None,
    max_rows: Annotated[int | None, Field(description="rows per page (default and maximum: the server's configured cap)",
                                          ge=1)] = None,
    offset: Annotated[int, Field(description="rows to skip: the previous call's next_offset", ge=0,
                                 le=MAX_OFFSET)] = 0,
) -> QueryResult:
    """Run one checked read-only SELECT, one page of rows (``max_rows`` ≤ ``text2sql.max_rows`` from
    ``offset``) at a time, within ``timeout_s``. Each page re-runs the query: order it for stable pages."""
    _, db = _open(settings, database)
    cfg = settings.text2sql
    page = min(max_rows or cfg.max_rows, cfg.max_rows)
    result = ops.run_query(db, sql, max_rows=offset + page, timeout_s=cfg.timeout_s)
    more = result.truncated and result.row_count == offset + page  # a row beyond this page exists
    rows = result.rows[offset:]
    return result.model_copy(update={"rows": rows, "row_count": len(rows), "offset": offset,
                                     "next_offset": offset + page if more else None})


def explain(settings: Settings, sql: SqlArg, database: DbArg = None) -> ops.ExplainResult:
    """The database's query plan for a SELECT, without running it."""
    _, db = _open(settings, database)
    return ops.explain(db, sql, timeout_s=settings.text2sql.timeout_s)


def text_to_sql(
    settings: Settings,
    question: Annotated[str, Field(description="the question in plain language", min_length=1, max_length=2000)],
    database: DbArg = None,
    execute: Annotated[bool, Field(description="run the chosen SQL and return its rows (false: only check "
                                               "candidates, vote by identical SQL)")] = True,
    candidates: Annotated[int | None, Field(description="SQL candidates to generate and vote on (default from the "
                                                        "server's config)", ge=1, le=16)] = None,
    repair_rounds: Annotated[int | None, Field(description="repair attempts per failing candidate (default from the "
                                                           "server's config)", ge=0, le=8)] = None,
    explain: Annotated[bool, Field(description="add a one-paragraph explanation of the result")] = False,
    instructions: Annotated[str | None, Field(description="extra rules for the SQL, e.g. 'filter names with LIKE'",
                                              max_length=1000)] = None,
    progress: Progress | None = None,
) -> TextToSqlResult:
    """Question → SQL: link the schema, generate candidates, check, repair, vote, run the chosen one."""
    name, db = _open(settings, database)
    options = PipelineOptions.from_settings(settings.text2sql, candidates=candidates, repair_rounds=repair_rounds,
                                            execute=execute, explain=explain, instructions=instructions)
    return pipeline(settings).answer(question, db, store_for(settings.data_path, name), options, progress)


def add_example(
    settings: Settings,
    question: Annotated[str, Field(description="a question in plain language", min_length=1, max_length=2000)],
    sql: SqlArg,
    database: DbArg = None,
) -> ExampleChange:
    """Store a question/SQL pair for text_to_sql's prompts; the SQL is checked and run first."""
    name, db = _open(settings, database)
    require_valid(sql, db.schema())
    db.execute(sql, max_rows=1, timeout_s=settings.text2sql.timeout_s)
    return ExampleChange(database=name, example=store_for(settings.data_path, name).add(question, sql), action="added")


def list_examples(settings: Settings, database: DbArg = None) -> ExampleList:
    """The few-shot examples stored for a database."""
    name, _ = _open(settings, database)
    return ExampleList(database=name, examples=store_for(settings.data_path, name).list())


def remove_example(
    settings: Settings,
    example_id: Annotated[str, Field(description="id from sql_list_examples", min_length=1, max_length=64)],
    database: DbArg = None,
) -> ExampleChange:
    """Remove one stored example by id."""
    name, _ = _open(settings, database)
    return ExampleChange(database=name, example=store_for(settings.data_path, name).remove(example_id),
                         action="removed")
