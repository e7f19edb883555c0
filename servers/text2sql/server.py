"""MCP façade of the text2sql library: schema discovery, checked read-only SQL, question → SQL.

No `from __future__ import annotations` here: the tool signatures use aliases local to build_server,
which the SDK must be able to evaluate.
"""


import contextlib
from functools import partial
from pathlib import Path
from typing import Annotated, Literal

import anyio
import anyio.from_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from servers.core.settings import Settings
from servers.text2sql import operations as ops
from servers.text2sql.catalog import DEMO_NAME, Catalog, DatabaseEntry
from servers.text2sql.database import QueryResult
from servers.text2sql.examples import Example, store_for
from servers.text2sql.pipeline import PipelineOptions, TextToSql, TextToSqlResult
from servers.text2sql.sqlcheck import CheckReport, require_valid

INSTRUCTIONS = (
    "Read-only access to SQL databases. Either ask `text_to_sql` a question in plain language (it links the "
    "schema, writes candidate SQL with the configured model, checks, repairs, votes and returns the SQL with "
    "its rows), or explore and query yourself: `sql_list_databases`, `sql_search_schema` (pattern, detail "
    "names/summary/full), `sql_describe_table`, then `sql_validate` / `sql_execute` / `sql_explain`. Only one "
    "read-only SELECT per call runs; writes are refused by the connection. `sql_add_example` teaches "
    "text_to_sql a question/SQL pair for a database."
)


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


def build_server(settings: Settings) -> MCPServer:
    app = MCPServer("quiver-text2sql", instructions=INSTRUCTIONS)
    cfg = settings.text2sql
    catalog = Catalog(settings)
    pipeline = TextToSql(settings)
    default_db = next(iter(cfg.databases), DEMO_NAME)

    DbArg = Annotated[str, Field(description=f"database name from sql_list_databases (default '{default_db}')",
                                 min_length=1, max_length=64)]
    SqlArg = Annotated[str, Field(description="one SELECT (or WITH ... SELECT) statement in the database's dialect",
                                  min_length=1, max_length=20_000)]

    async def run(fn, *args, **kwargs):  # blocking database/model work off the event loop
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))

    @app.tool(
        name="sql_list_databases",
        description="List the databases this server can query, with their SQL dialect, location and table names. "
                    "Call first when you do not know which database holds the data.",
    )
    async def sql_list_databases() -> DatabaseList:
        return DatabaseList(databases=await run(catalog.entries), default=default_db)

    @app.tool(
        name="sql_search_schema",
        description="Find tables, views, columns and indexes whose name (or description) matches a pattern, "
                    "at a chosen detail level: names (cheap), summary (types, descriptions, column lists) or full "
                    "(complete table definitions). Use it to read only the part of a large schema you need.",
    )
    async def sql_search_schema(
        database: DbArg = default_db,
        pattern: Annotated[str, Field(description="substring (also searched in descriptions), or a wildcard "
                                                  "pattern with * or % such as 'order*'; empty = everything",
                                      max_length=200)] = "",
        object_type: Annotated[Literal["any", "table", "view", "column", "index"],
                               Field(description="kind of object to return")] = "any",
        detail: Annotated[Literal["names", "summary", "full"], Field(description="how much to return per object")] = "names",
        limit: Annotated[int, Field(description="maximum objects returned", ge=1, le=1000)] = 100,
    ) -> ops.SchemaSearchResult:
        db = await run(catalog.get, database)
        schema = await run(db.schema)
        return ops.search_schema(database, schema, pattern, object_type, detail, limit)

    @app.tool(
        name="sql_describe_table",
        description="Describe one table or view: columns with types, primary and foreign keys, indexes, row count, "
                    "a few sample rows, and the distinct values of low-cardinality columns (useful for WHERE filters).",
    )
    async def sql_describe_table(
        table: Annotated[str, Field(description="table or view name", min_length=1, max_length=200)],
        database: DbArg = default_db,
        sample_rows: Annotated[int, Field(description="sample rows to include", ge=0, le=50)] = 3,
    ) -> ops.TableDescription:
        db = await run(catalog.get, database)
        return await run(ops.describe_table, db, table, sample_rows=sample_rows, timeout_s=cfg.timeout_s)

    @app.tool(
        name="sql_validate",
        description="Check SQL without running it: parses it for the database's dialect and verifies it is one "
                    "read-only query whose tables and columns exist. Returns ok or the precise problems to fix.",
    )
    async def sql_validate(sql: SqlArg, database: DbArg = default_db) -> CheckReport:
        db = await run(catalog.get, database)
        return await run(ops.validate, db, sql)

    @app.tool(
        name="sql_execute",
        description="Run one read-only SELECT and return its columns and rows (at most max_rows, with a truncated "
                    "flag) and the elapsed time. Writes, several statements and runaway queries are refused "
                    "with an error that says why.",
    )
    async def sql_execute(
        sql: SqlArg,
        database: DbArg = default_db,
        max_rows: Annotated[int | None, Field(description=f"row cap (default and maximum {cfg.max_rows})", ge=1)] = None,
    ) -> QueryResult:
        db = await run(catalog.get, database)
        rows = min(max_rows or cfg.max_rows, cfg.max_rows)
        return await run(ops.run_query, db, sql, max_rows=rows, timeout_s=cfg.timeout_s)

    @app.tool(
        name="sql_explain",
        description="Show the database's query plan for a SELECT without running it (e.g. to see whether an index "
                    "is used or a query scans whole tables).",
    )
    async def sql_explain(sql: SqlArg, database: DbArg = default_db) -> ops.ExplainResult:
        db = await run(catalog.get, database)
        return await run(ops.explain, db, sql, timeout_s=cfg.timeout_s)

    @app.tool(
        name="text_to_sql",
        description="Answer a question about a database in one call: picks the relevant tables, writes candidate "
                    "SQL with the configured model, checks and repairs it, votes by result, and returns the chosen "
                    "SQL, its rows and every candidate's status. Use when you do not want to write SQL yourself.",
    )
    async def text_to_sql(
        question: Annotated[str, Field(description="the question in plain language", min_length=1, max_length=2000)],
        ctx: Context,
        database: DbArg = default_db,
        execute: Annotated[bool, Field(description="run the chosen SQL and return its rows (false: only check "
                                                   "candidates, vote by identical SQL)")] = True,
        candidates: Annotated[int | None, Field(description=f"SQL candidates to generate and vote on "
                                                            f"(default {cfg.candidates})", ge=1, le=16)] = None,
        repair_rounds: Annotated[int | None, Field(description=f"repair attempts per failing candidate "
                                                               f"(default {cfg.repair_rounds})", ge=0, le=8)] = None,
        explain: Annotated[bool, Field(description="add a one-paragraph explanation of the result")] = False,
        instructions: Annotated[str | None, Field(description="extra rules for the SQL, e.g. 'filter names with LIKE'",
                                                  max_length=1000)] = None,
    ) -> TextToSqlResult:
        db = await run(catalog.get, database)
        options = PipelineOptions(
            candidates=candidates or cfg.candidates,
            repair_rounds=cfg.repair_rounds if repair_rounds is None else repair_rounds,
            execute=execute, explain=explain, max_rows=cfg.max_rows, timeout_s=cfg.timeout_s,
            max_new_tokens=cfg.max_new_tokens, temperature=cfg.sample_temperature, examples_k=cfg.examples_k,
            instructions=instructions,
        )

        def progress(done: float, total: float, message: str) -> None:
            with contextlib.suppress(Exception):  # best effort; a client without a progress token ignores it
                anyio.from_thread.run(partial(ctx.report_progress, done, total, message))

        store = store_for(settings.data_path, database)
        return await run(pipeline.answer, question, db, store, options, progress)

    @app.tool(
        name="sql_add_example",
        description="Teach text_to_sql a question and its correct SQL for a database; similar future questions get "
                    "it as a few-shot example. The SQL is checked and run first; a question already stored is updated.",
    )
    async def sql_add_example(
        question: Annotated[str, Field(description="a question in plain language", min_length=1, max_length=2000)],
        sql: SqlArg,
        database: DbArg = default_db,
    ) -> ExampleChange:
        db = await run(catalog.get, database)
        await run(require_valid, sql, await run(db.schema))
        await run(db.execute, sql, max_rows=1, timeout_s=cfg.timeout_s)
        example = await run(store_for(settings.data_path, database).add, question, sql)
        return ExampleChange(database=database, example=example, action="added")

    @app.tool(
        name="sql_list_examples",
        description="List the few-shot question/SQL examples stored for a database (with their ids).",
    )
    async def sql_list_examples(database: DbArg = default_db) -> ExampleList:
        await run(catalog.get, database)
        return ExampleList(database=database, examples=await run(store_for(settings.data_path, database).list))

    @app.tool(
        name="sql_remove_example",
        description="Remove one stored few-shot example from a database by its id (see sql_list_examples).",
    )
    async def sql_remove_example(
        example_id: Annotated[str, Field(description="id from sql_list_examples", min_length=1, max_length=64)],
        database: DbArg = default_db,
    ) -> ExampleChange:
        await run(catalog.get, database)
        example = await run(store_for(settings.data_path, database).remove, example_id)
        return ExampleChange(database=database, example=example, action="removed")

    return app


