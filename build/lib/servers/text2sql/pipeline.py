"""text_to_sql: question → linked schema → strict prompt → N candidates → check + execute →
repair with the error fed back (up to K rounds) → vote by execution result → answer.

Candidate 1 is greedy; the others are sampled (``sample_temperature``, fixed seed) so the vote has
something to choose from. Candidates whose results are equal vote together (self-consistency);
ties prefer a non-empty result, then the earlier candidate. With ``execute=False`` nothing runs:
candidates are only checked, and identical normalised SQL votes together.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import sqlglot
from pydantic import BaseModel, Field

from servers.core import models
from servers.core.errors import InvalidInput, QuiverError
from servers.core.generate import get_generator
from servers.core.progress import Progress, no_progress
from servers.core.settings import Settings, Text2SqlSettings
from servers.text2sql.database import Database, QueryResult
from servers.text2sql.examples import Example, ExampleRetriever, ExampleStore
from servers.text2sql.linking import LinkedSchema, SchemaLinker
from servers.text2sql.operations import value_hints
from servers.text2sql.prompting import STOP, build_messages, extract_sql, repair_messages
from servers.text2sql.sqlcheck import check_sql

Status = Literal["ok", "invalid", "error", "no_sql", "checked"]
MAX_QUESTION_CHARS = 2000


class Candidate(BaseModel):
    index: int = Field(description="1 = greedy answer, 2.. = sampled answers")
    sql: str = Field(description="the final SQL of this candidate (after repairs)")
    status: Status = Field(description="ok: checked and executed; checked: valid, not executed (execute=false); "
                                       "invalid: failed the SQL check; error: the database rejected it; no_sql: no query in the answer")
    error: str | None = None
    repairs: int = Field(default=0, description="repair rounds used")
    row_count: int | None = None
    votes: int = 0
    chosen: bool = False
    history: list[str] = Field(default_factory=list, description="earlier SQL attempts and their errors")


class TextToSqlResult(BaseModel):
    ok: bool = Field(description="true when a candidate passed the check (and ran, if execute)")
    database: str
    dialect: str
    question: str
    sql: str | None = Field(description="the chosen SQL")
    result: QueryResult | None = Field(default=None, description="rows of the chosen SQL (execute=true)")
    candidates: list[Candidate]
    linked_tables: list[str] = Field(description="tables given to the model after schema linking")
    examples_used: list[str] = Field(description="few-shot example questions put in the prompt")
    explanation: str | None = None
    message: str
    model: str
    elapsed_ms: float


class PipelineOptions(BaseModel):
    candidates: int = 1
    repair_rounds: int = 2
    execute: bool = True
    explain: bool = False
    max_rows: int = 200
    timeout_s: float = 10.0
    max_new_tokens: int = 160
    temperature: float = 0.7
    examples_k: int = 3
    seed: int = 0
    instructions: str | None = None

    @classmethod
    def from_settings(cls, cfg: Text2SqlSettings, **given: Any) -> PipelineOptions:
        """Options for one call: the caller's values where given (not None), else the ``[text2sql]`` settings."""
        defaults = {
            "candidates": cfg.candidates, "repair_rounds": cfg.repair_rounds, "max_rows": cfg.max_rows,
            "timeout_s": cfg.timeout_s, "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.sample_temperature,
            "examples_k": cfg.examples_k,
        }
        return cls(**(defaults | {k: v for k, v in given.items() if v is not None}))


@dataclass
class Attempt:
    """One SQL attempt and what the check (and the database) said about it."""

    sql: str
    status: Status
    error: str | None = None
    result: QueryResult | None = None

    @property
    def passed(self) -> bool:
        return self.status in ("ok", "checked")


@dataclass
class Repair:
    """The outcome of repairing a failed attempt: the last attempt, rounds used, earlier attempts."""

    last: Attempt
    rounds: int
    history: list[str] = field(default_factory=list)


def _signature(result: QueryResult) -> tuple:
    """Order-insensitive identity of a result (floats rounded), for voting."""
    def norm(v: Any) -> Any:
        return round(v, 6) if isinstance(v, float) else v

    return (len(result.columns), tuple(sorted(repr(tuple(norm(v) for v in row)) for row in result.rows)))


def normalized_sql(sql: str, dialect: str) -> str:
    try:
        return sqlglot.parse_one(sql, read=dialect).sql(dialect=dialect, normalize=True, pretty=False)
    except Exception:  # a candidate that does not parse still votes by its raw text
        return " ".join(sql.split()).lower()


