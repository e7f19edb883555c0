"""The servers Quiver ships. A server joins the suite (CLI, client configs, protocol
harness) by adding one line here; its module must define ``build_server(settings)``
and ``protocol_examples(workdir)``."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from servers.core.errors import NotFound

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from servers.core.settings import Settings

SERVERS: dict[str, str] = {
    "parse": "servers.parse.server",
    "retrieval": "servers.retrieval.server",
    "rerank": "servers.rerank.server",
    "text2sql": "servers.text2sql.server",
    "eval": "servers.eval.server",
}


def server_names() -> list[str]:
    return list(SERVERS)


def server_module(name: str) -> ModuleType:
    if name not in SERVERS:
        raise NotFound(f"unknown server '{name}': choose one of {', '.join(SERVERS)} (or 'all')")
    return import_module(SERVERS[name])


def build_server(name: str, settings: Settings) -> MCPServer:
    return server_module(name).build_server(settings)


def protocol_examples(name: str, workdir: Path) -> list[tuple[str, dict]]:
    return server_module(name).protocol_examples(workdir)


def concurrent_example(name: str, workdir: Path) -> tuple[str, dict]:
    """A call safe to make from many clients at once (the module's ``concurrent_example``,
    else its first protocol example)."""
    module = server_module(name)
    if hasattr(module, "concurrent_example"):
        return module.concurrent_example(workdir)
    return module.protocol_examples(workdir)[0]
