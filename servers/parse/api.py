"""The parse capability's public functions, one per MCP tool (same names and arguments).

``server.py`` exposes them as tools; files are read only under the settings' roots and
within ``settings.parse``'s limits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from servers.core.errors import InvalidInput, NotFound, QuiverError
from servers.core.progress import Progress, no_progress
from servers.core.roots import resolve_under_roots
from servers.core.settings import Settings
from servers.parse import catalog, guards
from servers.parse.catalog import SupportedFormats
from servers.parse.chunking import chunk_document, chunk_text
from servers.parse.inputs import load_document, supported, walk_files
from servers.parse.isolated import parse_file_isolated
from servers.parse.ocr import OcrMode, PictureMode, with_ocr_options
from servers.parse.schema import ChunkResult, FileSummary, ParseFilesResult, ParseResult

OCR_HELP = (
    "OCR of images and PDF pages: 'auto' (default) only pages without a usable text layer, 'always' every "
    "page (replaces the text layer), 'never' none"
)
OCR_IMAGES_HELP = (
    "read the text in pictures inside DOCX/PPTX/XLSX/PDF/ODF and insert it where the picture stands: "
    "'never' (default, fast), 'auto' (large pictures only), 'always' (true = always); ~1-3 s per picture"
)


def _cut(text: str, limit: int | None) -> tuple[str, bool]:
    if limit is None or len(text) <= limit:
        return text, False
    return text[:limit], True


def parse_document(
    settings: Settings,
    path: Annotated[str | None, Field(description="file path (relative to the first root), file:// URI or "
                                                  "http(s):// URL")] = None,
    content_base64: Annotated[str | None, Field(description="the file's bytes, base64-encoded (instead of path)")] = None,
    filename: Annotated[str | None, Field(description="name with extension for content_base64, e.g. 'report.pdf'")] = None,
    include_markdown: Annotated[bool, Field(description="return the Markdown text (false: structure only)")] = True,
    max_chars: Annotated[int | None, Field(description="page size: Markdown characters returned per call",
                                           ge=1)] = 100_000,
    offset: Annotated[int, Field(description="character offset to start from (the previous call's next_offset)",
                                 ge=0)] = 0,
    ocr: Annotated[OcrMode | None, Field(description=OCR_HELP)] = None,
    ocr_images: Annotated[PictureMode | bool | None, Field(description=OCR_IMAGES_HELP)] = None,
) -> ParseResult:
    """One file → Markdown and structure, the Markdown one page (``max_chars`` from ``offset``) at a time;
    spans refer to the full text. ``http(s)://`` URLs are fetched behind the SSRF guard."""
    doc = load_document(settings, path, content_base64, filename, ocr, ocr_images)
    full = doc.markdown
    if offset > len(full):
        raise InvalidInput(f"offset {offset} is past the end of the Markdown ({len(full)} characters)")
    end = len(full) if max_chars is None else min(len(full), offset + max_chars)
    page = full[offset:end] if include_markdown else ""
    more = include_markdown and end < len(full)
    return ParseResult.model_validate(
        doc.model_dump() | {"markdown": page, "markdown_chars": len(full), "offset": offset if include_markdown else 0,
                            "truncated": more, "next_offset": end if more else None}
    )


