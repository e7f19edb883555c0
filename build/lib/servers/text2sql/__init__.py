"""text2sql: schema discovery, question → SQL and safe read-only execution over named databases.

:mod:`.api` holds the public functions, one per tool (:mod:`.server` declares them). Library
modules (usable without MCP):

- :mod:`.database`  — named databases opened read-only (SQLite, DuckDB, any SQLAlchemy URL), execution
  with row and time limits, plans, introspection;
- :mod:`.sqlcheck`  — the sqlglot AST check (one read-only statement, known tables and columns);
- :mod:`.catalog`   — the configured databases plus the demo ``shop`` database;
- :mod:`.linking`, :mod:`.examples`, :mod:`.prompting`, :mod:`.pipeline` — the text_to_sql pipeline;
- :mod:`.demo_db`   — the deterministic demo shop database.
"""
