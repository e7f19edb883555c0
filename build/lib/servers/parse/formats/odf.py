"""OpenDocument (ODT text, ODS spreadsheets, ODP presentations) → Markdown, read from
the package's ``content.xml`` and ``meta.xml`` with lxml (no DTDs, no entities).

- ODT: headings by outline level, paragraphs, nested lists, tables, links, text
  frames, footnotes after their paragraph, pictures (OCR'd with ``ocr_images``).
- ODS: one ``##`` section per sheet, each block of filled cells a table (repeated rows
  and columns expanded only up to ``parse.max_rows`` / 200 columns).
- ODP: one ``<!-- slide N -->`` section per page, its title as the heading, then the
  other frames, tables and speaker notes.
Password-protected documents are refused."""

from __future__ import annotations

import io
import posixpath
import zipfile
from typing import TYPE_CHECKING

from lxml import etree

from servers.core.errors import InvalidInput
from servers.parse.formats import Converted, PictureText
from servers.parse.formats.tabular import MAX_COLUMNS, _region_markdown, _regions
from servers.parse.markdown import cell_text, page_marker, table_markdown

if TYPE_CHECKING:
    from servers.core.settings import ParseSettings

NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "xlink": "http://www.w3.org/1999/xlink",
    "dc": "http://purl.org/dc/elements/1.1/",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
    "manifest": "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0",
}
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


class _Text:
    """Inline and block rendering of ODF text content."""

    def __init__(self, archive: zipfile.ZipFile, pictures: PictureText | None) -> None:
        self.archive = archive
        self.pictures = pictures
        self.notes: list[str] = []

    def inline(self, node: etree._Element) -> str:
        parts = [node.text or ""]
        for child in node:
            tag = child.tag
            if tag == q("text:s"):
                parts.append(" " * int(child.get(q("text:c"), "1") or 1))
            elif tag == q("text:tab"):
                parts.append("\t")
            elif tag == q("text:line-break"):
                parts.append(" ")
            elif tag == q("text:a"):
                label = " ".join(self.inline(child).split())
                href = child.get(q("xlink:href"), "")
                parts.append(f"[{label}]({href})" if label and href and not href.startswith("#") else label)
            elif tag == q("text:note"):
                body = child.find(q("text:note-body"))
                if body is not None:
                    self.notes.append(" ".join(" ".join(self.inline(p) for p in body.iter(q("text:p"))).split()))
                    parts.append(f"[^{len(self.notes)}]")
            elif tag in (q("draw:frame"), q("draw:a")):
                pass  # frames are rendered as blocks after their paragraph
            elif tag not in (q("text:bookmark"), q("text:bookmark-start"), q("text:bookmark-end"),
                             q("office:annotation"), q("text:soft-page-break")):
                parts.append(self.inline(child))
            parts.append(child.tail or "")
        return "".join(parts)

    def frames(self, node: etree._Element) -> list[str]:
        out: list[str] = []
        for frame in node.iter(q("draw:frame")):
            box = frame.find(q("draw:text-box"))
            if box is not None:
                out.extend(self.blocks(box))
            image = frame.find(q("draw:image"))
            if image is not None and self.pictures is not None:
                href = image.get(q("xlink:href"), "")
                path = posixpath.normpath(href.lstrip("./")) if href and "://" not in href else ""
                try:
                    blob = self.archive.read(path) if path else None
                except KeyError:
                    blob = None
                text = self.pictures(blob, posixpath.basename(path)) if blob else None
                if text:
                    out.append(text)
        return out

    def list_lines(self, node: etree._Element, level: int) -> list[str]:
        lines: list[str] = []
        for item in node:
            if item.tag not in (q("text:list-item"), q("text:list-header")):
                continue
            for child in item:
                if child.tag == q("text:list"):
                    lines.extend(self.list_lines(child, level + 1))
                elif child.tag in (q("text:p"), q("text:h")):
                    text = " ".join(self.inline(child).split())
                    if text:
                        lines.append("    " * level + "- " + text)
        return lines

    def table(self, node: etree._Element, max_rows: int = 10_000) -> list[list[str]]:
        rows: list[list[str]] = []
        for row in node.iter(q("table:table-row")):
            cells: list[str] = []
            for cell in row:
                if cell.tag not in (q("table:table-cell"), q("table:covered-table-cell")):
                    continue
                text = cell_text(" ".join(" ".join(self.inline(p).split()) for p in cell.iter(q("text:p"))))
                repeat = min(int(cell.get(q("table:number-columns-repeated"), "1") or 1), MAX_COLUMNS)
                cells.extend([text] * min(repeat, MAX_COLUMNS - len(cells)))
                if len(cells) >= MAX_COLUMNS:
                    break
            while cells and not cells[-1]:
                cells.pop()
            repeat = int(row.get(q("table:number-rows-repeated"), "1") or 1)
            for _ in range(min(repeat, max_rows - len(rows)) if cells else min(repeat, 1)):
                rows.append(list(cells))
            if len(rows) >= max_rows:
                break
        while rows and not any(rows[-1]):
            rows.pop()
        return rows

    def blocks(self, container: etree._Element) -> list[str]:
        out: list[str] = []
        for child in container:
            tag = child.tag
            if tag == q("text:h"):
                text = " ".join(self.inline(child).split())
                level = min(int(child.get(q("text:outline-level"), "1") or 1), 6)
                if text:
                    out.append("#" * level + " " + text)
                out.extend(self.frames(child))
            elif tag == q("text:p"):
                text = " ".join(self.inline(child).split())
                if text:
                    out.append(text)
                out.extend(self.frames(child))
            elif tag == q("text:list"):
                lines = self.list_lines(child, 0)
                if lines:
                    out.append("\n".join(lines))
            elif tag == q("table:table"):
                rows = self.table(child)
                if rows:
                    out.append(table_markdown(rows))
            elif tag in (q("text:section"), q("text:index-body"), q("draw:frame"), q("draw:text-box")):
                out.extend(self.blocks(child) if tag != q("draw:frame") else self.frames(child))
            if self.notes:
                out.append("\n".join(f"[^{i}]: {n}" for i, n in enumerate(self.notes, start=1)))
                self.notes = []
        return out


