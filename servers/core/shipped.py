"""Files Quiver ships besides code: the default config and the demo's sample documents.

In a checkout they are ``configs/quiver.toml`` and ``samples/``; an installed wheel carries the same
files as ``servers/core/bundled/configs`` and ``servers/core/bundled/samples`` (see setup.py).
"""

from __future__ import annotations

from pathlib import Path

CORE = Path(__file__).resolve().parent
CHECKOUT = CORE.parents[1]


def shipped(relative: str) -> Path:
    """``configs/quiver.toml`` or ``samples`` (or a file below them): the checkout's copy when it exists,
    else the wheel's; the checkout path when neither exists (so an error names it)."""
    local = CHECKOUT / relative
    if local.exists():
        return local
    bundled = CORE / "bundled" / relative
    return bundled if bundled.exists() else local
