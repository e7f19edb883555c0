"""The one-call API other packages use (retrieval's rerank option): score texts against a query."""

from __future__ import annotations

from servers.core.settings import Settings


def score(
    query: str,
    texts: list[str],
    method: str | None = None,
    settings: Settings | None = None,
) -> list[float]:
    """Relevance scores of ``texts`` for ``query`` (higher = more relevant), one per text, same order.

    ``method`` None uses ``settings.rerank.default_method``; ``"none"`` keeps the input order
    (descending scores). Raises :class:`InvalidInput` for an unknown method or bad texts.
    """
    from servers.core.settings import load_settings
    from servers.rerank.rerankers import get_reranker

    settings = settings or load_settings()
    reranker = get_reranker(method or settings.rerank.default_method, settings)
    return reranker.score(query, list(texts))
