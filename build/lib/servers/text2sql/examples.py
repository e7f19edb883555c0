"""Per-database few-shot example store: question/SQL pairs the prompt retrieves by similarity.

One JSON file per database under ``DATA_DIR/text2sql/examples/<database>.json``, written atomically.
The demo ``shop`` database starts with the seed pairs in ``shop_examples.json`` (users may remove
them). Retrieval embeds the questions with the shipped embedder and returns the closest ones.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from servers.core.errors import ConfigError, InvalidInput, NotFound, TooLarge

SEED_FILES = {"shop": Path(__file__).with_name("shop_examples.json")}
MAX_EXAMPLES = 5000
MAX_QUESTION_CHARS = 2000


class Example(BaseModel):
    id: str
    question: str
    sql: str
    source: Literal["seed", "user"] = "user"
    added_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


class ExampleStore:
    """Examples of one database, persisted as a JSON list."""

    def __init__(self, path: Path, database: str):
        self.path = path
        self.database = database
        self._lock = threading.Lock()

    # ------------------------------------------------------------ persistence
    def _read(self) -> list[Example]:
        if not self.path.exists():
            return self._seed()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [Example.model_validate(item) for item in data]
        except (OSError, ValueError, ValidationError) as exc:
            raise ConfigError(f"example store {self.path} is unreadable ({exc}); fix or delete the file") from exc

    def _seed(self) -> list[Example]:
        seed = SEED_FILES.get(self.database)
        if seed is None or not seed.is_file():
            return []
        pairs = json.loads(seed.read_text(encoding="utf-8"))
        return [Example(id=f"seed-{i + 1}", question=p["question"], sql=p["sql"], source="seed",
                        added_at="2024-01-01T00:00:00+00:00") for i, p in enumerate(pairs)]

    def _write(self, examples: list[Example]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        tmp.write_text(json.dumps([e.model_dump() for e in examples], indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)

    # ------------------------------------------------------------ operations
    def list(self) -> list[Example]:
        with self._lock:
            return self._read()

    def add(self, question: str, sql: str) -> Example:
        question, sql = question.strip(), sql.strip()
        if not question or not sql:
            raise InvalidInput("both question and sql must be non-empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise TooLarge(f"question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
        with self._lock:
            examples = self._read()
            if len(examples) >= MAX_EXAMPLES:
                raise TooLarge(f"database '{self.database}' already has {MAX_EXAMPLES} examples; remove some first")
            for existing in examples:
                if existing.question.strip().lower() == question.lower():
                    existing.sql = sql
                    existing.source = "user"
                    self._write(examples)
                    return existing
            example = Example(id=uuid.uuid4().hex[:12], question=question, sql=sql)
            examples.append(example)
            self._write(examples)
            return example

    def remove(self, example_id: str) -> Example:
        with self._lock:
            examples = self._read()
            for i, example in enumerate(examples):
                if example.id == example_id:
                    del examples[i]
                    self._write(examples)
                    return example
        raise NotFound(f"no example '{example_id}' for database '{self.database}'; sql_list_examples shows the ids")


class ExampleRetriever:
    """Nearest examples by cosine similarity of question embeddings (embeddings cached by text)."""

    def __init__(self, vectors):  # vectors: Callable[[list[str]], np.ndarray] (normalised rows)
        self._vectors = vectors

    def nearest(self, question: str, examples: list[Example], k: int = 3) -> list[tuple[Example, float]]:
        if not examples or k <= 0:
            return []
        mat = self._vectors([e.question for e in examples])
        sims = mat @ self._vectors([question])[0]
        order = np.argsort(-sims, kind="stable")[:k]
        return [(examples[i], float(sims[i])) for i in order]


def store_for(data_dir: Path, database: str) -> ExampleStore:
    safe = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in database)
    return ExampleStore(Path(data_dir) / "text2sql" / "examples" / f"{safe}.json", database)
