"""Protocol-harness calls for the rerank server: one call (at least) for every tool."""

from __future__ import annotations

from pathlib import Path


def calls(workdir: Path) -> list[tuple[str, dict]]:
    docs = [
        {"id": "a", "text": "The stock market fell after the rate decision.", "metadata": {"date": "2020-01-01"}},
        {"id": "b", "text": "Plants turn sunlight into sugar by photosynthesis.",
         "metadata": {"date": "2024-06-01", "tags": ["biology"]}},
    ]
    return [
        ("list_rerankers", {}),
        ("rerank", {"query": "how do plants use sunlight", "documents": docs, "method": "none", "top_n": 2}),
        ("rerank", {
            "query": "how do plants use sunlight", "documents": docs, "method": "none",
            "boosts": [{"type": "recency", "field": "date", "half_life_days": 365, "now": "2024-06-01"},
                       {"type": "match", "field": "tags", "value": "biology", "multiply": 1.5}],
        }),
        ("fuse", {"rankings": [[{"id": "a"}, {"id": "b"}], [{"id": "b"}, {"id": "c"}]], "method": "rrf"}),
    ]
