"""Parsing where a runaway can be stopped: every file the servers parse (``parse_document``,
``parse_files``, ``chunk``'s files, ``kb_ingest``'s files and texts) goes through warm worker processes with the
``[parse]`` time limit (``timeout_s``) and memory cap (``max_memory_mb``); see
:mod:`servers.core.isolation`. A file past either limit gets a clear ``Timeout`` / ``TooLarge``
error and the server goes on serving."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from servers.core.isolation import WorkerPool, WorkerSpec
from servers.core.roots import MB, check_size, read_under_roots
from servers.core.settings import ParseSettings
from servers.parse.documents import parse_bytes, parse_text
from servers.parse.schema import ParsedDocument

# What a parse worker imports at start (every converter, so no call pays an import).
PRELOAD = (
    "servers.parse.documents", "servers.parse.formats.pdf", "servers.parse.formats.docx",
    "servers.parse.formats.pptx", "servers.parse.formats.tabular", "servers.parse.formats.html",
    "servers.parse.formats.text", "pdfplumber",
)

_pools: dict[tuple[float, float, int], WorkerPool] = {}
_lock = threading.Lock()


def parse_pool(settings: ParseSettings) -> WorkerPool:
    """The process-wide worker pool for these limits (servers in one process share it)."""
    key = (settings.timeout_s, settings.max_memory_mb, settings.workers)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            spec = WorkerSpec(
                "the parser", timeout_s=settings.timeout_s, max_memory_mb=settings.max_memory_mb, preload=PRELOAD,
                timeout_key="parse.timeout_s", memory_key="parse.max_memory_mb",
            )
            pool = _pools[key] = WorkerPool(spec, size=settings.workers, idle_s=600)
        return pool


def parse_bytes_isolated(
    data: bytes, filename: str, settings: ParseSettings, *, source: str | None = None
) -> ParsedDocument:
    """:func:`~servers.parse.documents.parse_bytes` in a parse worker, within the limits."""
    name = Path(filename).name or "document"
    check_size(len(data), settings.max_file_mb, name)  # before the bytes travel
    return parse_pool(settings).run(parse_bytes, data, filename, settings, source=source, label=f"parsing {name}")


def parse_text_isolated(text: str, *, source: str, settings: ParseSettings) -> ParsedDocument:
    """:func:`~servers.parse.documents.parse_text` (a string, not a file) in a parse worker, within the limits."""
    check_size(len(text.encode("utf-8")), settings.max_file_mb, source)  # before the text travels
    return parse_pool(settings).run(parse_text, text, source=source, settings=settings, label=f"parsing {source[:80]}")


def parse_file_isolated(path: str | Path, roots: Sequence[Path], settings: ParseSettings) -> ParsedDocument:
    """Check a path or ``file://`` URI against the roots, read it safely (the bytes checked are the
    bytes parsed; see :func:`~servers.core.roots.read_under_roots`) and parse it in a worker."""
    file = read_under_roots(path, roots, max_bytes=int(settings.max_file_mb * MB))
    return parse_bytes_isolated(file.data, file.path.name, settings, source=str(file.path))
