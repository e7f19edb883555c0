"""Chunking: split Markdown (a parsed document or plain text) into retrieval-sized
pieces with stable ids, heading paths, pages and character spans.

Strategies:
- ``fixed``: windows of ``size`` units stepping by ``size - overlap``.
- ``recursive``: split at the coarsest separator that works (paragraphs, lines,
  sentences, clauses, words), then pack pieces up to ``size`` with ``overlap``.
- ``structure``: split at headings and paragraphs; tables and fenced code blocks stay
  whole (even past ``size``); tiny chunks and chunks ending in a colon merge into a
  neighbour; each chunk carries its heading path. No overlap.
- ``semantic``: sentence embeddings; a new chunk starts where the cosine distance of
  adjacent sentences exceeds the ``breakpoint_percentile`` of all such distances (or
  where ``size`` would be exceeded).

Units are tokens of an embedder's tokenizer (default: the configured embedder,
all-MiniLM-L6-v2) or characters. A chunk's ``text`` is ``markdown[start:end]`` with
page-marker comment lines removed.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Literal, TypedDict

import numpy as np
from typing_extensions import Unpack

from servers.core.errors import InvalidInput
from servers.core.models import embed, embedder
from servers.core.settings import Settings
from servers.parse.markdown import PAGE_MARKER, blocks, headings, page_spans
from servers.parse.schema import Chunk, ParsedDocument

Strategy = Literal["fixed", "recursive", "structure", "semantic"]
Unit = Literal["tokens", "chars"]
SEPARATORS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", "")
SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"')\]]*\s+|\n+")


# ------------------------------------------------------------------ measuring units


class Measure:
    """Counts units (tokens or characters) in any span of one text, in O(log n)."""

    def __init__(self, text: str, unit: Unit, tokenizer: str | None, settings: Settings | None) -> None:
        self.text = text
        self.unit = unit
        self.starts: list[int] = []
        self.ends: list[int] = []
        if unit == "tokens" and text:
            encoded = load_tokenizer(tokenizer, settings)(
                text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
            )
            for s, e in encoded["offset_mapping"]:
                if e > s:
                    self.starts.append(s)
                    self.ends.append(e)

    def count(self, start: int, end: int) -> int:
        if self.unit == "chars":
            return max(0, end - start)
        return bisect_left(self.starts, end) - bisect_left(self.starts, start)

    def windows(self, start: int, end: int, size: int, step: int) -> list[tuple[int, int]]:
        """Spans of ``size`` units stepping by ``step`` units, covering ``[start, end)``."""
        if self.unit == "chars":
            return _char_windows(self.text, start, end, size, step)
        lo, hi = bisect_left(self.starts, start), bisect_left(self.starts, end)
        out = []
        for i in range(lo, hi, step):
            j = min(i + size, hi)
            out.append((self.starts[i], self.ends[j - 1]))
            if j == hi:
                break
        return out


def load_tokenizer(name: str | None = None, settings: Settings | None = None):
    """The tokenizer of embedder ``name`` (None = the settings' embedder), via the shared model layer.
    ``settings`` None: the library defaults (no config file is read)."""
    return embedder(name, settings or Settings()).tokenizer


def _char_windows(text: str, start: int, end: int, size: int, step: int) -> list[tuple[int, int]]:
    out = []
    pos = start
    while pos < end:
        stop = min(pos + size, end)
        if stop < end:  # end on a word boundary when one is near
            cut = text.rfind(" ", pos + size * 4 // 5, stop)
            stop = cut if cut > pos else stop
        out.append((pos, stop))
        if stop >= end:
            break
        nxt = max(stop - (size - step), pos + 1)
        if 0 < nxt < end and not text[nxt - 1].isspace():  # start on a word boundary when one is near
            space = text.find(" ", nxt, stop)
            nxt = space + 1 if space != -1 and space + 1 < stop else nxt
        pos = nxt
    return out


# ------------------------------------------------------------------ splitting helpers


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_span(text: str, start: int, end: int, size: int, measure: Measure, seps=SEPARATORS) -> list[tuple[int, int]]:
    """Pieces of ``[start, end)`` each at most ``size`` units, cut at the coarsest separator possible."""
    start, end = _trim(text, start, end)
    if start >= end:
        return []
    if measure.count(start, end) <= size:
        return [(start, end)]
    for i, sep in enumerate(seps):
        if sep == "":
            return [p for s, e in measure.windows(start, end, size, size) if (p := _trim(text, s, e))[0] < p[1]]
        if text.find(sep, start, end) == -1:
            continue
        out: list[tuple[int, int]] = []
        pos = start
        while pos < end:
            cut = text.find(sep, pos, end)
            stop = end if cut == -1 else cut + len(sep)
            out.extend(split_span(text, pos, stop, size, measure, seps[i + 1 :]))
            pos = stop
        return out
    return [(start, end)]


def pack(pieces: list[tuple[int, int]], size: int, overlap: int, measure: Measure) -> list[tuple[int, int]]:
    """Greedily join consecutive pieces into spans of at most ``size`` units; each new span
    repeats trailing pieces of the previous one worth at most ``overlap`` units."""
    out: list[tuple[int, int]] = []
    current: list[tuple[int, int]] = []
    for piece in pieces:
        if current and measure.count(current[0][0], piece[1]) > size:
            out.append((current[0][0], current[-1][1]))
            keep: list[tuple[int, int]] = []
            for prev in reversed(current):
                if measure.count(prev[0], (keep[-1] if keep else prev)[1]) > overlap:
                    break
                if measure.count(prev[0], piece[1]) > size:
                    break
                keep.insert(0, prev)
            current = keep
        current.append(piece)
    if current:
        out.append((current[0][0], current[-1][1]))
    return out


# ------------------------------------------------------------------ strategies


@dataclass
class _Span:
    start: int
    end: int
    path: tuple[str, ...] = ()
    whole: bool = False  # holds a table or code block: never split, may exceed size
    kinds: list[str] = field(default_factory=list)


def _kinds(first: list[str], second: list[str]) -> list[str]:
    """The block kinds of two merged spans, runs of one kind kept once (bounded, not growing per merge)."""
    return first + second[1:] if first[-1] == second[0] else first + second


def _ends_with_colon(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` ends with ':' after trailing whitespace (without copying the span)."""
    while end > start and text[end - 1].isspace():
        end -= 1
    return end > start and text[end - 1] == ":"


def _structure(text: str, size: int, measure: Measure) -> list[_Span]:
    units: list[_Span] = []
    stack: list[tuple[int, str]] = []
    for block in blocks(text):
        if block.kind == "marker":
            continue
        if block.kind == "heading":
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, block.text))
        path = tuple(t for _, t in stack)
        units.append(_Span(block.start, block.end, path, block.kind in ("table", "code"), [block.kind]))
    # a paragraph ending in a colon introduces what follows: glue it to the next unit
    glued: list[_Span] = []
    for unit in units:
        prev = glued[-1] if glued else None
        if (
            prev is not None
            and prev.path == unit.path
            and prev.kinds[-1] in ("paragraph", "list")
            and _ends_with_colon(text, prev.start, prev.end)
        ):
            glued[-1] = _Span(prev.start, unit.end, unit.path, prev.whole or unit.whole, _kinds(prev.kinds, unit.kinds))
        else:
            glued.append(unit)
    # pack units of one section up to size; split oversized prose; keep tables/code whole
    chunks: list[_Span] = []
    section: list[_Span] = []

    def flush() -> None:
        pieces: list[_Span] = []
        for unit in section:
            if unit.whole or measure.count(unit.start, unit.end) <= size:
                pieces.append(unit)
            else:
                pieces += [_Span(s, e, unit.path, False, unit.kinds) for s, e in split_span(text, unit.start, unit.end, size, measure)]
        current: _Span | None = None
        for piece in pieces:
            if current is not None and measure.count(current.start, piece.end) <= size:
                current = _Span(current.start, piece.end, current.path, current.whole or piece.whole, _kinds(current.kinds, piece.kinds))
            else:
                if current is not None:
                    chunks.append(current)
                current = piece
        if current is not None:
            chunks.append(current)
        section.clear()

    for unit in glued:
        if unit.kinds[0] == "heading":
            flush()
        section.append(unit)
    flush()
    return _merge_small(chunks, text, size, measure)


