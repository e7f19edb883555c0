"""Schema linking: pick the tables and columns a question needs, so large schemas fit the prompt.

Each table and column becomes a short text (split name, description, sample values); the question
is embedded with the shipped sentence embedder and compared to them. A table scores the best of
its own and its columns' similarities, plus a bonus when a question word names it or one of its
values. The best tables are kept, then foreign-key neighbours that join two kept tables (declared
keys, or shared id-like column names when a database declares none). Small schemas are kept whole.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from servers.text2sql.schema import DatabaseSchema, ForeignKeyInfo, TableInfo

Embed = Callable[[list[str]], np.ndarray]  # texts -> L2-normalised rows

SMALL_SCHEMA_TABLES = 6
SMALL_SCHEMA_COLUMNS = 45
_WORD = re.compile(r"[a-z0-9]+")


def words(name: str) -> str:
    """``orderItems`` / ``order_items`` → ``order items``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace(".", " ")
    return " ".join(spaced.lower().split())


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s"):
        if len(word) > 4 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _tokens(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if len(w) > 1}


@dataclass
class JoinHint:
    left: str  # table.column
    right: str
    declared: bool = True

    def sql(self) -> str:
        return f"{self.left} = {self.right}"


@dataclass
class LinkedSchema:
    tables: list[TableInfo]
    scores: dict[str, float]
    joins: list[JoinHint] = field(default_factory=list)
    values: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    whole: bool = False  # the schema was small enough to keep entirely

    @property
    def table_names(self) -> list[str]:
        return [t.name for t in self.tables]


def _is_idlike(column: str) -> bool:
    low = column.lower()  # a bare "id" names a different thing in every table
    return low != "id" and low.endswith(("id", "_code", "code", "_no", "_key"))


def join_hints(schema: DatabaseSchema) -> list[JoinHint]:
    """Declared foreign keys, plus pairs of tables sharing an id-like column name that no declared
    key already connects (many real databases declare no keys at all)."""
    hints: list[JoinHint] = []
    for table in schema.tables:
        for fk in table.foreign_keys:
            for src, dst in zip(fk.columns, fk.ref_columns, strict=False):
                hints.append(JoinHint(f"{table.name}.{src}", f"{fk.ref_table}.{dst}"))
    linked = {frozenset((h.left.split(".")[0].lower(), h.right.split(".")[0].lower())) for h in hints}
    owners: dict[str, list[str]] = {}
    for table in schema.tables:
        if table.kind != "table":
            continue
        for col in table.columns:
            if _is_idlike(col.name):
                owners.setdefault(col.name.lower(), []).append(table.name)
    for col, tables in owners.items():
        if 2 <= len(tables) <= 8:
            base = tables[0]
            for other in tables[1:]:
                left = schema.table(base)
                right = schema.table(other)
                if left and right and frozenset((left.name.lower(), right.name.lower())) not in linked:
                    lc, rc = left.column(col), right.column(col)
                    if lc and rc:
                        hints.append(JoinHint(f"{left.name}.{lc.name}", f"{right.name}.{rc.name}", declared=False))
    return hints


def _trim_columns(table: TableInfo, keep: set[str], max_columns: int, col_scores: dict[str, float]) -> TableInfo:
    if len(table.columns) <= max_columns:
        return table
    ranked = sorted(table.columns, key=lambda c: (c.name.lower() not in keep and not c.primary_key,
                                                  -col_scores.get(c.name, 0.0)))
    chosen = {c.name for c in ranked[:max_columns]}
    return table.model_copy(update={"columns": [c for c in table.columns if c.name in chosen]})


