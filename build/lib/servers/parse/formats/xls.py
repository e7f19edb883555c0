"""Legacy Excel ``.xls`` (BIFF5/BIFF8, read with xlrd) → Markdown like ``.xlsx``: one
section per sheet, each block of filled cells a table, dates as ISO dates, rows beyond
``parse.max_rows`` dropped with a warning. HTML tables saved with an ``.xls`` name (a
common export) are read as HTML; encrypted workbooks are refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servers.core.errors import InvalidInput
from servers.parse.formats import Converted
from servers.parse.formats.tabular import MAX_COLUMNS, _region_markdown, _regions, _value
from servers.parse.guards import OLE_MAGIC

if TYPE_CHECKING:
    from servers.core.settings import ParseSettings


def _cell(cell, datemode: int) -> str:
    import xlrd

    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return _value(xlrd.xldate_as_datetime(cell.value, datemode))
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return _value(cell.value)
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return "TRUE" if cell.value else "FALSE"
    if cell.ctype == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(cell.value, "#ERR")
    return _value(cell.value)


def convert_xls(data: bytes, name: str, settings: ParseSettings) -> Converted:
    import xlrd

    if not data:
        raise InvalidInput(f"{name} is empty (0 bytes); nothing to parse")
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<") and (b"<html" in head or b"<table" in head or b"<!doctype html" in head):
        from servers.parse.formats.html import convert_html
        from servers.parse.formats.text import decode

        converted = convert_html(decode(data, name)[0], name)
        converted.warnings.append(f"{name} is an HTML table saved with an .xls name; read as HTML")
        return converted
    if not data.startswith(OLE_MAGIC):
        raise InvalidInput(
            f"{name} is not a legacy Excel workbook (not an OLE compound file); if it is .xlsx, CSV or HTML, "
            "give it that extension"
        )
    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True, logfile=_Null())
    except xlrd.XLRDError as exc:
        if "encrypt" in str(exc).lower():
            raise InvalidInput(f"{name} is a password-protected workbook; remove the password in Excel and save again") from exc
        raise InvalidInput(f"{name} could not be read as an .xls workbook ({exc}); it is corrupted or another format") from exc
    parts: list[str] = []
    warnings: list[str] = []
    try:
        for index in range(book.nsheets):
            sheet = book.sheet_by_index(index)
            rows = [[_cell(c, book.datemode) for c in sheet.row(r)[:MAX_COLUMNS]] for r in range(min(sheet.nrows, settings.max_rows))]
            parts.append("\n\n".join([f"## {sheet.name}"] + [_region_markdown(r) for r in _regions(rows)]))
            if sheet.nrows > settings.max_rows:
                warnings.append(f"sheet '{sheet.name}' truncated to its first {settings.max_rows} of {sheet.nrows} rows (parse.max_rows)")
            if sheet.ncols > MAX_COLUMNS:
                warnings.append(f"sheet '{sheet.name}' truncated to its first {MAX_COLUMNS} columns")
            book.unload_sheet(index)
        author = (book.user_name or "").strip() or None
    finally:
        book.release_resources()
    return Converted(markdown="\n\n".join(parts) + "\n", author=author, extra={"sheets": len(parts), "biff_version": book.biff_version},
                     warnings=warnings)


class _Null:
    """xlrd writes diagnostics to a log file; keep them out of the server's stdout."""

    def write(self, _text: str) -> int:
        return 0
