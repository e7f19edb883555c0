"""Small text helpers shared by every package."""

from __future__ import annotations

from typing import Any


def one_line(value: Any, limit: int = 300) -> str:
    """``value`` as one line of at most ``limit`` characters (whitespace runs collapsed, "…" when cut).

    For error messages and logs that quote something of unknown size (an exception, a
    response body, a cell value)."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def truncate_at_stop(text: str, stop: list[str] | tuple[str, ...] | None) -> str:
    """``text`` cut at the earliest occurrence of any (non-empty) stop string."""
    cut = len(text)
    for s in stop or ():
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]