def protocol_examples(workdir: Path) -> list[tuple[str, dict]]:
    """Calls against the demo database (built in the data dir on first use)."""
    return [
        ("sql_list_databases", {}),
        ("sql_search_schema", {"database": "shop", "pattern": "order*", "detail": "summary"}),
        ("sql_describe_table", {"database": "shop", "table": "orders", "sample_rows": 2}),
        ("sql_validate", {"database": "shop", "sql": "SELECT name FROM customers WHERE city = 'Paris'"}),
        ("sql_execute", {"database": "shop", "sql": "SELECT category, COUNT(*) AS n FROM products GROUP BY category",
                         "max_rows": 10}),
        ("sql_explain", {"database": "shop", "sql": "SELECT * FROM orders WHERE customer_id = 3"}),
        ("sql_add_example", {"database": "shop", "question": "How many products are there?",
                             "sql": "SELECT COUNT(*) FROM products;"}),
        ("sql_list_examples", {"database": "shop"}),
        ("sql_remove_example", {"database": "shop", "example_id": "seed-1"}),
        ("text_to_sql", {"database": "shop", "question": "How many products are there?", "candidates": 1,
                         "repair_rounds": 0}),
    ]


def concurrent_example(workdir: Path) -> tuple[str, dict]:
    """A read-only query many clients may run at once."""
    return ("sql_execute", {"database": "shop", "sql": "SELECT status, COUNT(*) AS n FROM orders GROUP BY status"})
