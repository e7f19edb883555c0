"""One converter per file format; each turns bytes into a :class:`Converted`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Reads the text in an embedded picture: (bytes, name) -> image-text Markdown or None.
PictureText = Callable[[bytes, str], "str | None"]


@dataclass
class Converted:
    """What a converter produces; structure (sections, tables, spans) is derived from the Markdown."""

    markdown: str
    title: str | None = None
    pages: int | None = None
    author: str | None = None
    created: str | None = None
    modified: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
