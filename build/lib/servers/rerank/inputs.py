"""The rerank inputs from callers (dicts or models) validated into typed documents and boosts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from servers.core.errors import InvalidInput, validation_message
from servers.rerank.schemas import Boost, Document

_BOOSTS = TypeAdapter(list[Boost])


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
            raise InvalidInput(validation_message(exc, f"documents[{i}]")) from None
    return docs


def coerce_boosts(boosts: Sequence[Any] | None) -> list[Boost]:
    if not boosts:
        return []
    try:
        return _BOOSTS.validate_python(list(boosts))
    except ValidationError as exc:
        raise InvalidInput(
            validation_message(exc, "boosts")
            + " — a boost is {type: 'recency', field, half_life_days[, weight, now]} "
            "or {type: 'match', field, value, multiply | add}"
        ) from None
