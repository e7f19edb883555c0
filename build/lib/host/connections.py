"""Connections to MCP servers: start them concurrently, list their tools, call them, reconnect.

Each :class:`ServerConnection` owns its ``mcp.Client`` inside one supervisor task (anyio
requires a context to be entered and exited by the same task), so a reconnect is a request
to that task. :class:`Hub` runs all of them and exposes one tool namespace: a tool name
that two servers share becomes ``server__tool`` for both. ``tools/list_changed`` (a
notification on 2025 sessions, a ``subscriptions/listen`` event on 2026-07-28 ones) marks
a server's listing stale; the hub re-lists before the next model step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from host.backends.base import ToolInfo
from host.config import ServerSpec

log = logging.getLogger("quiver.host")

MAX_LIST_PAGES = 100


@dataclass
class CallOutcome:
    """A finished tool call: the MCP result, or an error text when none came back."""

    result: types.CallToolResult | None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def is_error(self) -> bool:
        return self.result is None or self.result.is_error


class ServerUnavailable(RuntimeError):
    """A server could not be started or reached."""


def _is_connection_loss(exc: BaseException) -> bool:
    if isinstance(exc, MCPError):
        return exc.code == types.CONNECTION_CLOSED
    return isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError | OSError | EOFError)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, and their causes."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    out = [exc]
    if exc.__cause__ is not None and exc.__cause__ is not exc:
        out += _leaves(exc.__cause__)
    return out


def describe_failure(name: str, exc: BaseException) -> str:
    """One sentence for a server that failed to start or connect, instead of an ExceptionGroup."""
    leaves = _leaves(exc)
    for leaf in leaves:
        status = getattr(getattr(leaf, "response", None), "status_code", None)
        if status == 401 or (isinstance(leaf, MCPError) and "bearer token" in str(leaf)):
            return (f"server '{name}' refused the token: set QUIVER_HTTP_TOKEN to the server's token (the "
                    "config's Authorization header names the variable)")
        if status == 403:
            return f"server '{name}' refused the request (403): check http.allowed_origins on the server"
        if status == 404:
            return f"server '{name}' has no MCP endpoint at that URL (404): check the path (/mcp or /NAME/mcp)"
        if isinstance(leaf, httpx2.ConnectError | ConnectionRefusedError):
            return f"server '{name}' is not reachable ({leaf}): start it first (quiver serve ... --transport http)"
    first = leaves[0] if leaves else exc
    return f"server '{name}' is unavailable: {type(first).__name__}: {first}"


class ServerConnection:
    """One MCP server, supervised: connect, list tools, call, reconnect on request."""

    def __init__(self, spec: ServerSpec, log_dir: Path | None = None) -> None:
        self.spec = spec
        self.log_dir = log_dir
        self.tools: list[types.Tool] = []
        self.error: str | None = None
        self.stale = False
        self.protocol_version: str | None = None
        self.instructions: str | None = None
        self.restarts = 0
        self._client: Client | None = None
        self._ready = anyio.Event()
        self._wake = anyio.Event()
        self._closing = False
        self._stopped = anyio.Event()
        self._errlog: TextIO | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def connected(self) -> bool:
        return self._client is not None and self.error is None

    # -- transport -----------------------------------------------------------------------
    def _errlog_file(self) -> TextIO:
        if self._errlog is None:
            if self.log_dir is None:
                self._errlog = sys.stderr
            else:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                self._errlog = open(self.log_dir / f"{self.name}.log", "a", encoding="utf-8")  # noqa: SIM115
        return self._errlog

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[Any]:
        spec = self.spec
        if spec.type == "stdio":
            env = dict(os.environ) if spec.inherit_env else {}
            env.update(spec.env)
            params = StdioServerParameters(command=spec.command or "", args=spec.args, env=env or None, cwd=spec.cwd)
            async with stdio_client(params, errlog=self._errlog_file()) as streams:
                yield streams
        elif spec.type == "sse":
            async with sse_client(spec.url or "", headers=spec.headers or None) as streams:
                yield streams
        else:
            timeout = httpx2.Timeout(30.0, read=max(300.0, spec.timeout_s))
            async with (
                httpx2.AsyncClient(headers=spec.headers, timeout=timeout) as http,
                streamable_http_client(spec.url or "", http_client=http) as streams,
            ):
                yield streams

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.stale = True

    async def _listen_for_changes(self, client: Client) -> None:
        with contextlib.suppress(Exception):
            async with client.listen(tools_list_changed=True) as sub:
                async for _event in sub:
                    self.stale = True

    # -- supervisor ----------------------------------------------------------------------
    async def supervise(self) -> None:
        """Run until :meth:`close`: (re)connect whenever asked, keep the client open meanwhile."""
        try:
            while not self._closing:
                wake = self._wake = anyio.Event()
                try:
                    async with Client(self._transport(), message_handler=self._on_message) as client:
                        self._client = client
                        self.protocol_version = client.protocol_version
                        self.instructions = client.instructions
                        with anyio.fail_after(self.spec.startup_timeout_s):
                            await self._list_tools()
                        self.error = None
                        async with anyio.create_task_group() as tg:
                            caps = client.server_capabilities.tools
                            if client.protocol_version in MODERN_PROTOCOL_VERSIONS and caps and caps.list_changed:
                                tg.start_soon(self._listen_for_changes, client)
                            self._ready.set()
                            await wake.wait()
                            tg.cancel_scope.cancel()
                except Exception as exc:  # noqa: BLE001 - any failure to start is reported, not raised
                    if not wake.is_set():
                        self.error = describe_failure(self.name, exc)
                        log.warning("%s", self.error)
                finally:
                    self._client = None
                if not wake.is_set():
                    self._ready.set()  # release whoever waits for this (failed) start
                await wake.wait()
        finally:
            self._stopped.set()
            if self._errlog not in (None, sys.stderr):
                self._errlog.close()  # type: ignore[union-attr]

    async def wait_ready(self) -> None:
        with anyio.move_on_after(self.spec.startup_timeout_s + 5):
            await self._ready.wait()
        if not self._ready.is_set():
            self.error = f"server '{self.name}' did not start within {self.spec.startup_timeout_s:.0f} s"

    async def reconnect(self) -> None:
        """Restart the connection (and the process, for stdio); raises ServerUnavailable on failure."""
        self.restarts += 1
        self._ready = anyio.Event()
        self._wake.set()
        await self.wait_ready()
        if self.error or self._client is None:
            raise ServerUnavailable(self.error or f"server '{self.name}' did not come back")

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        with anyio.move_on_after(10):
            await self._stopped.wait()

    # -- requests --------------------------------------------------------------------------
    async def _list_tools(self) -> None:
        assert self._client is not None
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            page = await self._client.list_tools(cursor=cursor, cache_mode="refresh")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = [t for t in tools if self.spec.tool_allowed(t.name)]
        self.stale = False

    async def refresh_tools(self) -> None:
        if self._client is not None:
            await self._list_tools()

    async def call(self, tool: str, arguments: dict[str, Any], timeout_s: float | None = None) -> CallOutcome:
        """Call a tool; a lost connection is reconnected and the call retried once."""
        timeout = timeout_s or self.spec.timeout_s
        start = time.perf_counter()
        notes: list[str] = []
        for attempt in (1, 2):
            if self._client is None:
                try:
                    await self.reconnect()
                except ServerUnavailable as exc:
                    return CallOutcome(None, str(exc), notes, time.perf_counter() - start)
                notes.append(f"server '{self.name}' was restarted")
            client = self._client
            assert client is not None
            try:
                with anyio.fail_after(timeout + 1):
                    result = await client.call_tool(tool, arguments, read_timeout_seconds=timeout)
                return CallOutcome(result, None, notes, time.perf_counter() - start)
            except (TimeoutError, MCPError) as exc:
                if isinstance(exc, TimeoutError) or exc.code == types.REQUEST_TIMEOUT:
                    msg = f"tool '{tool}' timed out after {timeout:g} s; try smaller input or another tool"
                    return CallOutcome(None, msg, notes, time.perf_counter() - start)
                if not _is_connection_loss(exc):
                    return CallOutcome(None, f"tool '{tool}' failed: {exc.error.message}", notes, time.perf_counter() - start)
                failure = exc
            except Exception as exc:  # noqa: BLE001
                if not _is_connection_loss(exc):
                    raise
                failure = exc
            notes.append(f"server '{self.name}' connection lost during '{tool}' ({failure}); reconnecting")
            if attempt == 2:
                break
            try:
                await self.reconnect()
            except ServerUnavailable as exc:
                return CallOutcome(None, str(exc), notes, time.perf_counter() - start)
            notes.append(f"server '{self.name}' reconnected; retrying '{tool}' once")
        return CallOutcome(None, f"server '{self.name}' failed twice on '{tool}'", notes, time.perf_counter() - start)


class Hub:
    """All connected servers and their tools under one namespace.

    ``async with Hub(specs) as hub`` starts every server concurrently; servers that fail
    to start are reported in ``hub.errors`` and left out.
    """

    def __init__(self, specs: list[ServerSpec], log_dir: Path | None = None) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate server names in {names}")
        self.connections = {s.name: ServerConnection(s, log_dir) for s in specs}
        self.tools: dict[str, ToolInfo] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Hub:
        self._stack = contextlib.AsyncExitStack()
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        for conn in self.connections.values():
            self._tg.start_soon(conn.supervise)
        async with anyio.create_task_group() as waiters:
            for conn in self.connections.values():
                waiters.start_soon(conn.wait_ready)
        self._rebuild()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        async with anyio.create_task_group() as closers:
            for conn in self.connections.values():
                closers.start_soon(conn.close)
        assert self._stack is not None
        await self._stack.__aexit__(*exc)

    @property
    def errors(self) -> dict[str, str]:
        return {name: c.error for name, c in self.connections.items() if c.error}

    def _rebuild(self) -> None:
        owners: dict[str, int] = {}
        for conn in self.connections.values():
            for tool in conn.tools:
                owners[tool.name] = owners.get(tool.name, 0) + 1
        tools: dict[str, ToolInfo] = {}
        for conn in self.connections.values():
            for tool in conn.tools:
                public = tool.name if owners[tool.name] == 1 else f"{conn.name}__{tool.name}"
                tools[public] = ToolInfo(
                    name=public,
                    server=conn.name,
                    remote_name=tool.name,
                    description=(tool.description or tool.title or tool.name).strip(),
                    input_schema=tool.input_schema or {"type": "object", "properties": {}},
                    output_schema=tool.output_schema,
                )
        self.tools = tools

    async def refresh_if_stale(self) -> bool:
        """Re-list the tools of servers that announced a change; True when anything was re-listed."""
        stale = [c for c in self.connections.values() if c.stale and c.connected]
        for conn in stale:
            with contextlib.suppress(Exception):
                await conn.refresh_tools()
        if stale:
            self._rebuild()
        return bool(stale)

    async def call(self, name: str, arguments: dict[str, Any], timeout_s: float | None = None) -> CallOutcome:
        tool = self.tools.get(name)
        if tool is None:
            return CallOutcome(None, f"unknown tool '{name}'; available tools: {', '.join(self.tools)}")
        conn = self.connections[tool.server]
        outcome = await conn.call(tool.remote_name, arguments, timeout_s)
        if conn.stale:
            await self.refresh_if_stale()
        return outcome
