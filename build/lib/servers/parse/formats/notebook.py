"""Jupyter notebooks (nbformat 4, and 3) → Markdown: markdown cells as they are, code
cells fenced with the kernel's language, raw cells as text, and (``parse.notebook_outputs``)
each code cell's text outputs (streams, results, errors) in a fenced ``text`` block.
No JSON internals (metadata, execution counts, base64 images) reach the text."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from servers.core.errors import InvalidInput
from servers.parse.formats import Converted

if TYPE_CHECKING:
    from servers.core.settings import ParseSettings

MAX_OUTPUT_CHARS = 4000
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _source(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return str(value or "")


def fence(body: str, info: str = "") -> str:
    """A fenced code block whose fence is longer than any backtick run inside it."""
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{body.rstrip()}\n{ticks}"


def _outputs(outputs: list[dict[str, Any]]) -> tuple[str, bool]:
    texts: list[str] = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            texts.append(_source(out.get("text")))
        elif kind in ("execute_result", "display_data", "pyout"):
            data = out.get("data") or out
            text = _source(data.get("text/plain") or data.get("text"))
            if any(k.startswith("image/") for k in data) and text.startswith("<"):
                continue  # the repr of a figure ("<Figure size 640x480>") says nothing
            if text:
                texts.append(text)
        elif kind in ("error", "pyerr"):
            texts.append(f"{out.get('ename', 'Error')}: {out.get('evalue', '')}")
    joined = ANSI.sub("", "\n".join(t.rstrip("\n") for t in texts if t.strip()))
    if len(joined) > MAX_OUTPUT_CHARS:
        return joined[:MAX_OUTPUT_CHARS] + "\n… (output cut)", True
    return joined, False


def convert_notebook(data: bytes, name: str, settings: ParseSettings) -> Converted:
    from servers.parse.formats.text import decode

    text, _ = decode(data, name)
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{name} is not a Jupyter notebook: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(notebook, dict) or not ("cells" in notebook or "worksheets" in notebook):
        raise InvalidInput(f"{name} is not a Jupyter notebook (no 'cells'); is it plain JSON? Rename it to .json")
    meta = notebook.get("metadata") or {}
    cells = notebook.get("cells")
    if cells is None:  # nbformat 3
        cells = [c for ws in notebook.get("worksheets") or [] for c in ws.get("cells") or []]
    kernel = meta.get("kernelspec") or {}
    language = (kernel.get("language") or (meta.get("language_info") or {}).get("name") or meta.get("language") or "python")
    blocks: list[str] = []
    counts = {"markdown": 0, "code": 0, "raw": 0}
    cut = 0
    for cell in cells:
        kind = cell.get("cell_type")
        source = _source(cell.get("source") if "source" in cell else cell.get("input")).strip("\n")
        if kind in ("markdown", "heading"):
            counts["markdown"] += 1
            if kind == "heading":  # nbformat 3 heading cells
                source = "#" * int(cell.get("level", 1)) + " " + source
            if source.strip():
                blocks.append(source.strip())
        elif kind == "code":
            counts["code"] += 1
            if source.strip():
                blocks.append(fence(source, str(language).lower()))
            if settings.notebook_outputs:
                output, was_cut = _outputs(cell.get("outputs") or [])
                cut += was_cut
                if output.strip():
                    blocks.append(fence(output, "text"))
        elif kind == "raw":
            counts["raw"] += 1
            if source.strip():
                blocks.append(source.strip())
    warnings = [f"{cut} long cell outputs were cut to {MAX_OUTPUT_CHARS} characters"] if cut else []
    authors = meta.get("authors")
    author = ", ".join(a.get("name", "") for a in authors if isinstance(a, dict)) if isinstance(authors, list) else None
    return Converted(
        markdown="\n\n".join(blocks) + ("\n" if blocks else ""),
        title=meta.get("title") if isinstance(meta.get("title"), str) else None,
        author=author or None,
        extra={"kernel": kernel.get("name") or language, "language": language, "cells": counts},
        warnings=warnings,
    )
