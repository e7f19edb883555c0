"""The strict text-to-SQL prompt, and getting one SQL statement back out of a model's answer.

The prompt is a chat: a system message with the dialect, the rules and the linked schema written
as compact ``CREATE TABLE`` statements (descriptions and sample values as comments, join keys
listed), then the retrieved examples as earlier user/assistant turns (small models copy that
format best), then the question. Repairs continue the same chat with the failed SQL and the error.
"""

from __future__ import annotations

import re
from typing import Any

from servers.text2sql.examples import Example
from servers.text2sql.linking import LinkedSchema

DIALECT_NAMES = {"sqlite": "SQLite", "duckdb": "DuckDB", "postgres": "PostgreSQL", "mysql": "MySQL",
                 "tsql": "SQL Server", "oracle": "Oracle", "snowflake": "Snowflake", "bigquery": "BigQuery"}
DIALECT_TIPS = {
    "sqlite": "Dates are TEXT 'YYYY-MM-DD': use strftime('%Y', col) for the year, date('now') for today.",
    "duckdb": "Use year(col), date_trunc('month', col) and current_date for dates.",
    "postgres": "Use EXTRACT(YEAR FROM col), date_trunc('month', col) and CURRENT_DATE for dates.",
}
STOP = [";\n", "\n\n\n", "<|im_end|>", "\nQuestion:", "```\n\n"]  # extract_sql cuts at the first ";" anyway


def render_schema(linked: LinkedSchema) -> str:
    """Linked tables as CREATE TABLE statements with comments (descriptions, values, join keys)."""
    blocks = []
    for table in linked.tables:
        entries: list[tuple[str, str]] = []
        for col in table.columns:
            definition = f"  {col.name} {col.type or 'TEXT'}".rstrip()
            if col.primary_key:
                definition += " PRIMARY KEY"
            fk = next((fk for fk in table.foreign_keys if col.name in fk.columns), None)
            if fk is not None:
                ref = fk.ref_columns[fk.columns.index(col.name)] if len(fk.ref_columns) == len(fk.columns) else ""
                definition += f" REFERENCES {fk.ref_table}({ref})"
            notes = [col.description] if col.description else []
            if vals := linked.values.get((table.name, col.name)):
                notes.append("values: " + ", ".join(f"'{v}'" for v in vals[:8]))
            entries.append((definition, "; ".join(notes)))
        lines = [
            definition + ("," if i < len(entries) - 1 else "") + (f" -- {comment}" if comment else "")
            for i, (definition, comment) in enumerate(entries)
        ]
        kind = "VIEW" if table.kind == "view" else "TABLE"
        header = f"CREATE {kind} {table.name} (" + (f" -- {table.description}" if table.description else "")
        blocks.append("\n".join([header, *lines, ");"]))
    text = "\n".join(blocks)
    undeclared = [j for j in linked.joins if not j.declared]
    if undeclared:
        text += "\n-- Join keys: " + "; ".join(j.sql() for j in undeclared)
    return text


def system_prompt(dialect: str, linked: LinkedSchema, instructions: str | None = None) -> str:
    name = DIALECT_NAMES.get(dialect, dialect)
    rules = [
        f"You translate questions into one {name} SELECT query.",
        "Rules: answer with the SQL query only, ending with a semicolon; no explanations, no markdown.",
        "Use only the tables and columns in the schema below; never invent names.",
        "Join tables on their key columns. Use single quotes for text values.",
    ]
    if tip := DIALECT_TIPS.get(dialect):
        rules.append(tip)
    if instructions:
        rules.append(f"Instructions: {instructions.strip()}")
    return "\n".join(rules) + "\n\nSchema:\n" + render_schema(linked)


def build_messages(
    question: str,
    dialect: str,
    linked: LinkedSchema,
    examples: list[Example],
    instructions: str | None = None,
) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt(dialect, linked, instructions)}]
    for example in examples:
        messages.append({"role": "user", "content": f"Question: {example.question}"})
        messages.append({"role": "assistant", "content": example.sql.strip()})
    messages.append({"role": "user", "content": f"Question: {question.strip()}"})
    return messages


def repair_messages(messages: list[dict[str, Any]], bad_sql: str, error: str) -> list[dict[str, Any]]:
    """The original chat, the failed answer, and the error with a request for a corrected query."""
    return [
        *messages,
        {"role": "assistant", "content": bad_sql or "(no SQL)"},
        {"role": "user", "content": f"That query failed: {error[:600]}\nWrite the corrected query. SQL only."},
    ]


_FENCE = re.compile(r"```[ \t]*(?:sql|sqlite|duckdb|postgresql|postgres)?[ \t]*\n?(.*?)(?:```|$)", re.S | re.I)
_START = re.compile(r"\b(WITH|SELECT)\b", re.I)
_PROSE = re.compile(r"^\s*(?:here is|here's|this query|explanation|note:|the query|this will|sql query:|answer:)", re.I)


def _cut_statement(text: str) -> str:
    """Up to the first semicolon outside quotes (and before any prose line that follows)."""
    quote: str | None = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
        elif ch == ";":
            return text[:i]
    lines = []
    for line in text.splitlines():
        if lines and (_PROSE.match(line) or not line.strip()):
            break
        lines.append(line)
    return "\n".join(lines)


def extract_sql(text: str) -> str:
    """One SQL statement from a model's answer: inside a markdown fence if there is one, from the
    first SELECT/WITH, up to the first semicolon outside quotes; '' when there is no query."""
    if not text:
        return ""
    body = text.replace("<|im_end|>", "")
    fenced = [m.group(1) for m in _FENCE.finditer(body) if _START.search(m.group(1) or "")]
    if fenced:
        body = fenced[0]
    match = _START.search(body)
    if not match:
        return ""
    sql = _cut_statement(body[match.start():]).strip()
    sql = sql.rstrip("`").strip()
    return "\n".join(line.rstrip(" \t") for line in sql.split("\n"))  # linear, unlike a [ \t]+\n regex
