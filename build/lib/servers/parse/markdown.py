"""Markdown helpers shared by the converters and the chunkers: rendering tables and
locating headings, tables, code fences and page markers in a Markdown string.

Block structure comes from markdown-it-py (CommonMark + GFM tables), whose block parser is
linear in the input: ATX and setext headings, fences, tables and lists are found the way
Markdown renderers find them, and a pathological line (60k spaces after a ``#``, a 1 MB line)
costs milliseconds, not minutes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

PAGE_MARKER = re.compile(r"^<!-- (?:page|slide) (\d+) -->[ \t]*$", re.MULTILINE)
NEWLINE = re.compile(r"\r\n?|\n")  # what markdown-it counts as a line break


def cell_text(value: object) -> str:
    """One table cell as Markdown: no newlines, pipes escaped, whitespace collapsed."""
    if value is None:
        return ""
    text = str(value).replace("|", "\\|")
    return " ".join(text.split())


def table_markdown(rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-style Markdown table; the first row is the header. Ragged rows are padded."""
    rows = [[cell_text(c) for c in row] for row in rows]
    rows = [r for r in rows if r] or [[""]]
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(["---"] * width) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def page_marker(number: int, kind: str = "page") -> str:
    return f"<!-- {kind} {number} -->"


@dataclass(frozen=True)
class Block:
    """A top-level Markdown block and its character span ``[start, end)``.

    ``kind`` is one of heading, paragraph, table, code, marker (page/slide marker), list."""

    kind: str
    start: int
    end: int
    level: int = 0
    text: str = ""


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line, end excluding the line break (LF, CRLF or CR, as markdown-it counts them)."""
    spans, pos = [], 0
    for brk in NEWLINE.finditer(text):
        spans.append((pos, brk.start()))
        pos = brk.end()
    spans.append((pos, len(text)))
    return spans


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table").disable("reference")
    md.core.ruler.disable(["inline"])  # block structure only: inline content stays raw text
    return md


KINDS = {
    "heading_open": "heading", "paragraph_open": "paragraph", "table_open": "table", "fence": "code",
    "bullet_list_open": "list", "ordered_list_open": "list", "blockquote_open": "paragraph",
    "code_block": "paragraph", "html_block": "paragraph", "hr": "paragraph",
}


def blocks(text: str) -> list[Block]:
    """Split Markdown into headings, paragraphs, lists, tables, fenced code and page markers."""
    return list(_blocks(text))


@lru_cache(maxsize=4)
def _blocks(text: str) -> tuple[Block, ...]:
    lines = _lines(text)
    tokens = _parser().parse(text)
    out: list[Block] = []
    for i, tok in enumerate(tokens):
        if tok.level != 0 or tok.map is None or tok.type not in KINDS:
            continue
        first, last = tok.map[0], min(tok.map[1], len(lines)) - 1
        start, end = lines[first][0], lines[max(first, last)][1]
        while end > start and text[end - 1].isspace():
            end -= 1
        kind, level, title = KINDS[tok.type], 0, ""
        if kind == "heading":
            level = int(tok.tag[1:])
            inline = tokens[i + 1] if i + 1 < len(tokens) and tokens[i + 1].type == "inline" else None
            title = " ".join((inline.content if inline else "").split())
            if not title:
                kind, level = "paragraph", 0
        elif tok.type == "html_block" and (marker := PAGE_MARKER.match(text, start, lines[first][1])):
            kind, level = "marker", int(marker.group(1))
            end = lines[first][1]
        out.append(Block(kind, start, end, level=level, text=title))
    return tuple(out)


@dataclass(frozen=True)
class Heading:
    level: int
    title: str
    start: int
    path: tuple[str, ...]


def headings(text: str, parsed: list[Block] | None = None) -> list[Heading]:
    """Every ATX heading with its heading path (titles of the enclosing headings)."""
    stack: list[tuple[int, str]] = []
    out = []
    for block in parsed if parsed is not None else blocks(text):
        if block.kind != "heading":
            continue
        while stack and stack[-1][0] >= block.level:
            stack.pop()
        stack.append((block.level, block.text))
        out.append(Heading(block.level, block.text, block.start, tuple(t for _, t in stack)))
    return out


def section_spans(text: str, parsed: list[Block] | None = None) -> list[tuple[Heading, int]]:
    """Each heading with the end of its section (next heading of the same or higher level); linear."""
    heads = headings(text, parsed)
    ends = [len(text)] * len(heads)
    open_: list[int] = []  # indexes of headings whose section is still open, levels increasing
    for i, head in enumerate(heads):
        while open_ and heads[open_[-1]].level >= head.level:
            ends[open_.pop()] = head.start
        open_.append(i)
    return list(zip(heads, ends, strict=True))


def page_spans(text: str) -> list[tuple[int, int, int]]:
    """(page, start, end) from the page/slide markers; empty when there are none."""
    marks = list(PAGE_MARKER.finditer(text))
    return [
        (int(m.group(1)), m.start(), marks[i + 1].start() if i + 1 < len(marks) else len(text))
        for i, m in enumerate(marks)
    ]
