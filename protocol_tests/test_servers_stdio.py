"""Every registered server over stdio, driven by the SDK's real client.

A server joins by being listed in servers/core/registry.py and adding its example calls as one file,
protocol_tests/examples/NAME.py; no test code is added here. (Stdio and HTTP are separate files so
that two test workers can run them side by side.)
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from protocol_tests.checks import LEGACY, MODERN, NAMES, bad_calls_then_alive, run_examples
from protocol_tests.harness import REPO, serve_args, stdio_client
from servers.core.boundary import package_version


@pytest.mark.parametrize("name", NAMES)
def test_stdio_legacy_handshake_tools_and_examples(name: str, tmp_path: Path) -> None:
    async def run() -> None:
        async with stdio_client(name, tmp_path, mode=LEGACY) as client:
            assert client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
            info = client.server_info
            assert info and info.name == f"quiver-{name}"
            assert info.version == package_version() and info.version != "0.0.0+unknown", info
            assert info.title and info.description and info.website_url, info
            await run_examples(client, name, tmp_path)

    asyncio.run(run())


@pytest.mark.parametrize("name", NAMES)
def test_stdio_modern_mode_and_bad_calls(name: str, tmp_path: Path) -> None:
    async def run() -> None:
        async with stdio_client(name, tmp_path, mode=MODERN) as client:
            assert client.protocol_version == MODERN
            await bad_calls_then_alive(client)

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
