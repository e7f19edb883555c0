"""Checks that run before any parsing library sees the bytes: size caps, format
detection, and the zip-bomb guard for Office files."""

from __future__ import annotations

import io
import re
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
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".gif": "image",
    ".tif": "image",
    ".tiff": "image",
    ".bmp": "image",
    ".webp": "image",
    ".epub": "epub",
    ".ipynb": "notebook",
    ".rss": "feed",
    ".atom": "feed",
    ".xml": "xml",
    ".zip": "zip",
    ".xls": "xls",
    ".eml": "eml",
    ".msg": "msg",
    ".rtf": "rtf",
    ".odt": "odt",
    ".ods": "ods",
    ".odp": "odp",
}
OFFICE = {"docx": "word/", "pptx": "ppt/", "xlsx": "xl/"}
# zip containers: each is checked against the unzipped-size cap before any library opens it
ZIPPED = {"docx", "pptx", "xlsx", "epub", "odt", "ods", "odp", "zip"}
ODF_MIMETYPES = {
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/epub+zip": "epub",
}
FEED_ROOT = re.compile(rb"<(?:rss[\s>]|feed\s[^>]*http://www\.w3\.org/2005/Atom|rdf:RDF\s[^>]*purl\.org/rss/1\.0)")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
LEGACY_OFFICE = {".doc", ".ppt"}
IMAGES = {".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".bmp", ".webp"}
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
SUPPORTED = (
    "PDF (scanned pages OCR'd), DOCX, PPTX, XLSX/XLSM, XLS, ODT/ODS/ODP, RTF, EPUB, CSV/TSV, HTML, Markdown, "
    "JSON, Jupyter notebooks, RSS/Atom and other XML, ZIP archives, e-mail (EML, Outlook MSG), "
    "images (PNG, JPEG, TIFF, BMP, GIF, WebP; OCR), plain text"
)


def check_size(size: int, max_file_mb: float, name: str) -> None:
    if size > max_file_mb * MB:
        raise TooLarge(
            f"{name} is {size / MB:.1f} MB, over the {max_file_mb:g} MB limit (parse.max_file_mb); "
            "split the file or raise the limit in the config"
        )


def _looks_textual(head: bytes) -> bool:
    return b"\x00" not in head or head.startswith((b"\xff\xfe", b"\xfe\xff"))


def _zip_kind(data: bytes) -> str | None:
    """docx/pptx/xlsx/epub/odt/ods/odp by the zip's members, "zip" for any other archive, None if not a zip."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    for fmt, prefix in OFFICE.items():
        if any(n.startswith(prefix) for n in names):
            return fmt
    if "mimetype" in names:
        try:
            with archive.open("mimetype") as member:
                mimetype = member.read(100).decode("ascii", "replace").strip()
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, ValueError, OSError):
            mimetype = ""
        if mimetype in ODF_MIMETYPES:
            return ODF_MIMETYPES[mimetype]
    if "META-INF/container.xml" in names:
        return "epub"
    return "zip"


def _is_image(head: bytes) -> bool:
    return head.startswith(IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def detect_format(data: bytes, filename: str) -> str:
    """The format to parse ``data`` as: by magic bytes for PDF/Office, else by extension.

    Raises InvalidInput for legacy Word/PowerPoint files and unknown binary types."""
    suffix = PurePath(filename).suffix.lower()
    head = data[:2048]
    if head.lstrip()[:5] == b"%PDF-" or (suffix == ".pdf" and b"%PDF-" in data[:1024]):
        return "pdf"
    by_ext = EXTENSIONS.get(suffix)
    if head.startswith(b"PK\x03\x04") or (by_ext in ZIPPED and by_ext != "zip"):
        kind = _zip_kind(data) if head.startswith(b"PK") else None
        if kind and (kind != "zip" or by_ext in (None, "zip")):
            return kind
        if by_ext in ZIPPED and by_ext != "zip":
            what = "an Office Open XML" if by_ext in OFFICE else ("an EPUB" if by_ext == "epub" else "an OpenDocument")
            raise InvalidInput(
                f"{filename} is not a valid {by_ext.upper()} file (not {what} zip); "
                "it may be corrupted or mislabelled: re-export it from the source application"
            )
        if kind == "zip":
            return "zip"
    if suffix == ".pdf":
        raise InvalidInput(f"{filename} does not start with a PDF header: the file is corrupted or not a PDF")
    if _is_image(head) or by_ext == "image":
        return "image"
    if head.startswith(OLE_MAGIC) and by_ext not in ("xls", "msg"):
        if suffix in LEGACY_OFFICE:
            raise InvalidInput(
                f"{filename} is a legacy binary Office file ({suffix}); save it as {suffix}x and parse that"
            )
        raise InvalidInput(
            f"{filename} is an OLE compound file of an unsupported kind; name .xls workbooks '.xls' and "
            f"Outlook messages '.msg'. Supported: {SUPPORTED}"
        )
    if suffix in LEGACY_OFFICE:
        raise InvalidInput(
            f"{filename} is a legacy binary Office file ({suffix}); save it as {suffix}x and parse that"
        )
    if by_ext == "xml" and FEED_ROOT.search(head):
        return "feed"
    if by_ext:
        return by_ext
    if suffix in ("", ".dat") and _looks_textual(head):
        return "text"
    if not _looks_textual(head):
        raise InvalidInput(f"unsupported file type '{suffix or filename}' (binary content); supported: {SUPPORTED}")
    raise InvalidInput(f"unsupported file type '{suffix}'; supported: {SUPPORTED}")


def check_zip(data: bytes, max_uncompressed_mb: float, name: str) -> None:
    """Refuse zip containers (Office, ODF, EPUB, archives) whose members would unzip past the cap, before any library opens them.

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
