"""One error convention for every Quiver library and server.

Library code raises :class:`QuiverError` (or a subclass) for failures the caller can
fix; the message says what went wrong and what to do next. These are plain exceptions:
nothing here knows about MCP. The one adapter at the MCP boundary
(:func:`servers.core.boundary.adapt_errors`) turns them into tool errors carrying their
message; any other exception is a bug, logged with its traceback on the server while
the client sees a generic message.
"""

from __future__ import annotations

from pydantic import ValidationError

from servers.core.text import one_line


class QuiverError(Exception):
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


def validation_message(exc: ValidationError, what: str = "", *, limit: int = 1) -> str:
    """The first ``limit`` problems of a pydantic error as ``'what[0].field': message (got X)``.

    ``what`` names the value that was validated (``documents``, ``boosts``, ...); the
    location inside it follows in index/attribute notation.
    """
    parts = []
    for err in exc.errors()[:limit]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        where = (what + where).lstrip(".") or "value"
        value = err.get("input")
        got = f" (got {one_line(repr(value), 80)})" if "input" in err and not isinstance(value, dict | list) else ""
        parts.append(f"'{where}': {err['msg']}{got}")
    more = len(exc.errors()) - len(parts)
    return "; ".join(parts) + (f"; and {more} more problem(s)" if more > 0 else "")
