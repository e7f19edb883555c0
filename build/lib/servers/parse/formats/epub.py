"""EPUB 2/3 → Markdown: the package document's metadata (title, authors, language,
publisher, date, description), then each chapter of the spine in reading order,
converted from XHTML by the HTML converter (headings, lists, blockquotes, emphasis,
tables, links). A chapter without a heading gets its title from the table of contents.
DRM-encrypted books are refused (font obfuscation is fine)."""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from typing import TYPE_CHECKING
from urllib.parse import unquote

from lxml import etree

from servers.core.errors import InvalidInput
from servers.parse.formats import Converted
from servers.parse.formats.html import convert_html

if TYPE_CHECKING:
    from servers.core.settings import ParseSettings

NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
    "ncx": "http://www.daisy.org/z3986/2005/ncx/",
    "x": "http://www.w3.org/1999/xhtml",
    "epub": "http://www.idpf.org/2007/ops",
    "enc": "http://www.w3.org/2001/04/xmlenc#",
}
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True)
FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
XHTML_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml"}


def _xml(archive: zipfile.ZipFile, path: str, name: str) -> etree._Element:
    try:
        root = etree.fromstring(archive.read(path), PARSER)
    except KeyError as exc:
        raise InvalidInput(f"{name} is not a valid EPUB: it lacks {path}; re-export the book") from exc
    if root is None:
        raise InvalidInput(f"{name} is not a valid EPUB: {path} is not XML; re-export the book")
    return root


def _text(node: etree._Element | None) -> str:
    return " ".join("".join(node.itertext()).split()) if node is not None else ""


def _check_drm(archive: zipfile.ZipFile, name: str) -> None:
    if "META-INF/encryption.xml" not in archive.namelist():
        return
    root = etree.fromstring(archive.read("META-INF/encryption.xml"), PARSER)
    if root is None:
        return
    for method in root.iter(f"{{{NS['enc']}}}EncryptionMethod"):
        if method.get("Algorithm") not in FONT_OBFUSCATION:
            raise InvalidInput(
                f"{name} is DRM-protected (its chapters are encrypted); only DRM-free EPUBs can be read"
            )


def _toc(archive: zipfile.ZipFile, base: str, manifest: dict[str, tuple[str, str, str]], spine_toc: str | None) -> dict[str, str]:
    """Chapter path → title from the EPUB 3 nav document or the EPUB 2 NCX."""
    titles: dict[str, str] = {}
    for href, _media, props in manifest.values():
        if "nav" in props.split():
            path = posixpath.normpath(posixpath.join(base, href))
            try:
                root = etree.fromstring(archive.read(path), PARSER)
            except KeyError:
                continue
            folder = posixpath.dirname(path)
            for link in root.iter(f"{{{NS['x']}}}a") if root is not None else ():
                target = posixpath.normpath(posixpath.join(folder, unquote(link.get("href", "").split("#")[0])))
                titles.setdefault(target, _text(link))
    if spine_toc and spine_toc in manifest:
        path = posixpath.normpath(posixpath.join(base, manifest[spine_toc][0]))
        try:
            root = etree.fromstring(archive.read(path), PARSER)
        except KeyError:
            root = None
        folder = posixpath.dirname(path)
        for point in root.iter(f"{{{NS['ncx']}}}navPoint") if root is not None else ():
            src = point.find("ncx:content", NS)
            label = _text(point.find("ncx:navLabel", NS))
            if src is not None and label:
                target = posixpath.normpath(posixpath.join(folder, unquote(src.get("src", "").split("#")[0])))
                titles.setdefault(target, label)
    return titles


def convert_epub(data: bytes, name: str, settings: ParseSettings) -> Converted:
    from servers.parse.formats.text import decode

    archive = zipfile.ZipFile(io.BytesIO(data))
    _check_drm(archive, name)
    container = _xml(archive, "META-INF/container.xml", name)
    rootfile = container.find(".//c:rootfile", NS)
    opf_path = rootfile.get("full-path") if rootfile is not None else None
    if not opf_path:
        opf_path = next((n for n in archive.namelist() if n.endswith(".opf")), None)
    if not opf_path:
        raise InvalidInput(f"{name} is not a valid EPUB: no package document (.opf) found; re-export the book")
    opf = _xml(archive, opf_path, name)
    base = posixpath.dirname(opf_path)
    meta = opf.find("opf:metadata", NS)
    if meta is None:
        meta = opf.find(".//opf:metadata", NS)

    def dc(tag: str) -> list[str]:
        return [t for t in (_text(n) for n in (meta.iterfind(f"dc:{tag}", NS) if meta is not None else [])) if t]

    manifest = {
        item.get("id", ""): (unquote(item.get("href", "")), item.get("media-type", ""), item.get("properties", ""))
        for item in opf.iterfind("opf:manifest/opf:item", NS)
    }
    spine = opf.find("opf:spine", NS)
    refs = [ref.get("idref", "") for ref in (spine.iterfind("opf:itemref", NS) if spine is not None else [])]
    titles = _toc(archive, base, manifest, spine.get("toc") if spine is not None else None)
    chapters: list[str] = []
    warnings: list[str] = []
    for ref in refs:
        if ref not in manifest:
            warnings.append(f"spine item {ref!r} is not in the manifest; skipped")
            continue
        href, media, props = manifest[ref]
        if media not in XHTML_TYPES or "nav" in props.split():
            continue
        path = posixpath.normpath(posixpath.join(base, href))
        try:
            raw = archive.read(path)
        except KeyError:
            warnings.append(f"chapter {path} is missing from the book; skipped")
            continue
        text, _ = decode(raw, path)
        body = convert_html(text, path).markdown.strip()
        if not body:
            continue
        if not re.match(r"#{1,6} ", body) and titles.get(path):
            body = f"# {titles[path]}\n\n{body}"
        chapters.append(body)
    creators = dc("creator")
    description = dc("description")
    extra = {
        k: v
        for k, v in (
            ("language", ", ".join(dc("language"))),
            ("publisher", ", ".join(dc("publisher"))),
            ("identifier", ", ".join(dc("identifier"))),
            ("subjects", dc("subject")),
            ("description", convert_html(description[0], name).markdown.strip() if description else ""),
            ("chapters", len(chapters)),
        )
        if v
    }
    dates = dc("date")
    return Converted(
        markdown="\n\n".join(chapters) + ("\n" if chapters else ""),
        title=(dc("title") or [None])[0],
        author=", ".join(creators) or None,
        created=dates[0] if dates else None,
        extra=extra,
        warnings=warnings,
    )
