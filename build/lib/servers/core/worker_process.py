"""The child side of :mod:`servers.core.isolation`: a loop that runs pickled calls.

Started as ``python -m servers.core.worker_process PARENT_PID FD CAP_MB SLACK_MB MODULE...``: it
asks the kernel to kill it when its parent dies (even in the middle of a runaway call), imports the named modules, caps its own address space
at what it uses after those imports plus ``CAP_MB`` (+ ``SLACK_MB``; 0 = no cap), reports
ready, then answers ``(function, args, kwargs)`` messages on the socket ``FD`` with
``("ok", result)``, ``("error", exception)`` or ``("memory", message)``. After a MemoryError
it exits (a fresh process replaces it). It imports nothing else: no torch, and not the MCP SDK
(see :func:`_without_mcp`).
"""

from __future__ import annotations

import ctypes
import importlib
import os
import resource
import signal
import sys
import traceback
import types
from multiprocessing.connection import Connection

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the closed socket still ends the loop
        pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _vm_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _cap_address_space(cap_mb: float, slack_mb: float) -> None:
    used = _vm_bytes()
    if cap_mb <= 0 or used is None:
        return
    limit = used + int((cap_mb + slack_mb) * 1024 * 1024)
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _without_mcp() -> None:
    """Give ``servers.core.errors`` a plain base class here instead of the MCP SDK's ``ToolError``.

    A worker never talks MCP; importing the SDK would cost each worker about a second and tens of
    MB. Exceptions travel back by class name (``servers.core.errors.InvalidInput``), so the server
    re-raises its own classes, which do derive from ``ToolError``."""
    name = "mcp.server.mcpserver.exceptions"
    if name in sys.modules or "mcp" in sys.modules:
        return
    stub = types.ModuleType(name)

    class ToolError(Exception):
        """Stand-in for the SDK's ToolError inside worker processes."""

    ToolError.__module__ = name
    stub.ToolError = ToolError  # type: ignore[attr-defined]
    sys.modules[name] = stub


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError carrying its type and message."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any pickling failure
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def serve(conn: Connection) -> None:
    while True:
        try:
            fn, args, kwargs = conn.recv()
        except EOFError:
            return
        except MemoryError:
            conn.send(("memory", "the request itself did not fit in memory"))
            return
        except Exception as exc:  # noqa: BLE001 - e.g. the function's module cannot be imported
            conn.send(("error", _portable(exc)))
            continue
        try:
            result = fn(*args, **kwargs)
            conn.send(("ok", result))
        except MemoryError:
            conn.send(("memory", getattr(fn, "__qualname__", "the call") + " ran out of memory"))
            return
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
            exc.__traceback__ = None
            conn.send(("error", _portable(exc)))
        finally:
            fn = args = kwargs = None


def main(argv: list[str]) -> int:
    parent, fd, cap_mb, slack_mb, *modules = argv
    _die_with_parent(int(parent))
    conn = Connection(int(fd))
    _without_mcp()
    try:
        for module in modules:
            importlib.import_module(module)
        _cap_address_space(float(cap_mb), float(slack_mb))
    except BaseException as exc:  # noqa: BLE001 - tell the parent why the worker cannot start
        conn.send(("failed", "".join(traceback.format_exception_only(type(exc), exc)).strip()))
        return 1
    conn.send(("ready", os.getpid()))
    serve(conn)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
