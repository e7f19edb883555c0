"""Every registered server over streamable HTTP, driven by the SDK's real client.

A server joins by being listed in servers/core/registry.py and adding its example calls as one file,
protocol_tests/examples/NAME.py; no test code is added here. (Stdio and HTTP are separate files so
that two test workers can run them side by side.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from protocol_tests.checks import LEGACY, MODERN, NAMES, bad_calls_then_alive, run_examples
from protocol_tests.examples import concurrent_call
from protocol_tests.harness import HttpServer, all_tools


@pytest.mark.parametrize("name", NAMES)
def test_http_legacy_handshake_tools_and_examples(name: str, http_servers: Callable[[str], tuple[HttpServer, Path]]) -> None:
    server, workdir = http_servers(name)

    async def run() -> None:
        async with server.client(server.url(), mode=LEGACY) as client:
            assert client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
            await run_examples(client, name, workdir, http=True)

    asyncio.run(run())


@pytest.mark.parametrize("name", NAMES)
def test_http_modern_mode_and_bad_calls(name: str, http_servers: Callable[[str], tuple[HttpServer, Path]]) -> None:
    server, _ = http_servers(name)

    async def run() -> None:
        async with server.client(server.url(), mode=MODERN) as client:
            assert client.protocol_version == MODERN
            await bad_calls_then_alive(client)

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
