"""PPTX → Markdown with python-pptx: one ``<!-- slide N -->`` section per slide with
the title as a heading, text frames (bullets with levels), tables, chart data as
tables, comments and speaker notes."""

from __future__ import annotations

import io
from collections.abc import Iterator

from lxml import etree
from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER

from servers.parse.formats import Converted, PictureText
from servers.parse.markdown import page_marker, table_markdown

A_T = "{http://schemas.openxmlformats.org/drawingml/2006/main}t"
TITLES = {PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE}


def _is_title(shape) -> bool:
    try:
        return shape.is_placeholder and shape.placeholder_format.type in TITLES
    except ValueError:
        return False


def _text_frame(frame) -> list[str]:
    lines: list[str] = []
    for para in frame.paragraphs:
        text = " ".join("".join(run.text for run in para.runs).split()) or " ".join(para.text.split())
        if not text:
            continue
        ppr = para._p.pPr
        bulleted = para.level > 0 or (
            ppr is not None and any(ch.tag.endswith(("}buChar", "}buAutoNum")) for ch in ppr)
        )
        lines.append(("  " * para.level + "- " + text) if bulleted else text)
    return lines


def _chart(chart) -> str | None:
    try:
        plot = chart.plots[0]
        categories = [str(c) for c in plot.categories]
        series = list(plot.series)
    except (IndexError, KeyError, ValueError, AttributeError):
        return None
    if not series:
        return None
    rows = [[""] + [s.name or "" for s in series]]
    for i, category in enumerate(categories):
        rows.append([category] + [_num(s.values[i]) if i < len(s.values) else "" for s in series])
    title = chart.chart_title.text_frame.text if chart.has_title and chart.chart_title.has_text_frame else ""
    return (f"{title}\n\n" if title else "") + table_markdown(rows)


def _num(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _table(table) -> str:
    """A slide table; merged cells repeat their text over the cells they span."""
    n_rows, n_cols = len(table.rows), len(table.columns)
    grid = [["" for _ in range(n_cols)] for _ in range(n_rows)]
    for r in range(n_rows):
        for c in range(n_cols):
            cell = table.cell(r, c)
            if cell.is_spanned:
                continue
            text = " ".join(cell.text.split())
            height, width = (cell.span_height, cell.span_width) if cell.is_merge_origin else (1, 1)
            for rr in range(r, min(r + height, n_rows)):
                for cc in range(c, min(c + width, n_cols)):
                    grid[rr][cc] = text
    return table_markdown(grid)


def _picture(shape, pictures: PictureText) -> list[str]:
    try:
        image = shape.image
    except (AttributeError, ValueError, KeyError):
        return []
    text = pictures(image.blob, image.filename or f"picture.{image.ext}")
    return [text] if text else []


def _shape_blocks(shape, pictures: PictureText | None = None) -> list[str]:
    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return [b for child in shape.shapes for b in _shape_blocks(child, pictures)]
    picture_types = (MSO_SHAPE_TYPE.PICTURE, MSO_SHAPE_TYPE.PLACEHOLDER)
    if pictures is not None and shape.shape_type in picture_types and hasattr(shape, "image"):
        return _picture(shape, pictures)
    if getattr(shape, "has_table", False) and shape.has_table:
        return [_table(shape.table)] if len(shape.table.rows) else []
    if getattr(shape, "has_chart", False) and shape.has_chart:
        md = _chart(shape.chart)
        return [md] if md else []
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        lines = _text_frame(shape.text_frame)
        return ["\n".join(lines)] if lines else []
    return []


def _related_xml(part, kinds: tuple[str, ...]) -> Iterator[etree._Element]:
    """The parsed XML of ``part``'s internal relations whose type ends with one of ``kinds`` (lower case)."""
    for rel in part.rels.values():
        if rel.is_external or not rel.reltype.lower().endswith(kinds):
            continue
        try:
            yield etree.fromstring(rel.target_part.blob)
        except etree.XMLSyntaxError:
            continue


def _authors(prs) -> dict[str, str]:
    """Comment author id → "Name (initials)" from commentAuthors.xml / authors.xml."""
    out: dict[str, str] = {}
    for root in _related_xml(prs.part, ("commentauthors", "authors")):
        for node in root:
            if node.get("id") is not None and node.get("name"):
                initials = f" ({node.get('initials')})" if node.get("initials") else ""
                out[node.get("id")] = node.get("name") + initials
    return out


def _comments(slide, authors: dict[str, str]) -> list[str]:
    out = []
    for root in _related_xml(slide.part, ("comments",)):
        for node in root:
            texts = [t.text for t in node.iter(A_T) if t.text] or [
                t.text for t in node.iter() if isinstance(t.tag, str) and t.tag.endswith("}text") and t.text
            ]
            if not texts:
                continue
            who = authors.get(node.get("authorId", ""), "")
            when = node.get("dt") or node.get("created") or ""
            about = ", ".join(x for x in (who, when) if x)
            out.append(f"> Comment{f' ({about})' if about else ''}: " + " ".join(" ".join(texts).split()))
    return out


def convert_pptx(data: bytes, name: str, pictures: PictureText | None = None) -> Converted:
    prs = Presentation(io.BytesIO(data))
    parts: list[str] = []
    first_title = None
    authors = _authors(prs)
    for number, slide in enumerate(prs.slides, start=1):
        blocks = [page_marker(number, "slide")]
        shapes = list(slide.shapes)
        titles = [s for s in shapes if _is_title(s) and s.has_text_frame and s.text_frame.text.strip()]
        if titles:
            title = " ".join(titles[0].text_frame.text.split())
            first_title = first_title or title
            blocks.append("# " + title)
        for shape in shapes:
            if titles and shape is titles[0]:
                continue
            blocks.extend(_shape_blocks(shape, pictures))
        blocks.extend(_comments(slide, authors))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            text = notes.text.strip() if notes is not None else ""
            if text:
                blocks.append("Notes: " + " ".join(text.split()))
        parts.append("\n\n".join(blocks))
    props = prs.core_properties
    return Converted(
        markdown="\n\n".join(parts) + "\n",
        title=(props.title or "").strip() or first_title,
        pages=len(prs.slides),
        author=props.author or None,
        created=props.created.isoformat() if props.created else None,
        modified=props.modified.isoformat() if props.modified else None,
    )
