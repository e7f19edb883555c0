"""Images → Markdown through OCR: PNG, JPEG, TIFF (every page), BMP, GIF and WebP (first
frame). EXIF orientation is applied first and a page turned by 90° is read upright;
EXIF / PNG metadata (camera, date, description, author) goes into the metadata. Each
page's text is one ``<!-- page N -->`` section of paragraphs in reading order."""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING, Any

from servers.core.errors import InvalidInput, TooLarge
from servers.parse.formats import Converted
from servers.parse.markdown import page_marker

if TYPE_CHECKING:
    from PIL import Image

    from servers.core.settings import ParseSettings

EXIF_IFD = 0x8769
TAGS = {271: "make", 272: "model", 270: "description", 315: "artist", 305: "software", 33432: "copyright", 306: "datetime"}
EXIF_TAGS = {36867: "taken", 37510: "comment", 42036: "lens"}
PNG_TEXT = {"title": "title", "author": "artist", "description": "description", "creation time": "taken", "software": "software"}


def check_pixels(width: int, height: int, name: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise TooLarge(
            f"{name} is {width}×{height} pixels ({width * height / 1e6:.0f} megapixels), over the "
            f"{max_pixels / 1e6:g}-megapixel cap (parse.max_image_pixels); it may be a decompression bomb. "
            "Downscale the image or raise the cap"
        )


def open_image(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """A lazily decoded Pillow image whose size is within the cap (the header is all that is read)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise InvalidInput(f"{name} is empty (0 bytes); nothing to parse: check the upload or the file on disk")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise TooLarge(
            f"{name} has over {limit / 1e6:.0f} megapixels, past the {max_pixels / 1e6:g}-megapixel cap "
            "(parse.max_image_pixels); it may be a decompression bomb. Downscale the image"
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InvalidInput(
            f"{name} could not be read as an image ({type(exc).__name__}); the file is corrupted, truncated "
            "or not really an image: re-export it as PNG or JPEG"
        ) from exc
    check_pixels(image.width, image.height, name, max_pixels)
    return image


def decode(image: Image.Image, name: str) -> Image.Image:
    """The current frame, upright per EXIF, fully decoded (errors become InvalidInput)."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            image.load()
            upright = ImageOps.exif_transpose(image)
            return upright if upright is not None else image
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as exc:
        raise InvalidInput(
            f"{name} could not be decoded ({type(exc).__name__}: {str(exc)[:120]}); the image is corrupted or "
            "truncated: re-export it"
        ) from exc


def _iso(value: str) -> str:
    value = value.strip().rstrip("\x00")
    if len(value) >= 19 and value[4] == ":" and value[7] == ":":
        return value[:4] + "-" + value[5:7] + "-" + value[8:10] + "T" + value[11:19]
    return value


def image_metadata(image: Image.Image) -> dict[str, str]:
    """Camera, dates, description, author, software from EXIF and PNG text chunks."""
    found: dict[str, str] = {}
    try:
        exif = image.getexif()
        for tag, key in TAGS.items():
            if exif.get(tag):
                found[key] = str(exif[tag])
        sub = exif.get_ifd(EXIF_IFD)
        for tag, key in EXIF_TAGS.items():
            value = sub.get(tag)
            if isinstance(value, bytes):
                value = value.split(b"\x00", 1)[-1].decode("utf-8", "replace") if value.startswith(b"ASCII") else ""
            if value:
                found[key] = str(value)
        text = getattr(image, "text", None) or {}  # PNG text chunks (reading them decodes the image)
    except Exception:  # noqa: BLE001 - broken metadata is not a reason to refuse the image; decoding decides
        text = {}
    for key, value in text.items():
        mapped = PNG_TEXT.get(key.lower())
        if mapped and value and mapped not in found:
            found[mapped] = str(value)
    return {k: " ".join(v.split()) for k, v in found.items() if v and v.strip(" \x00")}


def convert_image(data: bytes, name: str, settings: ParseSettings) -> Converted:
    from servers.parse.ocr import OcrReport, read_image

    image = open_image(data, name, settings.max_image_pixels)
    if settings.ocr == "never":
        raise InvalidInput(f"{name} is an image and OCR is off (ocr='never'); parse it with ocr='auto' to read its text")
    meta = image_metadata(image)
    frames = getattr(image, "n_frames", 1) if (image.format or "").upper() == "TIFF" else 1
    warnings_out: list[str] = []
    if getattr(image, "n_frames", 1) > 1 and frames == 1:
        warnings_out.append(f"{name} is animated: only its first frame was read")
    count = min(frames, settings.ocr_max_pages, settings.max_pages)
    if frames > count:
        warnings_out.append(f"only the first {count} of {frames} pages were OCR'd (parse.ocr_max_pages / max_pages)")
    report = OcrReport.for_settings(settings)
    parts: list[str] = []
    pos = 0
    for index in range(count):
        if frames > 1:
            image.seek(index)
            check_pixels(image.width, image.height, f"{name} page {index + 1}", settings.max_image_pixels)
        result = read_image(decode(image, name), settings)
        head = page_marker(index + 1) + ("\n\n" if result.markdown else "")
        if parts:
            pos += 2
        report.add_page(index + 1, pos + len(head), result)
        parts.append(head + result.markdown)
        pos += len(parts[-1])
    if not report.blocks:
        warnings_out.append(f"no text was found in {name} (OCR engine: {settings.ocr_engine})")
    extra: dict[str, Any] = {
        "image": {"format": image.format, "width": image.width, "height": image.height, "pages": frames},
        "ocr": report.extra(),
    }
    camera = " ".join(x for x in (meta.get("make"), meta.get("model")) if x)
    if camera:
        extra["camera"] = camera
    for key in ("description", "software", "copyright", "lens", "comment", "datetime"):
        if key in meta:
            extra[key] = meta[key]
    return Converted(
        markdown="\n\n".join(parts) + "\n",
        title=meta.get("title") or None,
        pages=frames,
        author=meta.get("artist"),
        created=_iso(meta["taken"]) if "taken" in meta else (_iso(meta["datetime"]) if "datetime" in meta else None),
        modified=_iso(meta["datetime"]) if "datetime" in meta else None,
        extra=extra,
        warnings=warnings_out + report.warnings(),
    )
