"""What the parse library reads, per format, and what it does not read and why: the
``supported_formats`` tool's answer, kept beside the converters it describes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from servers.parse import guards


class FormatInfo(BaseModel):
    format: str = Field(description="the value of ParsedDocument.format")
    extensions: list[str]
    reads: str = Field(description="what comes out of such a file")
    not_read: str = Field(default="", description="what is left out, and why")


class Unsupported(BaseModel):
    extensions: list[str]
    why: str


class SupportedFormats(BaseModel):
    formats: list[FormatInfo]
    unsupported: list[Unsupported]
    ocr: str = Field(description="how OCR is used and what it costs")


READS: dict[str, tuple[str, str]] = {
    "pdf": ("text layer with headings, paragraphs, ruled tables, page markers; pages without a usable text layer "
            "OCR'd (ocr=auto); running headers/footers and page numbers moved to metadata",
            "encrypted PDFs (decrypt first); pictures on text pages only with ocr_images"),
    "docx": ("headings, nested lists, tables with merged cells, links, text boxes, equations; picture text with ocr_images",
             "comments, tracked deletions, headers/footers"),
    "pptx": ("one section per slide: title, bullets, tables, chart data, comments, notes; picture text with ocr_images", ""),
    "xlsx": ("one section per sheet, each block of cells a table (row cap); picture text with ocr_images",
             "formulas (their cached values are read), charts"),
    "xls": ("legacy Excel (BIFF5/8) like XLSX; HTML tables saved as .xls read as HTML", "encrypted workbooks, pictures"),
    "odt": ("headings, lists, tables, links, frames, footnotes; picture text with ocr_images", "tracked changes"),
    "ods": ("one section per sheet, tables (repeated rows/columns expanded up to the caps)", "formulas (values are read)"),
    "odp": ("one section per slide: title, frames, tables, speaker notes", ""),
    "rtf": ("text paragraphs, title/author/date from the info group",
            "headings and table structure (RTF has no reliable heading markup; striprtf yields plain text)"),
    "epub": ("chapters in spine order (headings, lists, quotes, emphasis, tables), title, authors, language, publisher",
             "DRM-protected books; images in the book are not OCR'd"),
    "notebook": ("markdown cells, code cells fenced with the kernel language, text outputs (parse.notebook_outputs)",
                 "image outputs, widget state"),
    "feed": ("RSS 0.9x/1.0/2.0 and Atom: feed title, each item a section with date, author, link and HTML body", ""),
    "xml": ("the text of any other XML document (no tags, no attributes)", "attribute values"),
    "zip": ("each member parsed by its type as a section named by its path; nested archives to parse.archive_max_depth",
            "encrypted members, members of unsupported types (listed in warnings)"),
    "eml": ("subject, From/To/Cc/Date block, body (plain text, else HTML), attachments listed and parsed as sections", ""),
    "msg": ("Outlook messages: the same as .eml (subject, sender, recipients, date, body, attachments)",
            "attached messages and OLE objects (listed, not parsed); RTF-only bodies"),
    "image": ("PNG, JPEG, TIFF (every page), BMP, GIF and WebP (first frame) through OCR: paragraphs in reading order, "
              "headings by size, EXIF camera/date/description, per-block confidence",
              "handwriting (poorly); HEIC/AVIF/SVG (not decoded); images over parse.max_image_pixels"),
    "csv": ("a table (delimiter sniffed, row cap)", ""),
    "html": ("main content: headings, lists, tables, links, code, quotes", "scripts, navigation, footers (dropped on purpose)"),
    "markdown": ("as is", ""),
    "json": ("pretty-printed in a fenced block", ""),
    "text": ("as is, encoding detected", ""),
}

UNSUPPORTED = [
    Unsupported(extensions=[".doc", ".ppt"], why="legacy binary Word/PowerPoint: no maintained pure-Python reader; "
                "save as .docx/.pptx"),
    Unsupported(extensions=[".mp3", ".wav", ".m4a", ".mp4", ".mov"], why="audio and video need speech recognition, "
                "which this server does not ship"),
    Unsupported(extensions=[".heic", ".avif", ".svg"], why="not decoded by the bundled Pillow; convert to PNG or JPEG"),
    Unsupported(extensions=[".7z", ".rar", ".tar", ".gz"], why="only ZIP archives are opened; extract others first"),
]


def supported_formats() -> SupportedFormats:
    by_format: dict[str, list[str]] = {}
    for ext, fmt in guards.EXTENSIONS.items():
        by_format.setdefault(fmt, []).append(ext)
    formats = [
        FormatInfo(format=fmt, extensions=sorted(by_format.get(fmt, [])), reads=reads, not_read=not_read)
        for fmt, (reads, not_read) in READS.items()
    ]
    return SupportedFormats(
        formats=formats,
        unsupported=UNSUPPORTED,
        ocr=("RapidOCR (PP-OCR, Chinese + English + Latin scripts; models ship in its wheel) or Tesseract "
             "(parse.ocr_engine). ocr='auto' reads only images and PDF pages without a usable text layer; "
             "a page costs roughly 1-5 s on a CPU core at 200 dpi. ocr_images reads pictures inside documents "
             "(off by default; 'auto' = large pictures only)."),
    )
