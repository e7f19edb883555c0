"""OCR inside PDFs: pages without a usable text layer are rendered (pypdfium2, at
``parse.ocr_dpi``) and read; with ``ocr_images`` the pictures on text pages are read and
their text is placed where they stand. Headers and footers repeated across pages (text
layer or OCR'd) are found here too, so both kinds of page are cleaned the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from servers.parse.formats.pdf_furniture import Placed, find_furniture
from servers.parse.markdown import page_spans

if TYPE_CHECKING:
    from servers.parse.ocr import OcrPage
    from servers.parse.pictures import DocumentOcr

POINTS_PER_INCH = 72.0
MIN_DENSITY = 0.5  # usable characters per square inch below which a mostly-pictured page is OCR'd
MAX_PICTURES_PER_PAGE = 20


@dataclass
class PageOcr:
    """What OCR did to one PDF: pages read (index → result) and the furniture found."""

    pages: dict[int, OcrPage] = field(default_factory=dict)
    headers: list[str] = field(default_factory=list)
    footers: list[str] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # pages that needed OCR past ocr_max_pages


def _usable_chars(lines: list[Any]) -> int:
    return sum(1 for line in lines for ch in line.text if ch.isalnum())


def _image_cover(page: pdfium.PdfPage, area: float) -> float:
    covered = 0.0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        left, bottom, right, top = obj.get_bounds()
        covered += max(0.0, right - left) * max(0.0, top - bottom)
    return min(1.0, covered / area) if area else 0.0


def _has_marks(page: pdfium.PdfPage) -> bool:
    for _ in page.get_objects(max_depth=2):
        return True
    return False


def needs_ocr(page: pdfium.PdfPage, lines: list[Any]) -> bool:
    """No usable text layer: none at all on a page that shows something, or too few
    characters for its area on a page mostly covered by pictures (a stamped scan)."""
    width, height = page.get_size()
    area = max(width * height, 1.0)
    chars = _usable_chars(lines)
    if chars == 0:
        return _has_marks(page)
    cover = _image_cover(page, area)
    density = chars / (area / POINTS_PER_INCH**2)
    return (cover >= 0.5 and chars < 200) or (cover >= 0.2 and density < MIN_DENSITY)


def render(page: pdfium.PdfPage, dpi: int, max_pixels: int) -> Any:
    """The page as a PIL image at ``dpi`` (lowered for huge pages to stay under the pixel cap)."""
    width, height = page.get_size()
    scale = dpi / POINTS_PER_INCH
    pixels = width * height * scale * scale
    if pixels > max_pixels:
        scale *= (max_pixels / pixels) ** 0.5
    return page.render(scale=scale, grayscale=False).to_pil()


def read_pages(pdf: pdfium.PdfDocument, page_lines: list[list[Any]], ocr: DocumentOcr) -> PageOcr:
    """OCR the pages that need it under ``parse.ocr`` (auto / always / never)."""
    from servers.parse.ocr import read_image

    out = PageOcr()
    mode = ocr.settings.ocr
    if mode == "never":
        return out
    for index, lines in enumerate(page_lines):
        page = pdf[index]
        try:
            if mode != "always" and not needs_ocr(page, lines):
                continue
            if len(out.pages) >= ocr.settings.ocr_max_pages:
                out.skipped.append(index + 1)
                continue
            image = render(page, ocr.settings.ocr_dpi, ocr.settings.max_image_pixels)
        finally:
            page.close()
        out.pages[index] = read_image(image, ocr.settings)
    return out


def picture_blocks(pdf: pdfium.PdfDocument, index: int, ocr: DocumentOcr) -> list[tuple[float, str]]:
    """(top in PDF points, image-text Markdown) for each readable picture on a text page."""
    page = pdf[index]
    found: list[tuple[float, str]] = []
    try:
        objects = list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2))
        for number, obj in enumerate(objects[:MAX_PICTURES_PER_PAGE], start=1):
            try:
                width, height = obj.get_px_size()
            except pdfium.PdfiumError:
                continue
            if not ocr.wanted(width, height) or width * height > ocr.settings.max_image_pixels:
                continue
            try:
                image = obj.get_bitmap(render=True).to_pil()
            except pdfium.PdfiumError:
                continue
            text = ocr.picture_image_text(image, f"page {index + 1} picture {number}")
            if text:
                found.append((obj.get_bounds()[3], text))
    finally:
        page.close()
    return found


def strip_furniture(page_lines: list[list[Any]], heights: list[float], result: PageOcr) -> None:
    """Drop running headers, footers and page numbers from text-layer lines and OCR'd pages."""
    placed: list[list[Placed]] = []
    for index, lines in enumerate(page_lines):
        if index in result.pages:
            page = result.pages[index]
            h = max(page.height, 1)
            placed.append([
                Placed(line.text, min(p[1] for p in line.points) / h, max(p[1] for p in line.points) / h)
                for line in page.lines
            ])
        else:
            h = max(heights[index], 1.0)
            placed.append([
                Placed(line.text if line.table is None else "", (h - line.top) / h, (h - line.bottom) / h)
                for line in lines
            ])
    drop, result.headers, result.footers = find_furniture(placed)
    for index, gone in enumerate(drop):
        if not gone:
            continue
        if index in result.pages:
            result.pages[index] = result.pages[index].without(gone)
        else:
            page_lines[index][:] = [line for i, line in enumerate(page_lines[index]) if i not in gone]


def record(markdown: str, result: PageOcr, ocr: DocumentOcr) -> None:
    """Add the OCR'd pages, with their block offsets in the final Markdown, to the report."""
    if not result.pages and not result.skipped:
        return
    starts = {page: start for page, start, _ in page_spans(markdown)}
    for index, page in sorted(result.pages.items()):
        start = starts.get(index + 1, 0)
        body = markdown.find(page.markdown, start) if page.markdown else start
        ocr.report.add_page(index + 1, body if body >= 0 else start, page)
    if result.skipped:
        shown = ", ".join(map(str, result.skipped[:20])) + (" ..." if len(result.skipped) > 20 else "")
        ocr.report.skipped.append(
            f"pages needing OCR past parse.ocr_max_pages ({ocr.settings.ocr_max_pages}) were left empty: {shown}"
        )
