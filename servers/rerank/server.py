"""MCP façade of the rerank library: ``rerank``, ``fuse``, ``list_rerankers``."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Literal

import anyio
from mcp.server import MCPServer
from pydantic import Field

from servers.core.settings import Settings
from servers.rerank.fusion import fuse as fuse_rankings
from servers.rerank.reranking import list_rerankers as list_rerankers_lib
from servers.rerank.reranking import rerank as rerank_lib
from servers.rerank.schemas import (
    Boost,
    Document,
    FuseResponse,
    RankedItem,
    RerankersResponse,
    RerankResponse,
)

INSTRUCTIONS = (
    "Reorders candidate passages from any retriever by relevance to a query. Call `rerank` with the "
    "query and the candidates (optionally with business boosts: recency, tag/metadata matches), `fuse` "
    "to merge ranked lists from several systems (RRF or weighted), and `list_rerankers` to see which "
    "methods and models are available here."
)


def build_server(settings: Settings) -> MCPServer:
    app = MCPServer("quiver-rerank", instructions=INSTRUCTIONS)

    @app.tool(
        name="rerank",
        description=(
            "Reorder candidate documents by relevance to a query and return them best first with scores, "
            "their original rank and an explanation. Use after a first-stage search to get a precise top-n; "
            "optional boosts (recency half-life on a metadata date, multiply/add on metadata or tag matches) "
            "apply after the model score."
        ),
    )
    async def rerank(
        query: Annotated[str, Field(description="the search query or question", min_length=1)],
        documents: Annotated[
            list[Document], Field(description="candidates {id, text, metadata}, in first-stage order", min_length=1)
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
        call = partial(
            rerank_lib, query, documents, settings, top_n=top_n, method=method, boosts=boosts, return_text=return_text
        )
        return await anyio.to_thread.run_sync(call)

    @app.tool(
        name="fuse",
        description=(
            "Merge several ranked lists of ids (e.g. BM25 from one system and dense from another) into one "
            "ranking, by reciprocal rank fusion ('rrf', ranks only) or a weighted sum of min-max or z-score "
            "normalized scores ('weighted'). Returns the fused ranking with each id's rank in every input."
        ),
    )
    async def fuse(
        rankings: Annotated[
            list[list[RankedItem]],
            Field(description="ranked lists, each best first, of {id, score}; score is needed for 'weighted'",
                  min_length=1),
        ],
        method: Annotated[Literal["rrf", "weighted"], Field(description="fusion rule")] = "rrf",
        weights: Annotated[list[float] | None, Field(description="one weight per ranking (default: equal)")] = None,
        normalization: Annotated[
            Literal["minmax", "zscore"], Field(description="score normalization for 'weighted'")
        ] = "minmax",
        k: Annotated[int, Field(description="RRF constant: score = weight / (k + rank)", ge=0)] = 60,
        top_n: Annotated[int | None, Field(description="return only the best n", ge=1)] = None,
    ) -> FuseResponse:
        return fuse_rankings(rankings, method, weights, normalization, k, top_n)

    @app.tool(
        name="list_rerankers",
        description=(
            "List the rerank methods this server offers with their model, device, whether each is available "
            "here (and why not), and which is the default."
        ),
    )
    async def list_rerankers() -> RerankersResponse:
        return list_rerankers_lib(settings)

    return app


def protocol_examples(workdir: Path) -> list[tuple[str, dict]]:
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
