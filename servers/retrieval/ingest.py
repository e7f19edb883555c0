"""Ingest: files, folders, ``file://`` URIs and raw texts → parse → chunk → embed (batches) → upsert.

Identity and idempotency: a document is identified by its *source* (``doc_id`` = hash of the
resolved path, or of the text's ``source``); its *version* is a hash of its content plus everything
that shapes its chunks (chunking options, tags, metadata, title). Chunk ids hash (doc_id, version,
index, text), so re-running an ingest upserts the same primary keys and never duplicates.

* same version already stored completely → skipped without parsing or embedding;
* a new version → its chunks are upserted, then every chunk of an older version is deleted, so no
  stale chunk survives (if the process dies in between, the next run finishes the deletion);
* killed mid-ingest → the knowledge base stays usable; running the same ingest again completes it.

Per-document failures are collected in the report; the batch goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from servers.core.errors import InvalidInput, QuiverError, Timeout, TooLarge
from servers.core.fetch import fetch_url, is_url
from servers.core.models import embed, embedding_dimension
from servers.core.progress import Progress
from servers.core.roots import MB, read_under_roots, resolve_under_roots
from servers.core.settings import Settings
from servers.core.text import safe_text
from servers.parse.chunking import chunk_document
from servers.parse.inputs import walk_files
from servers.parse.isolated import parse_bytes_isolated, parse_text_isolated
from servers.retrieval.filters import to_epoch
from servers.retrieval.store import (
    MAX_HEADINGS,
    MAX_TAGS,
    Store,
    chunk_id_for,
    doc_id_for,
    get_store,
    utf8_truncate,
)

log = logging.getLogger(__name__)
Strategy = Literal["structure", "fixed", "recursive", "semantic"]
MAX_FILES = 100_000



clock = time.monotonic  # the time limit's clock (a seam for tests)

class TextDocument(BaseModel):
    """A raw text to ingest as one document."""

    text: str = Field(min_length=1, description="the document text (plain text or Markdown)")
    source: str | None = Field(
        default=None,
        description="identity of the document (a URL, a name); ingesting a new text with the same source "
        "replaces the old one. Default: a hash of the text",
    )
    title: str | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict, description="JSON metadata stored with every chunk")
    created: str | int | None = Field(default=None, description="document date (ISO or epoch s); default now")


class DocumentError(BaseModel):
    source: str
    error: str

    @classmethod
    def of(cls, source: object, error: object) -> DocumentError:
        """An error entry with its source and message escaped and cut (inputs may be megabytes)."""
        return cls(source=safe_text(source, 500), error=safe_text(error, 1000))


class IngestReport(BaseModel):
    """What an ingest did."""

    kb: str
    documents: int = Field(description="documents seen (files found plus texts)")
    added: int = Field(description="new documents stored")
    replaced: int = Field(description="documents whose content changed: old chunks removed, new ones stored")
    unchanged: int = Field(description="documents already stored with the same content: skipped")
    failed: int = Field(description="documents that could not be read or parsed (see errors)")
    chunks_added: int
    chunks_removed: int = Field(description="stale chunks of older versions deleted")
    chunks_skipped: int = Field(description="chunks of unchanged documents")
    errors: list[DocumentError] = Field(default_factory=list)
    timings: dict[str, float] = Field(description="seconds: read_parse, embed, store, total")
    chunks_per_s: float = Field(description="chunks added per second, end to end")


@dataclass
class _Item:
    source: str
    path: Path | None = None
    text: TextDocument | None = None
    url: str | None = None


@dataclass
class _Doc:
    item: _Item
    doc_id: str
    version: str
    data: bytes
    rows: list[dict[str, Any]] = field(default_factory=list)
    embed_inputs: list[str] = field(default_factory=list)
    existed: bool = False
    mtime: float = 0.0
    filename: str = ""


def embed_input(title: str, headings: Sequence[str], text: str, with_context: bool = True) -> str:
    """What is embedded for a chunk: its title and heading path (those not already at its start), then its text."""
    if not with_context:
        return text
    head = text[:300]
    context = [p for p in dict.fromkeys([title, *headings]) if p and p not in head]
    return "\n".join([*context, text])


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()[:32]


def collect_items(
    settings: Settings, paths: Sequence[str], texts: Sequence[TextDocument], errors: list[DocumentError]
) -> list[_Item]:
    """Resolve paths under the roots (folders recursively, hidden files skipped); bad paths → errors."""
    roots = settings.root_paths()
    items: list[_Item] = []
    seen: set[str] = set()
    for raw in paths:
        if is_url(raw):
            if raw not in seen:
                seen.add(raw)
                items.append(_Item(source=raw.strip(), url=raw.strip()))
            continue
        try:
            path = resolve_under_roots(raw, roots)
            files = list(walk_files(path, skip=settings.data_path)) if path.is_dir() else [path]
        except QuiverError as exc:
            errors.append(DocumentError.of(raw, exc))
            continue
        except OSError as exc:  # a folder that cannot be listed
            errors.append(DocumentError.of(raw, f"cannot read this folder: {exc.strerror or exc}"))
            continue
        for file in files:
            key = str(file)
            if file.is_symlink():  # a link inside a folder must still land under a root
                try:
                    key = str(resolve_under_roots(key, roots))
                except QuiverError as exc:
                    errors.append(DocumentError.of(file, exc))
                    continue
            if key not in seen:
                seen.add(key)
                items.append(_Item(source=key, path=Path(key)))
            if len(items) > MAX_FILES:
                raise InvalidInput(f"more than {MAX_FILES} files to ingest; ingest sub-folders one at a time")
    for text in texts:
        source = text.source or f"text:{hashlib.sha256(text.text.encode()).hexdigest()[:16]}"
        if source in seen:
            errors.append(DocumentError.of(source, "the same source appears twice in this request; kept the first"))
            continue
        seen.add(source)
        items.append(_Item(source=source, text=text))
    return items


class Ingestor:
    """One ingest run into one knowledge base (see :func:`ingest`)."""

    def __init__(
        self, settings: Settings, kb: str, *, strategy: Strategy | None, chunk_size: int | None,
        chunk_overlap: int | None, tags: Sequence[str], metadata: dict[str, Any] | None,
        store: Store | None = None,
    ) -> None:
        cfg = settings.retrieval
        self.settings = settings
        self.roots = settings.root_paths()
        self.kb = kb
        self.store = store or get_store(settings)
        self.strategy = strategy or cfg.chunk_strategy
        self.size = chunk_size or cfg.chunk_size
        self.overlap = cfg.chunk_overlap if chunk_overlap is None else chunk_overlap
        if self.overlap >= self.size:
            raise InvalidInput(f"chunk_overlap ({self.overlap}) must be smaller than chunk_size ({self.size})")
        self.tags = _clean_tags(tags)
        self.metadata = dict(metadata or {})
        self.max_metadata = cfg.max_metadata_bytes
        self.deadline = float("inf")  # set when run() starts
        check_metadata(self.metadata, self.max_metadata, "metadata")
        self.store.require(kb)
        self.store.check_model(kb, settings.models.embedder, embedding_dimension(settings))
        self.timings = {"read_parse": 0.0, "embed": 0.0, "store": 0.0}
        self.counts = {"added": 0, "replaced": 0, "unchanged": 0, "chunks_added": 0, "chunks_removed": 0, "chunks_skipped": 0}

    # ------------------------------------------------------------ per document

    def _options(self, item: _Item) -> dict[str, Any]:
        t = item.text
        return {
            "strategy": self.strategy, "size": self.size, "overlap": self.overlap,
            "tags": sorted(set(self.tags) | set(_clean_tags(t.tags if t else []))),
            "metadata": {**self.metadata, **(t.metadata if t else {})},
            "title": t.title if t else None, "created": t.created if t else None,
            "embed_title": self.settings.retrieval.embed_title, "embedder": self.settings.models.embedder,
        }

    def read(self, item: _Item) -> _Doc:
        """The document's bytes. A file is re-checked against the roots right before it is opened,
        and the bytes come from the opened file itself: a folder swapped for a link to elsewhere
        after the walk is refused (see :func:`~servers.core.roots.read_under_roots`)."""
        mtime, filename = 0.0, item.path.name if item.path else ""
        if item.text is not None:
            data = item.text.text.encode("utf-8")
        elif item.url is not None:
            fetched = fetch_url(item.url, self.settings.fetch,
                                max_mb=min(self.settings.fetch.max_mb, self.settings.parse.max_file_mb))
            data, filename = fetched.data, fetched.filename
        else:
            assert item.path is not None
            limit = int(self.settings.parse.max_file_mb * MB)
            file = read_under_roots(item.path, self.roots, max_bytes=limit)
            data, mtime = file.data, file.mtime
        version = _digest(hashlib.sha256(data).hexdigest(), self._options(item))
        return _Doc(item=item, doc_id=doc_id_for(item.source), version=version, data=data, mtime=mtime,
                    filename=filename)

    def parse_and_chunk(self, doc: _Doc) -> None:
        item = doc.item
        opts = self._options(item)
        check_metadata(opts["metadata"], self.max_metadata, f"{item.source}: metadata (with the call's metadata)")
        if item.text is not None:
            parsed = parse_text_isolated(item.text.text, source=item.source, settings=self.settings.parse)
            title = item.text.title or parsed.title or ""
            created = to_epoch(item.text.created, "created") if item.text.created is not None else int(time.time())
        else:
            parsed = parse_bytes_isolated(doc.data, doc.filename, self.settings.parse, source=item.source)
            title = parsed.title or Path(doc.filename).stem
            created = _date(parsed.metadata.created) or int(doc.mtime)
        chunks = chunk_document(
            parsed, strategy=self.strategy, size=self.size, overlap=self.overlap, unit="tokens",
            tokenizer=self.settings.models.embedder, settings=self.settings,
        )
        chunks = [c for c in chunks if c.text.strip()]
        if not chunks:
            raise InvalidInput(f"{item.source}: no text to index (empty, or a scanned document without a text layer)")
        now = int(time.time())
        title = utf8_truncate(title, 2000)
        for index, chunk in enumerate(chunks):
            text = utf8_truncate(chunk.text)
            headings = [utf8_truncate(h, 500) for h in chunk.heading_path][:MAX_HEADINGS]
            doc.rows.append({
                "id": chunk_id_for(doc.doc_id, doc.version, index, text),
                "doc_id": doc.doc_id, "version": doc.version, "chunk_index": index, "chunk_count": len(chunks),
                "text": text, "source": utf8_truncate(item.source, 4000), "title": title,
                "heading_path": headings, "page": int(chunk.pages[0]) if chunk.pages else 0,
                "tags": opts["tags"], "created": created, "updated": now, "metadata": opts["metadata"],
            })
            doc.embed_inputs.append(embed_input(title, headings, text, self.settings.retrieval.embed_title))

    # ------------------------------------------------------------ batches

    def check_existing(self, docs: list[_Doc]) -> list[_Doc]:
        """Skip documents already stored completely at this version (and drop their stale chunks)."""
        if not docs:
            return []
        start = time.perf_counter()
        rows = self.store.versions(self.kb, [d.doc_id for d in docs])
        complete: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            complete.setdefault(row["doc_id"], []).append(row)
        todo = []
        for doc in docs:
            mine = [r for r in complete.get(doc.doc_id, []) if r["version"] == doc.version]
            doc.existed = doc.doc_id in complete
            if mine and len(mine) == int(mine[0]["chunk_count"]):
                stale = self._drop_old(doc) if len(mine) < len(complete[doc.doc_id]) else 0
                self.counts["unchanged" if not stale else "replaced"] += 1
                self.counts["chunks_skipped"] += len(mine)
                self.counts["chunks_removed"] += stale
            else:
                todo.append(doc)
        self.timings["store"] += time.perf_counter() - start
        return todo

    def _drop_old(self, doc: _Doc) -> int:
        return self.store.delete_other_versions(self.kb, doc.doc_id, doc.version)

    def check_time(self, stored: int) -> None:
        """Stop the ingest with :class:`Timeout` once it has run past ``retrieval.ingest_timeout_s``."""
        if clock() <= self.deadline:
            return
        limit = self.settings.retrieval.ingest_timeout_s
        raise Timeout(
            f"kb_ingest stopped after {limit:g} s (retrieval.ingest_timeout_s) with {stored} document(s) stored "
            f"completely in '{self.kb}'; run the same ingest again to continue (stored documents are skipped), "
            "ingest fewer or smaller documents per call, or raise retrieval.ingest_timeout_s"
        )

    def store_docs(self, docs: list[_Doc], stored: int = 0) -> None:
        """Embed and upsert the chunks of ``docs``, then delete their older versions. The time limit is
        checked between embedding slices, before anything of ``docs`` is written."""
        inputs = [t for d in docs for t in d.embed_inputs]
        if inputs:
            start = time.perf_counter()
            step = max(1, self.settings.retrieval.ingest_batch)
            parts = []
            for i in range(0, len(inputs), step):
                self.check_time(stored)
                parts.append(embed(inputs[i : i + step], self.settings))
            vectors = np.concatenate(parts) if len(parts) > 1 else parts[0]
            self.timings["embed"] += time.perf_counter() - start
            k = 0
            for doc in docs:
                for row in doc.rows:
                    row["dense"] = vectors[k].tolist()
                    k += 1
        start = time.perf_counter()
        rows = [r for d in docs for r in d.rows]
        for i in range(0, len(rows), 256):
            self.store.upsert(self.kb, rows[i : i + 256])
        for doc in docs:
            removed = self._drop_old(doc) if doc.existed else 0
            self.counts["replaced" if doc.existed else "added"] += 1
            self.counts["chunks_added"] += len(doc.rows)
            self.counts["chunks_removed"] += removed
        self.timings["store"] += time.perf_counter() - start

    def run(self, items: list[_Item], errors: list[DocumentError], progress: Progress | None) -> IngestReport:
        total_start = time.perf_counter()
        total = len(items)
        failed = 0
        batch = self.settings.retrieval.ingest_batch
        group_size = 64
        pending: list[_Doc] = []
        pending_chunks = 0
        done = 0

        self.deadline = clock() + self.settings.retrieval.ingest_timeout_s

        def report(message: str) -> None:
            if progress is not None:
                progress(done, total, message)
            self.check_time(done)

        report(f"0/{total} documents")
        for g in range(0, total, group_size):
            group: list[_Doc] = []
            start = time.perf_counter()
            for item in items[g : g + group_size]:
                try:
                    group.append(self.read(item))
                except QuiverError as exc:
                    errors.append(DocumentError.of(item.source, exc))
                    failed += 1
            self.timings["read_parse"] += time.perf_counter() - start
            todo = self.check_existing(group)
            done += len(items[g : g + group_size]) - len(todo)
            for doc in todo:
                report(f"{done}/{total} documents; parsing {Path(doc.item.source).name[:60]}")
                start = time.perf_counter()
                try:
                    self.parse_and_chunk(doc)
                except QuiverError as exc:
                    errors.append(DocumentError.of(doc.item.source, exc))
                    failed += 1
                    done += 1
                    continue
                except Exception as exc:  # a parser bug on one file must not sink the batch
                    log.error("ingest of %s failed: %s", safe_text(doc.item.source, 300),
                              safe_text("".join(traceback.format_exception(exc)), 20_000))
                    errors.append(DocumentError.of(doc.item.source, f"{type(exc).__name__}: {exc}"))
                    failed += 1
                    done += 1
                    continue
                finally:
                    self.timings["read_parse"] += time.perf_counter() - start
                doc.data = b""
                pending.append(doc)
                pending_chunks += len(doc.rows)
                if pending_chunks >= batch:
                    self.store_docs(pending, done)
                    done += len(pending)
                    pending, pending_chunks = [], 0
                    report(f"{done}/{total} documents, {self.counts['chunks_added']} chunks added")
            report(f"{done}/{total} documents, {self.counts['chunks_added']} chunks added")
        if pending:
            self.store_docs(pending, done)
            done += len(pending)
        start = time.perf_counter()
        self.store.flush(self.kb)
        self.timings["store"] += time.perf_counter() - start
        report(f"{done}/{total} documents, {self.counts['chunks_added']} chunks added")
        elapsed = time.perf_counter() - total_start
        timings = {k: round(v, 3) for k, v in self.timings.items()} | {"total": round(elapsed, 3)}
        return IngestReport(
            kb=self.kb, documents=total, failed=failed, errors=errors, timings=timings,
            chunks_per_s=round(self.counts["chunks_added"] / elapsed, 1) if elapsed > 0 else 0.0,
            **self.counts,
        )


def ingest(
    settings: Settings,
    kb: str,
    *,
    paths: Sequence[str] = (),
    texts: Sequence[TextDocument | dict[str, Any]] = (),
    strategy: Strategy | None = None,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    tags: Sequence[str] = (),
    metadata: dict[str, Any] | None = None,
    progress: Progress | None = None,
    store: Store | None = None,
) -> IngestReport:
    """Ingest files / folders / URIs (under the roots) and raw texts into knowledge base ``kb``.

    ``progress(done, total, message)`` is called from the start (loading the embedder, listing files),
    before each document is parsed and after each batch is stored; these are also the points where a
    cancelled ingest stops (raising :class:`~servers.core.progress.Cancelled`): every batch stored so far
    is complete, and the same ingest run again skips it and does the rest.
    Blocking: call it from a worker thread in async code.
    """
    if not paths and not texts:
        raise InvalidInput("nothing to ingest: give `paths` (files, folders, file:// URIs) and/or `texts`")
    docs = [t if isinstance(t, TextDocument) else TextDocument.model_validate(t) for t in texts]
    if progress is not None:
        progress(0, None, f"loading the embedding model ({settings.models.embedder})")
    runner = Ingestor(
        settings, kb, strategy=strategy, chunk_size=chunk_size, chunk_overlap=chunk_overlap, tags=tags,
        metadata=metadata, store=store,
    )
    errors: list[DocumentError] = []
    if progress is not None:
        progress(0, None, "listing files")
    items = collect_items(settings, paths, docs, errors)
    report = runner.run(items, errors, progress)
    report.failed += sum(1 for e in errors if not any(e.source == i.source for i in items))
    return report


def check_metadata(metadata: dict[str, Any], limit: int, what: str) -> None:
    """Refuse metadata larger than ``limit`` bytes as JSON (it is copied onto every chunk) or not JSON at all."""
    try:
        size = len(json.dumps(metadata, ensure_ascii=False, allow_nan=False).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} must be plain JSON (objects, lists, strings, finite numbers): {exc}") from None
    except RecursionError:
        raise InvalidInput(f"{what} is nested too deeply; keep metadata flat (key: value)") from None
    if size > limit:
        raise TooLarge(
            f"{what} is {size:,} bytes as JSON, over the {limit:,}-byte limit (retrieval.max_metadata_bytes): "
            "metadata is stored on every chunk; keep it to short fields (ids, dates, authors, tags) and put long "
            "text in the document itself"
        )


def _clean_tags(tags: Iterable[str]) -> list[str]:
    out = []
    for tag in tags:
        tag = str(tag).strip()
        if not tag:
            continue
        if len(tag.encode()) > 128:
            raise InvalidInput(f"tag {tag[:40]!r}... is longer than 128 bytes")
        out.append(tag)
    out = sorted(set(out))
    if len(out) > MAX_TAGS:
        raise InvalidInput(f"{len(out)} tags given; at most {MAX_TAGS} per document")
    return out


def _date(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return to_epoch(value, "created")
    except QuiverError:
        return None
