"""MCP façade of the text2sql capability: the tools are :mod:`servers.text2sql.api`'s functions."""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

from servers.core.boundary import Tools, new_server
from servers.core.settings import Settings
from servers.text2sql import api

INSTRUCTIONS = (
    "Read-only access to SQL databases. Either ask `text_to_sql` a question in plain language (it links the "
    "schema, writes candidate SQL with the configured model, checks, repairs, votes and returns the SQL with "
    "its rows), or explore and query yourself: `sql_list_databases`, `sql_search_schema` (pattern, detail "
    "names/summary/full), `sql_describe_table`, then `sql_validate` / `sql_execute` / `sql_explain`. Only one "
    "read-only SELECT per call runs; writes are refused by the connection. `sql_add_example` teaches "
    "text_to_sql a question/SQL pair for a database."
)
# Every query runs read-only; text_to_sql only reads too (its candidates are generated, checked and run read-only).
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
# sql_add_example stores (or updates) a question in the few-shot store; sql_remove_example deletes one.
STORES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False)
REMOVES = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False)


def build_server(settings: Settings) -> MCPServer:
    api.catalog(settings)  # a bad [text2sql] databases table stops the server at start
    app = new_server("text2sql", title="Quiver text2sql", instructions=INSTRUCTIONS,
                     description="Read-only SQL: schema discovery, safe execution, question to checked SQL")
    tools = Tools(app, settings)
    tools.add(
        api.list_databases, name="sql_list_databases", title="List databases", annotations=READ_ONLY,
        description="List the databases this server can query, with their SQL dialect, location and table names. "
                    "Call first when you do not know which database holds the data.",
    )
    tools.add(
        api.search_schema, name="sql_search_schema", title="Search the schema", annotations=READ_ONLY,
        description="Find tables, views, columns and indexes whose name (or description) matches a pattern, "
                    "at a chosen detail level: names (cheap), summary (types, descriptions, column lists) or full "
                    "(complete table definitions). Use it to read only the part of a large schema you need.",
    )
    tools.add(
        api.describe_table, name="sql_describe_table", title="Describe a table", annotations=READ_ONLY,
        description="Describe one table or view: columns with types, primary and foreign keys, indexes, row count, "
                    "a few sample rows, and the distinct values of low-cardinality columns (useful for WHERE filters).",
    )
    tools.add(
        api.validate, name="sql_validate", title="Check SQL", annotations=READ_ONLY,
        description="Check SQL without running it: parses it for the database's dialect and verifies it is one "
                    "read-only query whose tables and columns exist. Returns ok or the precise problems to fix.",
    )
    tools.add(
        api.execute, name="sql_execute", title="Run a query", annotations=READ_ONLY,
        description="Run one read-only SELECT and return its columns and rows (at most max_rows, with a truncated "
                    "flag) and the elapsed time. Writes, several statements and runaway queries are refused "
                    "with an error that says why.",
    )
    tools.add(
        api.explain, name="sql_explain", title="Query plan", annotations=READ_ONLY,
        description="Show the database's query plan for a SELECT without running it (e.g. to see whether an index "
                    "is used or a query scans whole tables).",
    )
    tools.add(
        api.text_to_sql, name="text_to_sql", title="Question to SQL", annotations=READ_ONLY,
        description="Answer a question about a database in one call: picks the relevant tables, writes candidate "
                    "SQL with the configured model, checks and repairs it, votes by result, and returns the chosen "
                    "SQL, its rows and every candidate's status. Use when you do not want to write SQL yourself.",
    )
    tools.add(
        api.add_example, name="sql_add_example", title="Teach an example", annotations=STORES,
        description="Teach text_to_sql a question and its correct SQL for a database; similar future questions get "
                    "it as a few-shot example. The SQL is checked and run first; a question already stored is updated.",
    )
    tools.add(
        api.list_examples, name="sql_list_examples", title="List examples", annotations=READ_ONLY,
        description="List the few-shot question/SQL examples stored for a database (with their ids).",
    )
    tools.add(
        api.remove_example, name="sql_remove_example", title="Remove an example", annotations=REMOVES,
        description="Remove one stored few-shot example from a database by its id (see sql_list_examples).",
    )
    return app