def synthetic_examples(linked: LinkedSchema) -> list[Example]:
    """Format-only examples from the linked schema, for a database whose example store is empty."""
    out: list[Example] = []
    if not linked.tables:
        return out
    first = linked.tables[0]
    out.append(Example(id="synthetic-1", question=f"How many rows does the {first.name} table have?",
                       sql=f"SELECT COUNT(*) FROM {first.name};", source="seed"))
    text_col = next((c for c in first.columns if "char" in c.type.lower() or "text" in c.type.lower()), None)
    if text_col is not None:
        out.append(Example(id="synthetic-2", question=f"List the different {text_col.name} values of {first.name}.",
                           sql=f"SELECT DISTINCT {text_col.name} FROM {first.name};", source="seed"))
    return out


class TextToSql:
    """The pipeline; holds the lazily loaded embedder/generator and per-database caches."""

    def __init__(
        self,
        settings: Settings,
        *,
        generator: Any = None,
        embed: Callable[[list[str]], np.ndarray] | None = None,
    ):
        self.settings = settings
        self._generator = generator
        self._embed_fn = embed
        self._linker: SchemaLinker | None = None
        self._values: dict[str, tuple[object, dict]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ lazy parts
    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._embed_fn is None:
            return models.embed(texts, self.settings)
        return self._embed_fn(texts)

    @property
    def linker(self) -> SchemaLinker:
        with self._lock:
            if self._linker is None:
                self._linker = SchemaLinker(self._embed)
            return self._linker

    @property
    def generator(self) -> Any:
        if self._generator is None:
            self._generator = get_generator(self.settings)
        return self._generator

    def values_for(self, db: Database) -> dict[tuple[str, str], list[str]]:
        schema = db.schema()
        key = id(schema)
        cached = self._values.get(db.name)
        if cached is None or cached[0] != key:
            cached = (key, value_hints(db, timeout_s=min(2.0, self.settings.text2sql.timeout_s)))
            self._values[db.name] = cached
        return cached[1]

    # ------------------------------------------------------------ steps
    def prepare(self, question: str, db: Database, store: ExampleStore | None, options: PipelineOptions
                ) -> tuple[list[dict[str, Any]], LinkedSchema, list[Example]]:
        """Schema linking, example retrieval and the prompt."""
        schema = db.schema()
        linked = self.linker.link(question, schema, self.values_for(db))
        stored = store.list() if store is not None else []
        if stored:
            near = ExampleRetriever(self.linker.vectors).nearest(question, stored, k=options.examples_k)
            examples = [e for e, _ in reversed(near)]  # the closest example right before the question
        else:
            examples = synthetic_examples(linked)
        messages = build_messages(question, db.dialect, linked, examples, options.instructions)
        return messages, linked, examples

    def evaluate(self, db: Database, sql: str, options: PipelineOptions) -> Attempt:
        """Check, then (if executing) run one candidate SQL."""
        if not sql:
            return Attempt(sql, "no_sql", "the answer contained no SELECT statement")
        report = check_sql(sql, db.schema())
        if not report.ok:
            return Attempt(sql, "invalid", "; ".join(report.problems))
        if not options.execute:
            return Attempt(sql, "checked")
        try:
            return Attempt(sql, "ok", result=db.execute(sql, max_rows=options.max_rows, timeout_s=options.timeout_s))
        except QuiverError as exc:
            return Attempt(sql, "error", str(exc))

    def repair(self, db: Database, messages: list[dict[str, Any]], failed: Attempt, options: PipelineOptions,
               rounds: int) -> Repair:
        """Feed the error back up to ``rounds`` times; returns the last attempt and the history."""
        history: list[str] = []
        attempt = failed
        used = 0
        while used < rounds:
            used += 1
            history.append(f"{attempt.sql or '(no SQL)'} -- {attempt.error}")
            answer = self.generator.chat(repair_messages(messages, attempt.sql, attempt.error or ""),
                                         max_new_tokens=options.max_new_tokens, temperature=0.0, stop=STOP)[0]
            attempt = self.evaluate(db, extract_sql(answer), options)
            if attempt.passed:
                break
        return Repair(attempt, used, history)

    # ------------------------------------------------------------ the whole thing
    def answer(
        self,
        question: str,
        db: Database,
        store: ExampleStore | None,
        options: PipelineOptions,
        progress: Progress | None = None,
    ) -> TextToSqlResult:
        start = time.perf_counter()
        question = question.strip()
        if not question:
            raise InvalidInput("question is empty: ask something about the data")
        if len(question) > MAX_QUESTION_CHARS:
            raise InvalidInput(f"question is {len(question)} characters; keep it under {MAX_QUESTION_CHARS}")
        total = options.candidates + 2
        notify = progress or no_progress
        notify(0, total, "linking schema")
        messages, linked, examples = self.prepare(question, db, store, options)
        notify(1, total, f"generating {options.candidates} candidate(s)")
        texts = self.generator.chat(messages, max_new_tokens=options.max_new_tokens, temperature=0.0, stop=STOP)[:1]
        if options.candidates > 1:
            texts += self.generator.chat(messages, max_new_tokens=options.max_new_tokens, temperature=options.temperature,
                                         n=options.candidates - 1, stop=STOP, seed=options.seed)
        candidates: list[Candidate] = []
        results: dict[int, QueryResult] = {}
        repaired: dict[tuple[str, str], Repair] = {}
        for i, text in enumerate(texts, start=1):
            notify(1 + i, total, f"checking candidate {i}")
            attempt = self.evaluate(db, extract_sql(text), options)
            repairs, history = 0, []
            if not attempt.passed and options.repair_rounds > 0:
                key = (attempt.sql, attempt.error or "")
                if key not in repaired:  # identical failures are repaired once
                    repaired[key] = self.repair(db, messages, attempt, options, options.repair_rounds)
                fixed = repaired[key]
                attempt, repairs, history = fixed.last, fixed.rounds, fixed.history
            cand = Candidate(index=i, sql=attempt.sql, status=attempt.status, error=attempt.error, repairs=repairs,
                             history=history)
            if attempt.result is not None:
                cand.row_count = attempt.result.row_count
                results[i] = attempt.result
            candidates.append(cand)
        chosen = self._vote(candidates, results, db.dialect)
        explanation = None
        if chosen is not None and options.explain:
            explanation = self.explain(question, chosen.sql, results.get(chosen.index), options)
        notify(total, total, "done")
        if chosen is None:
            errors = "; ".join(f"#{c.index}: {c.error}" for c in candidates if c.error)[:1500]
            message = (f"no candidate SQL passed {'the check and execution' if options.execute else 'the check'} "
                       f"after {options.repair_rounds} repair round(s): {errors}. Rephrase the question, name the "
                       "tables/columns, add an example with sql_add_example, or write the SQL and use sql_execute.")
        else:
            message = (f"candidate {chosen.index} chosen with {chosen.votes} of {len(candidates)} vote(s)"
                       + (f"; {chosen.row_count} row(s)" if chosen.row_count is not None else ""))
        return TextToSqlResult(
            ok=chosen is not None, database=db.name, dialect=db.dialect, question=question,
            sql=chosen.sql if chosen else None, result=results.get(chosen.index) if chosen else None,
            candidates=candidates, linked_tables=linked.table_names, examples_used=[e.question for e in examples],
            explanation=explanation, message=message, model=str(getattr(self.generator, "name", "?")),
            elapsed_ms=round((time.perf_counter() - start) * 1000, 1),
        )

    @staticmethod
    def _vote(candidates: list[Candidate], results: dict[int, QueryResult], dialect: str) -> Candidate | None:
        groups: dict[object, list[Candidate]] = {}
        for cand in candidates:
            if cand.status == "ok":
                key: object = _signature(results[cand.index])
            elif cand.status == "checked":
                key = normalized_sql(cand.sql, dialect)
            else:
                continue
            groups.setdefault(key, []).append(cand)
        if not groups:
            return None
        for members in groups.values():
            for cand in members:
                cand.votes = len(members)

        def rank(members: list[Candidate]) -> tuple:
            first = members[0]
            empty = first.row_count == 0
            return (-len(members), empty, first.index)

        best = min(groups.values(), key=rank)[0]
        best.chosen = True
        return best

    def explain(self, question: str, sql: str, result: QueryResult | None, options: PipelineOptions) -> str:
        rows = ""
        if result is not None:
            head = [", ".join(result.columns)] + [", ".join(str(v) for v in r) for r in result.rows[:8]]
            rows = "\nFirst rows:\n" + "\n".join(head)
        messages = [
            {"role": "system", "content": "Explain in one short paragraph what the SQL query computes and what "
                                          "its result says about the question. Plain prose, no SQL."},
            {"role": "user", "content": f"Question: {question}\nSQL: {sql}{rows}"},
        ]
        text = self.generator.chat(messages, max_new_tokens=120, temperature=0.0)[0]
        return " ".join(text.split())
