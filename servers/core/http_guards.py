"""HTTP guards below and in front of the MCP apps: slow clients, connection floods, Host and Origin.

* :func:`guarded_protocol`: uvicorn's h11 protocol with a deadline for a request's headers
  (``http.header_timeout_s``, from the connection's first byte or the end of the previous response)
  and one for its body (``http.body_timeout_s``, from the end of the headers), and a cap on the
  connections one client address holds at once (``http.max_connections_per_client``). A client past
  a deadline gets ``408`` and is disconnected; one over the cap gets ``503`` at once. uvicorn alone
  only times out idle keep-alive connections, so a client trickling its headers or body one byte at
  a time held a connection (and its memory) forever.
* :class:`HostOriginGuard`: the Host and Origin checks for every path (``/healthz`` included), with
  ``name:*`` matching a numeric port only (the SDK's check takes any suffix after ``name:``, so
  ``127.0.0.1:8765.evil.example`` passed).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from urllib.parse import urlsplit

import h11
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("quiver.http")


def _status(code: int, reason: str, text: str) -> bytes:
    body = text.encode()
    return (f"HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


def guarded_protocol(*, header_timeout_s: float, body_timeout_s: float, max_per_client: int) -> type[H11Protocol]:
    """An h11 protocol class for ``uvicorn.run(http=...)`` with these limits (see the module doc)."""
    open_by_client: Counter[str] = Counter()

    class GuardedH11Protocol(H11Protocol):
        _phase: str | None = None
        _timer: asyncio.TimerHandle | None = None
        _counted: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            host = self.client[0] if self.client else "?"
            if open_by_client[host] >= max_per_client:
                log.warning("refused a connection from %s: it already holds %d (http.max_connections_per_client)",
                            host, max_per_client)
                transport.write(_status(503, "Service Unavailable",
                                        f"too many open connections from this client (limit {max_per_client})"))
                transport.close()
                return
            open_by_client[host] += 1
            self._counted = host
            self._follow()

        def connection_lost(self, exc: Exception | None) -> None:
            self._arm(None)
            if self._counted is not None:
                open_by_client[self._counted] -= 1
                if open_by_client[self._counted] <= 0:
                    del open_by_client[self._counted]
                self._counted = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()

        def _follow(self) -> None:
            """Arm the deadline of the phase the client is in: sending headers, sending a body, or neither."""
            if self.transport is None or self.transport.is_closing():
                return
            state = self.conn.their_state
            if state is h11.IDLE:
                # between requests uvicorn's keep-alive timer runs until the next request's first byte
                phase = "headers" if self.timeout_keep_alive_task is None else None
            elif state is h11.SEND_BODY:
                phase = "body"
            else:
                phase = None
            if phase != self._phase:
                self._arm(phase)

        def _arm(self, phase: str | None) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._phase = phase
            if phase is not None:
                delay = header_timeout_s if phase == "headers" else body_timeout_s
                self._timer = self.loop.call_later(delay, self._expired, phase)

        def _expired(self, phase: str) -> None:
            self._timer = None
            if self.transport is None or self.transport.is_closing():
                return
            limit, key = (header_timeout_s, "header") if phase == "headers" else (body_timeout_s, "body")
            log.info("closed a connection from %s: its request %s took longer than %g s (http.%s_timeout_s)",
                     self.client[0] if self.client else "?", "headers" if phase == "headers" else "body", limit, key)
            if self.cycle is None or not self.cycle.response_started:
                self.transport.write(_status(408, "Request Timeout", f"request {key} not received within {limit:g} s"))
            self.transport.close()

    return GuardedH11Protocol


def _matches(value: str, allowed: list[str]) -> bool:
    """``value`` equals an allowed entry, or an entry ``base:*`` with a numeric port after ``base:``."""
    for entry in allowed:
        if value == entry:
            return True
        if entry.endswith(":*"):
            base = entry[:-2]
            if value.startswith(base + ":"):
                port = value[len(base) + 1:]
                if port.isdigit() and port.isascii() and 0 < len(port) <= 5 and int(port) <= 65535:
                    return True
    return False


class HostOriginGuard:
    """Refuse a request whose Host (421) or Origin (403) is not allowed, on every path."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str], allowed_origins: list[str]) -> None:
        self.app = app
        self.hosts = list(allowed_hosts)
        self.origins = list(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: dict[bytes, bytes] = {}
            for key, value in scope["headers"]:
                headers.setdefault(key, value)
            host = headers.get(b"host", b"").decode("latin-1")
            origin = headers.get(b"origin", b"").decode("latin-1")
            if not host or not _matches(host, self.hosts):
                await PlainTextResponse("Invalid Host header", status_code=421)(scope, receive, send)
                return
            if origin and not (_matches(origin, self.origins) and _plain_origin(origin)):
                await PlainTextResponse("Invalid Origin header", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _plain_origin(origin: str) -> bool:
    """An Origin is scheme://host[:port] and nothing else (no path, user info or query)."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return bool(parts.scheme and parts.netloc) and not (parts.path or parts.query or parts.fragment or "@" in parts.netloc)
