"""A trivial echo tool, served either through Quiver's serving layer or as a plain MCPServer.

Used by bench/protocol.py: ``python -m bench.echo_server {quiver,plain} {stdio,http} [PORT]``.
"""

from __future__ import annotations

import sys
from typing import Annotated

from mcp.server import MCPServer
from pydantic import BaseModel, Field


class Echo(BaseModel):
    text: str


def build() -> MCPServer:
    app = MCPServer("echo")

    @app.tool(name="echo", description="Return the text unchanged.")
    async def echo(text: Annotated[str, Field(description="any text")]) -> Echo:
        return Echo(text=text)

    return app


def main() -> None:
    system, transport = sys.argv[1], sys.argv[2]
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    app = build()
    if system == "plain":
        if transport == "stdio":
            app.run("stdio")
        else:
            app.run("streamable-http", host="127.0.0.1", port=port)
        return
    from servers.core.serving import asgi_app, configure_logging, serve_asgi, serve_stdio
    from servers.core.settings import load_settings

    settings = load_settings(overrides={"http": {"port": port}})
    configure_logging(settings.log_level)
    if transport == "stdio":
        serve_stdio(app)
    else:
        serve_asgi(asgi_app({"echo": app}, settings, prefixed=False), ["echo"], settings, prefixed=False)


if __name__ == "__main__":
    main()
