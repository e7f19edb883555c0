"""The MCP tools through an in-process client."""

from __future__ import annotations

import anyio
from mcp import Client

from protocol_tests.examples.rerank import calls as protocol_examples
from servers.rerank.server import build_server


def call_all(settings, calls):
    async def go():
        async with Client(build_server(settings)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            return tools, [await client.call_tool(name, args) for name, args in calls]

    return anyio.run(go)


def test_tools_and_protocol_examples(settings, tmp_path):
    examples = protocol_examples(tmp_path)
    tools, results = call_all(settings, examples)
    assert set(tools) == {"rerank", "fuse", "list_rerankers"} == {name for name, _ in examples}
    assert all(t.output_schema for t in tools.values())
    assert not any(r.is_error for r in results)
    listed = results[0].structured_content
    assert {r["name"] for r in listed["rerankers"]} >= {"none", "llm", "late-interaction", "cross-encoder"}
    boosted = results[2].structured_content["results"]
    assert [r["id"] for r in boosted] == ["b", "a"]
    assert boosted[0]["score_before_boosts"] == 1.0 and boosted[0]["score"] == 1.5
    fused = results[3].structured_content["results"]
    assert [r["id"] for r in fused] == ["b", "a", "c"]


def test_tool_errors_are_clear(settings):
    docs = [{"id": "a", "text": "x"}]
    calls = [
        ("rerank", {"query": "q", "documents": []}),
        ("rerank", {"query": "q", "documents": [{"id": "a"}]}),
        ("rerank", {"query": "q", "documents": docs, "method": "bogus"}),
        ("rerank", {"query": "q", "documents": docs, "boosts": [{"type": "match", "field": "t", "value": "x"}]}),
        ("rerank", {"query": "q", "documents": docs, "method": "cross-encoder"}),
        ("fuse", {"rankings": [[{"id": "a"}]], "method": "weighted"}),
    ]
    _, results = call_all(settings, calls)
    assert all(r.is_error for r in results)
    texts = [r.content[0].text for r in results]
    expected = ["at least 1 item", "text", "unknown rerank method 'bogus'", "exactly one of 'multiply' or 'add'",
                "no cross-encoder is configured", "needs a score"]
    for text, fragment in zip(texts, expected, strict=True):
        assert fragment in text, text
