"""Page furniture: running headers, footers and page numbers repeated across PDF pages.

They are dropped from the body (so chunks are not polluted by them) and kept in the
metadata. A line counts as furniture when it sits in the top or bottom band of its page
and either looks like a page number or, digits aside, recurs in the same band on at
least half of the pages (three pages at least); numbers are ignored in short lines only."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

BAND = 0.12  # top / bottom fraction of the page height searched for furniture
EDGE_LINES = 3
MASK_WORDS = 6  # lines this short match across pages whatever their numbers  # lines nearest each edge that may be furniture
PAGE_NUMBER = re.compile(
    r"^(?:(?:page|p\.|seite|página|第)\s*)?[-–—(\[]?\s*#\s*[-–—)\]]?"
    r"(?:\s*(?:of|/|von|de|页)\s*#)?\s*(?:页)?$|^[ivxlcdm]{1,6}$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Placed:
    """A line of a page with its vertical extent as fractions of the page height from the top."""

    text: str
    top: float
    bottom: float


def _key(text: str) -> str:
    """Lower-cased text; in short lines (running headers, "Page 3 of 9") digits count as one symbol."""
    words = text.lower().split()
    return " ".join(re.sub(r"\d+", "#", w) for w in words) if len(words) <= MASK_WORDS else " ".join(words)


def find_furniture(pages: list[list[Placed]]) -> tuple[list[set[int]], list[str], list[str]]:
    """For each page the indices of its furniture lines, plus the distinct header and footer texts."""
    drop: list[set[int]] = [set() for _ in pages]
    if len(pages) < 2:
        return drop, [], []
    candidates: list[list[tuple[int, str, str]]] = []  # per page: (index, zone, key)
    counts: Counter[tuple[str, str]] = Counter()
    for lines in pages:
        order = sorted(range(len(lines)), key=lambda i: lines[i].top)
        found: list[tuple[int, str, str]] = []
        for i in order[:EDGE_LINES]:
            if lines[i].bottom <= BAND and lines[i].text.strip():
                found.append((i, "header", _key(lines[i].text)))
        for i in order[-EDGE_LINES:]:
            if lines[i].top >= 1 - BAND and lines[i].text.strip() and all(i != f[0] for f in found):
                found.append((i, "footer", _key(lines[i].text)))
        candidates.append(found)
        counts.update({(zone, key) for _, zone, key in found})
    repeated = {zk for zk, n in counts.items() if len(pages) >= 3 and n >= max(3, (len(pages) + 1) // 2)}
    headers: list[str] = []
    footers: list[str] = []
    for page, found in enumerate(candidates):
        for index, zone, key in found:
            if PAGE_NUMBER.match(key) or (zone, key) in repeated:
                drop[page].add(index)
                kept = headers if zone == "header" else footers
                text = " ".join(pages[page][index].text.split())
                if not PAGE_NUMBER.match(key) and text not in kept and len(kept) < 20:
                    kept.append(text)
    return drop, headers, footers
