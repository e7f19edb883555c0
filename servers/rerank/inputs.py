"""Rerank a query's candidate documents: validate, score with a method, apply boosts, order, explain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from servers.core.errors import InvalidInput, TooLarge
from servers.core.settings import Settings
from servers.rerank.boosts import apply_boosts
from servers.rerank.rerankers import BASE_RERANKERS, FusionReranker, get_reranker
from servers.rerank.schemas import (
    Boost,
    Document,
    RerankerInfo,
    RerankersResponse,
    RerankResponse,
    RerankResult,
)

_BOOSTS = TypeAdapter(list[Boost])


def _first_error(exc: ValidationError, what: str) -> str:
    err = exc.errors()[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
    return f"{what}{where}: {err['msg']}"


def coerce_documents(documents: Sequence[Document | dict[str, Any]]) -> list[Document]:
    docs = []
    for i, doc in enumerate(documents):
        if isinstance(doc, Document):
            docs.append(doc)
            continue
        if not isinstance(doc, dict):
            raise InvalidInput(f"documents[{i}] must be an object {{id, text, metadata}}")
        if not isinstance(doc.get("text"), str):
            raise InvalidInput(f"documents[{i}] has no 'text' string: every document needs the text to score")
        try:
            docs.append(Document.model_validate(doc))
        except ValidationError as exc:
            raise InvalidInput(_first_error(exc, f"documents[{i}]")) from None
    return docs


def coerce_boosts(boosts: Sequence[Any] | None) -> list[Boost]:
    if not boosts:
        return []
    try:
        return _BOOSTS.validate_python(list(boosts))
    except ValidationError as exc:
        raise InvalidInput(
            _first_error(exc, "boosts")
            + " — a boost is {type: 'recency', field, half_life_days[, weight, now]} "
            "or {type: 'match', field, value, multiply | add}"
        ) from None


def rerank(
    query: str,
    documents: Sequence[Document | dict[str, Any]],
    settings: Settings,
    top_n: int | None = None,
    method: str | None = None,
    boosts: Sequence[Any] | None = None,
    return_text: bool = False,
) -> RerankResponse:
    """Score ``documents`` for ``query`` with ``method`` (default from config), apply boosts, best first."""
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
    name = (method or settings.rerank.default_method).strip()
    reranker = get_reranker(name, settings)
    model_scores = reranker.score(query, [d.text for d in docs])
    if boost_specs:
        scores, notes = apply_boosts(model_scores, docs, ids, boost_specs)
    else:
        scores, notes = model_scores, [[] for _ in docs]
    order = sorted(range(len(docs)), key=lambda i: -scores[i])  # stable: ties keep input order
    limit = len(order) if top_n is None else top_n
    results = []
    for rank, i in enumerate(order[:limit], start=1):
        lines = [f"{name} score {model_scores[i]:.4f} (input rank {i + 1})", *notes[i]]
        results.append(
            RerankResult(
                id=ids[i],
                rank=rank,
                original_rank=i + 1,
                score=scores[i],
                score_before_boosts=model_scores[i] if boost_specs else None,
                explanation=lines,
                text=docs[i].text if return_text else None,
                metadata=docs[i].metadata if return_text else None,
            )
        )
    return RerankResponse(method=name, model=reranker.model_name(), candidates=len(docs), results=results)


def configured_device(settings: Settings) -> str:
    """The device models run on here (without loading any); a forced but missing device says so."""
    from servers.core.errors import ConfigError
    from servers.core.models import select_device

    try:
        return select_device(settings.models.device)
    except ConfigError as exc:
        return f"unavailable ({exc})"


def list_rerankers(settings: Settings) -> RerankersResponse:
    device = configured_device(settings)
    default = settings.rerank.default_method
    infos = []
    for name, cls in BASE_RERANKERS.items():
        reranker = cls(settings)
        reason = reranker.unavailable_reason()
        infos.append(
            RerankerInfo(
                name=name,
                description=cls.description,
                model=reranker.model_name(),
                device="-" if name == "none" else device,
                available=reason is None,
                reason=reason,
                default=name == default,
            )
        )
    if default not in BASE_RERANKERS:
        reranker = get_reranker(default, settings)
        reason = reranker.unavailable_reason()
        infos.append(
            RerankerInfo(
                name=default,
                description=FusionReranker.description,
                model=reranker.model_name(),
                device=device,
                available=reason is None,
                reason=reason,
                default=True,
            )
        )
    return RerankersResponse(default_method=default, rerankers=infos, fusion_syntax=FusionReranker.description)
