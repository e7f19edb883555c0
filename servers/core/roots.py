"""The allowed-roots guard: every file a server reads must resolve inside a root.

Roots are only ever what the user configured (``--root`` or ``roots`` in the config) plus the data
dir. Nothing is implied from the working directory: MCP clients start stdio servers from ``/`` or
the home directory, which would otherwise expose the whole file system.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from servers.core.errors import AccessDenied, ConfigError, InvalidInput, NotFound

log = logging.getLogger("quiver.roots")
ROOTS_HINT = "start the server with --root FOLDER (repeatable) or list the folder in `roots` in the config"
_warned: set[Path] = set()


def broad_root(path: Path) -> str | None:
    """'the file-system root' / 'the home directory' when ``path`` is one of those, else None."""
    if path == Path(path.anchor or "/"):
        return "the file-system root"
    try:
        home = Path.home().resolve()
    except RuntimeError:  # no home directory known
        return None
    return "the home directory" if path == home else None


def allowed_roots(roots: Sequence[str], data_dir: Path) -> list[Path]:
    """The folders a server may read: each configured root, resolved, then ``data_dir``.

    With no root configured only the data dir is readable. A root that is ``/`` or the home
    directory is the user's choice when written as an absolute path (allowed, logged as a
    warning) but refused when it only got there by being relative (``.`` in a server that a
    client started from ``/`` or ``~``)."""
    paths: list[Path] = []
    for raw in roots:
        text = str(raw).strip()
        if not text:
            raise ConfigError("`roots` contains an empty entry: give absolute folder paths")
        given = Path(text).expanduser()
        path = given.resolve()
        wide = broad_root(path)
        if wide and not given.is_absolute():
            raise ConfigError(
                f"root {text!r} resolves to {path}, {wide}, only because the server started there; "
                "give the folder to serve as an absolute path (--root /path/to/project or roots = [...])"
            )
        if wide and path not in _warned:
            _warned.add(path)
            log.warning("root %s is %s: every file below it is readable by clients", path, wide)
        if path not in paths:
            paths.append(path)
    if data_dir not in paths:
        paths.append(data_dir)
    return paths


def _as_path(path_or_uri: str) -> Path:
    text = path_or_uri.strip()
    if not text:
        raise InvalidInput("empty path: give a file path under the allowed roots or a file:// URI")
    if "\x00" in text:
        raise InvalidInput("path contains a NUL byte")
    if "://" in text:
        parsed = urlparse(text)
        if parsed.scheme != "file":
            raise InvalidInput(f"unsupported URI scheme '{parsed.scheme}://': use a local path or a file:// URI")
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInput(f"file URI host '{parsed.netloc}' is not local: use file:///absolute/path")
        return Path(unquote(parsed.path))
    return Path(text).expanduser()


def resolve_under_roots(path_or_uri: str, roots: list[Path], *, must_exist: bool = True) -> Path:
    """Resolve a path or ``file://`` URI (symlinks followed) and refuse it unless it lies under a root.

    Relative paths are taken from the first root.
    """
    path = _as_path(path_or_uri)
    if not path.is_absolute():
        path = roots[0] / path
    resolved = path.resolve()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        shown = ", ".join(str(r) for r in roots)
        raise AccessDenied(
            f"'{path_or_uri}' resolves to {resolved}, outside the allowed roots ({shown}); "
            f"use a file inside a root, or {ROOTS_HINT}"
        )
    if must_exist and not resolved.exists():
        raise NotFound(f"no file at {resolved}: check the path (relative paths start at {roots[0]})")
    return resolved
