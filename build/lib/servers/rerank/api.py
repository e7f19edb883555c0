"""The rerank capability's public functions, one per MCP tool (same names and arguments).

``server.py`` exposes them as tools; other packages import them (retrieval reranks its
hits with :func:`rerank`). The default method comes from ``settings.rerank``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from servers.core.errors import ConfigError, InvalidInput, TooLarge
from servers.core.models import select_device
from servers.core.settings import Settings
from servers.rerank.boosts import apply_boosts
from servers.rerank.fusion import RRF_K, Normalization, check_weights, fuse_ranked
from servers.rerank.inputs import coerce_boosts, coerce_documents
from servers.rerank.rerankers import BASE_RERANKERS, FusionReranker, get_reranker
from servers.rerank.schemas import (
    Boost,
    Document,
    FusedItem,
    FuseResponse,
    RankedItem,
    RerankerInfo,
    RerankersResponse,
    RerankResponse,
    RerankResult,
)


def default_method(settings: Settings, method: str | None = None) -> str:
    """The rerank method to use: the caller's, else ``rerank.default_method`` (the one place it is decided)."""
    return (method or settings.rerank.default_method).strip()


def rerank(
    settings: Settings,
    query: Annotated[str, Field(description="the search query or question", min_length=1)],
    documents: Annotated[
        list[Document],
        Field(description="candidates {id, text, metadata}, in first-stage order", min_length=1),
    ],
    top_n: Annotated[int | None, Field(description="return only the best n (default: all)", ge=1)] = None,
    method: Annotated[
        str | None,
        Field(description="none, embedding, late-interaction, cross-encoder, llm, or a fusion such as "
              "'rrf:none+late-interaction'; default from config (see list_rerankers)"),
    ] = None,
    boosts: Annotated[
        list[Boost] | None,
        Field(description="business rules applied in order after the model score, e.g. "
              "[{type: 'recency', field: 'date', half_life_days: 30}, "
              "{type: 'match', field: 'tags', value: 'faq', multiply: 1.2}]"),
    ] = None,
    return_text: Annotated[bool, Field(description="include each document's text and metadata")] = False,
) -> RerankResponse:
    """Score ``documents`` for ``query`` with ``method``, apply boosts, return them best first with
    their original rank and an explanation of each score. Python callers may pass plain dicts for
    documents and boosts: they are validated here with errors that name the bad item."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("query is empty: pass the search query text to rank documents against")
    if not documents:
        raise InvalidInput("documents is empty: pass at least one {id, text} to rerank")
    cap = settings.rerank.max_documents
    if len(documents) > cap:
        raise TooLarge(
            f"{len(documents)} documents exceed the cap of {cap} per call ([rerank] max_documents): "
            f"send the first-stage top {cap} or fewer"
        )
    if top_n is not None and top_n < 1:
        raise InvalidInput("top_n must be >= 1 (or omitted for all documents)")
    docs = coerce_documents(documents)
    boost_specs = coerce_boosts(boosts)
    ids = [d.id if d.id is not None else str(i) for i, d in enumerate(docs)]
    if len(set(ids)) != len(ids):
        dup = next(x for x in ids if ids.count(x) > 1)
        raise InvalidInput(f"document id '{dup}' appears more than once: ids must be unique")
    name = default_method(settings, method)
    reranker = get_reranker(name, settings)
    model_scores = reranker.score(query, [d.text for d in docs])
    if boost_specs:
        scores, notes = apply_boosts(model_scores, docs, ids, boost_specs)
    else:
        scores, notes = model_scores, [[] for _ in docs]
    order = sorted(range(len(docs)), key=lambda i: -scores[i])  # stable: ties keep input order
    limit = len(order) if top_n is None else top_n
    results = [
        RerankResult(
            id=ids[i], rank=rank, original_rank=i + 1, score=scores[i],
            score_before_boosts=model_scores[i] if boost_specs else None,
            explanation=[f"{name} score {model_scores[i]:.4f} (input rank {i + 1})", *notes[i]],
            text=docs[i].text if return_text else None, metadata=docs[i].metadata if return_text else None,
        )
        for rank, i in enumerate(order[:limit], start=1)
    ]
    return RerankResponse(method=name, model=reranker.model_name(), candidates=len(docs), results=results)


def fuse(
    rankings: Annotated[
        list[list[RankedItem]],
        Field(description="ranked lists, each best first, of {id, score}; score is needed for 'weighted'", min_length=1),
    ],
    method: Annotated[Literal["rrf", "weighted"], Field(description="fusion rule")] = "rrf",
    weights: Annotated[list[float] | None, Field(description="one weight per ranking (default: equal)")] = None,
    normalization: Annotated[Normalization, Field(description="score normalization for 'weighted'")] = "minmax",
    k: Annotated[int, Field(description="RRF constant: score = weight / (k + rank)", ge=0)] = RRF_K,
    top_n: Annotated[int | None, Field(description="return only the best n", ge=1)] = None,
) -> FuseResponse:
    """One ranking from several ranked lists (each best first).

    ``rrf``: score = sum over lists of weight / (k + rank). ``weighted``: score = sum of weight ×
    normalized score; every item needs a score, and a document missing from a list gets that
    list's lowest normalized value. Ties keep first-seen order.
    """
    if not rankings or any(len(r) == 0 for r in rankings):
        raise InvalidInput("rankings must hold at least one non-empty list of {id, score} items (best first)")
    if method not in ("rrf", "weighted"):
        raise InvalidInput(f"unknown fusion method '{method}': use 'rrf' or 'weighted'")
    if k < 0:
        raise InvalidInput("k must be >= 0 (60 is the usual RRF constant)")
    w = check_weights(weights, len(rankings))
    ids: dict[str, int] = {}
    for j, ranking in enumerate(rankings):
        seen: set[str] = set()
        for item in ranking:
            if item.id in seen:
                raise InvalidInput(f"rankings[{j}] lists id '{item.id}' twice: each id once per ranking")
            seen.add(item.id)
            ids.setdefault(item.id, len(ids))
            if method == "weighted" and item.score is None:
                raise InvalidInput(
                    f"weighted fusion needs a score on every item; rankings[{j}] item '{item.id}' has none "
                    "(use method 'rrf' for rank-only lists)"
                )
    names, total = fuse_ranked([[(it.id, it.score) for it in r] for r in rankings], method, weights=w,
                               normalization=normalization, k=k)
    ranks: list[list[int | None]] = [[None] * len(rankings) for _ in names]
    for j, ranking in enumerate(rankings):
        for rank, item in enumerate(ranking, start=1):
            ranks[ids[item.id]][j] = rank
    order = np.argsort(-total, kind="stable")
    limit = len(order) if top_n is None else top_n
    results = [
        FusedItem(id=names[i], rank=pos, score=float(total[i]), ranks=ranks[i])
        for pos, i in enumerate(order[:limit], start=1)
    ]
    return FuseResponse(
        method=method, normalization=normalization if method == "weighted" else None, weights=w, results=results
    )


def list_rerankers(settings: Settings) -> RerankersResponse:
    """The methods this server offers: model, device, availability (and why not), the default."""
    try:
        device = select_device(settings.models.device)
    except ConfigError as exc:
        device = f"unavailable ({exc})"
    default = default_method(settings)
    methods = dict(BASE_RERANKERS)
    infos = []
    for name, reranker in [(n, cls(settings)) for n, cls in methods.items()] + (
        [(default, get_reranker(default, settings))] if default not in methods else []
    ):
        reason = reranker.unavailable_reason()
        infos.append(RerankerInfo(
            name=name, description=type(reranker).description, model=reranker.model_name(),
            device="-" if name == "none" else device, available=reason is None, reason=reason,
            default=name == default,
        ))
    return RerankersResponse(default_method=default, rerankers=infos, fusion_syntax=FusionReranker.description)
