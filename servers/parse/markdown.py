"""Markdown helpers shared by the converters and the chunkers: rendering tables and
locating headings, tables, code fences and page markers in a Markdown string."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

PAGE_MARKER = re.compile(r"^<!-- (?:page|slide) (\d+) -->[ \t]*$", re.MULTILINE)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
FENCE = re.compile(r"^[ \t]{0,3}(```+|~~~+)")
TABLE_LINE = re.compile(r"^[ \t]{0,3}\|")


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
    """(start, end) of each line, end excluding the newline."""
    spans, pos = [], 0
    for line in text.split("\n"):
        spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return spans


def blocks(text: str) -> list[Block]:
    """Split Markdown into headings, paragraphs, tables, fenced code and page markers."""
    out: list[Block] = []
    lines = _lines(text)
    i = 0
    para_start: int | None = None
    para_end = 0
    para_kind = "paragraph"

    def flush() -> None:
        nonlocal para_start
        if para_start is not None:
            out.append(Block(para_kind, para_start, para_end))
            para_start = None

    while i < len(lines):
        s, e = lines[i]
        line = text[s:e]
        stripped = line.strip()
        fence = FENCE.match(line)
        if fence:
            flush()
            marker = fence.group(1)
            j = i + 1
            while j < len(lines) and not text[lines[j][0] : lines[j][1]].strip().startswith(marker[:3]):
                j += 1
            j = min(j, len(lines) - 1)
            out.append(Block("code", s, lines[j][1]))
            i = j + 1
            continue
        if PAGE_MARKER.match(line):
            flush()
            out.append(Block("marker", s, e, level=int(PAGE_MARKER.match(line).group(1))))
        elif (m := HEADING.match(line)) is not None:
            flush()
            out.append(Block("heading", s, e, level=len(m.group(1)), text=m.group(2).strip()))
        elif TABLE_LINE.match(line):
            flush()
            j = i
            while j + 1 < len(lines) and TABLE_LINE.match(text[lines[j + 1][0] : lines[j + 1][1]]):
                j += 1
            out.append(Block("table", s, lines[j][1]))
            i = j + 1
            continue
        elif not stripped:
            flush()
        else:
            if para_start is None:
                para_start = s
                para_kind = "list" if re.match(r"^\s*([-*+]|\d+[.)])\s", line) else "paragraph"
            para_end = e
        i += 1
    flush()
    return out


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
    """Each heading with the end of its section (next heading of the same or higher level)."""
    heads = headings(text, parsed)
    out = []
    for i, head in enumerate(heads):
        end = len(text)
        for later in heads[i + 1 :]:
            if later.level <= head.level:
                end = later.start
                break
        out.append((head, end))
    return out


def page_spans(text: str) -> list[tuple[int, int, int]]:
    """(page, start, end) from the page/slide markers; empty when there are none."""
    marks = list(PAGE_MARKER.finditer(text))
    return [
        (int(m.group(1)), m.start(), marks[i + 1].start() if i + 1 < len(marks) else len(text))
        for i, m in enumerate(marks)
    ]
