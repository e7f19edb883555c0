"""Each MCP client's config file format as a JSON Schema, written from that client's documentation.

Strict where a client is strict (unknown keys in a server entry are flagged), so a generated
config that a client would misread fails here. The token header must use the variable syntax the
client expands: ``${env:NAME}`` (Cline, Cursor, VS Code) or ``${NAME}`` (Claude Code).
"""

from __future__ import annotations

from typing import Any

STRINGS = {"type": "array", "items": {"type": "string"}}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
ENV_VAR = r"\$\{env:[A-Z_][A-Z0-9_]*\}"
PLAIN_VAR = r"\$\{[A-Z_][A-Z0-9_]*\}"


def _headers(var: str) -> dict[str, Any]:
    return {"type": "object", "properties": {"Authorization": {"type": "string", "pattern": f"^Bearer {var}$"}},
            "additionalProperties": {"type": "string"}}


def _stdio(type_required: bool, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    props = {"type": {"const": "stdio"}, "command": {"type": "string", "minLength": 1}, "args": STRINGS,
             "env": STRING_MAP, **(extra or {})}
    return {"type": "object", "required": ["command", *(["type"] if type_required else [])], "properties": props,
            "additionalProperties": False}


def _remote(types: list[str], var: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    props = {"type": {"enum": types}, "url": {"type": "string", "pattern": "^https?://"}, "headers": _headers(var),
             **(extra or {})}
    return {"type": "object", "required": ["type", "url"], "properties": props, "additionalProperties": False}


def _file(top: str, entry: dict[str, Any], extra_top: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "required": [top],
        "properties": {top: {"type": "object", "additionalProperties": entry, "minProperties": 1}, **(extra_top or {})},
    }


CLINE_EXTRA = {"autoApprove": STRINGS, "disabled": {"type": "boolean"},
               "timeout": {"type": "integer", "minimum": 1, "maximum": 3600}}
SCHEMAS: dict[str, dict[str, Any]] = {
    # Claude Desktop: claude_desktop_config.json, stdio servers only.
    "claude": _file("mcpServers", _stdio(False)),
    # Claude Code: .mcp.json; "type" stdio (default) | http | sse; ${VAR} expanded in command/args/env/url/headers.
    "claude-code": _file("mcpServers", {"oneOf": [_stdio(False), _remote(["http", "sse"], PLAIN_VAR)]}),
    # Cline: cline_mcp_settings.json; "type" stdio | streamableHttp | sse; ${env:VAR}.
    "cline": _file("mcpServers", {"oneOf": [_stdio(True, CLINE_EXTRA), _remote(["streamableHttp", "sse"], ENV_VAR, CLINE_EXTRA)]}),
    # Cursor: .cursor/mcp.json; stdio (command) or remote (url); ${env:VAR}.
    "cursor": _file("mcpServers", {"oneOf": [_stdio(False, {"envFile": {"type": "string"}}),
                                             _remote(["http", "sse", "streamable-http"], ENV_VAR)]}),
    # VS Code: .vscode/mcp.json; top-level "servers" (+ optional "inputs"); "type" stdio | http | sse; ${env:VAR}.
    "vscode": _file("servers", {"oneOf": [_stdio(True, {"envFile": {"type": "string"}, "cwd": {"type": "string"}}),
                                          _remote(["http", "sse"], ENV_VAR)]},
                    {"inputs": {"type": "array"}}),
    # Codex: config.toml [mcp_servers.NAME]: command/args/env/cwd or url/bearer_token_env_var/http_headers.
    "codex": _file("mcp_servers", {"oneOf": [
        {"type": "object", "required": ["command"], "additionalProperties": False, "properties": {
            "command": {"type": "string"}, "args": STRINGS, "env": STRING_MAP, "cwd": {"type": "string"},
            "enabled": {"type": "boolean"}, "startup_timeout_sec": {"type": "number"},
            "tool_timeout_sec": {"type": "number"}}},
        {"type": "object", "required": ["url"], "additionalProperties": False, "properties": {
            "url": {"type": "string", "pattern": "^https?://"}, "bearer_token_env_var": {"type": "string"},
            "http_headers": STRING_MAP, "enabled": {"type": "boolean"}, "startup_timeout_sec": {"type": "number"},
            "tool_timeout_sec": {"type": "number"}}},
    ]}),
}
