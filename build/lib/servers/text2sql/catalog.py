"""The databases a text2sql server offers: ``text2sql.databases`` from the config plus the demo ``shop``."""

from __future__ import annotations

import re
import threading

from pydantic import BaseModel, Field

from servers.core.errors import ConfigError, NotFound, QuiverError
from servers.core.roots import resolve_under_roots
from servers.core.settings import Settings
from servers.text2sql.database import Database, SqlLimits
from servers.text2sql.demo_db import ensure_demo_database

DEMO_NAME = "shop"
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


class DatabaseEntry(BaseModel):
    name: str
    dialect: str = Field(description="SQL dialect to write: sqlite, duckdb, postgres, ...")
    location: str = Field(description="file path or URL (password hidden)")
    tables: int | None = Field(default=None, description="number of tables and views; null if unreadable")
    table_names: list[str] = Field(default_factory=list, description="first tables and views, by name")
    demo: bool = False
    error: str | None = Field(default=None, description="why the database cannot be read right now")


class Catalog:
    """Named read-only databases; opened lazily (the demo is built on first use)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._targets: dict[str, str] = {}
        for name, target in settings.text2sql.databases.items():
            if not NAME_RE.match(name):
                raise ConfigError(f"text2sql.databases: invalid database name {name!r}; use letters, digits, _ . -")
            self._targets[name] = target
        cfg = settings.text2sql
        self.limits = SqlLimits(max_memory_mb=cfg.max_memory_mb, max_value_bytes=cfg.max_value_bytes,
                                max_like_pattern=cfg.max_like_pattern)
        self._open: dict[str, Database] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        names = list(self._targets)
        return names if DEMO_NAME in names else [*names, DEMO_NAME]

    def get(self, name: str) -> Database:
        with self._lock:
            if name in self._open:
                return self._open[name]
            if name in self._targets:
                db = Database(name, self._targets[name], limits=self.limits)
                if db.path is not None:  # a file database is read like any file: under the roots only
                    resolve_under_roots(str(db.path), self.settings.root_paths(), must_exist=False)
            elif name == DEMO_NAME:
                db = Database(name, str(ensure_demo_database(self.settings.data_path)), limits=self.limits)
            else:
                raise NotFound(f"unknown database '{name}'; available: {', '.join(self.names())} "
                               "(sql_list_databases describes them)")
            self._open[name] = db
            return db

    def entries(self) -> list[DatabaseEntry]:
        out = []
        for name in self.names():
            try:
                db = self.get(name)
            except QuiverError as exc:
                out.append(DatabaseEntry(name=name, dialect="?", location=self._targets.get(name, "?"), error=str(exc)))
                continue
            entry = DatabaseEntry(name=name, dialect=db.dialect, location=db.location,
                                  demo=name == DEMO_NAME and name not in self._targets)
            try:
                tables = db.schema().tables
                entry.tables = len(tables)
                entry.table_names = [t.name for t in tables[:50]]
            except QuiverError as exc:
                entry.error = str(exc)
            out.append(entry)
        return out
