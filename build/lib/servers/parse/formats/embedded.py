"""Documents inside documents (ZIP members, e-mail attachments): each is parsed by its
own type with every guard, at a bounded nesting depth, and rendered as a section whose
headings sit below the section's own heading."""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from servers.core.errors import InvalidInput, QuiverError
from servers.parse.markdown import blocks

if TYPE_CHECKING:
    from servers.core.settings import ParseSettings
    from servers.parse.schema import ParsedDocument

_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("quiver_parse_nesting", default=0)


def nest(markdown: str, levels: int) -> str:
    """Shift every heading down by ``levels`` (past level 6 it becomes bold text) and drop
    page/slide markers, so a member's structure fits under its section heading."""
    out: list[str] = []
    pos = 0
    for block in blocks(markdown):
        if block.kind not in ("heading", "marker"):
            continue
        out.append(markdown[pos : block.start])
        if block.kind == "heading":
            level = block.level + levels
            out.append("#" * level + " " + block.text if level <= 6 else f"**{block.text}**")
        pos = block.end
    out.append(markdown[pos:])
    return re.sub(r"\n{3,}", "\n\n", "".join(out)).strip()


def nesting_depth() -> int:
    return _DEPTH.get()


def parse_member(data: bytes, name: str, settings: ParseSettings) -> ParsedDocument:
    """Parse a contained file one level deeper; refuses to go past ``parse.archive_max_depth``."""
    from servers.parse.documents import parse_bytes

    depth = _DEPTH.get() + 1
    if depth > settings.archive_max_depth:
        raise InvalidInput(
            f"{name} is nested {depth} levels deep, past parse.archive_max_depth ({settings.archive_max_depth}); "
            "extract it and parse it on its own"
        )
    token = _DEPTH.set(depth)
    try:
        return parse_bytes(data, name, settings)
    finally:
        _DEPTH.reset(token)


@dataclass
class Member:
    """One contained file rendered as a section, or the reason it could not be."""

    name: str
    section: str
    format: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def member_section(title: str, data: bytes, name: str, settings: ParseSettings) -> Member:
    """A contained file as a ``## title`` section; bad input becomes ``error``, never an exception."""
    try:
        doc = parse_member(data, name, settings)
    except QuiverError as exc:
        return Member(name, f"## {title}\n\n*Not parsed: {exc}*", error=str(exc))
    body = nest(doc.markdown, 2)
    section = f"## {title}" + (f"\n\n{body}" if body else "")
    return Member(name, section, doc.format, warnings=[f"{name}: {w}" for w in doc.warnings])
