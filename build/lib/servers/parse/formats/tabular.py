"""Spreadsheets → Markdown tables: XLSX/XLSM with openpyxl (one section per sheet,
blocks separated by empty rows become separate tables), CSV/TSV with the csv module.
Rows beyond ``max_rows`` per sheet are dropped with a warning."""

from __future__ import annotations

import csv
import datetime as dt
import io

from servers.parse.formats import Converted, PictureText
from servers.parse.markdown import table_markdown

MAX_COLUMNS = 200


def _value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.10g}"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def _regions(rows: list[list[str]]) -> list[list[list[str]]]:
    """Tables of a sheet: bounding boxes of connected (8-neighbour) groups of non-empty
    cells, overlapping boxes merged, in reading order (top, then left)."""
    filled = {(r, c) for r, row in enumerate(rows) for c, v in enumerate(row) if v}
    boxes: list[list[int]] = []
    seen: set[tuple[int, int]] = set()
    for cell in sorted(filled):
        if cell in seen:
            continue
        seen.add(cell)
        stack, box = [cell], [cell[0], cell[1], cell[0], cell[1]]
        while stack:
            r, c = stack.pop()
            box = [min(box[0], r), min(box[1], c), max(box[2], r), max(box[3], c)]
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    near = (r + dr, c + dc)
                    if near in filled and near not in seen:
                        seen.add(near)
                        stack.append(near)
        boxes.append(box)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    out = []
    for top, left, bottom, right in sorted(boxes):
        region = [(rows[r] + [""] * (right + 1))[left : right + 1] for r in range(top, bottom + 1)]
        out.append(region)
    return out


def _region_markdown(region: list[list[str]]) -> str:
    # a lone single-cell row above a table reads as its caption
    if len(region) == 1 and len([c for c in region[0] if c]) == 1:
        return next(c for c in region[0] if c)
    return table_markdown(region)


def convert_xlsx(data: bytes, name: str, *, max_rows: int, pictures: PictureText | None = None) -> Converted:
    import openpyxl

    from servers.parse.formats.office_images import xlsx_pictures

    anchored = xlsx_pictures(data) if pictures is not None else {}

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    warnings: list[str] = []
    parts: list[str] = []
    try:
        for sheet in book.worksheets:
            rows: list[list[str]] = []
            truncated = False
            wide = False
            for raw in sheet.iter_rows(values_only=True):
                if len(rows) >= max_rows:
                    truncated = True
                    break
                if len(raw) > MAX_COLUMNS:
                    wide = True
                rows.append([_value(v) for v in raw[:MAX_COLUMNS]])
            section = [f"## {sheet.title}"]
            section += [_region_markdown(r) for r in _regions(rows)]
            for cell, blob, media in anchored.get(sheet.title, []) if pictures is not None else ():
                text = pictures(blob, f"{media} at {cell}")
                section += [text] if text else []
            parts.append("\n\n".join(section))
            if truncated:
                total = sheet.max_row if isinstance(sheet.max_row, int) else None
                of = f" of {total}" if total else ""
                warnings.append(
                    f"sheet '{sheet.title}' truncated to its first {max_rows}{of} rows (parse.max_rows)"
                )
            if wide:
                warnings.append(f"sheet '{sheet.title}' truncated to its first {MAX_COLUMNS} columns")
        props = book.properties
    finally:
        book.close()
    return Converted(
        markdown="\n\n".join(parts) + "\n",
        title=(props.title or "").strip() or None,
        pages=None,
        author=props.creator or None,
        created=props.created.isoformat() if props.created else None,
        modified=props.modified.isoformat() if props.modified else None,
        extra={"sheets": len(parts)},
        warnings=warnings,
    )


def convert_csv(text: str, name: str, *, max_rows: int) -> Converted:
    sample = text[:20000]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if name.lower().endswith(".tsv") else csv.excel
    rows: list[list[str]] = []
    warnings: list[str] = []
    reader = csv.reader(io.StringIO(text), dialect)
    for row in reader:
        if len(rows) > max_rows:  # header + max_rows data rows
            remaining = 1 + sum(1 for _ in reader)
            warnings.append(
                f"table truncated to its first {max_rows} of {max_rows + remaining} data rows (parse.max_rows)"
            )
            break
        rows.append([c.strip() for c in row[:MAX_COLUMNS]])
    rows = [r for r in rows if any(r)]
    markdown = table_markdown(rows) + "\n" if rows else ""
    return Converted(markdown=markdown, extra={"delimiter": dialect.delimiter, "rows": max(len(rows) - 1, 0)},
                     warnings=warnings)
