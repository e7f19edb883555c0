"""The allowed-roots guard: every file a server reads must resolve inside a root.

Roots are only ever what the user configured (``--root`` or ``roots`` in the config) plus the data
dir. Nothing is implied from the working directory: MCP clients start stdio servers from ``/`` or
the home directory, which would otherwise expose the whole file system.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlparse

from servers.core.errors import AccessDenied, ConfigError, InvalidInput, NotFound, TooLarge

log = logging.getLogger("quiver.roots")
MB = 1024 * 1024
ROOTS_HINT = "start the server with --root FOLDER (repeatable) or list the folder in `roots` in the config"
_warned: set[Path] = set()


def check_size(size: int, max_mb: float, name: str, limit_key: str = "parse.max_file_mb") -> None:
    """The one size guard for files read (parse, ingest, uploads): TooLarge past ``max_mb`` MiB."""
    if size > max_mb * MB:
        raise TooLarge(
            f"{name} is {size / MB:.1f} MB, over the {max_mb:g} MB limit ({limit_key}); "
            "split the file or raise the limit in the config"
        )


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
    if not _under(resolved, roots):
        shown = ", ".join(str(r) for r in roots)
        raise AccessDenied(
            f"'{path_or_uri}' resolves to {resolved}, outside the allowed roots ({shown}); "
            f"use a file inside a root, or {ROOTS_HINT}"
        )
    if must_exist and not resolved.exists():
        raise NotFound(f"no file at {resolved}: check the path (relative paths start at {roots[0]})")
    return resolved


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _opened_path(fd: int) -> Path | None:
    """Where the kernel says an open file is (Linux ``/proc/self/fd``); None where unknown."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return Path(target.removesuffix(" (deleted)"))


class FileRead(NamedTuple):
    """A file read by :func:`read_under_roots`: where it really is, its bytes, its modification time."""

    path: Path
    data: bytes
    mtime: float


def read_under_roots(
    path_or_uri: str | Path, roots: Sequence[Path], *, max_bytes: int | None = None,
    limit_key: str = "parse.max_file_mb",
) -> FileRead:
    """Read a regular file under the roots, safe against paths that change while it is read.

    Resolves and checks the path, opens it without following a final symlink, then checks where
    the *opened* file really is (``/proc/self/fd``, else its device and inode against the
    checked path) and reads the bytes from that descriptor: a folder swapped for a symlink to
    ``/etc`` between a check and the read is refused, and the bytes returned are the bytes of
    the file that was checked."""
    resolved = resolve_under_roots(str(path_or_uri), list(roots))
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(resolved, flags)
    except FileNotFoundError as exc:
        raise NotFound(f"no file at {resolved} (it disappeared while being read)") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AccessDenied(f"{resolved} became a symbolic link while being read; refusing to follow it") from exc
        raise InvalidInput(f"cannot read {resolved}: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        real = _opened_path(fd)
        if real is not None:
            if not _under(real, roots):
                raise AccessDenied(
                    f"{resolved} now leads to {real}, outside the allowed roots (a folder on the way was "
                    "replaced while it was read); refusing it"
                )
        else:
            try:
                now = os.stat(resolved)
            except OSError:
                now = None
            if now is None or (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
                raise AccessDenied(f"{resolved} changed while it was being opened; refusing it")
        if stat.S_ISDIR(info.st_mode):
            raise InvalidInput(f"{resolved} is a folder, not a file: give a file (or a folder where folders are accepted)")
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"{resolved} is not a regular file (a device, pipe or socket cannot be read)")
        if max_bytes is not None:
            check_size(info.st_size, max_bytes / MB, resolved.name, limit_key)
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise TooLarge(f"{resolved.name} grew past the {max_bytes / MB:g} MB limit ({limit_key}) while being read")
        return FileRead(real or resolved, b"".join(chunks), info.st_mtime)
    except OSError as exc:
        raise InvalidInput(f"cannot read {resolved}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
