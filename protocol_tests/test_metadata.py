"""What clients read besides tools: capabilities that are really there (no empty prompt or resource
lists), the retrieval prompt and knowledge-base resources, database schemas as resources, completions
of their names, and protocol errors for unknown prompts and resources."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, PromptReference, ResourceTemplateReference

from protocol_tests.harness import stdio_client
from servers.core.registry import build_server, server_names
from servers.core.settings import Settings

OFFERS = {"retrieval": {"prompts", "resources", "completions"}, "text2sql": {"resources", "completions"},
          "eval": {"resources"}}


@pytest.mark.parametrize("name", server_names())
def test_only_real_capabilities_are_advertised(name: str, tmp_path: Path) -> None:
    async def run() -> None:
        async with Client(build_server(name, Settings(data_dir=str(tmp_path)))) as client:
            caps = client.server_capabilities
            have = {c for c in ("prompts", "resources", "completions") if getattr(caps, c) is not None}
            assert caps.tools is not None and have == OFFERS.get(name, set()), have
            if "prompts" not in have:
                with pytest.raises(MCPError) as refused:
                    await client.list_prompts()
                assert refused.value.error.code == -32601  # method not found, not an empty list

    asyncio.run(run())


def test_retrieval_prompt_resources_and_completions(tmp_path: Path) -> None:
    async def run() -> None:
        async with stdio_client("retrieval", tmp_path) as client:
            ingested = await client.call_tool("kb_ingest", {"kb": "lamps", "texts": [
                {"text": "The amber lamp stands on the third shelf.", "source": "note:amber"}]})
            assert not ingested.is_error
            prompts = (await client.list_prompts()).prompts
            assert [p.name for p in prompts] == ["rag_answer"] and prompts[0].title
            prompt = await client.get_prompt("rag_answer", {"kb": "lamps", "question": "Where is the amber lamp?"})
            text = prompt.messages[0].content.text
            assert "[1]" in text and "third shelf" in text and text.endswith("Question: Where is the amber lamp?")
            with pytest.raises(MCPError) as unknown:
                await client.get_prompt("no_such_prompt", {})
            assert unknown.value.error.code == INVALID_PARAMS and "rag_answer" in unknown.value.error.message
            with pytest.raises(MCPError) as missing_kb:
                await client.get_prompt("rag_answer", {"kb": "nope", "question": "x"})
            assert missing_kb.value.error.code == INVALID_PARAMS and "no knowledge base named 'nope'" in str(missing_kb.value)
            templates = (await client.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["quiver://kb/{name}"]
            described = await client.read_resource("quiver://kb/lamps")
            assert '"chunks": 1' in described.contents[0].text
            with pytest.raises(MCPError) as gone:
                await client.read_resource("quiver://kb/nope")
            assert gone.value.error.code == INVALID_PARAMS
            done = await client.complete(PromptReference(name="rag_answer"), {"name": "kb", "value": "la"})
            assert done.completion.values == ["lamps"]
            none = await client.complete(ResourceTemplateReference(uri="quiver://kb/{name}"), {"name": "name", "value": "x"})
            assert none.completion.values == []

    asyncio.run(run())


def test_text2sql_schemas_as_resources_with_completions(tmp_path: Path) -> None:
    async def run() -> None:
        async with Client(build_server("text2sql", Settings(data_dir=str(tmp_path)))) as client:
            listed = [r.uri for r in (await client.list_resources()).resources]
            assert listed == ["quiver://sql"]
            table = await client.read_resource("quiver://sql/shop/customers")
            assert '"customer_id"' in table.contents[0].text
            ref = ResourceTemplateReference(uri="quiver://sql/{db}/{table}")
            assert (await client.complete(ref, {"name": "db", "value": "sh"})).completion.values == ["shop"]
            tables = await client.complete(ref, {"name": "table", "value": "ord"}, context_arguments={"db": "shop"})
            assert tables.completion.values == ["order_items", "order_totals", "orders"]

    asyncio.run(run())
