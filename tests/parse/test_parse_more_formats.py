"""EPUB, notebooks, feeds and XML, ZIP archives, e-mail (.eml, .msg), .xls, RTF and
OpenDocument: real files built in the tests (or, for .xls, a committed fixture made by
tests/parse/fixtures/make_xls.py), their text and structure."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from servers.core.errors import InvalidInput, TooLarge
from servers.core.settings import ParseSettings
from servers.parse import chunk_document, parse_bytes, parse_path
from tests.parse import samples as S

FIXTURES = Path(__file__).parent / "fixtures"


def headings(doc) -> list[list[str]]:
    return [s.heading_path for s in doc.sections]


def test_epub_chapters_in_spine_order_with_metadata() -> None:
    doc = parse_bytes(S.epub(), "pond.epub")
    assert doc.format == "epub" and doc.title == "The Pond Book" and doc.metadata.author == "Jane Duck"
    assert doc.metadata.created == "2024-05-01" and doc.metadata.extra["language"] == "en"
    md = doc.markdown
    assert md.index("# Chapter One: Arrival") < md.index("# Chapter Two: Winter")  # spine order; ch2 titled from the nav
    assert "*dawn*" in md and "**very hungry**" in md
    assert "- Mallards\n- Teals" in md and "> Quack, said the eldest duck." in md and "1. Fly south" in md
    assert headings(doc) == [["Chapter One: Arrival"], ["Chapter Two: Winter"]]
    assert "epub:type" not in md and "<" not in md.replace("<!--", "")


def test_epub_with_drm_is_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, zipfile.ZipFile(io.BytesIO(S.epub())) as book:
        for info in book.infolist():
            z.writestr(info, book.read(info))
        z.writestr("META-INF/encryption.xml", '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
                   '<EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#"><EncryptionMethod '
                   'Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/></EncryptedData></encryption>')
    with pytest.raises(InvalidInput, match="DRM"):
        parse_bytes(buf.getvalue(), "locked.epub")


def test_notebook_cells_fenced_with_kernel_language() -> None:
    doc = parse_bytes(S.notebook(), "analysis.ipynb")
    assert doc.format == "notebook" and headings(doc) == [["Duck Analysis"]]
    md = doc.markdown
    assert "```python\nducks = 3\nprint(ducks * 2)\n```" in md
    assert "```text\n6\n```" in md and "ZeroDivisionError: division by zero" in md
    for internal in ("execution_count", "cell_type", "iVBOR", "Figure size", "\x1b", "outputs"):
        assert internal not in md
    quiet = parse_bytes(S.notebook(), "analysis.ipynb", ParseSettings(notebook_outputs=False))
    assert "ZeroDivisionError" not in quiet.markdown and "print(ducks * 2)" in quiet.markdown
    with pytest.raises(InvalidInput, match="not a Jupyter notebook"):
        parse_bytes(b'{"a": 1}', "x.ipynb")


def test_rss_items_are_sections_with_date_link_and_body() -> None:
    doc = parse_bytes(S.rss(), "news.xml")
    assert doc.format == "feed" and doc.title == "Pond News"
    assert headings(doc)[:3] == [["Pond News"], ["Pond News", "Ducklings hatched"], ["Pond News", "Ducklings hatched", "Names"]]
    md = doc.markdown
    assert "Published: 2024-05-06T08:30:00+00:00" in md and "<https://pond.example/ducklings>" in md
    assert "Seven **ducklings** hatched today." in md and "Volunteers removed *plastic* from the water." in md
    assert "&lt;" not in md and "<p>" not in md
    assert doc.metadata.modified == "2024-05-07T10:00:00+00:00"


def test_atom_feed_and_plain_xml() -> None:
    doc = parse_bytes(S.atom(), "blog.atom")
    assert doc.title == "Duck Blog" and doc.metadata.author == "Jane Duck"
    assert "## Migration notes" in doc.markdown and "Ducks fly **south** in autumn." in doc.markdown
    assert "Feathers keep ducks dry." in doc.markdown
    rdf = (b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
           b'xmlns="http://purl.org/rss/1.0/"><channel rdf:about="http://x.org/"><title>RDF News</title></channel>'
           b'<item rdf:about="http://x.org/1"><title>First</title><description>Hello &lt;b&gt;world&lt;/b&gt;'
           b'</description></item></rdf:RDF>')
    rss1 = parse_bytes(rdf, "rss1.xml")
    assert rss1.format == "feed" and "## First" in rss1.markdown and "Hello **world**" in rss1.markdown
    assert "<http://x.org/1>" in rss1.markdown
    xml = b'<?xml version="1.0"?><catalog><title>Birds</title><bird id="1"><name>Mallard</name>' \
          b'<note>Green head</note></bird></catalog>'
    plain = parse_bytes(xml, "birds.xml")
    assert plain.format == "xml" and plain.markdown.split() == ["Birds", "Mallard", "Green", "head"]
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">' \
           b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><x>&c;&c;&c;</x>'
    assert len(parse_bytes(bomb, "bomb.xml").markdown) < 100  # entities are never expanded


def test_zip_members_as_sections_with_errors_and_nesting() -> None:
    inner = S.zip_archive({"deep.txt": b"deep text in the inner archive"})
    data = S.zip_archive({
        "docs/notes.md": b"# Notes\n\nDucks need water.", "table.csv": b"x,y\n1,2\n", "inner.zip": inner,
        "tool.exe": b"MZ\x90\x00", "broken.docx": b"PK\x03\x04 junk", "__MACOSX/._notes.md": b"junk",
    })
    doc = parse_bytes(data, "bundle.zip")
    assert doc.format == "zip"
    assert ["docs/notes.md"] in headings(doc) and ["docs/notes.md", "Notes"] in headings(doc)
    assert "| x | y |" in doc.markdown and "deep text in the inner archive" in doc.markdown
    members = {m["path"]: m for m in doc.metadata.extra["members"]}
    assert members["broken.docx"]["ok"] is False and members["inner.zip"]["format"] == "zip"
    assert any("broken.docx could not be parsed" in w for w in doc.warnings)
    assert any("tool.exe" in w and "unsupported" in w for w in doc.warnings)
    assert "MACOSX" not in doc.markdown
    chunks = chunk_document(doc, size=64, unit="chars")
    assert any(c.heading_path[:1] == ["table.csv"] for c in chunks)


def test_zip_guards(tmp_path: Path) -> None:
    traversal = io.BytesIO()
    with zipfile.ZipFile(traversal, "w") as z:
        z.writestr("ok.txt", "fine")
        z.writestr("../../x", "escape")
    with pytest.raises(InvalidInput, match=r"climb out of the archive.*'\.\./\.\./x'"):
        parse_bytes(traversal.getvalue(), "evil.zip")
    locked = S.encrypted_zip("secret.txt", b"hidden ducks", b"pw")
    assert zipfile.ZipFile(io.BytesIO(locked)).read("secret.txt", pwd=b"pw") == b"hidden ducks"  # a real one
    with pytest.raises(InvalidInput, match="password-protected"):
        parse_bytes(locked, "locked.zip")
    many = S.zip_archive({f"f{i}.txt": b"x" for i in range(12)})
    with pytest.raises(TooLarge, match="archive_max_members"):
        parse_bytes(many, "many.zip", ParseSettings(archive_max_members=10))
    # an archive nested in itself again and again stops at the depth cap, with a clear note
    nested = S.zip_archive({"note.txt": b"level"})
    for _ in range(4):
        nested = S.zip_archive({"again.zip": nested})
    doc = parse_bytes(nested, "russian-doll.zip")
    assert any("archive_max_depth" in w for w in doc.warnings)
    bomb = S.zip_archive({"zeros.txt": b"\x00" * (3 * 1024 * 1024)})
    with pytest.raises(TooLarge, match="zip bomb"):
        parse_bytes(bomb, "bomb.zip", ParseSettings(max_uncompressed_mb=1))


def test_eml_header_block_body_and_attachments() -> None:
    data = S.eml({"census.csv": ("text/csv", b"species,count\nmallard,80\n"), "logo.bin": ("application/octet-stream", b"\x00\x01")})
    doc = parse_bytes(data, "census.eml")
    assert doc.format == "eml" and doc.title == "Duck census results"
    md = doc.markdown
    assert "- **From:** Jane Duck <jane@pond.example>" in md and "- **Cc:** team@pond.example" in md
    assert "We counted 120 ducks this spring." in md and "<b>" not in md
    assert "- census.csv (text/csv" in md and "| mallard | 80 |" in md
    assert ["Duck census results", "Attachment: census.csv"] in headings(doc)
    assert doc.metadata.created == "2024-05-07T10:00:00+00:00"
    attachments = {a["name"]: a for a in doc.metadata.extra["attachments"]}
    assert attachments["census.csv"]["parsed"] and not attachments["logo.bin"]["parsed"]


def test_outlook_msg() -> None:
    doc = parse_bytes(S.outlook_msg(("budget.csv", b"item,euros\nfood,300\n")), "budget.msg")
    assert doc.format == "msg" and doc.title == "Pond budget 2024"
    md = doc.markdown
    assert "- **From:** Jane Duck <jane@pond.example>" in md and "- **To:** Bob Goose" in md
    assert "- **Date:** 2024-05-07T10:00:00+00:00" in md and "The pond budget for 2024 is 500 euros." in md
    assert "| food | 300 |" in md
    with pytest.raises(InvalidInput, match="not an Outlook message.*rename it to .eml"):
        parse_bytes(b"Subject: hi\n\nplain MIME text", "fake.msg")


def test_legacy_xls_fixture() -> None:
    doc = parse_path(FIXTURES / "pond.xls")
    assert doc.format == "xls" and headings(doc) == [["Counts"], ["Notes"]]
    assert "| 2024 | 120.5 | 2024-05-07 | FALSE |" in doc.markdown and "鸭子 means duck" in doc.markdown
    assert len(doc.tables) == 2
    capped = parse_path(FIXTURES / "pond.xls", ParseSettings(max_rows=2))
    assert any("truncated to its first 2 of 4 rows" in w for w in capped.warnings)
    with pytest.raises(InvalidInput, match="not a legacy Excel workbook"):
        parse_bytes(b"plain,text\n1,2\n", "sheet.xls")


def test_rtf_text_and_info() -> None:
    doc = parse_bytes(S.rtf(), "minutes.rtf")
    assert doc.title == "Pond Minutes" and doc.metadata.author == "Jane Duck"
    assert doc.metadata.created == "2024-05-07T09:30:00"
    assert "approved the café budget." in doc.markdown and "鸭子 means duck." in doc.markdown
    assert "\\par" not in doc.markdown and "fonttbl" not in doc.markdown


def test_opendocument_text_spreadsheet_presentation() -> None:
    text = parse_bytes(S.odt(), "handbook.odt")
    assert text.title == "Pond Handbook" and text.metadata.author == "Jane Duck"
    assert headings(text) == [["Pond Handbook"], ["Pond Handbook", "Feeding"]]
    assert "- Grain\n- Peas" in text.markdown and "| Grain | 50 |" in text.markdown
    sheet = parse_bytes(S.ods(), "counts.ods")
    assert headings(sheet) == [["Counts"]] and "| 2024 | 120 |" in sheet.markdown
    slides = parse_bytes(S.odp(), "deck.odp")
    assert slides.pages == 1 and [s.page for s in slides.page_spans] == [1]
    assert "# Duck Strategy" in slides.markdown and "Grow the flock by ten percent" in slides.markdown


def test_zero_byte_files_of_every_binary_kind() -> None:
    for name in ("empty.png", "empty.msg", "empty.xls", "empty.eml"):
        with pytest.raises(InvalidInput, match="empty"):
            parse_bytes(b"", name)


def test_supported_formats_covers_every_detected_format() -> None:
    from servers.parse import guards
    from servers.parse.catalog import supported_formats

    info = supported_formats()
    listed = {f.format for f in info.formats}
    assert set(guards.EXTENSIONS.values()) <= listed  # every extension the detector knows is described
    image = next(f for f in info.formats if f.format == "image")
    assert ".tiff" in image.extensions and "OCR" in image.reads
    assert any(".doc" in u.extensions for u in info.unsupported) and "RapidOCR" in info.ocr


def test_pdf_running_headers_and_page_numbers_go_to_metadata(make_pdf) -> None:
    pages = []
    for number in range(1, 4):
        body = [(11, f"Body line {i} of page {number} tells how ducks find food.") for i in range(39)]
        pages.append([(9, "ACME Pond Quarterly - Confidential")] + body + [(9, f"Page {number} of 3")])
    doc = parse_bytes(make_pdf(pages), "quarterly.pdf", ParseSettings(ocr="never"))
    assert doc.metadata.extra["page_headers"] == ["ACME Pond Quarterly - Confidential"]
    assert "Confidential" not in doc.markdown and "Page 2 of 3" not in doc.markdown
    assert "Body line 38 of page 3" in doc.markdown and "Body line 0 of page 1" in doc.markdown
    single = parse_bytes(make_pdf(pages[:1]), "one.pdf", ParseSettings(ocr="never"))
    assert "ACME Pond Quarterly" in single.markdown  # one page: nothing repeats, nothing is dropped
