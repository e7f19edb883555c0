"""The progress callback long library calls accept (ingest, batch parsing, text_to_sql, jobs).

``progress(done, total, message)``: ``done`` of ``total`` units (``total`` None when unknown).
It is called from the thread doing the work; the MCP boundary forwards it to the client as
progress notifications (:func:`servers.core.boundary.progress_reporter`), the CLI draws a bar.

Progress calls are also where work stops when its caller cancels: the boundary's callback
raises :class:`Cancelled` once the client has cancelled the request, so a library calls
``progress`` only at points where stopping leaves its data consistent (between batches, before
the next file).
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, float | None, str], None]


class Cancelled(BaseException):
    """The caller cancelled the work; raised from a progress call.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that a library's per-item
    ``except Exception`` (one bad file must not sink a batch) never swallows it."""


def no_progress(done: float, total: float | None, message: str) -> None:
    """The callback used when the caller wants none."""
