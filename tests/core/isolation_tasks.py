"""Functions the isolation tests run in worker processes (importable by the child by name)."""

from __future__ import annotations

import os
import time


def add(a: int, b: int) -> int:
    return a + b


def pid() -> int:
    return os.getpid()


def spin() -> None:
    """A runaway that never yields: only a kill stops it."""
    n = 0
    while True:
        n += 1


def hog(mb: int) -> int:
    """Allocate ``mb`` MB, touching every page."""
    blocks = [bytearray(1024 * 1024) for _ in range(mb)]
    return len(blocks)


def crash() -> None:
    os.abort()


def refuse(message: str) -> None:
    from servers.core.errors import InvalidInput

    raise InvalidInput(message)


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds
