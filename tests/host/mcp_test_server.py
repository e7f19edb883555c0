"""A small MCP server for the host's tests (a plain SDK server, like any third-party one):
arithmetic, a weather lookup, failures, a crash, a slow tool, and a tool that registers another
tool at run time (tools/list_changed).

Run: ``python tests/host/mcp_test_server.py [--prefix P]`` (stdio).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

WEATHER = {"paris": (18.5, "cloudy"), "tokyo": (24.0, "sunny"), "oslo": (4.0, "snow")}


class Sum(BaseModel):
    total: float


class Weather(BaseModel):
    city: str
    temperature_c: float
    conditions: str


class Echo(BaseModel):
    text: str
    pid: int


def build_server() -> MCPServer:
    app = MCPServer("quiver-test", instructions="Test tools for the Quiver host.")

    @app.tool(name="add", description="Add two numbers a and b and return their sum.")
    async def add(
        a: Annotated[float, Field(description="first number")],
        b: Annotated[float, Field(description="second number")],
    ) -> Sum:
        return Sum(total=a + b)

    @app.tool(
        name="get_weather",
        description="Current weather for a city: temperature in Celsius and conditions. Use for questions about weather.",
    )
    async def get_weather(city: Annotated[str, Field(description="city name, e.g. Paris")]) -> Weather:
        key = city.strip().lower()
        if key not in WEATHER:
            raise ToolError(f"unknown city '{city}': choose one of Paris, Tokyo, Oslo")
        temp, cond = WEATHER[key]
        return Weather(city=city, temperature_c=temp, conditions=cond)

    @app.tool(name="echo", description="Echo the text back, with the server's process id.")
    async def echo(text: str) -> Echo:
        return Echo(text=text, pid=os.getpid())

    @app.tool(name="always_fails", description="A tool that always fails with a clear error message.")
    async def always_fails(reason: str = "none") -> Echo:
        raise ToolError(f"always_fails cannot succeed (reason given: {reason}); use another tool")

    @app.tool(name="sleep", description="Sleep for the given number of seconds.")
    async def sleep(seconds: Annotated[float, Field(ge=0, le=60)]) -> Sum:
        await asyncio.sleep(seconds)
        return Sum(total=seconds)

    @app.tool(name="crash", description="Kill this server process immediately (tests reconnection).")
    async def crash() -> Sum:
        os._exit(3)

    @app.tool(name="big_output", description="Return a long text of n characters.")
    async def big_output(n: Annotated[int, Field(ge=1, le=100000)]) -> str:
        return "x" * n

    @app.tool(name="register_tool", description="Register a new tool named NAME at run time.")
    async def register_tool(name: str, ctx: Context) -> Sum:
        async def extra() -> Sum:
            return Sum(total=42)

        app.add_tool(extra, name=name, description=f"Dynamically registered tool {name}; returns 42.")
        # 2026-07-28 sessions hear it through subscriptions/listen, 2025 ones as a notification.
        with contextlib.suppress(Exception):
            await ctx.notify_tools_changed()
        with contextlib.suppress(Exception):
            await ctx.request_context.session.send_tool_list_changed()
        return Sum(total=1)

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.parse_args()
    build_server().run("stdio")
