"""Which MCP servers the host connects to.

Two formats are read:

* ``mcpServers`` JSON as written for Claude Desktop, Cline, Cursor or VS Code (``servers``):
  ``command``/``args``/``env``/``cwd`` for stdio, ``url``/``headers``/``type`` for HTTP, plus
  Cline's ``disabled``, ``timeout`` (seconds) and ``alwaysAllow``/``autoApprove``.
* Quiver TOML: ``[servers.NAME]`` tables with the same keys in snake_case and
  ``enabled``, ``timeout_s``, ``startup_timeout_s``, ``allow_tools``, ``deny_tools``,
  ``auto_approve``.

Environment variables in ``command``, ``args``, ``env``, ``cwd``, ``url`` and ``headers`` are
expanded as the clients expand them: ``${NAME}`` and ``${NAME:-default}`` (Claude Code) and
``${env:NAME}`` (Cline, Cursor, VS Code); an enabled server naming an unset variable is refused
with an error that names it. Other ``${...}`` forms (VS Code's ``${input:...}``) are left as they are.

With no file, Quiver's own servers (the registry) are the default set, each started as
``python -m servers serve NAME --transport stdio`` with the host's effective settings in its
environment (``$QUIVER_SETTINGS_JSON``, see :func:`servers.core.settings.child_environment`).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from servers.core.errors import ConfigError, validation_message
from servers.core.registry import server_names
from servers.core.settings import Settings, child_environment


class ServerSpec(BaseModel):
    """One MCP server to connect to."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: Literal["stdio", "http", "streamable-http", "sse"] = "stdio"
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    inherit_env: bool = Field(default=False, description="pass the host's whole environment (Quiver's own servers)")
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    timeout_s: float = Field(default=120.0, gt=0, description="per tool call")
    startup_timeout_s: float = Field(default=90.0, gt=0)
    allow_tools: list[str] = Field(default_factory=list, description="glob patterns; empty = all tools")
    deny_tools: list[str] = Field(default_factory=list, description="glob patterns removed after allow")
    auto_approve: list[str] | None = Field(default=None, description="glob patterns run without asking; None = host default")

    @model_validator(mode="after")
    def _transport_fields(self) -> ServerSpec:
        if self.type == "stdio":
            if not self.command:
                if self.url:
                    self.type = "http"
                    return self
                raise ValueError(f"server '{self.name}' needs 'command' (stdio) or 'url' (HTTP)")
        elif not self.url:
            raise ValueError(f"server '{self.name}' of type {self.type} needs 'url'")
        return self

    def tool_allowed(self, tool: str) -> bool:
        if self.allow_tools and not any(fnmatch.fnmatchcase(tool, p) for p in self.allow_tools):
            return False
        return not any(fnmatch.fnmatchcase(tool, p) for p in self.deny_tools)


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_ALIASES = {
    "disabled": None,  # handled below
    "timeout": "timeout_s",
    "always_allow": "auto_approve",
    "auto_approve": "auto_approve",
    "transport": "type",
    "include_tools": "allow_tools",
    "exclude_tools": "deny_tools",
    "allowed_tools": "allow_tools",
    "disabled_tools": "deny_tools",
}
_IGNORED = {"description", "transport_type", "network_timeout", "icon", "title"}


def _normalize(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    for key, value in raw.items():
        snake = _CAMEL.sub("_", key).lower().replace("-", "_")
        if snake in _IGNORED:
            continue
        if snake == "disabled":
            out["enabled"] = not bool(value)
            continue
        snake = _ALIASES.get(snake, snake) or snake
        out[snake] = value
    if out.get("type") == "streamableHttp":
        out["type"] = "streamable-http"
    return out


_VARIABLE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_EXPANDED = ("command", "args", "env", "cwd", "url", "headers")


def expand_variables(value: Any, environ: dict[str, str], missing: set[str]) -> Any:
    """``value`` with ``${NAME}``, ``${NAME:-default}`` and ``${env:NAME}`` replaced from ``environ``
    (strings inside lists and dicts too); names neither set nor defaulted are added to ``missing``."""
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            missing.add(name)
            return match.group(0)

        return _VARIABLE.sub(replace, value)
    if isinstance(value, list):
        return [expand_variables(v, environ, missing) for v in value]
    if isinstance(value, dict):
        return {k: expand_variables(v, environ, missing) for k, v in value.items()}
    return value


def parse_servers(tree: dict[str, Any], source: str = "config", environ: dict[str, str] | None = None) -> list[ServerSpec]:
    """Server specs from a parsed JSON/TOML document (``mcpServers``, ``servers`` or ``host.servers``)."""
    table = tree.get("mcpServers") or tree.get("servers") or (tree.get("host") or {}).get("servers")
    if not isinstance(table, dict):
        raise ConfigError(f"{source} has no 'mcpServers' (JSON) or [servers.NAME] (TOML) table of servers")
    specs = []
    for name, raw in table.items():
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: server '{name}' must be a table/object, got {type(raw).__name__}")
        fields = _normalize(name, raw)
        missing: set[str] = set()
        for key in _EXPANDED:
            if key in fields:
                fields[key] = expand_variables(fields[key], dict(os.environ if environ is None else environ), missing)
        if missing and fields.get("enabled", True):
            raise ConfigError(
                f"{source}: server '{name}' uses the environment variable(s) {', '.join(sorted(missing))}, "
                "which are not set: set them (e.g. export QUIVER_HTTP_TOKEN=...) or disable the server"
            )
        try:
            specs.append(ServerSpec.model_validate(fields))
        except ValidationError as exc:
            raise ConfigError(f"{source}: server '{name}' key {validation_message(exc)}") from exc
    return specs


def load_server_file(path: str | Path) -> list[ServerSpec]:
    """Read a ``.json`` (mcpServers) or ``.toml`` server file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"servers file {file} does not exist; pass an mcpServers JSON or a TOML file")
    text = file.read_text(encoding="utf-8")
    try:
        tree = tomllib.loads(text) if file.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"servers file {file} cannot be parsed: {exc}") from exc
    return parse_servers(tree, str(file))


def quiver_servers(settings: Settings, names: list[str] | None = None) -> list[ServerSpec]:
    """Quiver's own servers as stdio subprocesses sharing this host's settings."""
    env = child_environment(settings)
    chosen = names or server_names()
    return [
        ServerSpec(
            name=name,
            command=sys.executable,
            args=["-m", "servers", "serve", name, "--transport", "stdio"],
            env=env,
            inherit_env=True,
            timeout_s=settings.host.tool_timeout_s,
            startup_timeout_s=settings.host.startup_timeout_s,
        )
        for name in chosen
    ]


def resolve_servers(settings: Settings, servers_file: str | None = None, names: list[str] | None = None) -> list[ServerSpec]:
    """The enabled servers for this run: ``--servers FILE``, else ``host.servers``, else Quiver's own."""
    path = servers_file or settings.host.servers
    specs = load_server_file(path) if path else quiver_servers(settings)
    if names:
        unknown = sorted(set(names) - {s.name for s in specs})
        if unknown:
            raise ConfigError(f"unknown server(s) {', '.join(unknown)}; configured: {', '.join(s.name for s in specs)}")
        specs = [s for s in specs if s.name in names]
    return [s for s in specs if s.enabled]
