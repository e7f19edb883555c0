"""MCP façade of the parse capability: the tools are :mod:`servers.parse.api`'s functions."""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

from servers.core.boundary import Tools, new_server
from servers.core.settings import Settings
from servers.parse import api

INSTRUCTIONS = (
    "Turns files (PDF incl. scanned pages, DOCX, PPTX, XLSX/XLS, ODF, RTF, EPUB, HTML, Markdown, CSV, JSON, "
    "notebooks, RSS/Atom/XML, ZIP, e-mail, images via OCR, text) into Markdown plus "
    "structure, and splits text into retrieval-sized chunks. Use `parse_document` for one file, "
    "`parse_files` for a folder or a list of files, and `chunk` to split text or a file into chunks. "
    "Files must lie under the server's allowed roots; each file is parsed under a time limit and a memory cap, "
    "and a file past them gets an error that says so."
)
# Parsing changes nothing; parse_document may fetch an http(s) URL (behind the SSRF guard): an open world.
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
READS_URLS = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=True)


def build_server(settings: Settings) -> MCPServer:
    app = new_server("parse", title="Quiver parse", instructions=INSTRUCTIONS,
                     description="Files (PDF, Office, HTML, e-mail, images via OCR, ...) to Markdown, structure and chunks")
    tools = Tools(app, settings)
    tools.add(
        api.parse_document, name="parse_document", title="Parse a document", annotations=READS_URLS,
        description=(
            "Parse one file into Markdown with its title, format, page count, sections (heading paths with "
            "character spans), tables, metadata (size, sha256, author, dates; OCR'd pages and block confidences "
            "under metadata.extra.ocr) and warnings. Reads PDF, DOCX, PPTX, XLSX/XLS, ODT/ODS/ODP, RTF, EPUB, "
            "HTML, Markdown, CSV, JSON, Jupyter notebooks, RSS/Atom/XML, ZIP archives, e-mail (.eml/.msg) and "
            "images (PNG, JPEG, TIFF, ...); images and scanned PDF pages are read by OCR (a few seconds per page). "
            "Give a path or file:// URI under the allowed roots, or base64 content plus a filename."
        ),
    )
    tools.add(
        api.parse_files, name="parse_files", title="Parse many files", annotations=READ_ONLY,
        description=(
            "Parse many files at once: every supported file in a folder (optionally recursive, filtered by a "
            "glob pattern like '*.pdf') or an explicit list of paths. Reports progress; a file that fails is "
            "reported with its error and the rest still parse. Returns one summary per file (title, format, "
            "pages, counts, warnings; Markdown only if asked)."
        ),
    )
    tools.add(
        api.chunk, name="chunk", title="Split into chunks", annotations=READ_ONLY,
        description=(
            "Split text or a file into chunks for embedding and retrieval. Strategies: 'structure' (default: "
            "at headings and paragraphs, tables and code kept whole), 'recursive' (paragraph → sentence → word "
            "separators), 'fixed' (windows with overlap), 'semantic' (breaks where the topic shifts). Size "
            "and overlap count tokens of the embedder's tokenizer or characters. Each chunk has a stable id, "
            "heading path, pages and character span."
        ),
    )
    tools.add(
        api.supported_formats, name="supported_formats", title="Supported formats", annotations=READ_ONLY,
        description=(
            "List the file formats this server parses (extensions, what is extracted, what is left out and why), "
            "the formats it refuses, and how OCR works and what it costs. Call it before parsing an unusual file."
        ),
    )
    return app
