"""Server configuration: mcpServers JSON (Claude Desktop / Cline), Quiver TOML, the default set."""

from __future__ import annotations

import json

import pytest

from host.config import load_server_file, quiver_servers, resolve_servers
from servers.core.errors import ConfigError


def test_mcp_servers_json_with_cline_keys(tmp_path):
    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "server-filesystem", "/tmp"], "env": {"A": "1"},
                  "alwaysAllow": ["read_file"], "timeout": 30, "disabled": False},
        "remote": {"type": "streamable-http", "url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer x"}},
        "legacy": {"url": "http://127.0.0.1:9/sse", "type": "sse", "disabled": True},
        "bare_url": {"url": "http://127.0.0.1:9/mcp"},
    }}))
    specs = {s.name: s for s in load_server_file(path)}
    assert specs["files"].type == "stdio" and specs["files"].args[-1] == "/tmp" and specs["files"].env == {"A": "1"}
    assert specs["files"].auto_approve == ["read_file"] and specs["files"].timeout_s == 30
    assert specs["remote"].headers["Authorization"] == "Bearer x"
    assert specs["legacy"].enabled is False and specs["legacy"].type == "sse"
    assert specs["bare_url"].type == "http"


def test_quiver_toml_with_tool_filters(tmp_path, settings):
    path = tmp_path / "servers.toml"
    path.write_text('[servers.calc]\ncommand = "calc-server"\nallow_tools = ["add*", "mul"]\n'
                    'deny_tools = ["add_secret"]\nenabled = true\ntimeout_s = 5\n')
    (spec,) = resolve_servers(settings, str(path))
    assert spec.tool_allowed("add") and spec.tool_allowed("mul")
    assert not spec.tool_allowed("add_secret") and not spec.tool_allowed("div")


def test_bad_configs_name_the_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mcpServers": {"x": {"args": ["a"]}}}))
    with pytest.raises(ConfigError, match="server 'x'.*command"):
        load_server_file(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_server_file(tmp_path / "missing.json")
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(ConfigError, match="mcpServers"):
        load_server_file(tmp_path / "empty.json")


def test_default_set_is_quivers_own_servers_with_effective_settings(settings, tmp_path):
    from servers.core.registry import server_names
    from servers.core.settings import load_settings

    settings.host.max_steps = 3
    settings.text2sql.databases = {"sales": str(tmp_path / "sales.sqlite")}
    specs = quiver_servers(settings)
    assert [s.name for s in specs] == server_names()
    assert specs[0].args == ["-m", "servers", "serve", specs[0].name, "--transport", "stdio"]
    # the child gets the effective settings through its environment, exactly, and no file is written
    child = load_settings(environ={**specs[0].env, "QUIVER_CONFIG": str(tmp_path / "ignored.toml")})
    resolved = [str(p) for p in settings.root_paths()]  # roots are checked and made absolute for the child
    assert child == settings.model_copy(update={"data_dir": str(settings.data_path), "roots": resolved})
    assert not (settings.data_path / "host").exists()


def test_variables_expand_as_each_client_writes_them() -> None:
    from host.config import parse_servers

    tree = {"mcpServers": {
        "cline": {"type": "streamableHttp", "url": "http://127.0.0.1:${env:PORT}/mcp",
                  "headers": {"Authorization": "Bearer ${env:TOKEN}"}},
        "claude": {"type": "http", "url": "http://127.0.0.1:${PORT}/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
        "stdio": {"command": "${BIN:-quiver}", "args": ["serve", "${env:NAME}", "${input:left-alone}"]},
        "off": {"command": "x", "args": ["${UNSET_VAR}"], "disabled": True},
    }}
    specs = {s.name: s for s in parse_servers(tree, environ={"PORT": "9000", "TOKEN": "t0k", "NAME": "parse"})}
    assert specs["cline"].url == specs["claude"].url == "http://127.0.0.1:9000/mcp"
    assert specs["cline"].headers == specs["claude"].headers == {"Authorization": "Bearer t0k"}
    assert specs["stdio"].command == "quiver" and specs["stdio"].args == ["serve", "parse", "${input:left-alone}"]
    with pytest.raises(ConfigError, match="TOKEN"):
        parse_servers(tree, environ={"PORT": "1", "NAME": "x"})
