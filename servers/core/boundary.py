"""The MCP boundary: where library functions become tools.

Everything MCP-specific that a server needs besides its tool declarations lives here:

* :func:`adapt_errors`, the one error adapter: a :class:`QuiverError` becomes a tool error
  carrying its message (the model reads it and fixes the call); any other exception is a
  bug, logged with its traceback here, and the client sees only a generic message.
* :func:`in_thread`, the one way blocking library work leaves the event loop.
* :func:`progress_reporter`, the one bridge from a library's ``progress(done, total,
  message)`` callback (called in a worker thread) to MCP progress notifications.
* :class:`Tools`, which declares a capability's ``api.py`` functions as tools: the tool's
  arguments are the function's own (names, types, defaults, descriptions), ``settings`` is
  bound by the server, ``progress`` is fed from the request, keyword-only parameters (seams
  for Python callers) are not offered, the call runs in a thread and its errors go through
  the adapter. A ``server.py`` is then only names, descriptions and annotations.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import ToolAnnotations

from servers.core.errors import QuiverError
from servers.core.progress import Progress
from servers.core.settings import Settings

log = logging.getLogger("quiver.tools")
T = TypeVar("T")
INTERNAL_ERROR = "internal error (the server logged the details); retry once, or report it if it persists"
BOUND = ("settings", "progress")  # api parameters the server fills in, never shown to the model


def adapt_errors(name: str, fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """``fn`` with Quiver's error convention applied at the MCP boundary (see the module doc)."""

    @functools.wraps(fn)
    async def adapted(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except QuiverError as exc:
            raise ToolError(str(exc)) from exc
        except (MCPError, ToolError):
            raise
        except Exception:
            log.exception("tool %r failed with an unexpected error", name)
            raise ToolError(INTERNAL_ERROR) from None

    return adapted


async def in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run blocking ``fn(*args, **kwargs)`` in a worker thread and await its result."""
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


def progress_reporter(ctx: Context | None) -> Progress:
    """A ``progress(done, total, message)`` callback, safe to call from a worker thread, that
    sends MCP progress notifications for the current request (best effort: a client that sent
    no progress token, or went away, must not stop the work)."""

    def report(done: float, total: float | None, message: str) -> None:
        if ctx is None:
            return
        with contextlib.suppress(Exception):
            anyio.from_thread.run(partial(ctx.report_progress, done, total, message))

    return report


class Tools:
    """Declares a server's tools from library functions (see the module doc)."""

    def __init__(self, app: MCPServer, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def add(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        description: str,
        annotations: ToolAnnotations | None = None,
        title: str | None = None,
    ) -> None:
        """Expose ``fn`` as the tool ``name``: its ordinary parameters other than ``settings`` are the
        tool's arguments (annotate them with ``Field(description=...)``). ``settings`` and ``progress``
        are filled in; keyword-only parameters (after ``*``) are for Python callers and keep their defaults."""
        signature = inspect.signature(fn, eval_str=True)
        takes = set(signature.parameters)
        arguments = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()
            if p.name not in BOUND and p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD
        ]
        if "progress" in takes:
            arguments.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context))
        settings = self.settings

        async def forward(**kwargs: Any) -> Any:
            ctx = kwargs.pop("ctx", None)
            if "settings" in takes:
                kwargs["settings"] = settings
            if "progress" in takes:
                kwargs["progress"] = progress_reporter(ctx)
            return await in_thread(fn, **kwargs)

        forward.__name__ = name
        forward.__doc__ = description
        forward.__signature__ = signature.replace(parameters=arguments)  # type: ignore[attr-defined]
        forward.__annotations__ = {p.name: p.annotation for p in arguments} | {"return": signature.return_annotation}
        self.app.tool(name=name, title=title, description=description, annotations=annotations)(
            adapt_errors(name, forward)
        )


def tool(
    app: MCPServer, *, name: str, description: str, annotations: ToolAnnotations | None = None,
    title: str | None = None,
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """``@tool(app, name=..., description=...)``: register a hand-written async tool function
    with the error adapter (for tools that are not an api function, e.g. in tests)."""

    def register(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        app.tool(name=name, title=title, description=description, annotations=annotations)(adapt_errors(name, fn))
        return fn

    return register
