"""Text-like formats: encoding detection (charset-normalizer), Markdown as is, JSON
pretty-printed in a fenced block, plain text as is."""

from __future__ import annotations

import json

from charset_normalizer import from_bytes

from servers.core.errors import InvalidInput
from servers.parse.formats import Converted
from servers.parse.markdown import blocks

BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def decode(data: bytes, name: str) -> tuple[str, str]:
    """(text, encoding): UTF-8 / BOMs first, else charset-normalizer's best guess."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return data.decode(encoding), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[: 1024 * 1024]).best()
    if best is None:
        raise InvalidInput(f"{name} is not text in any encoding that could be detected; is it a binary file?")
    try:
        return data.decode(best.encoding, errors="replace"), best.encoding
    except LookupError as exc:
        raise InvalidInput(f"{name}: detected encoding {best.encoding} is not supported") from exc


def convert_markdown(text: str) -> Converted:
    """Markdown as is; the title is the first level-1 heading (ATX or setext), found in linear time."""
    first = next((b.text for b in blocks(text) if b.kind == "heading" and b.level == 1), None)
    return Converted(markdown=text, title=first)


def convert_json(text: str, name: str) -> Converted:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Converted(
            markdown=text,
            warnings=[f"{name} is not valid JSON ({exc.msg} at line {exc.lineno}); kept as plain text"],
        )
    pretty = json.dumps(value, indent=2, ensure_ascii=False)
    title = value.get("title") if isinstance(value, dict) and isinstance(value.get("title"), str) else None
    return Converted(markdown=f"```json\n{pretty}\n```\n", title=title)


def convert_text(text: str) -> Converted:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    first = next((line.strip() for line in text.split("\n") if line.strip()), None)
    return Converted(markdown=text, title=first[:120] if first and len(first) <= 120 else None)
