"""Schema discovery and checked execution over one :class:`Database` (what the MCP tools call)."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlglot import exp

from servers.core.errors import InvalidInput, NotFound, QuiverError
from servers.text2sql.database import Database, QueryResult
from servers.text2sql.schema import ColumnInfo, DatabaseSchema, ForeignKeyInfo, IndexInfo, TableInfo
from servers.text2sql.sqlcheck import CheckReport, check_sql, require_valid

ObjectType = Literal["table", "view", "column", "index"]
Detail = Literal["names", "summary", "full"]
LOW_CARDINALITY = 12  # columns with at most this many distinct values list them
TEXT_TYPES = ("char", "text", "string", "varchar", "clob", "enum", "")


# ---------------------------------------------------------------- identifiers

def quote_table(name: str, dialect: str) -> str:
    """A safely quoted (optionally schema-qualified) table name for ``dialect``."""
    schema, _, table = name.rpartition(".")
    node = exp.table_(table, db=schema or None, quoted=True)
    return node.sql(dialect=dialect)


def quote_column(name: str, dialect: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def find_table(schema: DatabaseSchema, name: str) -> TableInfo:
    table = schema.table(name)
    if table is None:
        names = [t.name for t in schema.tables]
        raise NotFound(f"no table or view '{name}'; available: {', '.join(names[:60]) or 'none'} "
                       "(sql_search_schema finds tables by pattern)")
    return table


# ---------------------------------------------------------------- search

class SchemaObject(BaseModel):
    type: ObjectType
    name: str = Field(description="table/view/index name, or column name")
    table: str | None = Field(default=None, description="owning table, for columns and indexes")
    data_type: str | None = None
    description: str | None = None
    columns: list[str] | None = Field(default=None, description="column names (summary of a table, or an index's columns)")
    primary_key: bool | None = None
    references: str | None = Field(default=None, description="table.column this column points to (foreign key)")
    unique: bool | None = None
    definition: TableInfo | None = Field(default=None, description="full definition of a table/view (detail=full)")


class SchemaSearchResult(BaseModel):
    database: str
    dialect: str
    objects: list[SchemaObject]
    total: int = Field(description="matches before the limit")
    truncated: bool


def wildcard_match(pattern: str, name: str) -> bool:
    """Whether ``name`` matches ``pattern`` where ``*`` / ``%`` match any run of characters.

    Greedy matching with one backtrack point per star: O(len(pattern) × len(name)) at worst,
    unlike a ``.*a.*a.*b`` regex, which backtracks exponentially on hostile patterns."""
    p = n = 0
    star, mark = -1, 0
    while n < len(name):
        if p < len(pattern) and pattern[p] not in "*%" and pattern[p] == name[n]:
            p += 1
            n += 1
        elif p < len(pattern) and pattern[p] in "*%":
            star, mark = p, n
            p += 1
        elif star != -1:
            p, mark = star + 1, mark + 1
            n = mark
        else:
            return False
    while p < len(pattern) and pattern[p] in "*%":
        p += 1
    return p == len(pattern)


def _matcher(pattern: str) -> Any:
    text = (pattern or "").strip().lower()
    if text in ("", "*", "%"):
        return lambda *_: True
    if "*" in text or "%" in text:
        return lambda name, _desc=None: wildcard_match(text, name.lower())
    return lambda name, desc=None: text in name.lower() or bool(desc and text in desc.lower())


def _references(table: TableInfo, column: str) -> str | None:
    for fk in table.foreign_keys:
        if column in fk.columns and len(fk.ref_columns) == len(fk.columns):
            return f"{fk.ref_table}.{fk.ref_columns[fk.columns.index(column)]}"
    return None


def search_schema(
    database: str,
    schema: DatabaseSchema,
    pattern: str = "",
    object_type: ObjectType | Literal["any"] = "any",
    detail: Detail = "names",
    limit: int = 100,
) -> SchemaSearchResult:
    """Tables, views, columns and indexes whose name (or, for plain words, description) matches."""
    match = _matcher(pattern)
    found: list[SchemaObject] = []
    for table in schema.tables:
        if object_type in ("any", table.kind) and match(table.name, table.description):
            obj = SchemaObject(type=table.kind, name=table.name)
            if detail != "names":
                obj.description = table.description
                obj.columns = [c.name for c in table.columns]
            if detail == "full":
                obj.definition = table
            found.append(obj)
        if object_type in ("any", "column"):
            for col in table.columns:
                if match(col.name, col.description) or match(f"{table.name}.{col.name}"):
                    obj = SchemaObject(type="column", name=col.name, table=table.name)
                    if detail != "names":
                        obj.data_type, obj.description, obj.primary_key = col.type, col.description, col.primary_key
                    if detail == "full":
                        obj.references = _references(table, col.name)
                    found.append(obj)
        if object_type in ("any", "index"):
            for index in table.indexes:
                if match(index.name):
                    obj = SchemaObject(type="index", name=index.name, table=table.name)
                    if detail != "names":
                        obj.columns, obj.unique = index.columns, index.unique
                    found.append(obj)
    return SchemaSearchResult(database=database, dialect=schema.dialect, objects=found[:limit], total=len(found),
                              truncated=len(found) > limit)


# ---------------------------------------------------------------- describe

class ColumnProfile(ColumnInfo):
    references: str | None = Field(default=None, description="table.column this column points to (foreign key)")
    distinct_count: int | None = None
    values: list[Any] | None = Field(default=None, description=f"all distinct values when there are at most {LOW_CARDINALITY}")


class TableDescription(BaseModel):
    database: str
    name: str
    kind: Literal["table", "view"]
    description: str | None = None
    columns: list[ColumnProfile]
    primary_key: list[str]
    foreign_keys: list[ForeignKeyInfo]
    referenced_by: list[str] = Field(description="table.column entries whose foreign keys point here")
    indexes: list[IndexInfo]
    row_count: int | None = Field(description="null when counting exceeded the time limit")
    sample: QueryResult
    notes: list[str] = Field(default_factory=list)


def describe_table(db: Database, table_name: str, *, sample_rows: int, timeout_s: float) -> TableDescription:
    schema = db.schema()
    table = find_table(schema, table_name)
    dialect = db.dialect
    qt = quote_table(table.name, dialect)
    notes: list[str] = []
    try:
        row_count = int(db.execute(f"SELECT COUNT(*) FROM {qt}", max_rows=1, timeout_s=timeout_s).rows[0][0])
    except QuiverError as exc:
        row_count, notes = None, [f"row count unavailable: {exc}"]
    sample = db.execute(f"SELECT * FROM {qt} LIMIT {sample_rows}", max_rows=max(sample_rows, 1), timeout_s=timeout_s)
    if sample_rows == 0:
        sample = sample.model_copy(update={"rows": [], "row_count": 0, "truncated": False})
    profiles = [ColumnProfile(**c.model_dump(), references=_references(table, c.name)) for c in table.columns]
    counts, values = column_profile(db, table, timeout_s=timeout_s, text_only=False)
    for profile in profiles:
        profile.distinct_count = counts.get(profile.name)
        profile.values = values.get(profile.name)
    if table.columns and not counts:
        notes.append("distinct counts unavailable (time limit)")
    referenced_by = [
        f"{other.name}.{src}"
        for other in schema.tables
        for fk in other.foreign_keys
        if fk.ref_table.lower() == table.name.lower()
        for src in fk.columns
    ]
    return TableDescription(database=db.name, name=table.name, kind=table.kind, description=table.description,
                            columns=profiles, primary_key=table.primary_key, foreign_keys=table.foreign_keys,
                            referenced_by=referenced_by, indexes=table.indexes, row_count=row_count, sample=sample,
                            notes=notes)


def column_profile(
    db: Database, table: TableInfo, *, timeout_s: float, text_only: bool = True, max_columns: int = 60
) -> tuple[dict[str, int], dict[str, list[Any]]]:
    """Distinct counts per column (one scan) and the values of low-cardinality columns."""
    cols = [c for c in table.columns[:max_columns]
            if not text_only or any(t in (c.type or "").lower() for t in TEXT_TYPES if t) or not c.type]
    if not cols:
        return {}, {}
    dialect = db.dialect
    qt = quote_table(table.name, dialect)
    select = ", ".join(f"COUNT(DISTINCT {quote_column(c.name, dialect)})" for c in cols)
    try:
        row = db.execute(f"SELECT {select} FROM {qt}", max_rows=1, timeout_s=timeout_s).rows[0]
    except QuiverError:
        return {}, {}
    counts = {c.name: int(n) for c, n in zip(cols, row, strict=True) if n is not None}
    values: dict[str, list[Any]] = {}
    for col in cols:
        n = counts.get(col.name, 0)
        if 0 < n <= LOW_CARDINALITY and not col.primary_key:
            qc = quote_column(col.name, dialect)
            try:
                result = db.execute(f"SELECT DISTINCT {qc} FROM {qt} WHERE {qc} IS NOT NULL ORDER BY 1",
                                    max_rows=LOW_CARDINALITY, timeout_s=timeout_s)
            except QuiverError:
                continue
            values[col.name] = [r[0] for r in result.rows]
    return counts, values


def value_hints(
    db: Database, *, timeout_s: float = 2.0, max_tables: int = 60, budget_s: float = 10.0
) -> dict[tuple[str, str], list[str]]:
    """Low-cardinality text values of every table, for schema linking and the prompt (at most
    ``budget_s`` of queries in all: big server databases get hints for their first tables only)."""
    out: dict[tuple[str, str], list[str]] = {}
    deadline = time.monotonic() + budget_s
    for table in db.schema().tables[:max_tables]:
        if table.kind != "table":
            continue
        if time.monotonic() > deadline:
            break
        _counts, values = column_profile(db, table, timeout_s=timeout_s, text_only=True)
        for col, vals in values.items():
            texts = [str(v) for v in vals if isinstance(v, str) and 0 < len(v) <= 40]
            if texts:
                out[(table.name, col)] = texts
    return out


# ---------------------------------------------------------------- validate / execute / explain

def validate(db: Database, sql: str) -> CheckReport:
    return check_sql(sql, db.schema())


def run_query(db: Database, sql: str, *, max_rows: int, timeout_s: float) -> QueryResult:
    """Check ``sql`` (one read-only query over known names), then run it on the read-only connection."""
    require_valid(sql, db.schema())
    return db.execute(sql, max_rows=max_rows, timeout_s=timeout_s)


class ExplainResult(BaseModel):
    database: str
    dialect: str
    plan: str = Field(description="the database's query plan as text")


def explain(db: Database, sql: str, *, timeout_s: float) -> ExplainResult:
    require_valid(sql, db.schema())
    statement = db.explain_sql(sql.strip().rstrip(";"))
    result = db.execute(statement, max_rows=2000, timeout_s=timeout_s)
    plan = db.plan_text(result)
    if not plan:
        raise InvalidInput("the database returned no plan for this query")
    return ExplainResult(database=db.name, dialect=db.dialect, plan=plan)
