"""Dispatch for the formats beyond the original Office/PDF/web set: images (OCR), EPUB,
notebooks, feeds and XML, ZIP archives, legacy Excel, e-mail, RTF and OpenDocument.
Each converter lives in its own module and is imported only when its format is parsed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servers.parse.formats import Converted

if TYPE_CHECKING:
    from servers.core.settings import ParseSettings


def convert_extended(data: bytes, name: str, fmt: str, settings: ParseSettings) -> tuple[Converted, str | None]:
    """(result, text encoding or None) for one of ``documents.EXTENDED``'s formats."""
    if fmt == "image":
        from servers.parse.formats.image import convert_image

        return convert_image(data, name, settings), None
    if fmt == "epub":
        from servers.parse.formats.epub import convert_epub

        return convert_epub(data, name, settings), None
    if fmt == "notebook":
        from servers.parse.formats.notebook import convert_notebook

        return convert_notebook(data, name, settings), None
    if fmt in ("feed", "xml"):
        from servers.parse.formats.feed import convert_xml

        return convert_xml(data, name)
    if fmt == "zip":
        from servers.parse.formats.archive import convert_zip

        return convert_zip(data, name, settings), None
    if fmt == "xls":
        from servers.parse.formats.xls import convert_xls

        return convert_xls(data, name, settings), None
    if fmt == "eml":
        from servers.parse.formats.mail import convert_eml

        return convert_eml(data, name, settings), None
    if fmt == "msg":
        from servers.parse.formats.outlook import convert_msg

        return convert_msg(data, name, settings), None
    if fmt == "rtf":
        from servers.parse.formats.rtf import convert_rtf

        return convert_rtf(data, name), None
    from servers.parse.formats.odf import convert_odf

    return convert_odf(data, name, fmt, settings), None
