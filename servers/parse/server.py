"""MCP façade of the parse library: ``parse_document``, ``parse_files``, ``chunk``."""

from __future__ import annotations

import base64
import binascii
import fnmatch
from pathlib import Path
from typing import Annotated, Literal

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from servers.core.errors import InvalidInput, NotFound, QuiverError
from servers.core.roots import resolve_under_roots
from servers.core.settings import Settings
from servers.parse import guards
from servers.parse.catalog import SupportedFormats, supported_formats
from servers.parse.chunking import Chunk, chunk_document, chunk_text
from servers.parse.isolated import parse_bytes_isolated, parse_file_isolated
from servers.parse.ocr import OcrMode, PictureMode, with_ocr_options
from servers.parse.schema import ParsedDocument

OCR_HELP = (
    "OCR of images and PDF pages: 'auto' (default) only pages without a usable text layer, 'always' every "
    "page (replaces the text layer), 'never' none"
)
OCR_IMAGES_HELP = (
    "read the text in pictures inside DOCX/PPTX/XLSX/PDF/ODF and insert it where the picture stands: "
    "'never' (default, fast), 'auto' (large pictures only), 'always' (true = always); ~1-3 s per picture"
)

INSTRUCTIONS = (
    "Turns files (PDF incl. scanned pages, DOCX, PPTX, XLSX/XLS, ODF, RTF, EPUB, HTML, Markdown, CSV, JSON, "
    "notebooks, RSS/Atom/XML, ZIP, e-mail, images via OCR, text) into Markdown plus "
    "structure, and splits text into retrieval-sized chunks. Use `parse_document` for one file, "
    "`parse_files` for a folder or a list of files, and `chunk` to split text or a file into chunks. "
    "Files must lie under the server's allowed roots; each file is parsed under a time limit and a memory cap, "
    "and a file past them gets an error that says so."
)


class ParseResult(ParsedDocument):
    """A parsed document; ``markdown`` may be cut to ``max_chars`` (spans refer to the full text)."""

    markdown_chars: int = Field(description="length of the full Markdown in characters")
    truncated: bool = Field(default=False, description="true when markdown was cut to max_chars")


class FileSummary(BaseModel):
    path: str
    ok: bool
    error: str | None = Field(default=None, description="why this file failed (the others still parsed)")
    doc_id: str | None = None
    title: str | None = None
    format: str | None = None
    pages: int | None = None
    sections: int = 0
    tables: int = 0
    markdown_chars: int = 0
    warnings: list[str] = Field(default_factory=list)
    markdown: str | None = Field(default=None, description="when include_markdown is true, cut to max_chars")


class ParseFilesResult(BaseModel):
    files: list[FileSummary]
    parsed: int
    failed: int
    skipped: list[str] = Field(default_factory=list, description="files not attempted (unsupported type, over max_files)")


class ChunkResult(BaseModel):
    doc_id: str
    strategy: str
    unit: str
    size: int
    count: int = Field(description="number of chunks produced")
    chunks: list[Chunk] = Field(description="chunks in document order (at most max_chunks)")
    truncated: bool = Field(default=False, description="true when more than max_chunks were produced")


def _cut(text: str, limit: int | None) -> tuple[str, bool]:
    if limit is None or len(text) <= limit:
        return text, False
    return text[:limit], True


def _list_folder(folder: Path, recursive: bool, pattern: str | None) -> list[Path]:
    walker = folder.rglob("*") if recursive else folder.glob("*")
    out = []
    for path in walker:
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if path.is_file() and (pattern is None or fnmatch.fnmatch(path.name, pattern)):
            out.append(path)
    return sorted(out)


