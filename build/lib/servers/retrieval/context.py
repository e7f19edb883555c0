"""A prompt-ready block from search hits: an answer-only-from-these instruction, then numbered, cited passages."""

from __future__ import annotations

from servers.retrieval.results import Citation, ContextResult, Hit, SearchResult

CONTEXT_INSTRUCTION = (
    "Answer the question using only the numbered passages below. Cite the passages you use by their "
    "number in square brackets, e.g. [1] or [2][3]. If the passages do not contain the answer, say that "
    "you do not know."
)


def cite(c: Citation) -> str:
    parts = [c.title or c.source]
    if c.heading_path:
        parts.append(" > ".join(h for h in c.heading_path if h != c.title) or None)
    if c.page:
        parts.append(f"page {c.page}")
    parts.append(f"source: {c.source}")
    return "; ".join(p for p in parts if p)


def build_context(result: SearchResult, *, max_chars: int = 8000) -> ContextResult:
    """Number the hits as passages [1..n] with citations under an answer-only-from-these instruction."""
    blocks: list[str] = []
    kept: list[Hit] = []
    used = len(CONTEXT_INSTRUCTION) + len(result.query) + 20
    truncated = False
    for hit in result.hits:
        header = f"[{len(kept) + 1}] ({cite(hit.citation)})\n"
        room = max_chars - used - len(header) - 2
        if room < 200:
            truncated = True
            break
        text = hit.text
        if len(text) > room:
            text = text[: room - 3].rstrip() + "..."
            truncated = True
        blocks.append(header + text)
        kept.append(hit)
        used += len(header) + len(text) + 2
    body = "(no passages matched the question)" if not kept else "\n\n".join(blocks)
    context = f"{CONTEXT_INSTRUCTION}\n\nQuestion: {result.query}\n\nPassages:\n\n{body}\n"
    return ContextResult(context=context, passages=kept, truncated=truncated or len(kept) < len(result.hits))