def _within(path: tuple[str, ...], parent: tuple[str, ...]) -> bool:
    return path[: len(parent)] == parent


def _merge_small(chunks: list[_Span], text: str, size: int, measure: Measure) -> list[_Span]:
    """Merge chunks ending in a colon or holding only headings into the next one, and tiny
    chunks into a neighbour of the same section (the next if it is the same section or a
    subsection, else the previous) when the result stays within ``size``."""
    tiny = max(1, size // 4)
    out = list(chunks)
    i = 0
    while i < len(out):
        chunk = out[i]
        nxt = out[i + 1] if i + 1 < len(out) else None
        prev = out[i - 1] if i > 0 else None
        n = measure.count(chunk.start, chunk.end)
        ends_colon = _ends_with_colon(text, chunk.start, chunk.end)
        heading_only = all(kind == "heading" for kind in chunk.kinds)
        if nxt is not None and (
            ends_colon
            or (heading_only and _within(nxt.path, chunk.path))
            or (n < tiny and _within(nxt.path, chunk.path) and measure.count(chunk.start, nxt.end) <= size)
        ):
            path = nxt.path if _within(nxt.path, chunk.path) or ends_colon else chunk.path
            out[i : i + 2] = [_Span(chunk.start, nxt.end, path, chunk.whole or nxt.whole, _kinds(chunk.kinds, nxt.kinds))]
            continue
        if (
            prev is not None
            and n < tiny
            and _within(chunk.path, prev.path)
            and measure.count(prev.start, chunk.end) <= size
        ):
            out[i - 1 : i + 1] = [_Span(prev.start, chunk.end, prev.path, prev.whole or chunk.whole, _kinds(prev.kinds, chunk.kinds))]
            i -= 1
            continue
        i += 1
    return out


def _sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans; tables and code blocks count as one sentence each, headings too."""
    out: list[tuple[int, int]] = []
    for block in blocks(text):
        if block.kind == "marker":
            continue
        if block.kind in ("table", "code", "heading"):
            out.append((block.start, block.end))
            continue
        pos = block.start
        for m in SENTENCE_END.finditer(text, block.start, block.end):
            if m.start() > pos:
                out.append(_trim(text, pos, m.start()))
            pos = m.end()
        if pos < block.end:
            out.append(_trim(text, pos, block.end))
    return [s for s in out if s[0] < s[1]]


def _semantic(
    text: str, size: int, measure: Measure, percentile: float, model: str | None, settings: Settings | None
) -> list[tuple[int, int]]:
    sentences = _sentences(text)
    if len(sentences) < 3:
        return [p for s, e in sentences for p in split_span(text, s, e, size, measure)]
    vectors = embed([text[s:e] for s, e in sentences], settings or Settings(), model=model)
    distances = 1.0 - np.sum(vectors[:-1] * vectors[1:], axis=1)
    threshold = float(np.percentile(distances, percentile))
    groups: list[list[tuple[int, int]]] = [[sentences[0]]]
    for i, sentence in enumerate(sentences[1:]):
        group = groups[-1]
        if distances[i] > threshold or measure.count(group[0][0], sentence[1]) > size:
            groups.append([sentence])
        else:
            group.append(sentence)
    out: list[tuple[int, int]] = []
    for group in groups:
        out += split_span(text, group[0][0], group[-1][1], size, measure) if len(group) == 1 else [(group[0][0], group[-1][1])]
    return out


# ------------------------------------------------------------------ public API


def _path_at(heads, starts: list[int], offset: int) -> list[str]:
    """Heading path in force at ``offset`` (``starts``: the headings' offsets, ascending)."""
    i = bisect_right(starts, offset) - 1
    return list(heads[i].path) if i >= 0 else []


def _pages(spans: list[tuple[int, int, int]], starts: list[int], start: int, end: int) -> list[int]:
    """Pages overlapping ``[start, end)`` (``starts``: the page spans' offsets, ascending)."""
    out = []
    for i in range(max(0, bisect_right(starts, start) - 1), len(spans)):
        page, s, e = spans[i]
        if s >= end:
            break
        if max(s, start) < min(e, end):
            out.append(page)
    return out


def chunk_text(
    text: str,
    *,
    doc_id: str | None = None,
    strategy: Strategy = "structure",
    size: int = 256,
    overlap: int = 32,
    unit: Unit = "tokens",
    tokenizer: str | None = None,
    breakpoint_percentile: float = 90.0,
    settings: Settings | None = None,
) -> list[Chunk]:
    """Chunk Markdown or plain text. ``doc_id`` defaults to the sha256 of the text.

    ``tokenizer`` names the embedder whose tokenizer counts tokens (and, for the semantic
    strategy, whose embeddings find breakpoints); None = the configured default."""
    if size < 1:
        raise InvalidInput(f"chunk size must be at least 1 (got {size})")
    if overlap < 0 or overlap >= size:
        raise InvalidInput(f"overlap must be between 0 and size - 1 (got overlap={overlap}, size={size})")
    if strategy not in ("fixed", "recursive", "structure", "semantic"):
        raise InvalidInput(f"unknown strategy '{strategy}': use fixed, recursive, structure or semantic")
    if unit not in ("tokens", "chars"):
        raise InvalidInput(f"unknown unit '{unit}': use tokens or chars")
    if not 0 < breakpoint_percentile < 100:
        raise InvalidInput(f"breakpoint_percentile must be between 0 and 100 (got {breakpoint_percentile})")
    doc_id = doc_id or hashlib.sha256(text.encode("utf-8")).hexdigest()
    measure = Measure(text, unit, tokenizer, settings)
    heads = headings(text)
    if strategy == "structure":
        spans = [(c.start, c.end, list(c.path)) for c in _structure(text, size, measure)]
    else:
        if strategy == "fixed":
            raw = measure.windows(0, len(text), size, size - overlap)
        elif strategy == "recursive":
            raw = pack(split_span(text, 0, len(text), size, measure), size, overlap, measure)
        else:
            raw = _semantic(text, size, measure, breakpoint_percentile, tokenizer, settings)
        head_starts = [h.start for h in heads]
        spans = [(s, e, _path_at(heads, head_starts, s)) for s, e in raw]
    pages = page_spans(text)
    page_starts = [s for _, s, _ in pages]
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for start, end, path in spans:
        start, end = _trim(text, start, end)
        body = PAGE_MARKER.sub("", text[start:end]) if pages else text[start:end]
        body = re.sub(r"\n{3,}", "\n\n", body).strip()
        if not body:
            continue
        key = doc_id + body
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:  # the same text twice in one document still gets distinct ids
            key += f"#{seen[key]}"
        chunks.append(
            Chunk(
                id=hashlib.sha256(key.encode("utf-8")).hexdigest(),
                text=body,
                doc_id=doc_id,
                index=len(chunks),
                heading_path=path,
                pages=_pages(pages, page_starts, start, end),
                start=start,
                end=end,
            )
        )
    return chunks


class ChunkOptions(TypedDict, total=False):
    """How :func:`chunk_text` splits (see its arguments)."""

    strategy: Strategy
    size: int
    overlap: int
    unit: Unit
    tokenizer: str | None
    breakpoint_percentile: float
    settings: Settings | None


def chunk_document(doc: ParsedDocument, **options: Unpack[ChunkOptions]) -> list[Chunk]:
    """Chunk a parsed document's Markdown (same options as :func:`chunk_text`); chunks carry its doc_id and pages."""
    return chunk_text(doc.markdown, doc_id=doc.doc_id, **options)
