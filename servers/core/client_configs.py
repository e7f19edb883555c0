"""Ready-to-paste MCP client configurations for every Quiver server, and merging them into a client's file.

Clients and their files (each in the format that client documents):

========== =========================================== ============== =========================
client     file                                        servers under  token header syntax
========== =========================================== ============== =========================
cline      ``cline_mcp_settings.json``                 ``mcpServers`` ``${env:QUIVER_HTTP_TOKEN}``
codex      ``~/.codex/config.toml``                    ``mcp_servers`` ``bearer_token_env_var``
claude     ``claude_desktop_config.json`` (stdio only) ``mcpServers`` —
claude-code ``.mcp.json`` (or ``claude mcp add``)      ``mcpServers`` ``${QUIVER_HTTP_TOKEN}``
cursor     ``.cursor/mcp.json``                        ``mcpServers`` ``${env:QUIVER_HTTP_TOKEN}``
vscode     ``.vscode/mcp.json``                        ``servers``    ``${env:QUIVER_HTTP_TOKEN}``
========== =========================================== ============== =========================

Every stdio entry names the folders its server may read (``--root``): clients start servers from
``/`` or the home directory, so nothing may depend on the working directory. HTTP entries carry
their ``type`` and point at ``quiver serve all --transport http`` (``/NAME/mcp``), or at ``quiver
serve NAME --transport http`` (``/mcp``) when one server is named. The secret never lands in a
file: entries name the environment variable in the syntax that client expands.

:func:`merge_into` writes the entries into an existing file: Quiver's own entries (``quiver-NAME``)
are replaced, everything else (other servers, comments in TOML, other top-level keys) is kept.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from servers.core.errors import ConfigError, InvalidInput
from servers.core.registry import server_names
from servers.core.roots import broad_root
from servers.core.settings import Settings

CLIENTS: tuple[str, ...] = ("cline", "codex", "claude", "claude-code", "cursor", "vscode")
TOKEN_ENV = "QUIVER_HTTP_TOKEN"
PREFIX = "quiver-"
# How each client expands an environment variable inside a config value.
ENV_SYNTAX = {"cline": "${env:%s}", "cursor": "${env:%s}", "vscode": "${env:%s}", "claude-code": "${%s}"}
HTTP_TYPE = {"cline": "streamableHttp", "cursor": "http", "vscode": "http", "claude-code": "http"}
TOP_KEY = {"codex": "mcp_servers", "vscode": "servers"}  # the others: mcpServers


def quiver_command() -> list[str]:
    """The absolute command that starts `quiver` from this install."""
    script = Path(sys.executable).parent / "quiver"
    if script.exists():
        return [str(script)]
    found = shutil.which("quiver")
    return [found] if found else [sys.executable, "-m", "servers"]


EXAMPLE_COMMAND = ["/path/to/quiver/.venv/bin/quiver"]
EXAMPLE_ROOTS = ["/path/to/your/project"]


def config_roots(named: Sequence[str] | None, cwd: Path | None = None) -> list[str]:
    """The roots written into generated entries: the folders named (absolute), else the current
    directory, which must not be ``/`` or the home directory (name folders with --root there)."""
    if named:
        return list(dict.fromkeys(str(Path(r).expanduser().resolve()) for r in named))
    here = (cwd or Path.cwd()).resolve()
    wide = broad_root(here)
    if wide:
        raise ConfigError(
            f"the current directory {here} is {wide}: run `quiver config` from the folder the servers may read, "
            "or name folders with --root FOLDER (repeatable)"
        )
    return [str(here)]


def _stdio_args(name: str, config_path: Path | None, command: list[str], roots: Sequence[str]) -> list[str]:
    args = [*command[1:], "serve", name, "--transport", "stdio"]
    for root in roots:
        args += ["--root", root]
    if config_path:
        args += ["--config", str(config_path)]
    return args


def server_url(name: str, settings: Settings, *, single: bool) -> str:
    """Where server ``name`` answers: ``/mcp`` of ``serve NAME``, or ``/NAME/mcp`` of ``serve all``."""
    host = settings.http.host if settings.http.host not in ("0.0.0.0", "::") else "127.0.0.1"
    path = "/mcp" if single else f"/{name}/mcp"
    return f"http://{host}:{settings.http.port}{path}"


def _selected(servers: Sequence[str] | None) -> list[str]:
    known = server_names()
    chosen = list(dict.fromkeys(servers or known))
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise InvalidInput(f"unknown server(s) {', '.join(unknown)}: choose from {', '.join(known)}")
    return chosen


def build_config(
    client: str, transport: str, settings: Settings, config_path: Path | None = None, *, example: bool = False,
    roots: Sequence[str] | None = None, servers: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The client's configuration as a dict (rendered by :func:`render`).

    ``roots``: the folders every stdio server may read (default: :func:`config_roots` of the
    configured roots). ``servers``: which servers (default all); over HTTP exactly one named server
    means ``quiver serve NAME`` (at ``/mcp``), otherwise ``quiver serve all`` (at ``/NAME/mcp``).
    ``example`` writes placeholders instead of this install's absolute paths (configs/clients/)."""
    if client not in CLIENTS:
        raise InvalidInput(f"unknown client '{client}': choose one of {', '.join(CLIENTS)}")
    if transport not in ("stdio", "http"):
        raise InvalidInput(f"unknown transport '{transport}': choose stdio or http")
    if client == "claude" and transport == "http":
        raise InvalidInput(
            "Claude Desktop's config file takes stdio servers only: use --transport stdio (several clients "
            "sharing one knowledge base: see `quiver config claude-code --transport http` and the README)"
        )
    names = _selected(servers)
    single = transport == "http" and len(names) == 1 and bool(servers)
    env = {"QUIVER_DATA_DIR": settings.data_dir if example else str(settings.data_path)}
    command = EXAMPLE_COMMAND if example else quiver_command()
    if transport == "stdio":
        roots = EXAMPLE_ROOTS if example else (list(roots) if roots is not None else config_roots(settings.roots))
    token_header = {}
    if settings.http.token and client in ENV_SYNTAX:
        token_header = {"Authorization": "Bearer " + ENV_SYNTAX[client] % TOKEN_ENV}
    entries: dict[str, Any] = {}
    for name in names:
        if transport == "stdio":
            entry: dict[str, Any] = {"command": command[0], "args": _stdio_args(name, config_path, command, roots or []),
                                     "env": env}
            if client not in ("codex", "claude"):
                entry = {"type": "stdio", **entry}
        else:
            url = server_url(name, settings, single=single)
            if client == "codex":
                entry = {"url": url}
                if settings.http.token:
                    entry["bearer_token_env_var"] = TOKEN_ENV
            else:
                entry = {"type": HTTP_TYPE[client], "url": url}
                if token_header:
                    entry["headers"] = dict(token_header)
        if client == "codex":
            entry |= {"startup_timeout_sec": 60, "tool_timeout_sec": 600}
        elif client == "cline":
            entry |= {"autoApprove": [], "disabled": False, "timeout": 600}
        entries[f"{PREFIX}{name}"] = entry
    return {TOP_KEY.get(client, "mcpServers"): entries}


