"""Ready-to-paste MCP client configurations for every Quiver server.

Formats: Cline (``cline_mcp_settings.json``), Codex (``config.toml``), Claude Desktop
(``claude_desktop_config.json``, stdio only) and Cursor (``.cursor/mcp.json``). Every stdio
entry names the folders its server may read (``--root``): clients start servers from ``/`` or
the home directory, so nothing may depend on the working directory.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from servers.core.errors import ConfigError, InvalidInput
from servers.core.registry import server_names
from servers.core.roots import broad_root
from servers.core.settings import Settings
from servers.core.tomlwriter import toml_tables

Client = Literal["cline", "codex", "claude", "cursor"]
Transport = Literal["stdio", "http"]
CLIENTS: tuple[str, ...] = ("cline", "codex", "claude", "cursor")
TOKEN_ENV = "QUIVER_HTTP_TOKEN"


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


def _stdio_entry(name: str, config_path: Path | None, command: list[str], roots: Sequence[str]) -> dict[str, Any]:
    args = [*command[1:], "serve", name, "--transport", "stdio"]
    for root in roots:
        args += ["--root", root]
    if config_path:
        args += ["--config", str(config_path)]
    return {"command": command[0], "args": args}


def _url(name: str, settings: Settings) -> str:
    return f"http://{settings.http.host}:{settings.http.port}/{name}/mcp"


def build_config(
    client: str, transport: str, settings: Settings, config_path: Path | None = None, *, example: bool = False,
    roots: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The client's configuration as a dict (rendered by :func:`render`).

    ``roots``: the folders every stdio server may read (default: :func:`config_roots` of the
    configured roots). ``example`` writes placeholders instead of this install's absolute paths
    (the checked-in files under configs/clients/)."""
    if client not in CLIENTS:
        raise InvalidInput(f"unknown client '{client}': choose one of {', '.join(CLIENTS)}")
    if transport not in ("stdio", "http"):
        raise InvalidInput(f"unknown transport '{transport}': choose stdio or http")
    if client == "claude" and transport == "http":
        raise InvalidInput("Claude Desktop's config file takes stdio servers only: use --transport stdio")
    env = {"QUIVER_DATA_DIR": settings.data_dir if example else str(settings.data_path)}
    command = EXAMPLE_COMMAND if example else quiver_command()
    if transport == "stdio":
        roots = EXAMPLE_ROOTS if example else (list(roots) if roots is not None else config_roots(settings.roots))
    else:
        roots = []
    headers = {"Authorization": f"Bearer ${{{TOKEN_ENV}}}"} if settings.http.token else {}
    entries: dict[str, Any] = {}
    for name in server_names():
        key = f"quiver-{name}"
        if client == "codex":
            if transport == "stdio":
                entry = {**_stdio_entry(name, config_path, command, roots), "env": env}
            else:
                entry = {"url": _url(name, settings)}
                if settings.http.token:
                    entry["bearer_token_env_var"] = TOKEN_ENV
            entries[key] = {**entry, "startup_timeout_sec": 60, "tool_timeout_sec": 600}
        elif client == "cline":
            if transport == "stdio":
                entry = {"type": "stdio", **_stdio_entry(name, config_path, command, roots), "env": env}
            else:
                entry = {"type": "streamableHttp", "url": _url(name, settings), "headers": headers}
            entries[key] = {**entry, "autoApprove": [], "disabled": False, "timeout": 600}
        elif client == "claude":
            entries[key] = {**_stdio_entry(name, config_path, command, roots), "env": env}
        else:  # cursor
            if transport == "stdio":
                entries[key] = {"type": "stdio", **_stdio_entry(name, config_path, command, roots), "env": env}
            else:
                entries[key] = {"url": _url(name, settings), "headers": headers}
    if client == "codex":
        return {"mcp_servers": entries}
    return {"mcpServers": entries}


def render(
    client: str, transport: str, settings: Settings, config_path: Path | None = None, *, example: bool = False,
    roots: Sequence[str] | None = None,
) -> str:
    """The configuration text: TOML for Codex, JSON for the others."""
    config = build_config(client, transport, settings, config_path, example=example, roots=roots)
    if client != "codex":
        return json.dumps(config, indent=2) + "\n"
    tables = {f"mcp_servers.{name}": entry for name, entry in config["mcp_servers"].items()}
    return toml_tables(tables, "Quiver MCP servers for Codex: paste into $CODEX_HOME/config.toml (default ~/.codex/config.toml)")


EXAMPLE_FILES = {
    ("cline", "stdio"): "cline_mcp_settings.json",
    ("cline", "http"): "cline_mcp_settings.http.json",
    ("codex", "stdio"): "codex_config.toml",
    ("codex", "http"): "codex_config.http.toml",
    ("claude", "stdio"): "claude_desktop_config.json",
    ("cursor", "stdio"): "cursor_mcp.json",
    ("cursor", "http"): "cursor_mcp.http.json",
}


def write_examples(folder: Path) -> list[Path]:
    """Regenerate the checked-in example configs (``python -m servers.core.client_configs``)."""
    written = []
    for (client, transport), filename in EXAMPLE_FILES.items():
        path = folder / filename
        path.write_text(render(client, transport, Settings(), example=True))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_examples(Path(__file__).resolve().parents[2] / "configs" / "clients"):
        print(written_path)
