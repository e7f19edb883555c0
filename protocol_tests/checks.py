"""What the protocol tests check on every registered server, whatever the transport:
tool metadata and schemas, the example calls of ``protocol_tests/examples/NAME.py`` (each result
validated against the tool's output schema), and bad calls that leave the server answering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from protocol_tests.examples import examples, stdio_only
from protocol_tests.harness import all_tools
from servers.core.registry import server_names

NAMES = server_names()
LEGACY = "legacy"
MODERN = "2026-07-28"


def check_tool_schemas(tools: list[Any]) -> dict[str, Any]:
    assert tools, "server lists no tools"
    by_name = {}
    for tool in tools:
        assert tool.description and len(tool.description) > 20, f"{tool.name}: description missing or too short"
        assert tool.title, f"{tool.name} has no title"
        hints = tool.annotations.model_dump(exclude_none=True) if tool.annotations else {}
        missing = {"read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint"} - set(hints)
        assert not missing, f"{tool.name}: annotations not set deliberately: {sorted(missing)}"
        assert not (hints["read_only_hint"] and hints["destructive_hint"]), f"{tool.name}: read-only yet destructive"
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema.get("type") == "object", tool.name
        assert tool.output_schema, f"{tool.name} has no outputSchema"
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        by_name[tool.name] = tool
    return by_name


async def run_examples(client: Client, name: str, workdir: Path, *, http: bool = False) -> None:
    tools = check_tool_schemas(await all_tools(client))
    calls = examples(name, workdir)
    assert {tool for tool, _ in calls} == set(tools), f"protocol_tests/examples/{name}.py must call every tool"
    if http:  # the tools whose examples run a model for long were checked over stdio
        skip = stdio_only(name)
        calls = [call for call in calls if call[0] not in skip]
    for tool, args in calls:
        result = await client.call_tool(tool, args)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        assert not result.is_error, f"{tool}({json.dumps(args)[:200]}) failed: {text[:500]}"
        assert result.structured_content is not None, f"{tool} returned no structuredContent"
        jsonschema.validate(result.structured_content, tools[tool].output_schema)


async def bad_calls_then_alive(client: Client) -> None:
    tools = await all_tools(client)
    unknown = None
    try:
        unknown = await client.call_tool("no_such_tool_xyz", {})
    except MCPError as exc:
        assert "no_such_tool_xyz" in str(exc) or "unknown" in str(exc).lower()
    else:
        assert unknown.is_error
    for tool in tools:
        schema = tool.input_schema
        required = schema.get("required", [])
        props = schema.get("properties", {})
        wrong: dict[str, Any] = {}
        for key, prop in props.items():
            wrong[key] = {"not": "valid"} if prop.get("type") in ("string", "integer", "number", "boolean", "array") else 12345
        for args in ([{}] if required else []) + [wrong]:
            try:
                result = await client.call_tool(tool.name, args)
            except MCPError as exc:  # a protocol error is acceptable if it explains itself
                assert str(exc), tool.name
                continue
            if args == {} and required:
                assert result.is_error, f"{tool.name} accepted a call without its required arguments"
                message = " ".join(getattr(c, "text", "") for c in result.content)
                assert any(r in message for r in required), f"{tool.name}: error does not name the missing argument: {message}"
            elif props:
                assert result.is_error, f"{tool.name} accepted arguments of the wrong type"
                message = " ".join(getattr(c, "text", "") for c in result.content)
                assert "invalid arguments: `" in message and "pydantic" not in message, f"{tool.name}: {message}"
    if client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:  # ping was removed in 2026-07-28
        await client.send_ping()
    assert await all_tools(client), "server stopped answering after bad calls"
