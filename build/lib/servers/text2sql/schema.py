"""Typed description of a database's schema, shared by the tools, the validator and the linker."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ColumnInfo(BaseModel):
    name: str
    type: str = Field(description="declared type, as the database reports it")
    nullable: bool = True
    primary_key: bool = False
    description: str | None = None


class ForeignKeyInfo(BaseModel):
    columns: list[str]
    ref_table: str
    ref_columns: list[str]


class IndexInfo(BaseModel):
    name: str
    table: str
    columns: list[str]
    unique: bool = False


class TableInfo(BaseModel):
    name: str
    kind: Literal["table", "view"] = "table"
    columns: list[ColumnInfo]
    foreign_keys: list[ForeignKeyInfo] = Field(default_factory=list)
    indexes: list[IndexInfo] = Field(default_factory=list)
    description: str | None = None

    def column(self, name: str) -> ColumnInfo | None:
        low = name.lower()
        return next((c for c in self.columns if c.name.lower() == low), None)

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in self.columns if c.primary_key]


class DatabaseSchema(BaseModel):
    dialect: str = Field(description="sqlglot dialect name: sqlite, duckdb, postgres, ...")
    tables: list[TableInfo]

    def table(self, name: str) -> TableInfo | None:
        """Case-insensitive lookup (all supported dialects fold unquoted names)."""
        low = name.lower()
        return next((t for t in self.tables if t.name.lower() == low), None)

    def neighbours(self, name: str) -> set[str]:
        """Tables linked to ``name`` by a foreign key in either direction."""
        low = name.lower()
        out: set[str] = set()
        for table in self.tables:
            for fk in table.foreign_keys:
                if table.name.lower() == low:
                    out.add(fk.ref_table)
                elif fk.ref_table.lower() == low:
                    out.add(table.name)
        return {n for n in out if n.lower() != low}

    def apply_descriptions(self, descriptions: dict[str, dict[str, str]]) -> None:
        """Attach descriptions {table: {"": table text, column: text}} (case-insensitive names)."""
        for tname, cols in descriptions.items():
            table = self.table(tname)
            if table is None:
                continue
            for cname, text in cols.items():
                if not cname:
                    table.description = text
                elif (col := table.column(cname)) is not None and text:
                    col.description = text


def load_descriptions(data: object) -> dict[str, dict[str, str]]:
    """Accept ``{table: {column: text}}`` or defog's ``{"table_metadata": {table: [{column_name, column_description}]}}``."""
    if isinstance(data, dict) and "table_metadata" in data:
        data = {
            table: {c.get("column_name", ""): c.get("column_description", "") for c in cols if isinstance(c, dict)}
            for table, cols in data["table_metadata"].items()
        }
    if not isinstance(data, dict):
        return {}
    out: dict[str, dict[str, str]] = {}
    for table, cols in data.items():
        if isinstance(cols, dict):
            out[str(table)] = {str(k): str(v) for k, v in cols.items() if v}
        elif isinstance(cols, str):
            out[str(table)] = {"": cols}
    return out
