"""Query rewriting with the core generator: paraphrases (multi-query) and hypothetical answers (HyDE)."""

from __future__ import annotations

import re

from servers.core.generate import get_generator
from servers.core.settings import Settings

MAX_QUERY_CHARS = 4000

REWRITE_SYSTEM = "You rewrite search queries for a document search engine. Answer with the rewrites only."


def multi_query(query: str, settings: Settings, n: int = 3) -> list[str]:
    """``n`` alternative phrasings of ``query`` from the core generator (one per line)."""
    prompt = (
        f"Write {n} different search queries that would find documents answering the question below. "
        f"Use other words and synonyms. One query per line, no numbering.\n\nQuestion: {query}"
    )
    out = get_generator(settings).chat(
        [{"role": "system", "content": REWRITE_SYSTEM}, {"role": "user", "content": prompt}],
        max_new_tokens=settings.retrieval.rewrite_max_tokens, temperature=0.0,
    )[0]
    lines = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip().strip('"') for line in out.splitlines()]
    seen = {query.strip().lower()}
    rewrites = []
    for line in lines:
        if line and line.lower() not in seen and len(line) <= MAX_QUERY_CHARS:
            seen.add(line.lower())
            rewrites.append(line)
    return rewrites[:n]


def hyde(query: str, settings: Settings) -> str:
    """A short hypothetical passage answering ``query`` (HyDE), embedded in place of the question."""
    out = get_generator(settings).chat(
        [
            {"role": "system", "content": "You write short factual passages."},
            {"role": "user", "content": f"Write a short passage (2-3 sentences) that answers: {query}"},
        ],
        max_new_tokens=settings.retrieval.rewrite_max_tokens, temperature=0.0,
    )[0]
    return out.strip()[:MAX_QUERY_CHARS]
