"""MCP façade of the rerank capability: the tools are :mod:`servers.rerank.api`'s functions."""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

from servers.core.boundary import Tools, new_server
from servers.core.settings import Settings
from servers.rerank import api

INSTRUCTIONS = (
    "Reorders candidate passages from any retriever by relevance to a query. Call `rerank` with the "
    "query and the candidates (optionally with business boosts: recency, tag/metadata matches), `fuse` "
    "to merge ranked lists from several systems (RRF or weighted), and `list_rerankers` to see which "
    "methods and models are available here."
)
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)


def build_server(settings: Settings) -> MCPServer:
    app = new_server("rerank", title="Quiver rerank", instructions=INSTRUCTIONS,
                     description="Rerank candidate passages (late interaction, cross-encoder, LLM), fuse rankings, boosts")
    tools = Tools(app, settings)
    tools.add(
        api.rerank, name="rerank", title="Rerank passages", annotations=READ_ONLY,
        description=(
            "Reorder candidate documents by relevance to a query and return them best first with scores, "
            "their original rank and an explanation. Use after a first-stage search to get a precise top-n; "
            "optional boosts (recency half-life on a metadata date, multiply/add on metadata or tag matches) "
            "apply after the model score."
        ),
    )
    tools.add(
        api.fuse, name="fuse", title="Fuse rankings", annotations=READ_ONLY,
        description=(
            "Merge several ranked lists of ids (e.g. BM25 from one system and dense from another) into one "
            "ranking, by reciprocal rank fusion ('rrf', ranks only) or a weighted sum of min-max or z-score "
            "normalized scores ('weighted'). Returns the fused ranking with each id's rank in every input."
        ),
    )
    tools.add(
        api.list_rerankers, name="list_rerankers", title="List rerank methods", annotations=READ_ONLY,
        description=(
            "List the rerank methods this server offers with their model, device, whether each is available "
            "here (and why not), and which is the default."
        ),
    )
    return app
