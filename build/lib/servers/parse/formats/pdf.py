"""PDF → Markdown: pypdfium2's text layer (fast, good reading order), paragraphs and
headings from line geometry and font size, tables from pdfplumber spliced in place of
the text they cover, one ``<!-- page N -->`` marker per page."""

from __future__ import annotations

import io
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from servers.core.errors import InvalidInput
from servers.parse.formats import Converted, pdf_ocr
from servers.parse.markdown import page_marker, table_markdown

if TYPE_CHECKING:
    from servers.parse.pictures import DocumentOcr

BULLETS = "•▪◦●○■□➢►‣⁃∙·"
MIN_TABLE_PATHS = 4
DATE = re.compile(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?")


@dataclass
class Line:
    text: str
    size: float
    bold: bool
    top: float
    bottom: float
    left: float
    table: int | None = None  # index of the table that replaces this line


def _pdf_date(raw: str | None) -> str | None:
    if not raw:
        return None
    m = DATE.match(raw)
    if not m:
        return raw or None
    y, mo, d, h, mi, s = (g or "00" for g in m.groups())
    return f"{y}-{mo if mo != '00' else '01'}-{d if d != '00' else '01'}T{h}:{mi}:{s}"


def _path_objects(page: pdfium.PdfPage, limit: int = 64) -> int:
    count = 0
    for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH], max_depth=2):
        count += 1
        if count >= limit:
            break
    return count


def _table_boxes(data: bytes, page_numbers: list[int]) -> dict[int, list[tuple[tuple[float, ...], str]]]:
    """pdfplumber tables per page index: (bbox top-left origin, Markdown)."""
    import pdfplumber

    found: dict[int, list[tuple[tuple[float, ...], str]]] = {}
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for index in page_numbers:
            page = pdf.pages[index]
            for table in page.find_tables():
                rows = [[c or "" for c in row] for row in table.extract()]
                rows = [r for r in rows if any(c.strip() for c in r)]
                if len(rows) < 2 or max(len(r) for r in rows) < 2:
                    continue
                found.setdefault(index, []).append((table.bbox, table_markdown(rows)))
            page.close()
    return found


def _lines(textpage: pdfium.PdfTextPage, height: float, tables: list[tuple[tuple[float, ...], str]]) -> list[Line]:
    text = textpage.get_text_range()
    boxes = [bbox for bbox, _ in tables]
    out: list[Line] = []
    index = 0
    for raw_line in re.split(r"\r\n|\n|\r", text):
        start = index
        index += len(raw_line) + (2 if text[index + len(raw_line) : index + len(raw_line) + 2] == "\r\n" else 1)
        if not raw_line.strip():
            continue
        first = start + (len(raw_line) - len(raw_line.lstrip()))
        try:
            left, bottom, _, top = textpage.get_charbox(first, loose=True)
        except Exception:  # noqa: BLE001 - a glyph without a box: fall back to neutral geometry
            left = bottom = top = 0.0
        weight = pdfium_c.FPDFText_GetFontWeight(textpage, first)
        line = Line(raw_line.strip(), round(top - bottom, 1), weight >= 600, top, bottom, left)
        if boxes:
            kept, hit = [], None
            for j, ch in enumerate(raw_line):
                try:
                    x0, y0, x1, y1 = textpage.get_charbox(start + j)
                except Exception:  # noqa: BLE001
                    kept.append(ch)
                    continue
                cx, cy = (x0 + x1) / 2, height - (y0 + y1) / 2
                inside = next(
                    (k for k, (bx0, btop, bx1, bbottom) in enumerate(boxes) if bx0 <= cx <= bx1 and btop <= cy <= bbottom),
                    None,
                )
                if inside is None:
                    kept.append(ch)
                elif hit is None:
                    hit = inside
            if hit is not None:
                out.append(Line("", line.size, False, top, bottom, left, table=hit))
            line.text = "".join(kept).strip()
            if not line.text:
                continue
        out.append(line)
    return out


def _body_size(pages: list[list[Line]]) -> float:
    sizes: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            if line.table is None:
                sizes[line.size] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


def _heading_level(line: Line, body: float, levels: list[float]) -> int:
    text = line.text
    if len(text) > 120 or len(text) < 2 or text[-1] in ".,;" or not any(c.isalpha() for c in text):
        return 0
    if line.size >= body * 1.08:
        return min(levels.index(line.size) + 1 if line.size in levels else 3, 4)
    if line.bold and line.size >= body * 0.98 and len(text) < 80:
        return min(len(levels) + 1, 4)
    return 0


def _page_markdown(lines: list[Line], tables: list[str], body: float, levels: list[float]) -> str:
    gaps = [a.bottom - b.bottom for a, b in zip(lines, lines[1:], strict=False) if 0 < a.bottom - b.bottom < 3 * body]
    pitch = statistics.median(gaps) if gaps else body * 1.2
    paras: list[str] = []
    current: list[str] = []
    prev: Line | None = None
    used: set[int] = set()

    def flush() -> None:
        if current:
            paras.append(" ".join(current))
            current.clear()

    for line in lines:
        if line.table is not None:
            flush()
            if line.table not in used:
                used.add(line.table)
                paras.append(tables[line.table])
            prev = None
            continue
        level = _heading_level(line, body, levels)
        bullet = line.text[0] in BULLETS
        new_para = (
            prev is None
            or level > 0
            or bullet
            or abs(line.size - prev.size) > 0.6
            or (prev.bottom - line.bottom) > pitch * 1.45
            or (prev.bottom - line.bottom) < -body  # moved up: next column or a new region
        )
        if new_para:
            flush()
        if level:
            paras.append("#" * level + " " + line.text)
            prev = None
            continue
        text = "- " + line.text[1:].strip() if bullet else line.text
        current.append(text)
        prev = line
    flush()
    return "\n\n".join(paras)


