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

import contextlib
from collections.abc import Callable, Iterator

Progress = Callable[[float, float | None, str], None]


class Cancelled(BaseException):
    """The caller cancelled the work; raised from a progress call.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that a library's per-item
    ``except Exception`` (one bad file must not sink a batch) never swallows it."""


def no_progress(done: float, total: float | None, message: str) -> None:
    """The callback used when the caller wants none."""


@contextlib.contextmanager
def progress_bar(label: str, *, time_left: bool = False, transient: bool = False) -> Iterator[Progress]:
    """The CLI's progress bar on stderr (``rich``), as a :data:`Progress` callback: ``label`` then the latest
    message; elapsed time, or the estimated time left with ``time_left``; erased at the end when ``transient``."""
    from rich import progress as rp
    from rich.console import Console

    clock = rp.TimeRemainingColumn() if time_left else rp.TimeElapsedColumn()
    with rp.Progress(rp.TextColumn("{task.description}"), rp.BarColumn(), rp.MofNCompleteColumn(), clock,
                     console=Console(stderr=True), transient=transient) as bar:
        task = bar.add_task(label, total=None)

        def progress(done: float, total: float | None, message: str = "") -> None:
            bar.update(task, completed=done, total=total, description=f"{label} {message or ''}"[:80])

        yield progress
