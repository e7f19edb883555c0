"""Pictures anchored in XLSX sheets (openpyxl's read-only mode does not load them): for
each sheet, the cell each picture is anchored at and the picture's bytes, read from the
drawing parts of the package."""

from __future__ import annotations

import io
import posixpath
import zipfile

from lxml import etree

NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "pr": "http://schemas.openxmlformats.org/package/2006/relationships",
    "xdr": "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing",
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
}
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
MAX_MEDIA_BYTES = 50 * 1024 * 1024


def _xml(archive: zipfile.ZipFile, path: str) -> etree._Element | None:
    try:
        return etree.fromstring(archive.read(path), PARSER)
    except (KeyError, etree.XMLSyntaxError):
        return None


def _rels(archive: zipfile.ZipFile, part: str) -> dict[str, str]:
    """Relationship id → package path of the target, for ``part``."""
    folder, base = posixpath.split(part)
    root = _xml(archive, posixpath.join(folder, "_rels", base + ".rels"))
    out: dict[str, str] = {}
    if root is None:
        return out
    for rel in root.findall("pr:Relationship", NS):
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External" or not target:
            continue
        path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        out[rel.get("Id", "")] = path
    return out


def _cell(col: int, row: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row + 1}"


def xlsx_pictures(data: bytes) -> dict[str, list[tuple[str, bytes, str]]]:
    """Sheet title → [(anchor cell like 'D5', picture bytes, media file name)] in anchor order."""
    out: dict[str, list[tuple[str, bytes, str]]] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        book = _xml(archive, "xl/workbook.xml")
        if book is None:
            return out
        book_rels = _rels(archive, "xl/workbook.xml")
        for sheet in book.iterfind("m:sheets/m:sheet", NS):
            sheet_part = book_rels.get(sheet.get(f"{{{NS['r']}}}id", ""))
            if not sheet_part:
                continue
            for drawing_part in _rels(archive, sheet_part).values():
                if "/drawings/" not in drawing_part:
                    continue
                drawing = _xml(archive, drawing_part)
                if drawing is None:
                    continue
                media = _rels(archive, drawing_part)
                found = []
                for anchor in drawing:
                    start = anchor.find("xdr:from", NS)
                    col = int(start.findtext("xdr:col", "0", NS)) if start is not None else 0
                    row = int(start.findtext("xdr:row", "0", NS)) if start is not None else 0
                    for blip in anchor.iter(f"{{{NS['a']}}}blip"):
                        path = media.get(blip.get(f"{{{NS['r']}}}embed", ""))
                        if not path:
                            continue
                        try:
                            info = archive.getinfo(path)
                        except KeyError:
                            continue
                        if info.file_size <= MAX_MEDIA_BYTES:
                            found.append((row, col, archive.read(info), posixpath.basename(path)))
                for row, col, blob, name in sorted(found, key=lambda f: (f[0], f[1])):
                    out.setdefault(sheet.get("name", ""), []).append((_cell(col, row), blob, name))
    return out
