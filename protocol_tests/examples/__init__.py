"""Example calls the protocol harness makes against each registered server.

A server adds its examples as ONE file, ``protocol_tests/examples/NAME.py`` (NAME as in
``servers/core/registry.py``), defining:

* ``calls(workdir) -> list[(tool, arguments)]``: at least one successful call for every tool,
  in order (files they need are created under ``workdir``, which is also the server's root);
* optionally ``concurrent_call(workdir) -> (tool, arguments)``: a call 20 clients may make at
  once (default: the first of ``calls``);
* optionally ``STDIO_ONLY``: tools whose examples run a model for many seconds and that the HTTP
  run leaves out (it checks the transport; the stdio run already checked the tool's result).

Nothing else is needed: the harness runs every registered server over stdio and HTTP.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from types import ModuleType

Call = tuple[str, dict]
FOLDER = Path(__file__).resolve().parent


def _module(name: str) -> ModuleType:
    if not (FOLDER / f"{name}.py").is_file():
        raise LookupError(f"server '{name}' has no protocol examples: add {FOLDER / name}.py defining calls(workdir)")
    return import_module(f"{__name__}.{name}")


def examples(name: str, workdir: Path) -> list[Call]:
    """The example calls for server ``name`` (every tool at least once)."""
    return _module(name).calls(workdir)


def stdio_only(name: str) -> set[str]:
    """The tools whose examples the HTTP run leaves out (the module's ``STDIO_ONLY``)."""
    return set(getattr(_module(name), "STDIO_ONLY", ()))


def concurrent_call(name: str, workdir: Path) -> Call:
    """A call safe to make from many clients at once."""
    module = _module(name)
    if hasattr(module, "concurrent_call"):
        return module.concurrent_call(workdir)
    return module.calls(workdir)[0]
