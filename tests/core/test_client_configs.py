"""Client configs parse as their formats, name every server, and the real Codex CLI reads ours."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import pytest

from servers.core.cli import main
from servers.core.client_configs import (
    CLIENTS,
    EXAMPLE_FILES,
    build_config,
    example_settings,
    merge_into,
    render,
)
from servers.core.errors import ConfigError, InvalidInput
from servers.core.registry import server_names
from servers.core.settings import Settings
from tests.core.client_schemas import SCHEMAS

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
    assert all("url" in e and e["type"] == "http" for e in cursor.values())
    with pytest.raises(InvalidInput, match="stdio servers only"):
        build_config("claude", "http", Settings())


def test_token_goes_to_env_var_not_file() -> None:
    settings = Settings.model_validate({"http": {"token": "s3cret"}})
    codex = render("codex", "http", settings)
    cline = render("cline", "http", settings)
    assert "s3cret" not in codex and "s3cret" not in cline
    assert 'bearer_token_env_var = "QUIVER_HTTP_TOKEN"' in codex
    assert "Bearer ${env:QUIVER_HTTP_TOKEN}" in cline




def _pairs() -> list[tuple[str, str]]:
    return [(c, t) for c in CLIENTS for t in ("stdio", "http") if (c, t) != ("claude", "http")]


def _parse(client: str, text: str) -> dict:
    return tomllib.loads(text) if client == "codex" else json.loads(text)


@pytest.mark.parametrize(("client", "transport"), _pairs())
@pytest.mark.parametrize("token", [None, "s3cret"])
def test_every_config_matches_its_clients_schema(client: str, transport: str, token: str | None) -> None:
    settings = Settings.model_validate({"http": {"token": token}})
    text = render(client, transport, settings, roots=["/srv/docs"])
    config = _parse(client, text)
    jsonschema.validate(config, SCHEMAS[client])
    entries = next(iter(config.values()))
    assert sorted(entries) == sorted(NAMES)
    if token:
        assert token not in text  # the secret never lands in the file
        if transport == "http" and client != "codex":
            syntax = "${QUIVER_HTTP_TOKEN}" if client == "claude-code" else "${env:QUIVER_HTTP_TOKEN}"
            assert all(e["headers"]["Authorization"] == f"Bearer {syntax}" for e in entries.values())


def test_schemas_catch_what_clients_misread() -> None:
    """The schemas are strict enough to fail: the old Cline/Cursor token syntax, a VS Code file under mcpServers."""
    settings = Settings.model_validate({"http": {"token": "t"}})
    cline = _parse("cline", render("cline", "http", settings))
    for entry in cline["mcpServers"].values():
        entry["headers"]["Authorization"] = "Bearer ${QUIVER_HTTP_TOKEN}"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cline, SCHEMAS["cline"])
    vscode = _parse("vscode", render("vscode", "stdio", settings, roots=["/srv"]))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"mcpServers": vscode["servers"]}, SCHEMAS["vscode"])


def test_single_server_over_http_is_at_slash_mcp(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "claude-code", "--transport", "http", "--server", "parse"]) == 0
    captured = capsys.readouterr()
    one = json.loads(captured.out)["mcpServers"]
    assert list(one) == ["quiver-parse"] and one["quiver-parse"]["url"].endswith(":8765/mcp")
    assert "quiver serve parse --transport http" in captured.err
    two = json.loads(_cli(capsys, "config", "claude-code", "--transport", "http", "--server", "parse",
                          "--server", "rerank"))["mcpServers"]
    assert [e["url"].rsplit(":8765", 1)[1] for e in two.values()] == ["/parse/mcp", "/rerank/mcp"]
    with pytest.raises(InvalidInput, match="unknown server"):
        build_config("vscode", "http", Settings(), servers=["nope"])


@pytest.mark.parametrize("client", ["cline", "claude", "claude-code", "cursor", "vscode"])
def test_write_merges_into_an_existing_json_file(client: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top = "servers" if client == "vscode" else "mcpServers"
    target = tmp_path / "config.json"
    mine = {"command": "my-server", "args": ["--x"]}
    target.write_text(json.dumps({top: {"mine": mine, "quiver-parse": {"command": "old"}}, "inputs": [{"id": "k"}]}))
    for transport in ("stdio", "http") if client != "claude" else ("stdio", "stdio"):
        assert main(["config", client, "--transport", transport, "--write", str(target), "--root", str(tmp_path)]) == 0
    data = json.loads(target.read_text())
    jsonschema.validate({top: {k: v for k, v in data[top].items() if k != "mine"}}, SCHEMAS[client])
    assert data[top]["mine"] == mine and data["inputs"] == [{"id": "k"}]
    assert sorted(k for k in data[top] if k != "mine") == sorted(NAMES)
    assert (tmp_path / "config.json.bak").exists()
    assert "wrote" in capsys.readouterr().err


def test_write_refuses_a_file_it_cannot_parse(tmp_path: Path) -> None:
    target = tmp_path / "mcp.json"
    target.write_text('{"servers": {} // a comment\n}')
    with pytest.raises(ConfigError, match="not plain JSON"):
        merge_into(target, "vscode", build_config("vscode", "stdio", Settings(), roots=[str(tmp_path)]))
    assert target.read_text() == '{"servers": {} // a comment\n}'


def _codex(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODEX_HOME": str(home), "PATH": f"{CODEX.parent}:{os.environ['PATH']}"}
    return subprocess.run([str(CODEX), *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not CODEX.exists(), reason="Codex CLI not installed (make setup installs it)")
def test_codex_accepts_the_file_after_two_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`quiver config codex --write` twice (stdio, then http) into a config with the user's own
    settings: the real Codex CLI starts, lists each Quiver server once, and the user's lines survive."""
    home = tmp_path / "codex"
    home.mkdir()
    (home / "config.toml").write_text('# my settings\nmodel = "o3"\n\n[mcp_servers.mine]\ncommand = "echo"\n')
    monkeypatch.setenv("CODEX_HOME", str(home))
    assert main(["config", "codex", "--write", "--root", str(tmp_path)]) == 0
    assert main(["config", "codex", "--write", "--transport", "http"]) == 0
    text = (home / "config.toml").read_text()
    assert text.startswith("# my settings") and 'model = "o3"' in text
    config = tomllib.loads(text)
    jsonschema.validate(config, SCHEMAS["codex"])
    assert sorted(config["mcp_servers"]) == sorted([*NAMES, "mine"])
    listed = _codex(home, "mcp", "list")
    assert listed.returncode == 0, listed.stderr
    for name in [*NAMES, "mine"]:
        assert listed.stdout.count(name + " ") == 1, listed.stdout
    got = _codex(home, "mcp", "get", "quiver-parse", "--json")
    assert got.returncode == 0 and json.loads(got.stdout)["transport"]["url"].endswith("/parse/mcp"), got.stdout


