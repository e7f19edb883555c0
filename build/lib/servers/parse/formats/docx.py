"""DOCX → Markdown with python-docx: headings from paragraph styles, bullet and
numbered lists (with nesting) from the numbering part, tables (merged cells repeated),
hyperlinks, text boxes and equation text, in document order."""

from __future__ import annotations

import io
import re

import docx
from docx.oxml.ns import qn

from servers.parse.formats import Converted, PictureText
from servers.parse.markdown import cell_text, table_markdown

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
M = "http://schemas.openxmlformats.org/officeDocument/2006/math"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
R_EMBED = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}embed"
A_BLIP = "{http://schemas.openxmlformats.org/drawingml/2006/main}blip"
V_IMAGEDATA = "{urn:schemas-microsoft-com:vml}imagedata"
LIST_STYLE = re.compile(r"^list (bullet|number)", re.IGNORECASE)
HEADING_STYLE = re.compile(r"^(?:heading|überschrift|titre|título)\s*(\d)$", re.IGNORECASE)


class _Numbering:
    """numId/ilvl → 'bullet' or a numbering format, from word/numbering.xml."""

    def __init__(self, document: docx.document.Document) -> None:
        self.formats: dict[tuple[str, str], str] = {}
        try:
            root = document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):
            return
        abstract = {}
        for node in root.findall(qn("w:abstractNum")):
            levels = {}
            for lvl in node.findall(qn("w:lvl")):
                fmt = lvl.find(qn("w:numFmt"))
                levels[lvl.get(qn("w:ilvl"))] = fmt.get(qn("w:val")) if fmt is not None else "bullet"
            abstract[node.get(qn("w:abstractNumId"))] = levels
        for num in root.findall(qn("w:num")):
            ref = num.find(qn("w:abstractNumId"))
            if ref is not None:
                for ilvl, fmt in abstract.get(ref.get(qn("w:val")), {}).items():
                    self.formats[(num.get(qn("w:numId")), ilvl)] = fmt

    def kind(self, num_id: str, ilvl: str) -> str:
        return self.formats.get((num_id, ilvl), "bullet")


