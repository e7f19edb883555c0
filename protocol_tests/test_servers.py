"""Every registered server, over stdio and streamable HTTP, driven by the SDK's real client.

A server joins by being listed in servers/core/registry.py and adding its example calls as one file,
protocol_tests/examples/NAME.py; no test code is added here.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from protocol_tests.examples import concurrent_call, examples
from protocol_tests.harness import REPO, HttpServer, all_tools, serve_args, stdio_client
from servers.core.boundary import package_version
from servers.core.registry import server_names

NAMES = server_names()
LEGACY = "legacy"
MODERN = "2026-07-28"




def _check_tool_schemas(tools: list[Any]) -> dict[str, Any]:
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


async def _run_examples(client: Client, name: str, workdir: Path) -> None:
    tools = _check_tool_schemas(await all_tools(client))
    calls = examples(name, workdir)
    assert {tool for tool, _ in calls} == set(tools), f"protocol_tests/examples/{name}.py must call every tool"
    for tool, args in calls:
        result = await client.call_tool(tool, args)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        assert not result.is_error, f"{tool}({json.dumps(args)[:200]}) failed: {text[:500]}"
        assert result.structured_content is not None, f"{tool} returned no structuredContent"
        jsonschema.validate(result.structured_content, tools[tool].output_schema)


async def _bad_calls_then_alive(client: Client) -> None:
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


# ---------------------------------------------------------------- stdio


@pytest.mark.parametrize("name", NAMES)
def test_stdio_legacy_handshake_tools_and_examples(name: str, tmp_path: Path) -> None:
    async def run() -> None:
        async with stdio_client(name, tmp_path, mode=LEGACY) as client:
            assert client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
            info = client.server_info
            assert info and info.name == f"quiver-{name}"
            assert info.version == package_version() and info.version != "0.0.0+unknown", info
            assert info.title and info.description and info.website_url, info
            await _run_examples(client, name, tmp_path)

    asyncio.run(run())


@pytest.mark.parametrize("name", NAMES)
def test_stdio_modern_mode_and_bad_calls(name: str, tmp_path: Path) -> None:
    async def run() -> None:
        async with stdio_client(name, tmp_path, mode=MODERN) as client:
            assert client.protocol_version == MODERN
            await _bad_calls_then_alive(client)

    asyncio.run(run())


@pytest.mark.parametrize("name", NAMES)
def test_stdio_malformed_line_does_not_kill_server(name: str, tmp_path: Path) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
    proc = subprocess.Popen(
        [sys.executable, *serve_args(name, tmp_path, "--transport", "stdio")], cwd=REPO,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
    )
    assert proc.stdin and proc.stdout
    replies: dict[Any, dict] = {}

    def send(line: str) -> None:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()

    def reply(request_id: int) -> dict:
        while request_id not in replies:
            line = proc.stdout.readline()
            assert line, f"server closed stdout before answering request {request_id}"
            if line.strip():
                message = json.loads(line)  # every stdout line must be JSON-RPC: logs go to stderr
                replies[message.get("id")] = message
        return replies[request_id]

    try:
        send("{this is not json")
        send(json.dumps(init))
        assert "result" in reply(1), replies
        send('{"jsonrpc": "2.0", "method": "notifications/initialized"}')
        send("[1, 2, oops")
        send('{"jsonrpc":"2.0","id":2,"method":"tools/list"}')
        assert reply(2)["result"]["tools"], "no tools listed after the malformed lines"
    finally:
        proc.kill()
        proc.wait(timeout=10)


# ---------------------------------------------------------------- HTTP


@pytest.mark.parametrize("name", NAMES)
def test_http_legacy_handshake_tools_and_examples(name: str, http_servers: Callable[[str], tuple[HttpServer, Path]]) -> None:
    server, workdir = http_servers(name)

    async def run() -> None:
        async with server.client(server.url(), mode=LEGACY) as client:
            assert client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
            await _run_examples(client, name, workdir)

    asyncio.run(run())


@pytest.mark.parametrize("name", NAMES)
def test_http_modern_mode_and_bad_calls(name: str, http_servers: Callable[[str], tuple[HttpServer, Path]]) -> None:
    server, _ = http_servers(name)

    async def run() -> None:
        async with server.client(server.url(), mode=MODERN) as client:
            assert client.protocol_version == MODERN
            await _bad_calls_then_alive(client)

    asyncio.run(run())


INIT_BODY = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.mark.parametrize("name", NAMES)
def test_http_guards(name: str, http_servers: Callable[[str], tuple[HttpServer, Path]]) -> None:
    server, _ = http_servers(name)
    url = server.url()
    ok = httpx.post(url, json=INIT_BODY, headers=HEADERS, timeout=30)
    assert ok.status_code == 200, ok.text
    evil_host = httpx.post(url, json=INIT_BODY, headers={**HEADERS, "Host": "evil.example:80"}, timeout=30)
    assert evil_host.status_code in (403, 421)
    evil_origin = httpx.post(url, json=INIT_BODY, headers={**HEADERS, "Origin": "http://evil.example"}, timeout=30)
    assert evil_origin.status_code == 403
    huge = httpx.post(url, content=b'{"x":"' + b"a" * (5 * 1024 * 1024) + b'"}', headers=HEADERS, timeout=60)
    assert huge.status_code == 413
    with httpx.stream("GET", url, headers={"Accept": "text/event-stream"}, timeout=10) as get:
        assert get.status_code != 404 and (get.status_code == 200 or 400 <= get.status_code < 500)
    session = ok.headers.get("mcp-session-id")
    if session:  # what Cline does after initialize: open the server-to-client stream
        sse = {"Accept": "text/event-stream", "mcp-session-id": session, "mcp-protocol-version": "2025-06-18"}
        with httpx.stream("GET", url, headers=sse, timeout=10) as get:
            assert get.status_code in (200, 405), get.status_code
            if get.status_code == 200:
                assert get.headers["content-type"].startswith("text/event-stream")


@pytest.mark.parametrize("name", NAMES)
def test_http_twenty_concurrent_clients(name: str, http_servers: Callable[[str], tuple[HttpServer, Path]]) -> None:
    server, workdir = http_servers(name)
    tool, args = concurrent_call(name, workdir / "concurrent")

    async def one() -> bool:
        async with server.client(server.url()) as client:
            listed = await all_tools(client)
            result = await client.call_tool(tool, args)
            return bool(listed) and not result.is_error

    async def run() -> list[bool]:
        return await asyncio.gather(*(one() for _ in range(20)))

    results = asyncio.run(run())
    assert all(results), f"{results.count(False)} of 20 concurrent clients failed"
