"""The servers Quiver ships. A server joins the suite (CLI, client configs, protocol
harness) by one line here, naming a module that defines ``build_server(settings)``, plus
its example calls in ``protocol_tests/examples/NAME.py``."""

from __future__ import annotations

from importlib import import_module
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
    "finetune": "servers.finetune.server",
    "eval": "servers.eval.server",
}


def server_names() -> list[str]:
    return list(SERVERS)


def server_module(name: str) -> ModuleType:
    if name not in SERVERS:
        raise NotFound(f"unknown server '{name}': choose one of {', '.join(SERVERS)} (or 'all')")
    return import_module(SERVERS[name])


def build_server(name: str, settings: Settings) -> MCPServer:
    """Server ``name`` for these settings, finished by :func:`servers.core.boundary.finish_server`
    (identity, real capabilities, request checks); bad roots (a relative root that resolves to ``/``
    or the home directory) stop it here, before it serves anything."""
    from servers.core.boundary import finish_server

    settings.root_paths()
    return finish_server(server_module(name).build_server(settings), name)
