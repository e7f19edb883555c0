"""Protocol-harness calls for the parse server: one call (at least) for every tool."""

from __future__ import annotations

import base64
from pathlib import Path


def calls(workdir: Path) -> list[tuple[str, dict]]:
    """Calls covering every tool, against files created under ``workdir``."""
    docs = workdir / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    note = docs / "note.md"
    note.write_text(
        "# Quiver\n\nQuiver parses files.\n\n## Tables\n\nSizes:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", encoding="utf-8"
    )
    (docs / "data.csv").write_text("name,value\nalpha,1\nbeta,2\n", encoding="utf-8")
    html = "<html><body><main><h1>Hi</h1><p>Some <a href='https://x.org'>link</a>.</p></main></body></html>"
    return [
        ("parse_document", {"path": str(note)}),
        ("parse_document", {"content_base64": base64.b64encode(html.encode()).decode(), "filename": "page.html"}),
        ("parse_files", {"folder": str(docs)}),
        ("chunk", {"text": "# Title\n\nFirst paragraph.\n\nSecond paragraph.", "unit": "chars", "size": 64, "overlap": 8}),
    ]
