"""Where documents come from: files in a folder (one walker, also used by retrieval's ingest),
base64 content sent inline, paths checked against the allowed roots."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import os
from collections.abc import Iterator
from pathlib import Path

from servers.core.errors import InvalidInput
from servers.core.fetch import fetch_url, is_url
from servers.core.roots import MB, check_size
from servers.core.settings import Settings
from servers.parse import guards
from servers.parse.isolated import parse_bytes_isolated, parse_file_isolated
from servers.parse.ocr import OcrMode, PictureMode, with_ocr_options
from servers.parse.schema import ParsedDocument


def walk_files(
    folder: Path, *, recursive: bool = True, pattern: str | None = None, skip: Path | None = None
) -> Iterator[Path]:
    """The files of ``folder`` in a stable order (a folder's files, then its subfolders'), with the
    same rules everywhere: hidden files and folders (a leading dot) are left out, linked folders are
    not followed (linked files are listed: check them against the roots before reading), the folder
    ``skip`` (the data dir) is never entered; ``pattern`` filters file names (``*.pdf``)."""
    skip = skip.resolve() if skip is not None else None
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        if recursive:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() != skip)
        else:
            dirnames[:] = []
        for name in sorted(filenames):
            if not name.startswith(".") and (pattern is None or fnmatch.fnmatch(name, pattern)):
                yield here / name


def decode_base64(content: str, filename: str, max_file_mb: float) -> bytes:
    """The bytes of a file sent as base64 (size checked before decoding)."""
    if len(content) > max_file_mb * MB * 4 / 3 + 8:
        check_size(len(content) * 3 // 4, max_file_mb, filename)
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"content_base64 is not valid base64 ({exc}); encode the raw file bytes") from exc


def supported(files: list[Path]) -> tuple[list[Path], list[str]]:
    """The files whose extension a parser handles, and notes on the others (skipped)."""
    keep, skipped = [], []
    for file in files:
        if file.suffix.lower() in guards.EXTENSIONS:
            keep.append(file)
        else:
            skipped.append(f"{file} (unsupported type)")
    return keep, skipped


def load_document(
    settings: Settings, path: str | None, content_base64: str | None, filename: str | None,
    ocr: OcrMode | None = None, ocr_images: PictureMode | bool | None = None,
) -> ParsedDocument:
    """One document from a path (or ``file://`` URI) under the roots, or from base64 content + filename,
    parsed in a worker within the ``[parse]`` limits, with the call's OCR choices."""
    if (path is None) == (content_base64 is None):
        raise InvalidInput("give exactly one of `path` (a file path or file:// URI) or `content_base64` (+ `filename`)")
    opts = with_ocr_options(settings.parse, ocr, ocr_images)
    if path is not None and is_url(path):
        fetched = fetch_url(path, settings.fetch, max_mb=min(settings.fetch.max_mb, opts.max_file_mb))
        return parse_bytes_isolated(fetched.data, fetched.filename, opts, source=fetched.final_url)
    if path is not None:
        return parse_file_isolated(path, settings.root_paths(), opts)
    if not filename:
        raise InvalidInput("`filename` is required with `content_base64` (its extension picks the format)")
    data = decode_base64(content_base64 or "", filename, opts.max_file_mb)
    return parse_bytes_isolated(data, filename, opts, source=filename)