def convert_pdf(data: bytes, name: str, *, max_pages: int, tables: bool = True, ocr: DocumentOcr | None = None) -> Converted:
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise InvalidInput(
                f"{name} is an encrypted PDF that needs a password; decrypt it (e.g. `qpdf --decrypt`) and parse the copy"
            ) from exc
        raise InvalidInput(f"{name} could not be opened as a PDF ({exc}); the file is corrupted or truncated") from exc
    try:
        return _convert(pdf, data, name, max_pages=max_pages, tables=tables, ocr=ocr)
    finally:
        pdf.close()


def _convert(
    pdf: pdfium.PdfDocument, data: bytes, name: str, *, max_pages: int, tables: bool, ocr: DocumentOcr | None = None
) -> Converted:
    warnings: list[str] = []
    total = len(pdf)
    count = min(total, max_pages)
    if total > max_pages:
        warnings.append(f"only the first {max_pages} of {total} pages were parsed (parse.max_pages)")
    found: dict[int, list[tuple[tuple[float, ...], str]]] = {}
    # pdfplumber finds ruled tables only; skip pages without enough vector paths to draw one
    candidates = [i for i in range(count) if tables and _path_objects(pdf[i]) >= MIN_TABLE_PATHS]
    if candidates:
        try:
            found = _table_boxes(data, candidates)
        except Exception as exc:  # noqa: BLE001 - tables are a bonus; the text layer still parses
            warnings.append(f"table detection failed ({type(exc).__name__}); tables are plain text")
    page_lines: list[list[Line]] = []
    heights: list[float] = []
    for index in range(count):
        page = pdf[index]
        textpage = page.get_textpage()
        heights.append(page.get_height())
        page_lines.append(_lines(textpage, heights[-1], found.get(index, [])))
        textpage.close()
        page.close()
    # OCR of pages without a usable text layer and of pictures; headers/footers dropped
    scanned = pdf_ocr.read_pages(pdf, page_lines, ocr) if ocr is not None else pdf_ocr.PageOcr()
    for index in range(count) if ocr is not None and ocr.reads_pictures else ():
        if index not in scanned.pages:
            for top, text in pdf_ocr.picture_blocks(pdf, index, ocr):
                found.setdefault(index, []).append(((), text))
                at = next((i for i, line in enumerate(page_lines[index]) if line.top <= top), len(page_lines[index]))
                page_lines[index].insert(at, Line("", 0.0, False, top, top, 0.0, table=len(found[index]) - 1))
    pdf_ocr.strip_furniture(page_lines, heights, scanned)
    empty = [
        i + 1 for i, lines in enumerate(page_lines)
        if not (scanned.pages[i].markdown if i in scanned.pages else any(ln.text or ln.table is not None for ln in lines))
    ]
    off = ocr is None or ocr.settings.ocr == "never"
    if count and len(empty) == count and off:
        raise InvalidInput(
            f"{name} has no text layer (a scanned or image-only PDF) and OCR is off (ocr='never'): "
            "parse it with ocr='auto'"
        )
    read = [p for p in empty if p - 1 in scanned.pages]
    for pages, why in ((read, "no text found, even by OCR"),
                       ([p for p in empty if p not in read], "no text layer (scanned?) and OCR is off" if off else "nothing to read (blank)")):
        if pages:
            warnings.append(f"pages with {why}: " + ", ".join(map(str, pages[:20])) + (" ..." if len(pages) > 20 else ""))
    body = _body_size(page_lines)
    big = sorted({line.size for lines in page_lines for line in lines if line.size >= body * 1.08}, reverse=True)
    parts = []
    for number, lines in enumerate(page_lines, start=1):
        if number - 1 in scanned.pages:
            md = scanned.pages[number - 1].markdown
        else:
            md = _page_markdown(lines, [t for _, t in found.get(number - 1, [])], body, big[:3])
        parts.append(page_marker(number) + ("\n\n" + md if md else ""))
    meta = pdf.get_metadata_dict()
    title = (meta.get("Title") or "").strip() or None
    extra = {k.lower(): v for k, v in meta.items() if v and k in ("Subject", "Keywords", "Creator", "Producer")}
    extra.update({k: v for k, v in (("page_headers", scanned.headers), ("page_footers", scanned.footers)) if v})
    markdown = "\n\n".join(parts) + "\n"
    if ocr is not None:
        pdf_ocr.record(markdown, scanned, ocr)
    return Converted(
        markdown=markdown,
        title=title,
        pages=total,
        author=(meta.get("Author") or "").strip() or None,
        created=_pdf_date(meta.get("CreationDate")),
        modified=_pdf_date(meta.get("ModDate")),
        extra=extra,
        warnings=warnings,
    )
