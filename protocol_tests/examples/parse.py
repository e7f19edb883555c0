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
    scans = workdir / "scans"
    scans.mkdir(parents=True, exist_ok=True)
    sign, memo = _ocr_examples(scans)
    return [
        ("parse_document", {"path": str(note)}),
        ("parse_document", {"path": str(sign), "ocr": "always"}),
        ("parse_document", {"path": str(memo), "ocr": "auto", "ocr_images": True, "max_chars": 2000}),
        ("parse_document", {"content_base64": base64.b64encode(html.encode()).decode(), "filename": "page.html"}),
        ("parse_files", {"folder": str(docs)}),
        ("supported_formats", {}),
        ("chunk", {"text": "# Title\n\nFirst paragraph.\n\nSecond paragraph.", "unit": "chars", "size": 64, "overlap": 8}),
    ]


def _ocr_examples(folder: Path) -> tuple[Path, Path]:
    """A small picture of text, and a DOCX holding it, for the OCR parameters' examples."""
    import io

    import docx
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 28)
    except OSError:
        font = ImageFont.load_default(28)
    image = Image.new("RGB", (520, 120), "white")
    ImageDraw.Draw(image).text((20, 40), "Quiver reads pictures", font=font, fill="black")
    sign = folder / "sign.png"
    image.save(sign)
    document = docx.Document()
    document.add_paragraph("The picture below holds text.")
    buf = io.BytesIO()
    image.save(buf, "PNG")
    document.add_picture(io.BytesIO(buf.getvalue()))
    memo = folder / "memo.docx"
    document.save(memo)
    return sign, memo