class _Writer:
    def __init__(self, document: docx.document.Document, pictures: PictureText | None = None) -> None:
        self.doc = document
        self.pictures = pictures
        self.numbering = _Numbering(document)
        self.styles = {s.style_id: s for s in document.styles}
        self.rels = document.part.rels
        self.blocks: list[str] = []
        self.counters: dict[tuple[str, int], int] = {}

    # -- inline text ---------------------------------------------------------------
    def inline(self, element, boxes: list) -> str:
        parts: list[str] = []
        for node in element.iterchildren():
            tag = node.tag
            if tag == qn("w:r"):
                parts.append(self.run(node, boxes))
            elif tag == qn("w:hyperlink"):
                text = self.inline(node, boxes).strip()
                rel = self.rels.get(node.get(R_ID)) if node.get(R_ID) else None
                url = rel.target_ref if rel is not None and rel.is_external else None
                parts.append(f"[{text}]({url})" if url and text else text)
            elif tag in (qn("w:ins"), qn("w:smartTag"), qn("w:fldSimple"), qn("w:customXml"), qn("w:sdt"), qn("w:sdtContent")):
                parts.append(self.inline(node, boxes))
            elif tag in (f"{{{M}}}oMath", f"{{{M}}}oMathPara"):
                math = "".join(t.text or "" for t in node.iter(f"{{{M}}}t"))
                parts.append(f" ${math}$ " if math else "")
            elif tag == f"{{{MC}}}AlternateContent":
                choice = node.find(f"{{{MC}}}Choice")
                if choice is not None:
                    parts.append(self.inline(choice, boxes))
        return "".join(parts)

    def run(self, run, boxes: list) -> str:
        parts: list[str] = []
        for node in run.iterchildren():
            tag = node.tag
            if tag == qn("w:t"):
                parts.append(node.text or "")
            elif tag == qn("w:tab"):
                parts.append("\t")
            elif tag in (qn("w:br"), qn("w:cr")):
                parts.append(" ")
            elif tag == f"{{{MC}}}AlternateContent":
                choice = node.find(f"{{{MC}}}Choice")
                if choice is not None:
                    boxes.extend(choice.iter(qn("w:txbxContent")))
            elif tag in (qn("w:drawing"), qn("w:pict"), qn("w:object")):
                boxes.extend(node.iter(qn("w:txbxContent")))
                if self.pictures is not None:
                    boxes.extend(node.iter(A_BLIP, V_IMAGEDATA))
        return "".join(parts)

    # -- blocks ----------------------------------------------------------------------
    def style_name(self, p) -> str:
        ppr = p.find(qn("w:pPr"))
        style = ppr.find(qn("w:pStyle")) if ppr is not None else None
        if style is None:
            return ""
        found = self.styles.get(style.get(qn("w:val")))
        return (found.name if found is not None else style.get(qn("w:val"))) or ""

    def list_info(self, p) -> tuple[str, int] | None:
        ppr = p.find(qn("w:pPr"))
        num = ppr.find(qn("w:numPr")) if ppr is not None else None
        if num is None:
            return None
        num_id = num.find(qn("w:numId"))
        ilvl = num.find(qn("w:ilvl"))
        nid = num_id.get(qn("w:val")) if num_id is not None else "0"
        if nid == "0":
            return None
        lvl = ilvl.get(qn("w:val")) if ilvl is not None else "0"
        return self.numbering.kind(nid, lvl), int(lvl)

    def paragraph(self, p) -> None:
        boxes: list = []
        text = " ".join(self.inline(p, boxes).split())
        style = self.style_name(p)
        if text:
            heading = HEADING_STYLE.match(style)
            if style.lower() == "title":
                self.blocks.append("# " + text)
            elif heading:
                self.blocks.append("#" * min(int(heading.group(1)), 6) + " " + text)
            elif (info := self.list_info(p)) is not None or LIST_STYLE.match(style):
                kind, level = info or ("decimal" if "number" in style.lower() else "bullet", 0)
                key = (kind, level)
                if kind in ("bullet", "none"):
                    marker = "-"
                else:
                    self.counters[key] = self.counters.get(key, 0) + 1
                    marker = f"{self.counters[key]}."
                for k in [k for k in self.counters if k[1] > level]:
                    del self.counters[k]
                self.blocks.append("    " * level + marker + " " + text)
                for box in boxes:
                    self.body(box)
                return
            else:
                self.blocks.append(text)
        if not (self.list_info(p) or LIST_STYLE.match(style)):
            self.counters.clear()
        for box in boxes:
            self.body(box)

    def table(self, tbl) -> None:
        rows = []
        for tr in tbl.iter(qn("w:tr")):
            if next((a for a in tr.iterancestors(qn("w:tbl"))), None) is not tbl:
                continue
            row: list[str] = []
            for tc in tr.findall(qn("w:tc")):
                span = tc.find(f"{qn('w:tcPr')}/{qn('w:gridSpan')}")
                vmerge = tc.find(f"{qn('w:tcPr')}/{qn('w:vMerge')}")
                boxes: list = []
                texts = [self.inline(p, boxes) for p in tc.iter(qn("w:p"))]
                text = cell_text(" ".join(t.strip() for t in texts if t.strip()))
                if vmerge is not None and vmerge.get(qn("w:val")) in (None, "continue") and rows:
                    above = rows[-1]
                    text = above[len(row)] if len(row) < len(above) else ""
                row.extend([text] * (int(span.get(qn("w:val"))) if span is not None else 1))
            rows.append(row)
        if rows:
            self.blocks.append(table_markdown(rows))

    def picture(self, node) -> None:
        """The text in an embedded picture, as an image-text block where the picture stands."""
        rid = node.get(R_EMBED) or node.get(R_ID)
        part = self.doc.part.related_parts.get(rid) if rid else None
        text = self.pictures(part.blob, part.partname.split("/")[-1]) if part is not None and self.pictures else None
        if text:
            self.blocks.append(text)

    def body(self, container) -> None:
        if container.tag in (A_BLIP, V_IMAGEDATA):
            return self.picture(container)
        for child in container.iterchildren():
            if child.tag == qn("w:p"):
                self.paragraph(child)
            elif child.tag == qn("w:tbl"):
                self.counters.clear()
                self.table(child)
            elif child.tag in (qn("w:sdt"), qn("w:sdtContent"), qn("w:customXml")):
                self.body(child)

    def markdown(self) -> str:
        self.body(self.doc.element.body)
        out: list[str] = []
        for block in self.blocks:
            is_item = bool(re.match(r"^\s*(-|\d+\.) ", block))
            if out and is_item and re.match(r"^\s*(-|\d+\.) ", out[-1].rsplit("\n", 1)[-1]):
                out[-1] += "\n" + block
            else:
                out.append(block)
        return "\n\n".join(out) + "\n"


def convert_docx(data: bytes, name: str, pictures: PictureText | None = None) -> Converted:
    document = docx.Document(io.BytesIO(data))
    markdown = _Writer(document, pictures).markdown()
    props = document.core_properties
    extra = {k: v for k, v in (("subject", props.subject), ("keywords", props.keywords)) if v}
    return Converted(
        markdown=markdown,
        title=(props.title or "").strip() or None,
        author=props.author or None,
        created=props.created.isoformat() if props.created else None,
        modified=props.modified.isoformat() if props.modified else None,
        extra=extra,
    )
