"""Checks that run before any parsing library sees the bytes: size caps, format
detection, and the zip-bomb guard for Office files."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import PurePath

from servers.core.errors import InvalidInput, TooLarge
from servers.core.roots import MB

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


PDF_CHUNK = 1 << 16
PDF_DICT_LOOKBACK = 4096


def _zlib_header(two: bytes) -> bool:
    return len(two) == 2 and two[0] & 0x0F == 8 and (two[0] << 8 | two[1]) % 31 == 0


def _inflated_size(data: bytes, start: int, layers: int, cap: int) -> tuple[int, int]:
    """(bytes the zlib stream at ``start`` inflates to, through ``layers`` nested Flate filters;
    where it ends). Stops counting past ``cap``; raises zlib.error on data that is not zlib.
    Memory stays bounded: output is counted in 64 KB pieces and dropped."""
    decoders = [zlib.decompressobj() for _ in range(layers)]
    produced = 0
    pos = start

    def feed(level: int, chunk: bytes) -> int:
        decoder, out = decoders[level], 0
        while chunk:
            piece = decoder.decompress(chunk, PDF_CHUNK)
            chunk = decoder.unconsumed_tail
            if level + 1 < len(decoders):
                if piece and not decoders[level + 1].eof:
                    out += feed(level + 1, piece)
            else:
                out += len(piece)
            if out > cap or decoder.eof:
                break
        return out

    while pos < len(data) and not decoders[0].eof and produced <= cap:
        produced += feed(0, data[pos : pos + PDF_CHUNK])
        pos += PDF_CHUNK
    end = len(data) if not decoders[0].eof else min(pos, len(data)) - len(decoders[0].unused_data)
    return produced, end


def check_pdf_streams(data: bytes, max_stream_mb: float, max_total_mb: float, name: str) -> None:
    """Refuse a PDF whose Flate streams would inflate past ``max_stream_mb`` each or ``max_total_mb``
    together, before any PDF library inflates them (a few KB of zeros inflate to gigabytes).

    Scans the file for ``stream`` keywords and measures each zlib stream by inflating it in
    bounded pieces (nested ``/FlateDecode`` filters too). Image streams are skipped: text
    extraction never decodes them. Linear in the file size plus the inflated size measured."""
    stream_cap, total_cap = int(max_stream_mb * MB), int(max_total_mb * MB)
    total, pos = 0, 0
    while (i := data.find(b"stream", pos)) != -1:
        pos = i + 6
        if data[i - 3 : i] == b"end":
            continue
        start = pos + (2 if data[pos : pos + 2] == b"\r\n" else 1 if data[pos : pos + 1] in (b"\n", b"\r") else 0)
        if start == pos or not _zlib_header(data[start : start + 2]):
            continue
        head = data[max(0, i - PDF_DICT_LOOKBACK) : i]
        head = head[head.rfind(b"obj") + 1 :] if b"obj" in head else head
        if b"/Image" in head:
            continue
        layers = min(max(1, head.count(b"FlateDecode")), 4)
        try:
            size, end = _inflated_size(data, start, layers, min(stream_cap, total_cap - total))
        except zlib.error:
            continue  # not zlib after all, or corrupt: the PDF library reports it
        total += size
        if size > stream_cap or total > total_cap:
            what = (f"one of its streams inflates past {max_stream_mb:g} MB (parse.max_stream_mb)" if size > stream_cap
                    else f"its streams inflate past {max_total_mb:g} MB in all (parse.max_uncompressed_mb)")
            raise TooLarge(
                f"{name} is a {len(data) / MB:.1f} MB PDF, but {what}; it may be a decompression bomb. "
                "Refusing to parse it (raise the limit in the config if the file is genuine)"
            )
        pos = max(pos, end)