def render(
    client: str, transport: str, settings: Settings, config_path: Path | None = None, *, example: bool = False,
    roots: Sequence[str] | None = None, servers: Sequence[str] | None = None,
) -> str:
    """The configuration text: TOML for Codex, JSON for the others."""
    config = build_config(client, transport, settings, config_path, example=example, roots=roots, servers=servers)
    if client != "codex":
        return json.dumps(config, indent=2) + "\n"
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment("Quiver MCP servers for Codex: `quiver config codex --write` merges them into "
                            "$CODEX_HOME/config.toml (default ~/.codex/config.toml)"))
    _set_codex_servers(doc, config["mcp_servers"])
    return tomlkit.dumps(doc)


# ---------------------------------------------------------------- the client's own file


def default_file(client: str, cwd: Path | None = None) -> Path:
    """Where ``client`` reads its MCP servers on this machine (user or project file)."""
    here, home = (cwd or Path.cwd()), Path.home()
    system = platform.system()
    if client == "codex":
        return Path(os.environ.get("CODEX_HOME") or home / ".codex") / "config.toml"
    if client == "claude-code":
        return here / ".mcp.json"
    if client == "cursor":
        return here / ".cursor" / "mcp.json"
    if client == "vscode":
        return here / ".vscode" / "mcp.json"
    if system == "Darwin":
        support = home / "Library" / "Application Support"
    elif system == "Windows":
        support = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    else:
        support = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    if client == "claude":
        return support / "Claude" / "claude_desktop_config.json"
    if client == "cline":
        return support / "Code" / "User" / "globalStorage" / "saoudrizwan.claude-dev" / "settings" / "cline_mcp_settings.json"
    raise InvalidInput(f"unknown client '{client}': choose one of {', '.join(CLIENTS)}")


def _is_quiver_entry(key: str) -> bool:
    return key == "quiver" or (key.startswith(PREFIX) and key.removeprefix(PREFIX) in server_names())


def _set_codex_servers(doc: Any, entries: dict[str, Any]) -> None:
    import tomlkit

    if "mcp_servers" not in doc:
        doc.add("mcp_servers", tomlkit.table(is_super_table=True))
    table = doc["mcp_servers"]
    for key in [k for k in table if _is_quiver_entry(str(k))]:
        del table[key]
    for key, entry in entries.items():
        sub = tomlkit.table()
        for field, value in entry.items():
            sub.add(field, _toml_item(value))
        table.add(key, sub)


