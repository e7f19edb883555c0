"""Deterministic train / held-out splits, exact dedup and the near-duplicate leak check."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable

WORD = re.compile(r"[a-z0-9]+")


def unit_hash(key: str) -> float:
    """A stable number in [0, 1) for a split unit (independent of the build seed)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:15], 16) / 16**15


def held_out(key: str, fraction: float) -> bool:
    return unit_hash(key) < fraction


def normalize(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def shingles(text: str, n: int = 3) -> frozenset[str]:
    """Word n-grams of the normalized text (the words themselves for texts shorter than n)."""
    words = WORD.findall(text.lower())
    if len(words) < n:
        return frozenset(words)
    return frozenset(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Near-duplicate score: Jaccard, or containment of the smaller set in the larger when it has
    at least three shingles (a question wrapped in a greeting and thanks is still the question)."""
    if not a or not b:
        return 0.0
    shared = len(a & b)
    small = min(len(a), len(b))
    return max(shared / len(a | b), shared / small if small >= 3 else 0.0)


class LeakIndex:
    """Held-out texts indexed by shingle, to find any training text that nearly duplicates one
    (``overlap`` at or above ``threshold``)."""

    def __init__(self, texts: Iterable[str], threshold: float = 0.7) -> None:
        self.threshold = threshold
        self.texts: list[str] = []
        self.sets: list[frozenset[str]] = []
        self.exact: set[str] = set()
        self.index: dict[str, list[int]] = defaultdict(list)
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        i = len(self.texts)
        self.texts.append(text)
        sh = shingles(text)
        self.sets.append(sh)
        self.exact.add(normalize(text))
        for s in sh:
            self.index[s].append(i)

    def match(self, text: str) -> tuple[str, float] | None:
        """The held-out text this one duplicates or nearly duplicates (Jaccard ≥ threshold), if any."""
        if normalize(text) in self.exact:
            return text, 1.0
        sh = shingles(text)
        seen: set[int] = set()
        best: tuple[str, float] | None = None
        for s in sh:
            for i in self.index.get(s, ()):
                if i in seen:
                    continue
                seen.add(i)
                score = overlap(sh, self.sets[i])
                if score >= self.threshold and (best is None or score > best[1]):
                    best = (self.texts[i], score)
        return best
