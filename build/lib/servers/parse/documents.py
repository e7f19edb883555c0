"""Parse a file into a :class:`ParsedDocument`: guards first (size, type, zip bomb),
then the format's converter, then structure derived from the Markdown (sections,
tables, page spans)."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from pathlib import Path
from typing import TYPE_CHECKING

from servers.core.errors import InvalidInput, NotFound, QuiverError
from servers.core.roots import check_size
from servers.core.settings import ParseSettings
from servers.parse import guards
from servers.parse.formats import Converted
from servers.parse.markdown import blocks, page_spans, section_spans
from servers.parse.schema import DocMetadata, PageSpan, ParsedDocument, SectionInfo, TableInfo

if TYPE_CHECKING:
    from servers.parse.pictures import DocumentOcr

# formats whose converters live in servers/parse/formats/extended.py's table
EXTENDED = {"image", "epub", "notebook", "feed", "xml", "zip", "xls", "eml", "msg", "rtf", "odt", "ods", "odp"}


def _convert(data: bytes, name: str, fmt: str, settings: ParseSettings) -> tuple[Converted, str | None]:
    """Run the converter for ``fmt``; returns the result and the detected text encoding."""
    if fmt in guards.ZIPPED:
        guards.check_zip(data, settings.max_uncompressed_mb, name)
    if fmt in EXTENDED:
        from servers.parse.formats.extended import convert_extended

        return convert_extended(data, name, fmt, settings)
    if fmt == "pdf":
        guards.check_pdf_streams(data, settings.max_stream_mb, settings.max_uncompressed_mb, name)
    if fmt in ("pdf", "docx", "pptx", "xlsx"):
        from servers.parse.pictures import DocumentOcr

        ocr = DocumentOcr.for_format(fmt, settings)
        return ocr.finish(_convert_office(data, name, fmt, settings, ocr)), None
    from servers.parse.formats import text as textfmt

    text, encoding = textfmt.decode(data, name)
    if fmt == "csv":
        from servers.parse.formats.tabular import convert_csv

        return convert_csv(text, name, max_rows=settings.max_rows), encoding
    if fmt == "html":
        from servers.parse.formats.html import convert_html

        return convert_html(text, name), encoding
    if fmt == "markdown":
        return textfmt.convert_markdown(text), encoding
    if fmt == "json":
        return textfmt.convert_json(text, name), encoding
    return textfmt.convert_text(text), encoding


def _convert_office(data: bytes, name: str, fmt: str, settings: ParseSettings, ocr: DocumentOcr | None) -> Converted:
    pictures = ocr.picture_text if ocr is not None and ocr.reads_pictures else None
    if fmt == "pdf":
        from servers.parse.formats.pdf import convert_pdf

        return convert_pdf(data, name, max_pages=settings.max_pages, tables=settings.pdf_tables, ocr=ocr)
    if fmt == "docx":
        from servers.parse.formats.docx import convert_docx

        return convert_docx(data, name, pictures=pictures)
    if fmt == "pptx":
        from servers.parse.formats.pptx import convert_pptx

        return convert_pptx(data, name, pictures=pictures)
    from servers.parse.formats.tabular import convert_xlsx

    return convert_xlsx(data, name, max_rows=settings.max_rows, pictures=pictures)


def structure(markdown: str) -> tuple[list[PageSpan], list[SectionInfo], list[TableInfo]]:
    """Page spans, sections and tables located in a Markdown string."""
    parsed = blocks(markdown)
    pages = [PageSpan(page=p, start=s, end=e) for p, s, e in page_spans(markdown)]
    sections = [
        SectionInfo(heading_path=list(h.path), level=h.level, start=h.start, end=end)
        for h, end in section_spans(markdown, parsed)
    ]

    starts = [p.start for p in pages]

    def page_at(offset: int) -> int | None:
        i = bisect_right(starts, offset) - 1
        return pages[i].page if i >= 0 and offset < pages[i].end else None

    tables = [
        TableInfo(markdown=markdown[b.start : b.end], page=page_at(b.start), start=b.start, end=b.end)
        for b in parsed
        if b.kind == "table"
    ]
    return pages, sections, tables


def parse_bytes(data: bytes, filename: str, settings: ParseSettings | None = None, *, source: str | None = None) -> ParsedDocument:
    """Parse file content; ``filename`` picks the format when the bytes do not tell.

    Raises a QuiverError subclass (InvalidInput, TooLarge) for bad input."""
    settings = settings or ParseSettings()
    name = Path(filename).name or "document"
    check_size(len(data), settings.max_file_mb, name)
    fmt = guards.detect_format(data, name)
    try:
        converted, encoding = _convert(data, name, fmt, settings)
    except QuiverError:
        raise
    except Exception as exc:  # noqa: BLE001 - any library failure on bad bytes is a bad-input error
        raise InvalidInput(
            f"{name} could not be parsed as {fmt.upper()} ({type(exc).__name__}: {str(exc)[:200]}); "
            "the file is corrupted or not really that format"
        ) from exc
    return _document(converted, data, fmt, source or filename, encoding)


def parse_text(text: str, *, source: str, settings: ParseSettings | None = None) -> ParsedDocument:
    """Parse text given as a string (not a file): Markdown structure is read, plain text stays as is.
    No format sniffing: a string that starts like a PDF or a zip is still text."""
    settings = settings or ParseSettings()
    data = text.encode("utf-8")
    check_size(len(data), settings.max_file_mb, source)
    from servers.parse.formats.text import convert_markdown

    return _document(convert_markdown(text), data, "markdown", source, None)


def _document(converted: Converted, data: bytes, fmt: str, source: str, encoding: str | None) -> ParsedDocument:
    """The parsed document: the converter's Markdown, its structure, metadata and warnings."""
    markdown = converted.markdown
    pages, sections, tables = structure(markdown)
    digest = hashlib.sha256(data).hexdigest()
    extra = dict(converted.extra)
    if encoding:
        extra["encoding"] = encoding
    title = converted.title or next((s.heading_path[-1] for s in sections), None)
    warnings = list(converted.warnings)
    if not markdown.strip():
        warnings.append("the document contains no text")
    return ParsedDocument(
        doc_id=digest,
        source=source,
        title=title,
        format=fmt,
        markdown=markdown,
        pages=converted.pages,
        page_spans=pages,
        sections=sections,
        tables=tables,
        metadata=DocMetadata(
            size=len(data),
            sha256=digest,
            author=converted.author,
            created=converted.created,
            modified=converted.modified,
            extra=extra,
        ),
        warnings=warnings,
    )


def parse_path(path: Path, settings: ParseSettings | None = None) -> ParsedDocument:
    """Parse a file on disk (the caller has already checked it against the roots)."""
    settings = settings or ParseSettings()
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"no file at {path}" + (" (it is a folder: use parse_files)" if path.is_dir() else ""))
    check_size(path.stat().st_size, settings.max_file_mb, path.name)
    return parse_bytes(path.read_bytes(), path.name, settings, source=str(path))