def _meta(archive: zipfile.ZipFile) -> dict[str, str]:
    try:
        root = etree.fromstring(archive.read("meta.xml"), PARSER)
    except (KeyError, etree.XMLSyntaxError):
        return {}
    meta = root.find(q("office:meta")) if root is not None else None
    if meta is None:
        return {}
    found = {}
    for key, tag in (("title", "dc:title"), ("subject", "dc:subject"), ("author", "meta:initial-creator"),
                     ("creator", "dc:creator"), ("created", "meta:creation-date"), ("modified", "dc:date"),
                     ("keywords", "meta:keyword"), ("description", "dc:description")):
        node = meta.find(q(tag))
        if node is not None and (node.text or "").strip():
            found[key] = " ".join(node.text.split())
    return found


def _check_encrypted(archive: zipfile.ZipFile, name: str) -> None:
    try:
        manifest = archive.read("META-INF/manifest.xml")
    except KeyError:
        return
    if b"encryption-data" in manifest:
        raise InvalidInput(f"{name} is password-protected; open it, remove the password and save it again")


def _spreadsheet(body: etree._Element, reader: _Text, settings: ParseSettings) -> tuple[list[str], list[str]]:
    parts, warnings = [], []
    for sheet in body.iter(q("table:table")):
        name = sheet.get(q("table:name"), "Sheet")
        rows = reader.table(sheet, settings.max_rows + 1)
        if len(rows) > settings.max_rows:
            rows = rows[: settings.max_rows]
            warnings.append(f"sheet '{name}' truncated to its first {settings.max_rows} rows (parse.max_rows)")
        section = [f"## {name}"] + [_region_markdown(r) for r in _regions(rows)]
        section += reader.frames(sheet) if reader.pictures is not None else []
        parts.append("\n\n".join(section))
    return parts, warnings


def _presentation(body: etree._Element, reader: _Text) -> list[str]:
    slides = []
    for number, page in enumerate(body.iter(q("draw:page")), start=1):
        blocks = [page_marker(number, "slide")]
        rest: list[str] = []
        for frame in page:
            kind = frame.get(q("presentation:class"), "")
            if frame.tag != q("draw:frame"):
                continue
            if kind == "title" and len(blocks) == 1:
                title = " ".join(" ".join(reader.inline(p) for p in frame.iter(q("text:p"))).split())
                if title:
                    blocks.append("# " + title)
                    continue
            table = frame.find(q("table:table"))
            if table is not None:
                rows = reader.table(table)
                rest += [table_markdown(rows)] if rows else []
            else:
                rest.extend(reader.frames(frame) if frame.find(q("draw:text-box")) is None
                            else reader.blocks(frame.find(q("draw:text-box"))))
        notes = page.find(q("presentation:notes"))
        if notes is not None:
            text = " ".join(" ".join(reader.inline(p) for p in notes.iter(q("text:p"))).split())
            rest += [f"Notes: {text}"] if text else []
        slides.append("\n\n".join(blocks + rest))
    return slides


def convert_odf(data: bytes, name: str, fmt: str, settings: ParseSettings) -> Converted:
    from servers.parse.pictures import DocumentOcr

    archive = zipfile.ZipFile(io.BytesIO(data))
    _check_encrypted(archive, name)
    try:
        root = etree.fromstring(archive.read("content.xml"), PARSER)
    except KeyError as exc:
        raise InvalidInput(f"{name} is not a valid OpenDocument file (no content.xml); re-export it") from exc
    body = root.find(q("office:body")) if root is not None else None
    if body is None:
        raise InvalidInput(f"{name} is not a valid OpenDocument file (content.xml has no body); re-export it")
    ocr = DocumentOcr(settings)
    reader = _Text(archive, ocr.picture_text if ocr.reads_pictures else None)
    warnings: list[str] = []
    pages = None
    if fmt == "ods":
        parts, warnings = _spreadsheet(body, reader, settings)
    elif fmt == "odp":
        parts = _presentation(body, reader)
        pages = len(parts)
    else:
        text = body.find(q("office:text"))
        parts = reader.blocks(text if text is not None else body)
    meta = _meta(archive)
    converted = Converted(
        markdown="\n\n".join(parts) + ("\n" if parts else ""),
        title=meta.get("title"),
        pages=pages,
        author=meta.get("author") or meta.get("creator"),
        created=meta.get("created"),
        modified=meta.get("modified"),
        extra={k: v for k, v in meta.items() if k in ("subject", "keywords", "description")},
        warnings=warnings,
    )
    return ocr.finish(converted)
