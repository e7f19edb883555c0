"""OCR for the parse library: one image → Markdown paragraphs in reading order (page
orientation fixed), and a per-document report of what was OCR'd, with each block's
confidence and warnings for the weak ones.

The engine comes from ``servers.core.ocr`` (loaded once per process); this module is
imported only when something is OCR'd."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from servers.core.ocr import OcrLine, get_ocr_engine
from servers.parse.ocr_layout import TextBlock, layout, markdown

if TYPE_CHECKING:
    from PIL import Image

    from servers.core.settings import ParseSettings

MAX_LOW_WARNINGS = 10
MAX_BLOCKS_REPORTED = 2000


@dataclass
class OcrPage:
    """One OCR'd image: its Markdown, block spans in that Markdown and the rotation applied."""

    markdown: str
    spans: list[tuple[int, int, TextBlock]]
    rotation: int = 0  # degrees counter-clockwise applied before reading
    seconds: float = 0.0
    lines: list[OcrLine] = field(default_factory=list)  # as read, in the upright image's pixels
    width: int = 0  # of the upright image
    height: int = 0

    def without(self, drop: set[int]) -> OcrPage:
        """The page laid out again without the lines at these indices (headers, footers)."""
        kept = [line for i, line in enumerate(self.lines) if i not in drop]
        text, spans = markdown(layout(kept))
        return OcrPage(text, spans, self.rotation, self.seconds, kept, self.width, self.height)

    @property
    def confidence(self) -> float | None:
        chars = sum(len(b.text) for _, _, b in self.spans)
        if not chars:
            return None
        return sum(b.confidence * len(b.text) for _, _, b in self.spans) / chars


def _score(lines: list[OcrLine]) -> float:
    return sum(line.confidence * len(line.text) for line in lines)


def _sideways(lines: list[OcrLine]) -> bool:
    """Most text sits in boxes much taller than wide: the page is probably turned 90°."""
    tall = chars = 0
    for line in lines:
        xs = [p[0] for p in line.points]
        ys = [p[1] for p in line.points]
        n = len(line.text)
        chars += n
        if n >= 3 and (max(ys) - min(ys)) > 1.5 * (max(xs) - min(xs)):
            tall += n
    return chars > 0 and tall > 0.5 * chars


def read_image(image: Image.Image, settings: ParseSettings) -> OcrPage:
    """OCR one image with the configured engine; a page turned by 90° is read upright."""
    started = time.perf_counter()
    engine = get_ocr_engine(settings.ocr_engine, settings.tesseract_languages)
    lines = engine.read(image)
    rotation = 0
    width, height = image.size
    if _sideways(lines):
        # read both quarter turns without per-line flipping: only the upright one reads well
        reads = {angle: engine.read(image.rotate(angle, expand=True), upright=True) for angle in (90, 270)}
        best, other = sorted(reads, key=lambda a: _score(reads[a]), reverse=True)
        if _score(reads[best]) >= 1.3 * _score(reads[other]) and _score(reads[best]) >= 0.8 * _score(lines):
            lines, rotation = reads[best], best
            width, height = height, width
    text, spans = markdown(layout(lines))
    return OcrPage(text, spans, rotation, time.perf_counter() - started, lines, width, height)


@dataclass
class OcrReport:
    """What OCR did for one document; becomes ``metadata.extra['ocr']`` and warnings."""

    engine: str
    min_confidence: float
    pages: list[int] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    low: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @classmethod
    def for_settings(cls, settings: ParseSettings) -> OcrReport:
        return cls(engine=settings.ocr_engine, min_confidence=settings.ocr_min_confidence)

    def add_page(self, page: int | None, offset: int, result: OcrPage) -> None:
        """Record an OCR'd page whose Markdown starts at ``offset`` of the document's Markdown."""
        if page is not None:
            self.pages.append(page)
        self.seconds += result.seconds
        where = f"page {page}" if page is not None else "the image"
        for start, end, block in result.spans:
            if len(self.blocks) < MAX_BLOCKS_REPORTED:
                self.blocks.append(
                    {"page": page, "start": offset + start, "end": offset + end, "confidence": round(block.confidence, 3)}
                )
            self._check(block, where)
        if result.rotation:
            self.low.append(f"{where} was turned {result.rotation}° and read upright")

    def add_picture(self, name: str, result: OcrPage) -> None:
        """Record a picture inside a document whose text was inserted where it stands."""
        self.seconds += result.seconds
        confidence = result.confidence
        self.images.append({"image": name, "chars": len(result.markdown),
                            "confidence": round(confidence, 3) if confidence is not None else None})
        for _, _, block in result.spans:
            self._check(block, f"picture {name}")

    def _check(self, block: TextBlock, where: str) -> None:
        if block.confidence < self.min_confidence:
            snippet = block.text[:60] + ("…" if len(block.text) > 60 else "")
            self.low.append(f"low OCR confidence ({block.confidence:.2f}) on {where}: “{snippet}”")

    @property
    def used(self) -> bool:
        return bool(self.pages or self.images or self.blocks or self.skipped)

    def warnings(self) -> list[str]:
        out = self.low[:MAX_LOW_WARNINGS]
        if len(self.low) > MAX_LOW_WARNINGS:
            out.append(f"... and {len(self.low) - MAX_LOW_WARNINGS} more OCR notes")
        return out + self.skipped

    def extra(self) -> dict[str, Any]:
        out: dict[str, Any] = {"engine": self.engine, "seconds": round(self.seconds, 2)}
        if self.pages:
            out["pages"] = self.pages
        if self.images:
            out["images"] = self.images
        if self.blocks:
            out["blocks"] = self.blocks
        return out


OcrMode = Literal["auto", "always", "never"]
PictureMode = Literal["never", "auto", "always"]


def with_ocr_options(
    settings: ParseSettings, ocr: OcrMode | None = None, ocr_images: PictureMode | bool | None = None
) -> ParseSettings:
    """``settings`` with a call's ``ocr`` / ``ocr_images`` choices (None keeps the configured
    default; ``ocr_images`` true/false mean always/never)."""
    update: dict[str, str] = {}
    if ocr is not None:
        update["ocr"] = ocr
    if ocr_images is not None:
        update["ocr_images"] = ("always" if ocr_images else "never") if isinstance(ocr_images, bool) else ocr_images
    return settings.model_copy(update=update) if update else settings
