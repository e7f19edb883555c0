"""The error convention end to end through the SDK (the one adapter at the MCP boundary), and the
CLI's settings plumbing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mcp import Client
from mcp.server import MCPServer
from pydantic import BaseModel

from servers.core.boundary import tool
from servers.core.cli import build_parser, main, settings_from_args
from servers.core.errors import InvalidInput, QuiverError, Timeout


class Out(BaseModel):
    value: int


def _app() -> MCPServer:
    app = MCPServer("errors")

    @tool(app, name="expected", description="Fails the way a tool should when the caller erred.")
    async def expected(value: int) -> Out:
        raise InvalidInput(f"value {value} is out of range: pass a value between 1 and 10")

    @tool(app, name="bug", description="Fails the way a bug does.")
    async def bug(value: int) -> Out:
        raise RuntimeError("secret internal state /etc/shadow")

    return app


def test_quiver_errors_are_plain_exceptions() -> None:
    """Libraries raise them without the MCP SDK; the adapter alone knows about tool errors."""
    from mcp.server.mcpserver.exceptions import ToolError

    assert InvalidInput.__mro__[1:] == (QuiverError, Exception, BaseException, object)
    assert not issubclass(QuiverError, ToolError) and issubclass(Timeout, QuiverError)


def test_expected_errors_reach_the_model_and_bugs_do_not_leak(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> tuple[str, str, bool, bool]:
        async with Client(_app()) as client:
            a = await client.call_tool("expected", {"value": 99})
            b = await client.call_tool("bug", {"value": 1})
            return a.content[0].text, b.content[0].text, a.is_error, b.is_error

    expected, bug, a_err, b_err = asyncio.run(run())
    assert a_err and b_err
    assert "pass a value between 1 and 10" in expected
    assert "secret" not in bug and "Traceback" not in bug and "bug" in bug and "internal error" in bug
    logged = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert any("secret internal state" in c for c in logged), "the bug must be logged server-side"


def test_cli_flags_override_and_databases_add(tmp_path: Path) -> None:
    cfg = tmp_path / "q.toml"
    cfg.write_text('[text2sql.databases]\nsales = "/data/sales.sqlite"\n[http]\nport = 9000\n')
    args = build_parser().parse_args(
        ["serve", "parse", "--config", str(cfg), "--port", "9100", "--root", str(tmp_path), "--database", "shop=/x.db"]
    )
    settings = settings_from_args(args)
    assert settings.http.port == 9100
    assert settings.roots == [str(tmp_path)]
    assert settings.text2sql.databases == {"sales": "/data/sales.sqlite", "shop": "/x.db"}


def test_cli_errors_are_clear(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "all", "--transport", "stdio"]) == 2
    assert "needs --transport http" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "parse", "--database", "no-equals-sign"])


def test_servers_stand_without_the_host() -> None:
    """`python -m servers` is the serving CLI alone: no host module is imported, no host command offered;
    the `quiver` command adds ask/chat/demo."""
    import subprocess
    import sys

    code = ("import sys, servers.core.cli, servers.core.serving, servers.core.boundary; "
            "print(sorted(m for m in sys.modules if m == 'host' or m.startswith('host.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "servers", "--help"], capture_output=True, text=True).stdout
    assert "serve" in help_text and "ingest" in help_text and "ask" not in help_text and "demo" not in help_text
    from host.cli import build_parser as quiver_parser

    commands = quiver_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"serve", "servers", "config", "ingest", "ask", "chat", "demo"} <= set(commands)
