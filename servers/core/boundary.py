"""The MCP boundary: where library functions become tools.

Everything MCP-specific that a server needs besides its tool declarations lives here:

* :func:`adapt_errors`, the one error adapter: a :class:`QuiverError` becomes a tool error
  carrying its message (the model reads it and fixes the call); any other exception is a
  bug, logged with its traceback here, and the client sees only a generic message. Both
  pass through :func:`~servers.core.text.safe_text`: inputs quoted in a message are
  escaped (terminal codes, NUL, bidi overrides) and a huge one is cut.
* :func:`in_thread`, the one way blocking library work leaves the event loop.
* :func:`progress_reporter`, the one bridge from a library's ``progress(done, total,
  message)`` callback (called in a worker thread) to MCP progress notifications.
* :class:`Tools`, which declares a capability's ``api.py`` functions as tools: the tool's
  arguments are the function's own (names, types, defaults, descriptions), ``settings`` is
  bound by the server, ``progress`` is fed from the request, keyword-only parameters (seams
  for Python callers) are not offered, the call runs in a thread and its errors go through
  the adapter. A ``server.py`` is then only names, descriptions and annotations.
* :func:`tool_result`: what a client receives: the structured content plus ONE compact text
  block (a result model may offer its own text with ``as_text()``, e.g. a prompt-ready block
  for clients that read text only).
* Cancellation: a tool whose function takes ``progress`` stops at its next progress call once
  the client cancels the request (:class:`~servers.core.progress.Cancelled`); the boundary
  waits for the worker thread to stop before the request ends.
* :func:`new_server` / :func:`finish_server`: every server's identity (name, title,
  description, the package's version, website), the capabilities it really has (no empty
  prompt or resource lists advertised), argument errors worded like Quiver's own, and a
  JSON-RPC error for an unknown prompt.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from importlib import metadata
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ValidationError

from servers.core.compact_schema import compact_input_schema, compact_output_schema
from servers.core.errors import QuiverError
from servers.core.progress import Cancelled, Progress
from servers.core.settings import Settings
from servers.core.text import one_line, safe_text

log = logging.getLogger("quiver.tools")
T = TypeVar("T")
INTERNAL_ERROR = "internal error (the server logged the details); retry once, or report it if it persists"
LOGGED_CHARS = 20_000  # a traceback logged for a bug keeps its start and end (inputs can be megabytes)
BOUND = ("settings", "progress")  # api parameters the server fills in, never shown to the model
DISTRIBUTION = "quiver-mcp"
CANCEL_WAIT_S = 60.0  # how long a cancelled request waits for its worker thread to reach a progress call


def adapt_errors(name: str, fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """``fn`` with Quiver's error convention applied at the MCP boundary (see the module doc)."""

    @functools.wraps(fn)
    async def adapted(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except QuiverError as exc:
            raise ToolError(safe_text(exc)) from exc
        except (MCPError, ToolError):
            raise
        except Exception as exc:
            log.error("tool %r failed with an unexpected error:\n%s", name, safe_text(
                "".join(traceback.format_exception(exc)), LOGGED_CHARS))
            raise ToolError(INTERNAL_ERROR) from None

    return adapted


async def in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run blocking ``fn(*args, **kwargs)`` in a worker thread and await its result."""
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


async def in_thread_cancellable(fn: Callable[..., T], cancel: threading.Event, /, **kwargs: Any) -> T:
    """Run blocking ``fn(**kwargs)`` in a worker thread; when the awaiting request is cancelled, set
    ``cancel`` (the work's progress callback then raises :class:`Cancelled`) and wait, shielded, up to
    :data:`CANCEL_WAIT_S` for the thread to stop, so a re-run never races the cancelled one."""
    finished = threading.Event()

    def work() -> T:
        try:
            return fn(**kwargs)
        except Cancelled as exc:
            raise QuiverError("cancelled by the client") from exc
        finally:
            finished.set()

    try:
        return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        cancel.set()
        with anyio.CancelScope(shield=True):
            deadline = time.monotonic() + CANCEL_WAIT_S
            while not finished.is_set() and time.monotonic() < deadline:
                await anyio.sleep(0.05)
        if not finished.is_set():
            log.warning("a cancelled %s call was still running after %.0f s", getattr(fn, "__name__", "tool"),
                        CANCEL_WAIT_S)
        raise


def progress_reporter(ctx: Context | None, cancel: threading.Event | None = None) -> Progress:
    """A ``progress(done, total, message)`` callback, safe to call from a worker thread, that
    sends MCP progress notifications for the current request (best effort: a client that sent
    no progress token, or went away, must not stop the work) and raises :class:`Cancelled`
    once ``cancel`` is set (the client cancelled the request)."""

    def report(done: float, total: float | None, message: str) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled(message)
        if ctx is None:
            return
        with contextlib.suppress(Exception):
            anyio.from_thread.run(partial(ctx.report_progress, done, total, message))

    return report


def tool_result(value: Any) -> Any:
    """What a tool returns to the client: a pydantic result becomes its structured content plus one
    compact text block (the model's ``as_text()`` when it has one, else compact JSON); anything
    else goes to the SDK unchanged."""
    if not isinstance(value, BaseModel):
        return value
    as_text = getattr(value, "as_text", None)
    text = as_text() if callable(as_text) else value.model_dump_json(by_alias=True)
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=value.model_dump(mode="json", by_alias=True))


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
        title: str,
        description: str,
        annotations: ToolAnnotations,
    ) -> None:
        """Expose ``fn`` as the tool ``name``: its ordinary parameters other than ``settings`` are the
        tool's arguments (annotate them with ``Field(description=...)``). ``settings`` and ``progress``
        are filled in; keyword-only parameters (after ``*``) are for Python callers and keep their defaults.
        ``title`` (for people) and all four ``annotations`` are required: say what the tool does to the world."""
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
            if "progress" not in takes:
                return tool_result(await in_thread(fn, **kwargs))
            cancel = threading.Event()
            kwargs["progress"] = progress_reporter(ctx, cancel)
            if ctx is not None:  # progress from the very start, before any model loads
                with contextlib.suppress(Exception):
                    await ctx.report_progress(0, None, "started")
            return tool_result(await in_thread_cancellable(fn, cancel, **kwargs))

        forward.__name__ = name
        forward.__doc__ = description
        forward.__signature__ = signature.replace(parameters=arguments)  # type: ignore[attr-defined]
        forward.__annotations__ = {p.name: p.annotation for p in arguments} | {"return": signature.return_annotation}
        self.app.tool(name=name, title=title, description=description, annotations=annotations)(
            adapt_errors(name, forward)
        )
        compact_schemas(self.app, name)


def compact_schemas(app: MCPServer, name: str) -> None:
    """Shrink the registered tool's input and output schemas for ``tools/list`` (see
    :mod:`servers.core.compact_schema`); the server still validates arguments with the full model."""
    registered = app._tool_manager.get_tool(name)  # noqa: SLF001 (the SDK exposes no setter)
    if registered is None:
        return
    registered.parameters = compact_input_schema(registered.parameters)
    if registered.output_schema is not None:
        registered.__dict__["output_schema"] = compact_output_schema(registered.output_schema)


def tool(
    app: MCPServer, *, name: str, description: str, annotations: ToolAnnotations | None = None,
    title: str | None = None,
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """``@tool(app, name=..., description=...)``: register a hand-written async tool function
    with the error adapter (for tools that are not an api function, e.g. in tests)."""

    def register(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        app.tool(name=name, title=title, description=description, annotations=annotations)(adapt_errors(name, fn))
        compact_schemas(app, name)
        return fn

    return register


# ---------------------------------------------------------------- the server itself


def package_version() -> str:
    """Quiver's version from the installed distribution's metadata."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def package_website() -> str | None:
    """The project's home page from the distribution's metadata (``[project.urls] Homepage``)."""
    try:
        urls = metadata.metadata(DISTRIBUTION).get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "home", "repository"):
            return url.strip()
    return None


def new_server(name: str, *, title: str, description: str, instructions: str) -> MCPServer:
    """The MCP server object of capability ``name`` with Quiver's identity (``serverInfo``)."""
    return MCPServer(f"quiver-{name}", title=title, description=description, instructions=instructions,
                     version=package_version(), website_url=package_website())


def _argument_error(exc: ValidationError, limit: int = 3) -> str:
    """A pydantic error about tool arguments, worded like Quiver's errors (no pydantic URL)."""
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        if err["type"] == "missing":
            parts.append(f"`{where}` is required")
            continue
        value = err.get("input")
        got = f" (got {one_line(repr(value), 60)})" if "input" in err and not isinstance(value, dict | list) else ""
        message = err["msg"][0].lower() + err["msg"][1:] if err["msg"] else "is invalid"
        parts.append(f"`{where}`: {message}{got}")
    more = len(exc.errors()) - len(parts)
    return "invalid arguments: " + "; ".join(parts) + (f"; and {more} more problem(s)" if more > 0 else "")


def _middleware(app: MCPServer) -> Callable[..., Awaitable[Any]]:
    """Checks a server's requests before the SDK handles them: tool arguments (a readable error
    result instead of a pydantic dump) and prompt names (a JSON-RPC error instead of code 0)."""

    async def check(ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        params: Mapping[str, Any] = ctx.params or {}
        if ctx.method == "tools/call" and isinstance(params.get("name"), str):
            registered = app._tool_manager.get_tool(params["name"])  # the SDK keeps each tool's argument model here
            arguments = params.get("arguments") or {}
            if registered is not None and isinstance(arguments, dict):
                try:
                    registered.fn_metadata.validate_arguments(arguments)
                except ValidationError as exc:
                    return CallToolResult(content=[TextContent(type="text", text=_argument_error(exc))], is_error=True)
        elif ctx.method == "prompts/get" and (names := [p.name for p in await app.list_prompts()]):
            name = params.get("name")
            if name not in names:
                raise MCPError(code=INVALID_PARAMS, message=f"unknown prompt {name!r}: this server offers {', '.join(names)}")
            try:
                return await call_next(ctx)
            except MCPError:
                raise
            except (ValueError, ValidationError) as exc:
                cause: BaseException | None = exc
                while cause is not None and not isinstance(cause, QuiverError):
                    cause = cause.__cause__ or cause.__context__
                raise MCPError(code=INVALID_PARAMS, message=f"prompt {name!r}: {cause or exc}") from exc
        return await call_next(ctx)

    return check


def finish_server(app: MCPServer, name: str) -> MCPServer:
    """Make a built server ready to serve: fill in an identity it left out (version, title,
    website), stop advertising prompt or resource capabilities it has nothing behind, and add
    the request checks of :func:`_middleware`."""
    low = app._lowlevel_server  # identity and request handlers live on the SDK's low-level server
    low.version = low.version or package_version()
    low.title = low.title or f"Quiver {name}"
    low.website_url = low.website_url or package_website()
    handlers = low._request_handlers
    if not app._prompt_manager.list_prompts():
        for method in ("prompts/list", "prompts/get"):
            handlers.pop(method, None)
    if not app._resource_manager.list_resources() and not app._resource_manager.list_templates():
        for method in ("resources/list", "resources/templates/list", "resources/read"):
            handlers.pop(method, None)
    app.middleware.append(_middleware(app))
    return app


# ---------------------------------------------------------------- resources and completions


async def resource_text(fn: Callable[..., str], /, *args: Any, **kwargs: Any) -> str:
    """A resource's text from blocking ``fn`` (in a thread): a missing thing is the protocol's
    "resource not found", another Quiver error a resource error with its message."""
    from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

    from servers.core.errors import NotFound

    try:
        return await in_thread(fn, *args, **kwargs)
    except NotFound as exc:
        raise ResourceNotFoundError(str(exc)) from exc
    except QuiverError as exc:
        raise ResourceError(str(exc)) from exc


Completer = Callable[[str, dict[str, str]], list[str]]


def add_completions(app: MCPServer, completers: dict[tuple[str, str], Completer]) -> None:
    """Answer ``completion/complete`` for the prompt or resource template arguments named in
    ``completers`` ((prompt name or URI template, argument) → ``fn(typed prefix, other arguments) ->
    candidates``, run in a thread); matches start with the prefix, case-insensitively, at most 100."""
    from mcp.types import Completion

    @app.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        key = (getattr(ref, "name", None) or getattr(ref, "uri", ""), argument.name)
        completer = completers.get(key)
        if completer is None:
            return None
        given = dict(getattr(context, "arguments", None) or {})
        try:
            candidates = await in_thread(completer, argument.value or "", given)
        except QuiverError:
            return Completion(values=[], total=0, has_more=False)
        prefix = (argument.value or "").lower()
        matches = sorted(c for c in candidates if c.lower().startswith(prefix))
        return Completion(values=matches[:100], total=len(matches), has_more=len(matches) > 100)
