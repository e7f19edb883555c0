"""Each supported format parses into Markdown with the expected structure."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from servers.core.settings import ParseSettings
from servers.parse import parse_bytes, parse_path

DOCPARSE = Path(__file__).resolve().parents[3] / "shared" / "data" / "docparse"


def test_pdf_pages_headings_metadata(sample_pdf: Path) -> None:
    doc = parse_path(sample_pdf)
    assert doc.format == "pdf" and doc.pages == 2
    assert doc.doc_id == hashlib.sha256(sample_pdf.read_bytes()).hexdigest() == doc.metadata.sha256
    assert doc.metadata.size == sample_pdf.stat().st_size
    assert doc.title == "Duck Report" and doc.metadata.author == "Test Author"
    assert "<!-- page 1 -->" in doc.markdown and "<!-- page 2 -->" in doc.markdown
    assert [p.page for p in doc.page_spans] == [1, 2]
    page2 = doc.page_spans[1]
    assert "Ducks migrate south" in doc.markdown[page2.start : page2.end]
    assert "Ducks migrate south" not in doc.markdown[doc.page_spans[0].start : doc.page_spans[0].end]
    # bigger fonts become headings; the smaller one nests under the bigger one
    assert "# Annual Duck Report" in doc.markdown
    paths = [s.heading_path for s in doc.sections]
    assert paths == [["Annual Duck Report"], ["Annual Duck Report", "Second Chapter"]]
    # lines of one paragraph are joined
    assert "every morning. It also likes bread crumbs." in doc.markdown


@pytest.mark.skipif(not (DOCPARSE / "pdf").is_dir(), reason="shared docparse data not present")
def test_real_pdf_table_is_extracted() -> None:
    doc = parse_path(DOCPARSE / "pdf" / "input" / "2305.03393v1-pg9.pdf")
    assert doc.tables, "pdfplumber should find the table on this page"
    table = doc.tables[0]
    assert table.page == 1 and doc.markdown[table.start : table.end] == table.markdown
    assert table.markdown.startswith("|") and table.markdown.count("\n") >= 3
    no_tables = parse_path(DOCPARSE / "pdf" / "input" / "2305.03393v1-pg9.pdf", ParseSettings(pdf_tables=False))
    assert not no_tables.tables


def test_docx_headings_lists_tables_links(sample_docx: Path) -> None:
    doc = parse_path(sample_docx)
    md = doc.markdown
    assert doc.format == "docx" and doc.title == "Pond Guide" and doc.metadata.author == "Jane Duck"
    assert "# Pond Guide" in md and "## Food" in md
    assert "- Bread\n- Leaves" in md
    assert "1. Wash hands" in md
    assert "| Food | Calories |" in md and "| Corn | 200 |" in md
    assert "[the duck site](https://example.org/ducks)" in md
    assert [s.heading_path for s in doc.sections] == [["Pond Guide"], ["Pond Guide", "Food"]]
    assert len(doc.tables) == 1 and doc.tables[0].page is None


def test_pptx_slides_titles_tables_notes(sample_pptx: Path) -> None:
    doc = parse_path(sample_pptx)
    md = doc.markdown
    assert doc.format == "pptx" and doc.pages == 2 and doc.title == "Quarterly Ducks"
    assert "<!-- slide 1 -->" in md and "# Quarterly Ducks" in md and "# Numbers" in md
    assert "Ducks counted: 120" in md and "  - Mostly mallards" in md
    assert "Notes: Mention the geese." in md
    assert doc.tables and doc.tables[0].page == 2 and "| 2024 | 180 |" in doc.tables[0].markdown


def test_xlsx_sheets_and_row_cap(sample_xlsx: Path) -> None:
    doc = parse_path(sample_xlsx)
    assert doc.format == "xlsx"
    assert "## Counts" in doc.markdown and "## Notes" in doc.markdown
    assert "| 2029 | 129 |" in doc.markdown and not doc.warnings
    capped = parse_path(sample_xlsx, ParseSettings(max_rows=10))
    assert "| 2008 | 108 |" in capped.markdown and "| 2009 | 109 |" not in capped.markdown
    assert any("Counts" in w and "10" in w and "max_rows" in w for w in capped.warnings)


def test_csv_delimiter_and_row_cap() -> None:
    data = "name;score\n" + "".join(f"p{i};{i}\n" for i in range(50))
    doc = parse_bytes(data.encode(), "scores.csv", ParseSettings(max_rows=5))
    assert doc.format == "csv" and doc.tables
    assert "| name | score |" in doc.markdown and "| p4 | 4 |" in doc.markdown and "p5" not in doc.markdown
    assert doc.warnings and "5 of 50" in doc.warnings[0]


def test_html_main_content_links_tables() -> None:
    html = """<html><head><title>Duck page</title><style>p {color: red}</style>
    <script>var secret = 1;</script></head><body>
    <nav><a href="/home">Home menu</a></nav>
    <main><h1>Ducks</h1><p>Ducks are <b>birds</b>, see <a href="https://en.wikipedia.org/wiki/Duck">Wikipedia</a>.</p>
    <h2>Kinds</h2><ul><li>Mallard<ul><li>Green head</li></ul></li><li>Teal</li></ul>
    <table><tr><th>Kind</th><th>Weight</th></tr><tr><td>Mallard</td><td>1.2 kg</td></tr></table>
    <pre><code class="language-python">quack()</code></pre></main>
    <footer>Copyright footer</footer></body></html>"""
    doc = parse_bytes(html.encode(), "ducks.html")
    md = doc.markdown
    assert doc.format == "html" and doc.title == "Duck page"
    assert "# Ducks" in md and "## Kinds" in md
    assert "[Wikipedia](https://en.wikipedia.org/wiki/Duck)" in md and "**birds**" in md
    assert "- Mallard\n    - Green head\n- Teal" in md
    assert "| Kind | Weight |" in md and "| Mallard | 1.2 kg |" in md
    assert "```python\nquack()\n```" in md
    for dropped in ("secret", "color: red", "Home menu", "Copyright footer"):
        assert dropped not in md


def test_markdown_json_and_text_encodings() -> None:
    md = parse_bytes(b"# Title\n\nBody text.\n\n## Part\n\nMore.\n", "notes.md")
    assert md.format == "markdown" and md.title == "Title" and len(md.sections) == 2
    assert md.sections[1].heading_path == ["Title", "Part"]
    assert md.markdown[md.sections[1].start : md.sections[1].end].startswith("## Part")
    js = parse_bytes(json.dumps({"title": "Cfg", "items": [1, 2]}).encode(), "cfg.json")
    assert js.format == "json" and js.title == "Cfg" and js.markdown.startswith("```json\n{")
    bad = parse_bytes(b"{not json", "broken.json")
    assert bad.markdown == "{not json" and "not valid JSON" in bad.warnings[0]
    latin = (
        "Le café est très chaud. Nous avons mangé une crème brûlée délicieuse à la fin du dîner, "
        "près de la fenêtre. Où est la gare? Il fait beau aujourd'hui.\n"
    )
    text = parse_bytes(latin.encode("cp1252"), "menu.txt")
    assert text.format == "text" and "crème brûlée" in text.markdown
    assert text.metadata.extra["encoding"] != "utf-8"
    utf16 = parse_bytes("Grüße aus Köln".encode("utf-16"), "hello.txt")
    assert utf16.markdown == "Grüße aus Köln"


def test_format_detected_from_content_not_only_extension(sample_docx: Path) -> None:
    doc = parse_bytes(sample_docx.read_bytes(), "upload.bin")
    assert doc.format == "docx"


@pytest.mark.skipif(not (DOCPARSE / "pptx").is_dir(), reason="shared docparse data not present")
def test_real_pptx_comments_and_merged_cells() -> None:
    comments = parse_path(DOCPARSE / "pptx" / "input" / "powerpoint_comments.pptx").markdown
    assert "> Comment (John Reviewer (JR), 2026-01-01T00:00:00): This is a sample reviewer comment" in comments
    sample = parse_path(DOCPARSE / "pptx" / "input" / "powerpoint_sample.pptx").markdown
    assert "| A merged with B | A merged with B |" in sample


def test_xlsx_side_by_side_tables_are_separate(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["a", "b", None, None, "x"], [1, 2, None, None, "y"], [3, 4, None, None, None]):
        sheet.append(row)
    book.save(tmp_path / "two.xlsx")
    doc = parse_path(tmp_path / "two.xlsx")
    assert [t.markdown.split("\n")[0] for t in doc.tables] == ["| a | b |", "| x |"]
