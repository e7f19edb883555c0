"""One error convention for every Quiver server.

Library code raises :class:`QuiverError` (or a subclass) for failures the caller can
fix; the message says what went wrong and what to do next. Because it subclasses the
SDK's ``ToolError``, a tool that lets it propagate returns an ``isError`` result whose
text is that message. Any other exception is a bug: the SDK logs it with its traceback
on stderr and the client only sees a generic "Error executing tool NAME".
"""

from __future__ import annotations

from mcp.server.mcpserver.exceptions import ToolError


class QuiverError(ToolError):
    """An expected failure whose message tells the caller how to fix the request."""


class InvalidInput(QuiverError):
    """The arguments are wrong: a value out of range, a bad filter, an empty list."""


class NotFound(QuiverError):
    """A named thing (file, knowledge base, database, model, job) does not exist."""


class AccessDenied(QuiverError):
    """The request reaches outside what this server may touch (roots, read-only)."""


class TooLarge(QuiverError):
    """The input exceeds a configured limit (file size, rows, documents)."""


class Timeout(QuiverError):
    """The work ran past its time limit and was stopped; the message names the limit to raise."""


class ConfigError(QuiverError):
    """The configuration is invalid; the message names the key."""