class SchemaLinker:
    """Scores tables/columns against a question with an embedder; caches text embeddings."""

    def __init__(self, embed: Embed, *, max_tables: int = 5, max_columns: int = 14, margin: float = 0.25):
        self._embed = embed
        self.margin = margin  # keep tables scoring within this of the best one
        self.max_tables = max_tables
        self.max_columns = max_columns
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vecs = self._embed(missing)
            with self._lock:
                for text, vec in zip(missing, vecs, strict=True):
                    self._cache[text] = np.asarray(vec, dtype=np.float32)
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 1), dtype=np.float32)

    def link(
        self,
        question: str,
        schema: DatabaseSchema,
        values: dict[tuple[str, str], list[str]] | None = None,
    ) -> LinkedSchema:
        values = values or {}
        joins = join_hints(schema)
        tables = schema.tables
        if not tables:
            return LinkedSchema(tables=[], scores={}, joins=[], values={}, whole=True)
        q_tokens = _tokens(question)
        q_low = question.lower()
        texts: list[str] = []
        owners: list[tuple[str, str | None]] = []
        for t in tables:
            texts.append(f"{words(t.name)}" + (f": {t.description}" if t.description else ""))
            owners.append((t.name, None))
            for c in t.columns:
                vals = values.get((t.name, c.name), [])
                text = f"{words(t.name)} {words(c.name)}"
                if c.description:
                    text += f": {c.description}"
                if vals:
                    text += "; values: " + ", ".join(vals[:8])
                texts.append(text)
                owners.append((t.name, c.name))
        sims = self.vectors(texts) @ self.vectors([question])[0]
        table_scores: dict[str, float] = {t.name: -1.0 for t in tables}
        col_scores: dict[str, dict[str, float]] = {t.name: {} for t in tables}
        for (tname, cname), sim in zip(owners, sims, strict=True):
            score = float(sim)
            if cname is None:
                if _tokens(words(tname)) & q_tokens:
                    score += 0.25
            else:
                if _tokens(words(cname)) & q_tokens:
                    score += 0.1
                if any(len(v) > 2 and v.lower() in q_low for v in values.get((tname, cname), [])):
                    score += 0.3
                col_scores[tname][cname] = score
            table_scores[tname] = max(table_scores[tname], score)
        whole = len(tables) <= SMALL_SCHEMA_TABLES and sum(len(t.columns) for t in tables) <= SMALL_SCHEMA_COLUMNS
        ranked = sorted(tables, key=lambda t: -table_scores[t.name])
        if whole:
            chosen = [t.name for t in ranked]
        else:
            best = table_scores[ranked[0].name]
            chosen = [t.name for t in ranked[: self.max_tables] if table_scores[t.name] >= best - self.margin]
            chosen = self._add_bridges(chosen, joins, ranked)
        keep_cols: dict[str, set[str]] = {}
        for hint in joins:
            for side in (hint.left, hint.right):
                tname, _, cname = side.partition(".")
                keep_cols.setdefault(tname, set()).add(cname.lower())
        order = {name: i for i, name in enumerate(chosen)}
        linked = [
            _trim_columns(t, keep_cols.get(t.name, set()), self.max_columns, col_scores[t.name])
            for t in sorted((t for t in tables if t.name in order), key=lambda t: order[t.name])
        ]
        names = {t.name for t in linked}
        used_joins = [h for h in joins if h.left.split(".")[0] in names and h.right.split(".")[0] in names]
        linked_values = {k: v for k, v in values.items() if k[0] in names}
        return LinkedSchema(tables=linked, scores={n: round(table_scores[n], 4) for n in chosen}, joins=used_joins,
                            values=linked_values, whole=whole)

    def _add_bridges(self, chosen: list[str], joins: list[JoinHint], ranked: list[TableInfo]) -> list[str]:
        """Add tables that join two chosen tables (e.g. order_items between orders and products),
        then, if room is left, the best-scoring direct neighbour of the top table."""
        adjacency: dict[str, set[str]] = {}
        for hint in joins:
            a, b = hint.left.split(".")[0], hint.right.split(".")[0]
            adjacency.setdefault(a, set()).add(b)
            adjacency.setdefault(b, set()).add(a)
        out = list(chosen)
        limit = self.max_tables + 2
        for table in ranked:
            if len(out) >= limit:
                break
            if table.name in out:
                continue
            if len(adjacency.get(table.name, set()) & set(out)) >= 2:
                out.append(table.name)
        if len(out) == 1 and adjacency.get(out[0]):
            neighbour = next((t.name for t in ranked if t.name in adjacency[out[0]]), None)
            if neighbour:
                out.append(neighbour)
        return out


def declared_fk(table: TableInfo, column: str) -> ForeignKeyInfo | None:
    low = column.lower()
    return next((fk for fk in table.foreign_keys if any(c.lower() == low for c in fk.columns)), None)
