"""Fixture files for the parse tests, built in code with the real writer libraries."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def build_pdf(pages: list[list[tuple[float, str]]], title: str | None = None) -> bytes:
    """A minimal valid PDF: each page a list of (font size, line) drawn top-down in Helvetica.
    An empty page list entry gives a page with a drawn rectangle and no text (like a scan)."""
    objects: list[bytes] = []
    n_pages = len(pages)
    page_ids = [4 + 2 * i for i in range(n_pages)]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        ops, y = [], 760.0
        for size, text in lines:
            ops.append(f"BT /F1 {size} Tf 72 {y:.1f} Td ({_pdf_escape(text)}) Tj ET")
            y -= size * 1.6 + (size * 0.8 if size > 12 else 0)
        if not lines:
            ops.append("0.5 g 72 72 400 600 re f")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {page_ids[i] + 1} 0 R >>".encode()
        )
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream")
    info_id = None
    if title:
        objects.append(f"<< /Title ({_pdf_escape(title)}) /Author (Test Author) >>".encode())
        info_id = len(objects)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    info = f" /Info {info_id} 0 R" if info_id else ""
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


@pytest.fixture
def make_pdf() -> Callable[..., bytes]:
    return build_pdf


@pytest.fixture
def sample_pdf(tmp_path: Path) -> Path:
    body = "The duck swims in the lake and eats green leaves every morning."
    path = tmp_path / "report.pdf"
    path.write_bytes(
        build_pdf(
            [
                [(20, "Annual Duck Report"), (11, body), (11, "It also likes bread crumbs.")],
                [(16, "Second Chapter"), (11, "Ducks migrate south in the winter season.")],
            ],
            title="Duck Report",
        )
    )
    return path


@pytest.fixture
def sample_docx(tmp_path: Path) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.author = "Jane Duck"
    document.core_properties.title = "Pond Guide"
    document.add_heading("Pond Guide", level=1)
    document.add_paragraph("Ducks like ponds with reeds.")
    document.add_heading("Food", level=2)
    document.add_paragraph("Bread", style="List Bullet")
    document.add_paragraph("Leaves", style="List Bullet")
    document.add_paragraph("Wash hands", style="List Number")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Food", "Calories"
    table.cell(1, 0).text, table.cell(1, 1).text = "Corn", "200"
    paragraph = document.add_paragraph("See ")
    part = document.part
    rel = part.relate_to("https://example.org/ducks", "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink", is_external=True)
    link = paragraph._p.makeelement("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}hyperlink")
    link.set("{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id", rel)
    run = paragraph.add_run("the duck site")._r
    link.append(run)
    paragraph._p.append(link)
    path = tmp_path / "guide.docx"
    document.save(path)
    return path


@pytest.fixture
def sample_pptx(tmp_path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[1])
    slide.shapes.title.text = "Quarterly Ducks"
    body = slide.placeholders[1].text_frame
    body.text = "Ducks counted: 120"
    para = body.add_paragraph()
    para.text = "Mostly mallards"
    para.level = 1
    slide.notes_slide.notes_text_frame.text = "Mention the geese."
    slide2 = prs.slides.add_slide(prs.slide_layouts[5])
    slide2.shapes.title.text = "Numbers"
    shape = slide2.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1))
    cells = shape.table
    cells.cell(0, 0).text, cells.cell(0, 1).text = "Year", "Ducks"
    cells.cell(1, 0).text, cells.cell(1, 1).text = "2024", "180"
    path = tmp_path / "deck.pptx"
    prs.save(path)
    return path


@pytest.fixture
def sample_xlsx(tmp_path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Counts"
    sheet.append(["Year", "Ducks"])
    for year in range(2000, 2030):
        sheet.append([year, year - 1900])
    other = book.create_sheet("Notes")
    other.append(["remark"])
    other.append(["all good"])
    path = tmp_path / "counts.xlsx"
    book.save(path)
    return path
