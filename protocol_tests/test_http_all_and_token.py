"""`quiver serve all --transport http`: every server in one process under /NAME/mcp, behind a bearer token."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from protocol_tests.harness import http_server
from servers.core.registry import server_names

TOKEN = "test-token-123"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}


def test_serve_all_requires_token_and_serves_every_server(tmp_path: Path) -> None:
    with http_server("all", tmp_path, env={"QUIVER_HTTP_TOKEN": TOKEN}) as server:
        names = server_names()
        for name in names:
            url = server.url(name)
            assert httpx.post(url, json=INIT, headers=HEADERS, timeout=30).status_code == 401
            wrong = {**HEADERS, "Authorization": "Bearer nope"}
            assert httpx.post(url, json=INIT, headers=wrong, timeout=30).status_code == 401
            good = {**HEADERS, "Authorization": f"Bearer {TOKEN}"}
            assert httpx.post(url, json=INIT, headers=good, timeout=30).status_code == 200
        assert httpx.post(f"{server.base}/mcp", json=INIT, headers={**HEADERS, "Authorization": f"Bearer {TOKEN}"}).status_code == 404

        async def listed(name: str) -> int:
            async with server.client(server.url(name), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                assert client.server_info and client.server_info.name == f"quiver-{name}"
                return len((await client.list_tools()).tools)

        async def run() -> list[int]:
            return await asyncio.gather(*(listed(n) for n in names))

        assert all(count > 0 for count in asyncio.run(run()))