def build_server(settings: Settings) -> MCPServer:
    app = MCPServer("quiver-parse", instructions=INSTRUCTIONS)
    roots = settings.root_paths()
    opts = settings.parse

    def load(
        path: str | None, content_base64: str | None, filename: str | None, ocr: OcrMode | None = None,
        ocr_images: PictureMode | bool | None = None,
    ) -> ParsedDocument:
        if (path is None) == (content_base64 is None):
            raise InvalidInput("give exactly one of `path` (a file path or file:// URI) or `content_base64` (+ `filename`)")
        opts = with_ocr_options(settings.parse, ocr, ocr_images)
        if path is not None:
            return parse_file_isolated(path, roots, opts)
        if not filename:
            raise InvalidInput("`filename` is required with `content_base64` (its extension picks the format)")
        if len(content_base64) > opts.max_file_mb * guards.MB * 4 / 3 + 8:
            guards.check_size(len(content_base64) * 3 // 4, opts.max_file_mb, filename)
        try:
            data = base64.b64decode(content_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(f"content_base64 is not valid base64 ({exc}); encode the raw file bytes") from exc
        return parse_bytes_isolated(data, filename, opts, source=filename)

    @app.tool(
        name="parse_document",
        description=(
            "Parse one file into Markdown with its title, format, page count, sections (heading paths with "
            "character spans), tables, metadata (size, sha256, author, dates; OCR'd pages and block confidences "
            "under metadata.extra.ocr) and warnings. Reads PDF, DOCX, PPTX, XLSX/XLS, ODT/ODS/ODP, RTF, EPUB, "
            "HTML, Markdown, CSV, JSON, Jupyter notebooks, RSS/Atom/XML, ZIP archives, e-mail (.eml/.msg) and "
            "images (PNG, JPEG, TIFF, ...); images and scanned PDF pages are read by OCR (a few seconds per page). "
            "Give a path or file:// URI under the allowed roots, or base64 content plus a filename."
        ),
    )
    async def parse_document(
        path: Annotated[str | None, Field(description="file path (relative to the first root) or file:// URI")] = None,
        content_base64: Annotated[str | None, Field(description="the file's bytes, base64-encoded (instead of path)")] = None,
        filename: Annotated[str | None, Field(description="name with extension for content_base64, e.g. 'report.pdf'")] = None,
        include_markdown: Annotated[bool, Field(description="return the Markdown text (false: structure only)")] = True,
        max_chars: Annotated[int | None, Field(description="cut the returned Markdown to this many characters", ge=1)] = 100_000,
        ocr: Annotated[OcrMode | None, Field(description=OCR_HELP)] = None,
        ocr_images: Annotated[PictureMode | bool | None, Field(description=OCR_IMAGES_HELP)] = None,
    ) -> ParseResult:
        doc = await anyio.to_thread.run_sync(load, path, content_base64, filename, ocr, ocr_images)
        markdown, truncated = _cut(doc.markdown, max_chars) if include_markdown else ("", False)
        payload = doc.model_dump()
        payload.update(markdown=markdown, markdown_chars=len(doc.markdown), truncated=truncated)
        return ParseResult.model_validate(payload)

    @app.tool(
        name="parse_files",
        description=(
            "Parse many files at once: every supported file in a folder (optionally recursive, filtered by a "
            "glob pattern like '*.pdf') or an explicit list of paths. Reports progress; a file that fails is "
            "reported with its error and the rest still parse. Returns one summary per file (title, format, "
            "pages, counts, warnings; Markdown only if asked)."
        ),
    )
    async def parse_files(
        ctx: Context,
        folder: Annotated[str | None, Field(description="a folder under the allowed roots")] = None,
        paths: Annotated[list[str] | None, Field(description="explicit file paths or file:// URIs")] = None,
        recursive: Annotated[bool, Field(description="include subfolders of `folder`")] = False,
        pattern: Annotated[str | None, Field(description="glob on file names, e.g. '*.docx'")] = None,
        include_markdown: Annotated[bool, Field(description="include each file's Markdown (cut to max_chars)")] = False,
        max_chars: Annotated[int, Field(description="per-file Markdown limit when include_markdown is true", ge=1)] = 20_000,
        ocr: Annotated[OcrMode | None, Field(description=OCR_HELP)] = None,
        ocr_images: Annotated[PictureMode | bool | None, Field(description=OCR_IMAGES_HELP)] = None,
    ) -> ParseFilesResult:
        file_opts = with_ocr_options(opts, ocr, ocr_images)
        if (folder is None) == (paths is None):
            raise InvalidInput("give exactly one of `folder` or `paths`")
        skipped: list[str] = []
        if folder is not None:
            base = resolve_under_roots(folder, roots)
            if not base.is_dir():
                raise InvalidInput(f"{base} is a file, not a folder: use parse_document, or pass it in `paths`")
            found = await anyio.to_thread.run_sync(_list_folder, base, recursive, pattern)
            targets: list[str] = []
            for file in found:
                if file.suffix.lower() in guards.EXTENSIONS:
                    targets.append(str(file))
                else:
                    skipped.append(f"{file} (unsupported type)")
        else:
            if not paths:
                raise InvalidInput("`paths` is empty: list at least one file")
            targets = list(paths)
        if len(targets) > opts.max_files:
            skipped += [f"{t} (over parse.max_files={opts.max_files})" for t in targets[opts.max_files :]]
            targets = targets[: opts.max_files]
        if not targets:
            raise NotFound(f"no supported files found{' in ' + folder if folder else ''}; supported: {guards.SUPPORTED}")
        results: list[FileSummary] = []
        for done, target in enumerate(targets):
            await ctx.report_progress(done, len(targets), f"parsing {Path(target).name}")
            try:
                doc = await anyio.to_thread.run_sync(parse_file_isolated, target, roots, file_opts)
            except QuiverError as exc:
                results.append(FileSummary(path=target, ok=False, error=str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - one bad file must not abort the batch
                results.append(FileSummary(path=target, ok=False, error=f"internal error: {type(exc).__name__}"))
                continue
            markdown = _cut(doc.markdown, max_chars)[0] if include_markdown else None
            results.append(
                FileSummary(
                    path=doc.source, ok=True, doc_id=doc.doc_id, title=doc.title, format=doc.format,
                    pages=doc.pages, sections=len(doc.sections), tables=len(doc.tables),
                    markdown_chars=len(doc.markdown), warnings=doc.warnings, markdown=markdown,
                )
            )
        await ctx.report_progress(len(targets), len(targets), "done")
        failed = sum(1 for r in results if not r.ok)
        return ParseFilesResult(files=results, parsed=len(results) - failed, failed=failed, skipped=skipped)

    @app.tool(
        name="chunk",
        description=(
            "Split text or a file into chunks for embedding and retrieval. Strategies: 'structure' (default: "
            "at headings and paragraphs, tables and code kept whole), 'recursive' (paragraph → sentence → word "
            "separators), 'fixed' (windows with overlap), 'semantic' (breaks where the topic shifts). Size "
            "and overlap count tokens of the embedder's tokenizer or characters. Each chunk has a stable id, "
            "heading path, pages and character span."
        ),
    )
    async def chunk(
        text: Annotated[str | None, Field(description="Markdown or plain text to split (instead of path)")] = None,
        path: Annotated[str | None, Field(description="a file under the allowed roots; it is parsed first")] = None,
        strategy: Annotated[
            Literal["structure", "recursive", "fixed", "semantic"], Field(description="how to split")
        ] = "structure",
        size: Annotated[int, Field(description="target maximum chunk size in `unit`s", ge=8, le=8192)] = 256,
        overlap: Annotated[int, Field(description="units repeated between neighbours (fixed, recursive)", ge=0)] = 32,
        unit: Annotated[Literal["tokens", "chars"], Field(description="what size counts")] = "tokens",
        embedder: Annotated[
            str | None, Field(description="embedder whose tokenizer counts tokens (default: the configured one)")
        ] = None,
        max_chunks: Annotated[int, Field(description="return at most this many chunks", ge=1)] = 500,
    ) -> ChunkResult:
        if (text is None) == (path is None):
            raise InvalidInput("give exactly one of `text` or `path`")
        if overlap >= size:
            raise InvalidInput(f"overlap ({overlap}) must be smaller than size ({size})")
        options = dict(strategy=strategy, size=size, overlap=overlap, unit=unit, tokenizer=embedder, settings=settings)

        def work() -> tuple[str, list[Chunk]]:
            if text is not None:
                if not text.strip():
                    raise InvalidInput("`text` is empty")
                chunks = chunk_text(text, **options)
                return (chunks[0].doc_id if chunks else ""), chunks
            doc = parse_file_isolated(path, roots, opts)
            return doc.doc_id, chunk_document(doc, **options)

        doc_id, chunks = await anyio.to_thread.run_sync(work)
        return ChunkResult(
            doc_id=doc_id, strategy=strategy, unit=unit, size=size, count=len(chunks),
            chunks=chunks[:max_chunks], truncated=len(chunks) > max_chunks,
        )

    @app.tool(
        name="supported_formats",
        description=(
            "List the file formats this server parses (extensions, what is extracted, what is left out and why), "
            "the formats it refuses, and how OCR works and what it costs. Call it before parsing an unusual file."
        ),
    )
    async def list_supported_formats() -> SupportedFormats:
        return supported_formats()

    return app


def protocol_examples(workdir: Path) -> list[tuple[str, dict]]:
    """Calls covering every tool, against files created under ``workdir``."""
    docs = workdir / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    note = docs / "note.md"
    note.write_text(
        "# Quiver\n\nQuiver parses files.\n\n## Tables\n\nSizes:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", encoding="utf-8"
    )
    (docs / "data.csv").write_text("name,value\nalpha,1\nbeta,2\n", encoding="utf-8")
    html = "<html><body><main><h1>Hi</h1><p>Some <a href='https://x.org'>link</a>.</p></main></body></html>"
    scans = workdir / "scans"
    scans.mkdir(parents=True, exist_ok=True)
    sign, memo = _ocr_examples(scans)
    return [
        ("parse_document", {"path": str(note)}),
        ("parse_document", {"path": str(sign), "ocr": "always"}),
        ("parse_document", {"path": str(memo), "ocr": "auto", "ocr_images": True, "max_chars": 2000}),
        ("parse_document", {"content_base64": base64.b64encode(html.encode()).decode(), "filename": "page.html"}),
        ("parse_files", {"folder": str(docs)}),
        ("supported_formats", {}),
        ("chunk", {"text": "# Title\n\nFirst paragraph.\n\nSecond paragraph.", "unit": "chars", "size": 64, "overlap": 8}),
    ]


def _ocr_examples(folder: Path) -> tuple[Path, Path]:
    """A small picture of text, and a DOCX holding it, for the OCR parameters' examples."""
    import io

    import docx
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 28)
    except OSError:
        font = ImageFont.load_default(28)
    image = Image.new("RGB", (520, 120), "white")
    ImageDraw.Draw(image).text((20, 40), "Quiver reads pictures", font=font, fill="black")
    sign = folder / "sign.png"
    image.save(sign)
    document = docx.Document()
    document.add_paragraph("The picture below holds text.")
    buf = io.BytesIO()
    image.save(buf, "PNG")
    document.add_picture(io.BytesIO(buf.getvalue()))
    memo = folder / "memo.docx"
    document.save(memo)
    return sign, memo
