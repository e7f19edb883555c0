"""OCR for one document being converted: the text of pictures embedded in DOCX, PPTX,
XLSX, PDF and ODF files (``parse.ocr_images``), and the report that ends up in
``metadata.extra['ocr']`` and the warnings.

A picture's text is returned as a Markdown blockquote labelled with the picture's
name, for the converter to insert where the picture stands. Nothing here imports an
OCR engine until a picture is actually read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servers.core.errors import QuiverError
from servers.parse.formats import Converted

if TYPE_CHECKING:
    from PIL import Image

    from servers.core.settings import ParseSettings
    from servers.parse.ocr import OcrReport

MIN_SIDE_ALWAYS = 32  # even ocr_images='always' skips icons and bullets smaller than this
READABLE = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


def quote(label: str, text: str) -> str:
    """Image text as a labelled blockquote (its own headings flattened to plain lines)."""
    lines = [f"> [Image text: {label}]"]
    for para in text.split("\n\n"):
        para = para.lstrip("#").strip() if para.startswith("#") else para
        if para:
            lines.append(">")
            lines.extend("> " + line for line in para.split("\n"))
    return "\n".join(lines)


class DocumentOcr:
    """OCR state for one document: settings, the pictures read so far, the report."""

    def __init__(self, settings: ParseSettings) -> None:
        self.settings = settings
        self._report: OcrReport | None = None
        self.pictures_read = 0
        self.pictures_skipped = 0

    @classmethod
    def for_format(cls, fmt: str, settings: ParseSettings) -> DocumentOcr:
        return cls(settings)

    @property
    def reads_pictures(self) -> bool:
        return self.settings.ocr_images != "never"

    @property
    def report(self) -> OcrReport:
        if self._report is None:
            from servers.parse.ocr import OcrReport

            self._report = OcrReport.for_settings(self.settings)
        return self._report

    def wanted(self, width: int, height: int) -> bool:
        """Whether a picture of this size is read under ``ocr_images``."""
        mode = self.settings.ocr_images
        if mode == "never":
            return False
        smallest = self.settings.ocr_image_min_side if mode == "auto" else MIN_SIDE_ALWAYS
        return min(width, height) >= smallest

    def _budget_left(self, name: str) -> bool:
        if self.pictures_read >= self.settings.ocr_max_pages:
            self.pictures_skipped += 1
            return False
        return True

    def picture_text(self, blob: bytes, name: str) -> str | None:
        """The text of an embedded picture (PNG, JPEG, GIF, BMP, TIFF) as a blockquote, or None."""
        if not self.reads_pictures or not blob.startswith(READABLE):
            return None  # vector formats (EMF, WMF, SVG) carry no bitmap to read
        from servers.parse.formats.image import decode, open_image

        try:
            image = open_image(blob, name, self.settings.max_image_pixels)
            if not self.wanted(image.width, image.height):
                return None
            image = decode(image, name)
        except QuiverError as exc:
            self.report.skipped.append(f"picture {name} was not read: {exc}")
            return None
        return self.picture_image_text(image, name)

    def picture_image_text(self, image: Image.Image, name: str) -> str | None:
        """The text of an already decoded picture as a blockquote, or None."""
        if not self.wanted(image.width, image.height) or not self._budget_left(name):
            return None
        from servers.parse.ocr import read_image

        result = read_image(image, self.settings)
        self.pictures_read += 1
        self.report.add_picture(name, result)
        return quote(name, result.markdown) if result.markdown.strip() else None

    def finish(self, converted: Converted) -> Converted:
        """Add the OCR report and its warnings to a converter's result."""
        if self._report is None or not self._report.used and not self.pictures_skipped:
            return converted
        extra = dict(converted.extra)
        merged = dict(extra.get("ocr") or {})
        merged.update(self._report.extra())
        extra["ocr"] = merged
        warnings = list(converted.warnings) + self._report.warnings()
        if self.pictures_skipped:
            warnings.append(
                f"{self.pictures_skipped} more pictures were not OCR'd (parse.ocr_max_pages = {self.settings.ocr_max_pages})"
            )
        converted.extra = extra
        converted.warnings = warnings
        return converted

