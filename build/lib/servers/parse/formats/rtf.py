"""RTF → text with striprtf: paragraphs as written, title and author from the
document's ``\\info`` group. RTF carries no reliable heading structure, so the result
is paragraphs only; tables come out as lines of cells."""

from __future__ import annotations

import re

from servers.core.errors import InvalidInput
from servers.parse.formats import Converted

INFO = re.compile(r"\{\\(title|author|subject|keywords|company)\s+((?:[^{}\\]|\\.)*)\}")
CREATED = re.compile(r"\\creatim\\yr(\d{4})\\mo(\d{1,2})\\dy(\d{1,2})(?:\\hr(\d{1,2}))?(?:\\min(\d{1,2}))?")


def _decode_info(value: str) -> str:
    value = re.sub(r"\\'([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]).decode("cp1252", "replace"), value)
    value = re.sub(r"\\u(-?\d+)\??", lambda m: chr(int(m.group(1)) % 65536), value)
    return " ".join(re.sub(r"\\[a-z]+-?\d* ?", "", value).split())


def convert_rtf(data: bytes, name: str) -> Converted:
    from striprtf.striprtf import rtf_to_text

    text = data.decode("latin-1")
    if not text.lstrip().startswith("{\\rtf"):
        raise InvalidInput(f"{name} is not an RTF document (it does not start with '{{\\rtf'); check the file type")
    info = {key: _decode_info(value) for key, value in INFO.findall(text[:200_000])}
    plain = rtf_to_text(text, errors="replace")
    paragraphs = [" ".join(line.split()) for line in plain.replace("\r\n", "\n").split("\n")]
    markdown = "\n\n".join(p for p in paragraphs if p)
    created = None
    if (m := CREATED.search(text[:200_000])) is not None:
        y, mo, d, h, mi = (int(g) if g else 0 for g in m.groups())
        created = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:00"
    return Converted(
        markdown=markdown + ("\n" if markdown else ""),
        title=info.get("title") or None,
        author=info.get("author") or None,
        created=created,
        extra={k: v for k, v in info.items() if k in ("subject", "keywords", "company") and v},
    )
