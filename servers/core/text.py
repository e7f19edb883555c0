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


MESSAGE_LIMIT = 2000


def safe_text(value: Any, limit: int = MESSAGE_LIMIT) -> str:
    """``value`` made safe to show a client or write to a log: control characters other than
    newline and tab (terminal escape codes, NUL, bidi overrides) and unpaired surrogates are
    written as visible escapes (``\\x1b``, ``\\u202e``), and a text longer than ``limit`` keeps its
    beginning and its end (where an error message says what to fix) around a note of what was cut.

    The one helper for error messages that may quote inputs: the MCP boundary applies it to every
    tool error and to what it logs."""
    text = str(value).translate(_ESCAPES)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        text = "".join(f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    if len(text) <= limit:
        return text
    tail = limit // 4
    head = max(limit - tail - 40, 0)
    return f"{text[:head]} … [{len(text) - head - tail:,} characters cut] … {text[len(text) - tail:]}"


def _escape_table() -> dict[int, str]:
    controls = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
    table = {c: f"\\x{c:02x}" for c in controls if c not in (0x09, 0x0A)}
    # bidi embeddings/overrides/isolates and zero-width joiners can make a message read as something else
    for c in (*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF):
        table[c] = f"\\u{c:04x}"
    return table


_ESCAPES = _escape_table()
