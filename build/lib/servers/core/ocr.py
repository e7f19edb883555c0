"""OCR engines, loaded lazily and once per process, like every model in ``servers/core``.

- ``rapidocr`` (default): RapidOCR on onnxruntime. Its wheel carries the PP-OCR
  detection, recognition (Chinese + English + Latin scripts) and orientation models,
  so nothing is downloaded at run time.
- ``tesseract``: Tesseract through pytesseract, when the ``tesseract`` binary and the
  wanted language packs are installed (Debian: ``tesseract-ocr``,
  ``tesseract-ocr-chi-sim``).

Only code that OCRs imports this module; nothing else pays for onnxruntime.
"""

from __future__ import annotations

import functools
import logging
import shutil
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from servers.core.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

EngineName = Literal["rapidocr", "tesseract"]
Point = tuple[float, float]


@dataclass(frozen=True)
class OcrLine:
    """One recognised line: its text, the engine's confidence (0–1) and its corner
    points (top-left, top-right, bottom-right, bottom-left) in image pixels."""

    text: str
    confidence: float
    points: tuple[Point, Point, Point, Point]


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image.Image, *, upright: bool = False) -> list[OcrLine]:
        """Lines of text found in an image, in no particular order. ``upright``: do not turn
        upside-down lines around (used to tell a page turned 90° from one turned 270°)."""
        ...


def _rgb(image: Image.Image) -> Image.Image:
    """An RGB copy with transparency flattened onto white (OCR models expect dark on light)."""
    from PIL import Image as PILImage

    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = PILImage.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return image.point(lambda v: v / 256).convert("L").convert("RGB")
    return image.convert("RGB")


class RapidOcrEngine:
    """RapidOCR with the PP-OCR models shipped inside the ``rapidocr`` wheel."""

    name = "rapidocr"

    def __init__(self) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise ConfigError(
                "parse.ocr_engine is 'rapidocr' but the rapidocr package is not installed; run `make setup`"
            ) from exc
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        # Lines below text_score are dropped by RapidOCR; ours flag low confidence above it.
        # Detection scales the longer side down to 1600 px and never up: RapidOCR's default (shorter
        # side up to 736 px) blows a 1000×150 line image up to ~4900×736 and is ~4× slower, for the same text.
        self._engine = RapidOCR(params={
            "Global.log_level": "error", "Global.text_score": 0.5,
            "Det.limit_type": "max", "Det.limit_side_len": 1600,
        })
        self._lock = threading.Lock()  # RapidOCR updates per-call parameters on the instance

    def read(self, image: Image.Image, *, upright: bool = False) -> list[OcrLine]:
        import numpy as np

        array = np.asarray(_rgb(image))[:, :, ::-1].copy()  # RapidOCR takes OpenCV's BGR order
        with self._lock:
            result = self._engine(array, use_cls=not upright)
        if result.boxes is None or result.txts is None:
            return []
        lines = []
        for box, text, score in zip(result.boxes.tolist(), result.txts, result.scores, strict=False):
            text = " ".join(str(text).split())
            if text:
                points = tuple((float(x), float(y)) for x, y in box[:4])
                lines.append(OcrLine(text, float(score), points))  # type: ignore[arg-type]
        return lines


class TesseractEngine:
    """Tesseract (LSTM) through pytesseract; ``languages`` like ``eng+chi_sim``."""

    name = "tesseract"

    def __init__(self, languages: str) -> None:
        if shutil.which("tesseract") is None:
            raise ConfigError(
                "parse.ocr_engine is 'tesseract' but the tesseract binary is not installed "
                "(Debian/Ubuntu: apt-get install tesseract-ocr tesseract-ocr-chi-sim); "
                "or set parse.ocr_engine = 'rapidocr'"
            )
        import pytesseract

        installed = set(pytesseract.get_languages(config=""))
        missing = [lang for lang in languages.split("+") if lang and lang not in installed]
        if missing:
            raise ConfigError(
                f"parse.tesseract_languages asks for {', '.join(missing)}, which Tesseract does not have "
                f"(installed: {', '.join(sorted(installed)) or 'none'}); install the language packs "
                "(e.g. apt-get install tesseract-ocr-chi-sim) or change parse.tesseract_languages"
            )
        self._tess = pytesseract
        self.languages = languages

    def read(self, image: Image.Image, *, upright: bool = False) -> list[OcrLine]:
        data = self._tess.image_to_data(_rgb(image), lang=self.languages, output_type=self._tess.Output.DICT)
        grouped: dict[tuple[int, int, int, int], list[int]] = {}
        for i, word in enumerate(data["text"]):
            if str(word).strip() and float(data["conf"][i]) >= 0:
                key = (data["page_num"][i], data["block_num"][i], data["par_num"][i], data["line_num"][i])
                grouped.setdefault(key, []).append(i)
        lines = []
        for idx in grouped.values():
            words = [str(data["text"][i]).strip() for i in idx]
            text = words[0]
            for word in words[1:]:
                text += word if _cjk(text[-1]) and _cjk(word[0]) else " " + word
            x0 = min(data["left"][i] for i in idx)
            y0 = min(data["top"][i] for i in idx)
            x1 = max(data["left"][i] + data["width"][i] for i in idx)
            y1 = max(data["top"][i] + data["height"][i] for i in idx)
            conf = sum(float(data["conf"][i]) * len(data["text"][i]) for i in idx) / max(1, sum(len(w) for w in words))
            lines.append(OcrLine(text, conf / 100.0, ((x0, y0), (x1, y0), (x1, y1), (x0, y1))))
        return lines


def _cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF or 0x3000 <= code <= 0x303F


_LOCK = threading.Lock()


@functools.cache
def _cached(engine: EngineName, languages: str) -> OcrEngine:
    if engine == "tesseract":
        return TesseractEngine(languages)
    return RapidOcrEngine()


def get_ocr_engine(engine: EngineName = "rapidocr", languages: str = "eng+chi_sim") -> OcrEngine:
    """The process-wide OCR engine of that kind, loaded on first use.

    Raises ConfigError when the engine (or a Tesseract language pack) is not installed."""
    if engine not in ("rapidocr", "tesseract"):
        raise ConfigError(f"parse.ocr_engine must be 'rapidocr' or 'tesseract' (got {engine!r})")
    with _LOCK:
        return _cached(engine, languages if engine == "tesseract" else "")


def tesseract_available() -> bool:
    """Whether the tesseract binary is on PATH (the optional second engine)."""
    return shutil.which("tesseract") is not None