def parse_files(
    settings: Settings,
    folder: Annotated[str | None, Field(description="a folder under the allowed roots")] = None,
    paths: Annotated[list[str] | None, Field(description="explicit file paths or file:// URIs")] = None,
    recursive: Annotated[bool, Field(description="include subfolders of `folder`")] = False,
    pattern: Annotated[str | None, Field(description="glob on file names, e.g. '*.docx'")] = None,
    include_markdown: Annotated[bool, Field(description="include each file's Markdown (cut to max_chars)")] = False,
    max_chars: Annotated[int, Field(description="per-file Markdown limit when include_markdown is true", ge=1)] = 20_000,
    ocr: Annotated[OcrMode | None, Field(description=OCR_HELP)] = None,
    ocr_images: Annotated[PictureMode | bool | None, Field(description=OCR_IMAGES_HELP)] = None,
    progress: Progress | None = None,
) -> ParseFilesResult:
    """Many files: a folder's supported files, or a list of paths; a file that fails is reported, the rest parse."""
    if (folder is None) == (paths is None):
        raise InvalidInput("give exactly one of `folder` or `paths`")
    roots, opts, report = settings.root_paths(), with_ocr_options(settings.parse, ocr, ocr_images), progress or no_progress
    skipped: list[str] = []
    if folder is not None:
        base = resolve_under_roots(folder, roots)
        if not base.is_dir():
            raise InvalidInput(f"{base} is a file, not a folder: use parse_document, or pass it in `paths`")
        found, skipped = supported(list(walk_files(base, recursive=recursive, pattern=pattern, skip=settings.data_path)))
        targets = [str(f) for f in found]
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
        report(done, len(targets), f"parsing {Path(target).name}")
        try:
            doc = parse_file_isolated(target, roots, opts)
        except QuiverError as exc:
            results.append(FileSummary(path=target, ok=False, error=str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - one bad file must not abort the batch
            results.append(FileSummary(path=target, ok=False, error=f"internal error: {type(exc).__name__}"))
            continue
        results.append(FileSummary(
            path=doc.source, ok=True, doc_id=doc.doc_id, title=doc.title, format=doc.format, pages=doc.pages,
            sections=len(doc.sections), tables=len(doc.tables), markdown_chars=len(doc.markdown),
            warnings=doc.warnings, markdown=_cut(doc.markdown, max_chars)[0] if include_markdown else None,
        ))
    report(len(targets), len(targets), "done")
    failed = sum(1 for r in results if not r.ok)
    return ParseFilesResult(files=results, parsed=len(results) - failed, failed=failed, skipped=skipped)


def chunk(
    settings: Settings,
    text: Annotated[str | None, Field(description="Markdown or plain text to split (instead of path)")] = None,
    path: Annotated[str | None, Field(description="a file under the allowed roots; it is parsed first")] = None,
    strategy: Annotated[Literal["structure", "recursive", "fixed", "semantic"], Field(description="how to split")] = "structure",
    size: Annotated[int, Field(description="target maximum chunk size in `unit`s", ge=8, le=8192)] = 256,
    overlap: Annotated[int, Field(description="units repeated between neighbours (fixed, recursive)", ge=0)] = 32,
    unit: Annotated[Literal["tokens", "chars"], Field(description="what size counts")] = "tokens",
    embedder: Annotated[
        str | None, Field(description="embedder whose tokenizer counts tokens (default: the configured one)")
    ] = None,
    max_chunks: Annotated[int, Field(description="page size: chunks returned per call", ge=1)] = 500,
    offset: Annotated[int, Field(description="index of the first chunk to return (the previous next_offset)", ge=0)] = 0,
) -> ChunkResult:
    """Text or a file → chunks with stable ids, heading paths, pages and spans."""
    if (text is None) == (path is None):
        raise InvalidInput("give exactly one of `text` or `path`")
    if overlap >= size:
        raise InvalidInput(f"overlap ({overlap}) must be smaller than size ({size})")
    options = {"strategy": strategy, "size": size, "overlap": overlap, "unit": unit, "tokenizer": embedder,
               "settings": settings}
    if text is not None:
        if not text.strip():
            raise InvalidInput("`text` is empty")
        chunks = chunk_text(text, **options)
        doc_id = chunks[0].doc_id if chunks else ""
    else:
        doc = parse_file_isolated(path or "", settings.root_paths(), settings.parse)
        doc_id, chunks = doc.doc_id, chunk_document(doc, **options)
    end = min(len(chunks), offset + max_chunks)
    more = end < len(chunks)
    return ChunkResult(doc_id=doc_id, strategy=strategy, unit=unit, size=size, count=len(chunks), offset=offset,
                       chunks=chunks[offset:end], truncated=more, next_offset=end if more else None)


def supported_formats() -> SupportedFormats:
    """The formats this server parses (extensions, what is read and left out), those it refuses, and how OCR works."""
    return catalog.supported_formats()
