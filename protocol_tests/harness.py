"""Start registered servers as real subprocesses and connect the SDK's real client to them."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_args(name: str, workdir: Path, *extra: str, roots: list[Path] | None = None) -> list[str]:
    """`python -m servers serve NAME` with data in ``workdir/data``, reading ``roots`` (default: ``workdir``)."""
    flags = [arg for root in ([workdir] if roots is None else roots) for arg in ("--root", str(root))]
    return ["-m", "servers", "serve", name, *flags, "--data-dir", str(workdir / "data"), *extra]


def stdio_params(
    name: str, workdir: Path, *extra: str, roots: list[Path] | None = None, cwd: Path = REPO,
    env: dict[str, str] | None = None,
) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=serve_args(name, workdir, "--transport", "stdio", *extra, roots=roots),
        env={**os.environ, **(env or {})}, cwd=str(cwd),
    )


def stdio_client(name: str, workdir: Path, *extra: str, mode: str = "auto", **options) -> Client:
    """A client of `quiver serve NAME` over stdio; ``extra`` flags and ``options`` go to :func:`stdio_params`."""
    return Client(stdio_params(name, workdir, *extra, **options), mode=mode, read_timeout_seconds=300)


@dataclass
class HttpServer:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, name: str | None = None) -> str:
        return f"{self.base}/{name}/mcp" if name else f"{self.base}/mcp"

    def client(self, url: str, mode: str = "auto", headers: dict[str, str] | None = None) -> Client:
        http = httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(300, read=300))
        return Client(streamable_http_client(url, http_client=http), mode=mode, read_timeout_seconds=300)


@contextlib.contextmanager
def serve_http(command: list[str], port: int, log: Path, *, env: dict[str, str] | None = None,
               name: str = "server") -> Iterator[HttpServer]:
    """Run ``command`` (an HTTP server listening on 127.0.0.1:``port``) until the block ends; ready once
    ``GET /healthz`` gets any HTTP answer. Its output goes to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **(env or {})}, stdout=sink,
                                   stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{log.read_text()[-3000:]}")
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield HttpServer(base, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def http_server(name: str, workdir: Path, *, env: dict[str, str] | None = None,
                extra: tuple[str, ...] = ()) -> contextlib.AbstractContextManager[HttpServer]:
    """Run `quiver serve NAME --transport http` on a free loopback port until the block ends."""
    port = free_port()
    command = [sys.executable, *serve_args(name, workdir, "--transport", "http", "--port", str(port), *extra)]
    return serve_http(command, port, workdir / f"http-{name}-{port}.log", env=env, name=f"server {name}")


async def all_tools(client: Client) -> list[Any]:
    """Every tool the server lists, following ``nextCursor`` pages."""
    tools, cursor = [], None
    while True:
        page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools
