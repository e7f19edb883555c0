"""Run registered servers over stdio or streamable HTTP.

HTTP: one server at ``/mcp`` or every server in one process at ``/NAME/mcp``; binds
127.0.0.1 by default; keeps the SDK's Host/Origin (DNS-rebinding) checks with the
configured allow-lists and its request-body limit (413); optional bearer token (401
without it); ``GET`` on an MCP path is answered by the transport (a stream, or 4xx
other than 404), never "not found".
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from servers.core.event_store import RETRY_MS, BoundedEventStore
from servers.core.registry import build_server, server_names
from servers.core.settings import Settings

log = logging.getLogger("quiver")


def configure_logging(level: str) -> None:
    """Log to stderr only: on stdio, stdout carries the protocol."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def run_stdio(name: str, settings: Settings) -> None:
    serve_stdio(build_server(name, settings))


def serve_stdio(app: MCPServer) -> None:
    anyio.run(app.run_stdio_async)


UNAUTHORIZED = -32001
TOKEN_MESSAGE = "missing or wrong bearer token: send 'Authorization: Bearer <QUIVER_HTTP_TOKEN>'"


class BearerTokenMiddleware:
    """Refuse HTTP requests that lack ``Authorization: Bearer <token>`` (401)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/healthz":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                # A JSON-RPC error body: MCP clients show its message instead of a bare "401".
                response = JSONResponse(
                    {"jsonrpc": "2.0", "id": None, "error": {"code": UNAUTHORIZED, "message": TOKEN_MESSAGE}},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="quiver"'},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class NoOAuthDiscovery:
    """Answer ``/.well-known/...`` (OAuth discovery) with 404 before the token check: Quiver takes a
    static bearer token, so a client that got a 401 must not be sent into an OAuth flow by a second 401."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/.well-known/"):
            response = JSONResponse(
                {"error": "no OAuth here: this server takes a static bearer token; send "
                          "'Authorization: Bearer <QUIVER_HTTP_TOKEN>'"},
                status_code=404,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _security(settings: Settings) -> TransportSecuritySettings:
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(settings.http.allowed_hosts),
        allowed_origins=list(settings.http.allowed_origins),
    )


def http_app(names: list[str], settings: Settings, *, prefixed: bool | None = None) -> ASGIApp:
    """One ASGI app serving registered ``names``: at ``/mcp`` for a single server, else ``/NAME/mcp``."""
    prefixed = len(names) > 1 if prefixed is None else prefixed
    return asgi_app({name: build_server(name, settings) for name in names}, settings, prefixed=prefixed)


def asgi_app(apps: dict[str, MCPServer], settings: Settings, *, prefixed: bool) -> ASGIApp:
    """Wrap built MCP servers in Quiver's HTTP layer (routes, Host/Origin, body limit, token, health)."""
    names = list(apps)
    servers = list(apps.values())
    routes: list[BaseRoute] = []
    for name, server in apps.items():
        sub = server.streamable_http_app(
            streamable_http_path=f"/{name}/mcp" if prefixed else "/mcp",
            stateless_http=settings.http.stateless,
            max_request_body_size=settings.http.max_body_bytes,
            transport_security=_security(settings),
            host=settings.http.host,
            event_store=None if settings.http.stateless else BoundedEventStore(),
            retry_interval=RETRY_MS,
        )
        routes.extend(sub.routes)

    async def health(_request: Any) -> JSONResponse:
        return JSONResponse({"status": "ok", "servers": names})

    routes.append(Route("/healthz", health, methods=["GET"]))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for server in servers:
                await stack.enter_async_context(server.session_manager.run())
            yield

    app: ASGIApp = Starlette(routes=routes, lifespan=lifespan)
    if settings.http.token:
        app = NoOAuthDiscovery(BearerTokenMiddleware(app, settings.http.token))
    return app


def run_http(name: str, settings: Settings) -> None:
    names = server_names() if name == "all" else [name]
    serve_asgi(http_app(names, settings, prefixed=name == "all"), names, settings, prefixed=name == "all")


def serve_asgi(app: ASGIApp, names: list[str], settings: Settings, *, prefixed: bool) -> None:
    import uvicorn

    paths = ", ".join(f"/{n}/mcp" for n in names) if prefixed else "/mcp"
    print(
        f"quiver: serving {', '.join(names)} on http://{settings.http.host}:{settings.http.port} at {paths}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=settings.http.host,
        port=settings.http.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=2,
    )
