"""Client configs parse as their formats, name every server, and the real Codex CLI reads ours."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from servers.core.cli import main
from servers.core.client_configs import EXAMPLE_FILES, build_config, render
from servers.core.errors import InvalidInput
from servers.core.registry import server_names
from servers.core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CODEX = REPO / ".node" / "node_modules" / ".bin" / "codex"
NAMES = [f"quiver-{n}" for n in server_names()]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_codex_toml(capsys: pytest.CaptureFixture[str], transport: str) -> None:
    config = tomllib.loads(_cli(capsys, "config", "codex", "--transport", transport))
    servers = config["mcp_servers"]
    assert sorted(servers) == sorted(NAMES)
    for name, entry in servers.items():
        assert entry["tool_timeout_sec"] > 0 and entry["startup_timeout_sec"] > 0
        if transport == "stdio":
            assert Path(entry["command"]).is_absolute()
            args = entry["args"]
            assert args[args.index("serve") + 1 : args.index("serve") + 4] == [name.removeprefix("quiver-"), "--transport", "stdio"]
            assert args[args.index("--root") + 1] == str(Path.cwd().resolve())  # default: where `quiver config` ran
        else:
            assert entry["url"].endswith(f"/{name.removeprefix('quiver-')}/mcp")


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_cline_json(capsys: pytest.CaptureFixture[str], transport: str) -> None:
    servers = json.loads(_cli(capsys, "config", "cline", "--transport", transport))["mcpServers"]
    assert sorted(servers) == sorted(NAMES)
    for entry in servers.values():
        assert entry["type"] == ("stdio" if transport == "stdio" else "streamableHttp")
        assert entry["disabled"] is False and entry["autoApprove"] == [] and entry["timeout"] > 0
        assert ("command" in entry) == (transport == "stdio")
        assert ("url" in entry) == (transport == "http")


def test_claude_and_cursor(capsys: pytest.CaptureFixture[str]) -> None:
    claude = json.loads(_cli(capsys, "config", "claude"))["mcpServers"]
    assert sorted(claude) == sorted(NAMES)
    assert all(set(e) == {"command", "args", "env"} for e in claude.values())
    cursor = json.loads(_cli(capsys, "config", "cursor", "--transport", "http"))["mcpServers"]
    assert all("url" in e for e in cursor.values())
    with pytest.raises(InvalidInput, match="stdio servers only"):
        build_config("claude", "http", Settings())


def test_token_goes_to_env_var_not_file() -> None:
    settings = Settings.model_validate({"http": {"token": "s3cret"}})
    codex = render("codex", "http", settings)
    cline = render("cline", "http", settings)
    assert "s3cret" not in codex and "s3cret" not in cline
    assert 'bearer_token_env_var = "QUIVER_HTTP_TOKEN"' in codex
    assert "Bearer ${QUIVER_HTTP_TOKEN}" in cline


def test_checked_in_examples_are_current() -> None:
    for (client, transport), filename in EXAMPLE_FILES.items():
        text = (REPO / "configs" / "clients" / filename).read_text()
        assert text == render(client, transport, Settings(), example=True), (
            f"configs/clients/{filename} is stale: run python -m servers.core.client_configs"
        )


@pytest.mark.skipif(not CODEX.exists(), reason="Codex CLI not installed (make setup installs it)")
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_real_codex_cli_lists_every_server(tmp_path: Path, transport: str) -> None:
    (tmp_path / "config.toml").write_text(render("codex", transport, Settings()))
    env = {**os.environ, "CODEX_HOME": str(tmp_path), "PATH": f"{CODEX.parent}:{os.environ['PATH']}"}
    out = subprocess.run([str(CODEX), "mcp", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for name in NAMES:
        assert name in out.stdout
    got = subprocess.run([str(CODEX), "mcp", "get", NAMES[0], "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["name"] == NAMES[0]


def test_roots_are_written_into_every_stdio_entry(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for client in ("claude", "cline", "cursor"):
        servers = json.loads(_cli(capsys, "config", client, "--root", str(a), "--root", str(b)))["mcpServers"]
        for entry in servers.values():
            pairs = [entry["args"][i + 1] for i, arg in enumerate(entry["args"]) if arg == "--root"]
            assert pairs == [str(a), str(b)]
    codex = tomllib.loads(_cli(capsys, "config", "codex", "--root", str(a)))["mcp_servers"]
    assert all(e["args"].count("--root") == 1 and str(a) in e["args"] for e in codex.values())


@pytest.mark.parametrize("where", ["/", "home"])
def test_config_from_slash_or_home_without_root_is_refused(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir("/" if where == "/" else tmp_path)
    assert main(["config", "claude"]) == 2
    assert "--root" in capsys.readouterr().err
    assert main(["config", "claude", "--root", str(tmp_path / "docs")]) == 0
