"""Reading order for OCR'd lines: deskew the line boxes, cut the page recursively at
column gutters and paragraph gaps (XY-cut), merge lines that share a row, and mark
lines set much larger than the body text as headings."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from servers.core.ocr import OcrLine

PARAGRAPH_GAP = 0.8  # vertical gap, in body line heights, that starts a new paragraph
GUTTER = 1.5  # horizontal gap, in line heights, that separates columns
PROSE_WIDTH = 6.0  # lines at least this many heights wide read as running text (columns), not cells


@dataclass(frozen=True)
class Box:
    line: OcrLine
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def height(self) -> float:
        return max(1.0, self.y1 - self.y0)


@dataclass(frozen=True)
class TextBlock:
    """A paragraph or heading in reading order, with its char-weighted confidence."""

    text: str
    confidence: float
    level: int = 0  # heading level, 0 for a paragraph
    top: float = 0.0  # in deskewed image pixels, for placing the block among other content
    bottom: float = 0.0
    line_count: int = 1


def is_cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF or 0x3000 <= code <= 0x303F


def join_text(left: str, right: str) -> str:
    """Join two pieces of a paragraph: no space between CJK characters, de-hyphenate words."""
    if not left:
        return right
    if not right:
        return left
    if left.endswith("-") and len(left) > 1 and left[-2].isalpha() and right[0].islower():
        return left[:-1] + right
    if is_cjk(left[-1]) or is_cjk(right[0]):
        return left + right if (is_cjk(left[-1]) and is_cjk(right[0])) or left[-1] in "，。；：、" else left + " " + right
    return left + " " + right


def _skew(lines: list[OcrLine]) -> float:
    """Median angle (radians) of the lines' top edges, weighted toward long lines."""
    angles = []
    for line in lines:
        (x0, y0), (x1, y1) = line.points[0], line.points[1]
        if x1 - x0 > 2 * abs(y1 - y0) and x1 - x0 > 10:
            angles.append(math.atan2(y1 - y0, x1 - x0))
    return statistics.median(angles) if angles else 0.0


def boxes(lines: list[OcrLine]) -> list[Box]:
    """Axis-aligned boxes after rotating every point by the page's skew."""
    angle = _skew(lines)
    cos, sin = math.cos(-angle), math.sin(-angle)
    out = []
    for line in lines:
        xs, ys = [], []
        for x, y in line.points:
            xs.append(x * cos - y * sin)
            ys.append(x * sin + y * cos)
        out.append(Box(line, min(xs), min(ys), max(xs), max(ys)))
    return out


def _gaps(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(start, size) of the empty stretches between merged intervals."""
    out: list[tuple[float, float]] = []
    intervals = sorted(intervals)
    end = intervals[0][1]
    for start, stop in intervals[1:]:
        if start > end:
            out.append((end, start - end))
        end = max(end, stop)
    return out


def _xy_cut(group: list[Box], height: float) -> list[list[Box]]:
    if len(group) <= 1:
        return [group]
    x_gaps = [g for g in _gaps([(b.x0, b.x1) for b in group]) if g[1] >= GUTTER * height]
    if x_gaps:
        at, size = max(x_gaps, key=lambda g: g[1])
        left = [b for b in group if b.x1 <= at]
        right = [b for b in group if b.x1 > at]
        prose = all(
            len(side) >= 2 and statistics.median(b.x1 - b.x0 for b in side) >= PROSE_WIDTH * height
            for side in (left, right)
        )
        if prose:
            return _xy_cut(left, height) + _xy_cut(right, height)
    y_gaps = [g for g in _gaps([(b.y0, b.y1) for b in group]) if g[1] >= PARAGRAPH_GAP * height]
    if y_gaps:
        out: list[list[Box]] = []
        edges = [at + size / 2 for at, size in y_gaps]
        bands: list[list[Box]] = [[] for _ in range(len(edges) + 1)]
        for b in group:
            centre = (b.y0 + b.y1) / 2
            bands[sum(1 for e in edges if centre > e)].append(b)
        for band in bands:
            if band:
                out.extend(_xy_cut(band, height))
        return out
    return [group]  # one paragraph, or a table-like region read row by row


def _rows(group: list[Box]) -> list[list[Box]]:
    """Lines sharing a row (vertical overlap over half the smaller height), each left to right."""
    rows: list[list[Box]] = []
    for box in sorted(group, key=lambda b: (b.y0 + b.y1) / 2):
        if rows:
            last = rows[-1]
            top, bottom = min(b.y0 for b in last), max(b.y1 for b in last)
            overlap = min(bottom, box.y1) - max(top, box.y0)
            if overlap > 0.5 * min(box.height, bottom - top):
                last.append(box)
                continue
        rows.append([box])
    return [sorted(r, key=lambda b: b.x0) for r in rows]


def _block(rows: list[list[Box]], level: int) -> TextBlock:
    text = ""
    chars = 0
    weighted = 0.0
    for row in rows:
        row_text = ""
        for box in row:
            piece = box.line.text
            row_text = (row_text + piece if row_text and is_cjk(row_text[-1]) and is_cjk(piece[0])
                        else (row_text + " " + piece if row_text else piece))
            chars += len(piece)
            weighted += box.line.confidence * len(piece)
        text = join_text(text, row_text)
    top = min(b.y0 for r in rows for b in r)
    bottom = max(b.y1 for r in rows for b in r)
    return TextBlock(text, weighted / max(chars, 1), level, top, bottom, len(rows))


def _heading_level(row: list[Box], body: float) -> int:
    size = statistics.median(b.height for b in row)
    text = " ".join(b.line.text for b in row)
    if len(text) > 100 or not any(c.isalpha() or is_cjk(c) for c in text) or text[-1] in ".,;:。，；":
        return 0
    if size >= 1.8 * body:
        return 1
    if size >= 1.3 * body:
        return 2
    return 0


def layout(lines: list[OcrLine]) -> list[TextBlock]:
    """Paragraphs and headings in reading order."""
    if not lines:
        return []
    all_boxes = boxes(lines)
    body = statistics.median(b.height for b in all_boxes)
    out: list[TextBlock] = []
    for group in _xy_cut(all_boxes, body):
        rows = _rows(group)
        while rows:
            level = _heading_level(rows[0], body) if len(all_boxes) > 1 else 0
            if level:
                out.append(_block([rows[0]], level))
                rows = rows[1:]
                continue
            out.append(_block(rows, 0))
            break
    return out


def markdown(blocks: list[TextBlock]) -> tuple[str, list[tuple[int, int, TextBlock]]]:
    """The blocks as Markdown and each block's ``(start, end)`` in it."""
    parts: list[str] = []
    spans: list[tuple[int, int, TextBlock]] = []
    pos = 0
    for block in blocks:
        body = block.text
        if body[0] in "#|>":
            body = "\\" + body  # OCR'd text that would read as Markdown syntax
        text = ("#" * block.level + " " + body) if block.level else body
        if parts:
            pos += 2
        spans.append((pos, pos + len(text), block))
        parts.append(text)
        pos += len(text)
    return "\n\n".join(parts), spans
