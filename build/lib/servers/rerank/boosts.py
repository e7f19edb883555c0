"""Business boosts applied after the model's scores: recency decay and metadata/tag matches.

Boosts apply in the order given. A multiplicative factor f scales a score s >= 0 to s * f and a
negative score to s / f, so a factor above 1 always moves a document up and one below 1 down.
Every boost that changes a score adds a line to that document's explanation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from servers.core.dates import parse_datetime
from servers.core.errors import InvalidInput
from servers.rerank.schemas import Boost, Document, MatchBoost, RecencyBoost

_MISSING = object()


def lookup(metadata: dict[str, Any], path: str) -> Any:
    """``metadata[path]``, following dots into nested dicts when the full key is absent."""
    if path in metadata:
        return metadata[path]
    node: Any = metadata
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def scale(score: float, factor: float) -> float:
    return score * factor if score >= 0 else score / factor


def _recency(boost: RecencyBoost, doc_id: str, metadata: dict[str, Any], now: datetime, score: float):
    raw = lookup(metadata, boost.field)
    if raw is _MISSING or raw is None:
        return score, f"recency: no '{boost.field}' in metadata, score unchanged"
    try:
        when = parse_datetime(raw)
    except ValueError:
        raise InvalidInput(
            f"document '{doc_id}': metadata '{boost.field}' = {raw!r} is not a date; "
            "use an ISO 8601 date such as '2024-05-31' or '2024-05-31T12:00:00Z', or Unix seconds"
        ) from None
    age = max((now - when).total_seconds() / 86400.0, 0.0)
    decay = 0.5 ** (age / boost.half_life_days)
    factor = 1.0 - boost.weight + boost.weight * decay
    return scale(score, factor), (
        f"recency: '{boost.field}' {when.date().isoformat()} is {age:.1f} days old "
        f"(half-life {boost.half_life_days:g} d, weight {boost.weight:g}) -> x{factor:.4f}"
    )


def _norm(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _matches(boost: MatchBoost, metadata: dict[str, Any]) -> Any:
    raw = lookup(metadata, boost.field)
    if raw is _MISSING or raw is None:
        return _MISSING
    wanted = boost.value if isinstance(boost.value, list) else [boost.value]
    wanted_norm = [_norm(v) for v in wanted]
    present = raw if isinstance(raw, list) else [raw]
    hits = [v for v in present if isinstance(v, str | int | float | bool) and _norm(v) in wanted_norm]
    return hits[0] if hits else _MISSING


def _match(boost: MatchBoost, metadata: dict[str, Any], score: float):
    hit = _matches(boost, metadata)
    if hit is _MISSING:
        return score, None
    if boost.multiply is not None:
        return scale(score, boost.multiply), f"match: '{boost.field}' has {hit!r} -> x{boost.multiply:g}"
    return score + (boost.add or 0.0), f"match: '{boost.field}' has {hit!r} -> {boost.add:+g}"


def resolve_now(boosts: list[Boost]) -> dict[int, datetime]:
    """The reference time of each recency boost (validated once, before any document)."""
    out: dict[int, datetime] = {}
    for i, boost in enumerate(boosts):
        if isinstance(boost, RecencyBoost):
            if boost.now is None:
                out[i] = datetime.now(UTC)
                continue
            try:
                out[i] = parse_datetime(boost.now)
            except ValueError:
                raise InvalidInput(f"boosts[{i}].now = {boost.now!r} is not an ISO 8601 date") from None
    return out


def apply_boosts(
    scores: list[float], documents: list[Document], ids: list[str], boosts: list[Boost]
) -> tuple[list[float], list[list[str]]]:
    """Boosted scores and, per document, one explanation line per boost that applied."""
    nows = resolve_now(boosts)
    out, notes = [], []
    for score, doc, doc_id in zip(scores, documents, ids, strict=True):
        lines: list[str] = []
        for i, boost in enumerate(boosts):
            if isinstance(boost, RecencyBoost):
                score, line = _recency(boost, doc_id, doc.metadata, nows[i], score)
            else:
                score, line = _match(boost, doc.metadata, score)
            if line:
                lines.append(line)
        out.append(score)
        notes.append(lines)
    return out, notes
