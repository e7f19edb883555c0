"""MCP over stdio with a line guard: every line the SDK would drop gets the JSON-RPC error the HTTP
transport gives for the same body, so a client never waits for an answer that cannot come.

The SDK's stdio transport parses each line and silently drops what it cannot parse or validate
(non-JSON, a lone surrogate escape, nesting past its parser's depth, a batch, ``"jsonrpc": "1.0"``,
``params`` that is an array, an id that is not a string or integer). :class:`LineGuard` reads
stdin first and answers those itself:

* not JSON (including nesting past the parser's limit and unpaired surrogates) → ``-32700`` parse error;
* JSON but not one valid JSON-RPC message (a batch, a wrong ``jsonrpc``, bad ``params`` or ``id``)
  → ``-32600`` invalid request;
* longer than ``max_bytes`` → ``-32600`` (the rest of the line is skipped, never held in memory).

The error carries the request's ``id`` when one can be read from the line (a batch: one error per
element with an id), else ``null``. Valid lines go on to the SDK unchanged.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, BinaryIO

import anyio
import mcp_types as types
import pydantic_core
from mcp.server import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from servers.core.text import safe_text

log = logging.getLogger("quiver.stdio")
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
READ_CHUNK = 1 << 20


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _ids(raw: Any) -> list[str | int | None]:
    """The request ids readable in a parsed line: one per batch element with a valid id, else [None]."""
    items = raw if isinstance(raw, list) else [raw]
    found = [item["id"] for item in items if isinstance(item, dict) and _valid_id(item.get("id"))]
    return found or [None]


def _lenient_parse(text: str) -> Any:
    """The line parsed by Python's json module (which accepts lone surrogates and deeper nesting), to
    recover an id for the error; None when even that fails."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def check_line(text: str) -> tuple[int, str, list[str | int | None]] | None:
    """None when ``text`` is one valid JSON-RPC message, else (code, message, ids to answer)."""
    try:
        raw = pydantic_core.from_json(text)
    except ValueError as exc:
        return PARSE_ERROR, f"Parse error: {safe_text(exc, 200)}", _ids(_lenient_parse(text))
    if isinstance(raw, list):
        return INVALID_REQUEST, "Invalid request: batches are not supported; send one JSON-RPC message per line", _ids(raw)
    if not isinstance(raw, dict):
        return INVALID_REQUEST, "Invalid request: a JSON-RPC message is a JSON object", [None]
    if "method" in raw and "id" in raw and not _valid_id(raw["id"]):  # else it would pass as a notification
        return INVALID_REQUEST, "Invalid request: 'id' must be a string or an integer", [None]
    try:
        types.jsonrpc_message_adapter.validate_python(raw, by_name=False)
    except ValidationError as exc:
        return INVALID_REQUEST, f"Invalid request: {_first_problem(exc, raw)}", _ids(raw)
    return None


def _first_problem(exc: ValidationError, raw: dict[str, Any]) -> str:
    if raw.get("jsonrpc") != "2.0":
        return f"'jsonrpc' must be \"2.0\" (got {safe_text(repr(raw.get('jsonrpc')), 40)})"
    if "id" in raw and not _valid_id(raw["id"]):
        return "'id' must be a string or an integer"
    if "params" in raw and not isinstance(raw["params"], dict):
        return "'params' must be an object (by-name parameters), not an array or a value"
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"][1:]) or "message"
    return safe_text(f"{where}: {err['msg']}", 200)


class LineGuard:
    """Async iterator over stdin lines for the SDK's stdio transport (see the module doc)."""

    def __init__(self, stream: BinaryIO, max_bytes: int) -> None:
        self.stream = stream
        self.max_bytes = max_bytes
        self.replies: Any = None  # the transport's write stream, set once it exists
        self.ready = anyio.Event()

    def __aiter__(self) -> LineGuard:
        return self

    async def __anext__(self) -> str:
        await self.ready.wait()
        while True:
            data = await self._readline(self.max_bytes + 1)
            if not data:
                raise StopAsyncIteration
            if len(data) > self.max_bytes:
                while data and not data.endswith(b"\n"):  # skip the rest of the line without keeping it
                    data = await self._readline(READ_CHUNK)
                await self._answer(INVALID_REQUEST, f"Invalid request: the message is longer than {self.max_bytes:,} "
                                   "bytes (stdio.max_message_mb); send large files by path", [None])
                continue
            text = data.decode("utf-8", errors="replace")
            if not text.strip():
                continue
            problem = check_line(text)
            if problem is None:
                return text
            await self._answer(*problem)

    async def _readline(self, size: int) -> bytes:
        return await anyio.to_thread.run_sync(self.stream.readline, size, abandon_on_cancel=True)

    async def _answer(self, code: int, message: str, ids: list[str | int | None]) -> None:
        log.info("answered an invalid stdio line with %d: %s", code, message)
        for request_id in ids:
            error = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))
            await self.replies.send(SessionMessage(error))


def _claim_stdin() -> int:
    """A private descriptor for the protocol's stdin; fd 0 then reads the null device, so a library or
    child process that reads stdin cannot take protocol bytes."""
    private = os.dup(0)
    os.set_inheritable(private, False)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)
    return private


async def run_stdio(app: MCPServer, max_bytes: int) -> None:
    """Serve ``app`` over this process's stdin/stdout behind a :class:`LineGuard`."""
    guard = LineGuard(os.fdopen(_claim_stdin(), "rb", buffering=READ_CHUNK), max_bytes)
    server = app._lowlevel_server  # what MCPServer.run_stdio_async runs, with our stdin
    async with stdio_server(stdin=guard) as (read_stream, write_stream):  # type: ignore[arg-type]
        guard.replies = write_stream
        guard.ready.set()
        await server.run(read_stream, write_stream, server.create_initialization_options())