@pytest.mark.skipif(not CODEX.exists(), reason="Codex CLI not installed (make setup installs it)")
def test_printed_codex_mcp_add_lines_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "codex"
    home.mkdir()
    assert main(["config", "codex", "--root", str(tmp_path)]) == 0
    lines = [line.strip() for line in capsys.readouterr().err.splitlines() if line.strip().startswith("codex mcp add")]
    assert len(lines) == len(NAMES)
    for line in lines:
        added = _codex(home, *shlex.split(line)[1:])
        assert added.returncode == 0, added.stderr
    got = json.loads(_codex(home, "mcp", "get", "quiver-parse", "--json").stdout)
    assert got["transport"]["args"][-2:] == ["--root", str(tmp_path)]


def test_claude_mcp_add_lines_keep_the_variable_for_claude_to_expand(capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUIVER_HTTP_TOKEN", "s3cret")
    assert main(["config", "claude-code", "--transport", "http"]) == 0
    err = capsys.readouterr().err
    lines = [line.strip() for line in err.splitlines() if line.strip().startswith("claude mcp add")]
    assert len(lines) == len(NAMES) and "s3cret" not in err
    argv = shlex.split(lines[0])
    assert argv[:5] == ["claude", "mcp", "add", "--transport", "http"]
    assert argv[argv.index("--header") + 1] == "Authorization: Bearer ${QUIVER_HTTP_TOKEN}"


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


def test_checked_in_examples_are_current() -> None:
    for (client, transport), filename in EXAMPLE_FILES.items():
        text = (REPO / "configs" / "clients" / filename).read_text()
        assert text == render(client, transport, example_settings(), example=True), (
            f"configs/clients/{filename} is stale: run python -m servers.core.client_configs"
        )
