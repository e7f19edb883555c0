"""Fixtures for the protocol harness: one HTTP server per registered server for the session."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from protocol_tests.harness import HttpServer, http_server


@pytest.fixture(scope="session")
def http_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], tuple[HttpServer, Path]]]:
    """Start `quiver serve NAME --transport http` once per server name, on first use."""
    stack = contextlib.ExitStack()
    running: dict[str, tuple[HttpServer, Path]] = {}

    def get(name: str) -> tuple[HttpServer, Path]:
        if name not in running:
            workdir = tmp_path_factory.mktemp(f"http-{name}")
            running[name] = (stack.enter_context(http_server(name, workdir)), workdir)
        return running[name]

    with stack:
        yield get
