"""The allowed-roots guard: every file a server reads must resolve inside a root."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from servers.core.errors import AccessDenied, InvalidInput, NotFound


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
            "use a file inside a root, or add its folder to `roots` in the config"
        )
    if must_exist and not resolved.exists():
        raise NotFound(f"no file at {resolved}: check the path (relative paths start at {roots[0]})")
    return resolved