def _toml_item(value: Any) -> Any:
    import tomlkit

    if isinstance(value, dict):
        inline = tomlkit.inline_table()
        inline.update(value)
        return inline
    return tomlkit.item(value)


def merge_into(path: Path, client: str, config: dict[str, Any]) -> Path:
    """Write ``config``'s servers into the client's file at ``path``: Quiver's own entries replaced,
    every other server, key and (TOML) comment kept. The previous file is kept as ``FILE.bak``;
    the new one replaces it atomically. A file that cannot be parsed is refused, never overwritten."""
    top = TOP_KEY.get(client, "mcpServers")
    entries = config[top]
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if client == "codex":
        import tomlkit
        from tomlkit.exceptions import ParseError

        try:
            doc = tomlkit.parse(text)
        except ParseError as exc:
            raise ConfigError(f"{path} is not valid TOML ({exc}): fix it, or give another file to --write") from exc
        if "mcp_servers" in doc and not isinstance(doc["mcp_servers"], dict):
            raise ConfigError(f"{path}: `mcp_servers` is not a table; fix it by hand")
        _set_codex_servers(doc, entries)
        new_text = tomlkit.dumps(doc)
    else:
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path} is not plain JSON ({exc.msg} at line {exc.lineno}; comments are not supported): "
                "merge the printed config by hand, or give another file to --write"
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get(top, {}), dict):
            raise ConfigError(f"{path}: expected a JSON object with an object `{top}`; fix it by hand")
        servers = {k: v for k, v in data.get(top, {}).items() if not _is_quiver_entry(k)}
        data[top] = servers | entries
        new_text = json.dumps(data, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        shutil.copy2(path, path.with_name(path.name + ".bak"))
    temporary = path.with_name(f".{path.name}.quiver-tmp")
    temporary.write_text(new_text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def cli_commands(client: str, config: dict[str, Any]) -> list[str]:
    """The same entries as ``codex mcp add`` / ``claude mcp add`` command lines (other clients: none)."""
    lines = []
    for key, entry in config[TOP_KEY.get(client, "mcpServers")].items():
        if client == "codex":
            if "url" in entry:
                token = f" --bearer-token-env-var {entry['bearer_token_env_var']}" if "bearer_token_env_var" in entry else ""
                lines.append(f"codex mcp add {key} --url {shlex.quote(entry['url'])}{token}")
            else:
                env = "".join(f" --env {shlex.quote(f'{k}={v}')}" for k, v in entry["env"].items())
                lines.append(f"codex mcp add {key}{env} -- {shlex.join([entry['command'], *entry['args']])}")
        elif client == "claude-code":
            if "url" in entry:
                headers = "".join(f" --header {shlex.quote(f'{k}: {v}')}" for k, v in entry.get("headers", {}).items())
                lines.append(f"claude mcp add --transport http {key} {shlex.quote(entry['url'])}{headers}")
            else:
                env = "".join(f" --env {shlex.quote(f'{k}={v}')}" for k, v in entry["env"].items())
                lines.append(f"claude mcp add --transport stdio {key}{env} -- {shlex.join([entry['command'], *entry['args']])}")
    return lines


EXAMPLE_FILES = {
    ("cline", "stdio"): "cline_mcp_settings.json",
    ("cline", "http"): "cline_mcp_settings.http.json",
    ("codex", "stdio"): "codex_config.toml",
    ("codex", "http"): "codex_config.http.toml",
    ("claude", "stdio"): "claude_desktop_config.json",
    ("claude-code", "stdio"): "claude_code.mcp.json",
    ("claude-code", "http"): "claude_code.http.mcp.json",
    ("cursor", "stdio"): "cursor_mcp.json",
    ("cursor", "http"): "cursor_mcp.http.json",
    ("vscode", "stdio"): "vscode_mcp.json",
    ("vscode", "http"): "vscode_mcp.http.json",
}


def example_settings() -> Settings:
    """The settings the checked-in examples are written with (a token, so HTTP entries show its header)."""
    return Settings.model_validate({"http": {"token": "set-in-QUIVER_HTTP_TOKEN"}})


def write_examples(folder: Path) -> list[Path]:
    """Regenerate the checked-in example configs (``python -m servers.core.client_configs``)."""
    written = []
    for (client, transport), filename in EXAMPLE_FILES.items():
        path = folder / filename
        path.write_text(render(client, transport, example_settings(), example=True))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_examples(Path(__file__).resolve().parents[2] / "configs" / "clients"):
        print(written_path)
