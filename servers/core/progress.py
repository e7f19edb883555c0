"""The progress callback long library calls accept (ingest, batch parsing, text_to_sql, jobs).

``progress(done, total, message)``: ``done`` of ``total`` units (``total`` None when unknown).
It is called from the thread doing the work; the MCP boundary forwards it to the client as
progress notifications (:func:`servers.core.boundary.progress_reporter`), the CLI draws a bar.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, float | None, str], None]


def no_progress(done: float, total: float | None, message: str) -> None:
    """The callback used when the caller wants none."""
