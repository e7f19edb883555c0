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
        _oauth_discovery_is_not_found_and_401_explains(server.base, names[0])
        _host_reads_client_configs_with_the_token_variable(server, tmp_path)


def _oauth_discovery_is_not_found_and_401_explains(base: str, name: str) -> None:
    """A client that got a 401 looks for OAuth metadata: it must find none (404, not another 401),
    and the 401 itself says which header to send."""
    for path in ("/.well-known/oauth-protected-resource", f"/.well-known/oauth-protected-resource/{name}/mcp",
                 "/.well-known/oauth-authorization-server"):
        answer = httpx.get(base + path, timeout=30)
        assert answer.status_code == 404, (path, answer.status_code)
    refused = httpx.post(f"{base}/{name}/mcp", json=INIT, headers=HEADERS, timeout=30)
    assert refused.status_code == 401 and "Authorization: Bearer" in refused.json()["error"]["message"]


def _host_reads_client_configs_with_the_token_variable(server, tmp_path: Path) -> None:
    """The host reads the generated Cline (${env:VAR}) and Claude Code (${VAR}) files; without the
    variable's right value the error says which token to set, not an ExceptionGroup."""
    from host.config import load_server_file
    from host.connections import Hub
    from servers.core.client_configs import render
    from servers.core.settings import Settings

    port = int(server.base.rsplit(":", 1)[1])
    settings = Settings.model_validate({"http": {"token": "anything", "port": port}})
    for client in ("cline", "claude-code"):
        path = tmp_path / f"{client}.json"
        path.write_text(render(client, "http", settings, servers=["parse", "rerank"]))

        async def connect(env_token: str, path: Path = path) -> Hub:
            import os

            os.environ["QUIVER_HTTP_TOKEN"] = env_token
            specs = load_server_file(path)
            async with Hub(specs) as hub:
                return hub

        try:
            hub = asyncio.run(connect(TOKEN))
            assert hub.errors == {} and "parse_document" in hub.tools, hub.errors
            hub = asyncio.run(connect("wrong"))
            assert set(hub.errors) == {"quiver-parse", "quiver-rerank"}
            assert all("refused the token: set QUIVER_HTTP_TOKEN" in e for e in hub.errors.values()), hub.errors
        finally:
            import os

            os.environ.pop("QUIVER_HTTP_TOKEN", None)
