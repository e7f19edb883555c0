"""Checks that run before any parsing library sees the bytes: size caps, format
detection, and the zip-bomb guard for Office files."""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePath

from servers.core.errors import InvalidInput, TooLarge

MB = 1024 * 1024

EXTENSIONS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".docm": "docx",
    ".pptx": "pptx",
    ".pptm": "pptx",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".csv": "csv",
    ".tsv": "csv",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".json": "json",
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".rst": "text",
}
OFFICE = {"docx": "word/", "pptx": "ppt/", "xlsx": "xl/"}
LEGACY_OFFICE = {".doc", ".ppt", ".xls"}
IMAGES = {".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".bmp", ".webp"}
SUPPORTED = "PDF, DOCX, PPTX, XLSX/XLSM, CSV/TSV, HTML, Markdown, JSON, plain text"


def check_size(size: int, max_file_mb: float, name: str) -> None:
    if size > max_file_mb * MB:
        raise TooLarge(
            f"{name} is {size / MB:.1f} MB, over the {max_file_mb:g} MB limit (parse.max_file_mb); "
            "split the file or raise the limit in the config"
        )


def _looks_textual(head: bytes) -> bool:
    return b"\x00" not in head or head.startswith((b"\xff\xfe", b"\xfe\xff"))


def _zip_kind(data: bytes) -> str | None:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return None
    for fmt, prefix in OFFICE.items():
        if any(n.startswith(prefix) for n in names):
            return fmt
    return None


def detect_format(data: bytes, filename: str) -> str:
    """The format to parse ``data`` as: by magic bytes for PDF/Office, else by extension.

    Raises InvalidInput for images, legacy Office files and unknown binary types."""
    suffix = PurePath(filename).suffix.lower()
    head = data[:2048]
    if head.lstrip()[:5] == b"%PDF-" or (suffix == ".pdf" and b"%PDF-" in data[:1024]):
        return "pdf"
    by_ext = EXTENSIONS.get(suffix)
    if head.startswith(b"PK\x03\x04") or by_ext in OFFICE:
        kind = _zip_kind(data) if head.startswith(b"PK") else None
        if kind:
            return kind
        if by_ext in OFFICE:
            raise InvalidInput(
                f"{filename} is not a valid {by_ext.upper()} file (not an Office Open XML zip); "
                "it may be corrupted or mislabelled: re-export it from the source application"
            )
        raise InvalidInput(f"{filename} is a zip archive of an unsupported kind; supported: {SUPPORTED}")
    if suffix == ".pdf":
        raise InvalidInput(f"{filename} does not start with a PDF header: the file is corrupted or not a PDF")
    if suffix in IMAGES:
        raise InvalidInput(
            f"{filename} is an image; OCR is not available in this server, so images cannot be parsed. "
            f"Supported: {SUPPORTED}"
        )
    if suffix in LEGACY_OFFICE:
        raise InvalidInput(
            f"{filename} is a legacy binary Office file ({suffix}); save it as {suffix}x and parse that"
        )
    if by_ext:
        return by_ext
    if suffix in ("", ".dat") and _looks_textual(head):
        return "text"
    if not _looks_textual(head):
        raise InvalidInput(f"unsupported file type '{suffix or filename}' (binary content); supported: {SUPPORTED}")
    raise InvalidInput(f"unsupported file type '{suffix}'; supported: {SUPPORTED}")


def check_zip(data: bytes, max_uncompressed_mb: float, name: str) -> None:
    """Refuse Office files whose members would unzip past the cap, before any library opens them.

    Reads only the zip central directory (declared sizes); Python's zip reader never
    returns more than the declared size of a member, so a lying header cannot get past it."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise InvalidInput(f"{name} is a corrupted zip container ({exc}); re-export the file") from exc
    total = sum(info.file_size for info in infos)
    if total > max_uncompressed_mb * MB:
        raise TooLarge(
            f"{name} would unzip to {total / MB:.0f} MB, over the {max_uncompressed_mb:g} MB cap "
            "(parse.max_uncompressed_mb); it may be a zip bomb. Refusing to open it"
        )
