"""The official MCP conformance suite (@modelcontextprotocol/conformance, Node 22) against each server over HTTP."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from protocol_tests.harness import REPO, HttpServer
from servers.core.registry import server_names

NODE = REPO / ".node" / "node_modules" / ".bin" / "node"
SUITE = REPO / ".node" / "node_modules" / "@modelcontextprotocol" / "conformance"
SCENARIOS = ["server-initialize", "ping", "tools-list", "dns-rebinding-protection"]
BASELINE = Path(__file__).with_name("conformance-baseline.yml")

pytestmark = pytest.mark.skipif(not NODE.exists() or not SUITE.exists(), reason="Node 22 + conformance suite not installed (make setup)")


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", server_names())
def test_conformance_scenario(name: str, scenario: str, http_servers: Callable[[str], tuple[HttpServer, Path]], tmp_path: Path) -> None:
    server, _ = http_servers(name)
    cli = SUITE / "dist" / "index.js"
    cmd = [str(NODE), str(cli), "server", "--url", server.url(), "--scenario", scenario, "-o", str(tmp_path)]
    if BASELINE.exists():
        cmd += ["--expected-failures", str(BASELINE)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"conformance {scenario} failed for {name}:\n{report[-4000:]}"
    checks = list(tmp_path.rglob("checks.json"))
    if checks:
        results = json.loads(checks[0].read_text())
        failed = [c for c in results if c.get("status") == "FAILURE"]
        assert not failed, failed
