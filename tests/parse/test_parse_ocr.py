"""OCR with the real engine on images rendered from known text: images, a scanned PDF,
pictures inside DOCX/PPTX/XLSX. Few, small images (module-scoped) to stay fast."""

from __future__ import annotations

import io
import sys

import pytest
from PIL import Image

from servers.core.errors import InvalidInput
from servers.core.ocr import tesseract_available
from servers.core.settings import ParseSettings
from servers.parse import chunk_document, parse_bytes
from tests.parse import samples as S

TITLE = "Pond Report"
PARA1 = ["Ducks arrived early this spring and", "nested near the northern reeds."]
PARA2 = ["Volunteers counted one hundred", "and twenty birds on Saturday."]
ENGLISH = " ".join(PARA1) + " " + " ".join(PARA2)
CHINESE = ["今天天气很好", "鸭子在湖里游泳"]


def body_text(markdown: str) -> str:
    return " ".join(line for line in markdown.splitlines() if not line.startswith(("<!--", "#", ">")))


@pytest.fixture(scope="module")
def english_image() -> Image.Image:
    return S.render_text([PARA1, PARA2], S.latin_font(26), title=TITLE, title_font=S.latin_font(44, "DejaVuSans-Bold.ttf"))


@pytest.fixture(scope="module")
def english_jpeg(english_image: Image.Image) -> tuple[bytes, object]:
    exif = Image.Exif()
    exif[271], exif[272], exif[270] = "DuckCam", "Model 7", "Pond survey page"
    exif[306] = "2024:05:07 10:20:30"
    data = S.png_bytes(english_image, "JPEG", quality=92, exif=exif.tobytes())
    return data, parse_bytes(data, "survey.jpg")


def test_image_text_paragraphs_heading_and_exif(english_jpeg) -> None:
    _, doc = english_jpeg
    assert doc.format == "image" and doc.pages == 1
    assert doc.sections and doc.sections[0].heading_path == [TITLE]
    assert S.cer(body_text(doc.markdown), ENGLISH) < 0.05, doc.markdown
    # two paragraphs: the blank line in the image separates them
    body = [p for p in doc.markdown.split("\n\n") if p and not p.startswith(("<!--", "#"))]
    assert len(body) == 2 and S.cer(body[0], " ".join(PARA1)) < 0.05
    extra = doc.metadata.extra
    assert extra["camera"] == "DuckCam Model 7" and extra["description"] == "Pond survey page"
    assert doc.metadata.created == "2024-05-07T10:20:30"
    blocks = extra["ocr"]["blocks"]
    assert extra["ocr"]["engine"] == "rapidocr" and extra["ocr"]["pages"] == [1]
    assert len(blocks) == 3 and all(0.5 < b["confidence"] <= 1 for b in blocks)
    for block in blocks:  # spans point at the text they score
        assert doc.markdown[block["start"] : block["end"]].strip()
    assert not [w for w in doc.warnings if "low OCR confidence" in w]


def test_low_confidence_blocks_are_flagged(english_jpeg) -> None:
    data, _ = english_jpeg
    strict = ParseSettings(ocr_min_confidence=0.9999)
    doc = parse_bytes(data, "survey.jpg", strict)
    assert any(w.startswith("low OCR confidence") for w in doc.warnings), doc.warnings


def test_noisy_skewed_image() -> None:
    image = S.render_text([PARA2], S.latin_font(24, "DejaVuSerif.ttf"), noise=0.02, angle=6, blur=0.6, seed=3)
    doc = parse_bytes(S.png_bytes(image), "skewed.png")
    assert S.cer(body_text(doc.markdown), " ".join(PARA2)) < 0.12, doc.markdown


def test_page_turned_sideways_is_read_upright(english_image: Image.Image) -> None:
    turned = english_image.rotate(-90, expand=True)  # clockwise: the text runs top to bottom
    doc = parse_bytes(S.png_bytes(turned), "turned.png")
    assert S.cer(body_text(doc.markdown), ENGLISH) < 0.08, doc.markdown
    assert any("turned" in w for w in doc.warnings)


def test_chinese_text() -> None:
    font = S.cjk_font(36)
    if font is None:
        pytest.skip("no font with Chinese glyphs (install the noto-cjk-sans-otc dev dependency or fonts-noto-cjk)")
    image = S.render_text([CHINESE], font, noise=0.005, seed=5)
    doc = parse_bytes(S.png_bytes(image), "chinese.png")
    assert S.cer(body_text(doc.markdown), "".join(CHINESE)) < 0.1, doc.markdown
    assert "今天天气很好鸭子" in body_text(doc.markdown).replace(" ", "")  # CJK lines joined without spaces


@pytest.fixture(scope="module")
def scanned() -> bytes:
    from PIL import ImageDraw

    font, small = S.latin_font(22), S.latin_font(17)
    pages = []
    for number, para in enumerate((PARA1, PARA2, PARA1), start=1):
        page = Image.new("RGB", (827, 1169), "white")  # A4 at 100 dpi
        draw = ImageDraw.Draw(page)
        draw.text((80, 40), "Pond Society Newsletter", font=small, fill="black")
        y = 200
        for line in para:
            draw.text((80, y), line, font=font, fill="black")
            y += 32
        draw.text((405, 1120), str(number), font=small, fill="black")
        pages.append(page)
    return S.scanned_pdf(pages, dpi=100)


def test_scanned_pdf_pages_ocr_headers_and_chunks(scanned: bytes) -> None:
    doc = parse_bytes(scanned, "scan.pdf", ParseSettings(ocr_dpi=100))
    assert doc.format == "pdf" and doc.pages == 3
    assert doc.metadata.extra["ocr"]["pages"] == [1, 2, 3]
    assert doc.metadata.extra["page_headers"] == ["Pond Society Newsletter"]
    assert "Newsletter" not in doc.markdown  # running header dropped from the body
    page2 = next(s for s in doc.page_spans if s.page == 2)
    assert S.cer(body_text(doc.markdown[page2.start : page2.end]), " ".join(PARA2)) < 0.05
    assert not any(line.strip() in {"1", "2", "3"} for line in doc.markdown.splitlines())  # page numbers
    chunks = chunk_document(doc, size=200, unit="chars")
    assert {p for c in chunks for p in c.pages} == {1, 2, 3}
    with pytest.raises(InvalidInput, match="ocr='never'"):
        parse_bytes(scanned, "scan.pdf", ParseSettings(ocr="never"))


def test_mixed_pdf_ocrs_only_the_scanned_page(make_pdf, english_image: Image.Image) -> None:
    from pypdf import PdfReader, PdfWriter

    typed = PdfReader(io.BytesIO(make_pdf([[(12, "A typed page about geese.")]])))
    scan = PdfReader(io.BytesIO(S.scanned_pdf([english_image], dpi=100)))
    writer = PdfWriter()
    writer.add_page(typed.pages[0])
    writer.add_page(scan.pages[0])
    buf = io.BytesIO()
    writer.write(buf)
    doc = parse_bytes(buf.getvalue(), "mixed.pdf")
    assert doc.metadata.extra["ocr"]["pages"] == [2]
    assert "A typed page about geese." in doc.markdown
    assert S.cer(body_text(doc.markdown.split("<!-- page 2 -->")[1]), ENGLISH) < 0.08


def test_multipage_tiff() -> None:
    pages = [S.render_text([[f"Page {word} of the report"]], S.latin_font(28)) for word in ("one", "two")]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    doc = parse_bytes(buf.getvalue(), "pages.tiff")
    assert doc.pages == 2 and [s.page for s in doc.page_spans] == [1, 2]
    assert "two" in doc.markdown.split("<!-- page 2 -->")[1]


@pytest.fixture(scope="module")
def picture() -> bytes:
    text = S.render_text([["Sales grew twenty percent"]], S.latin_font(30), margin=30)
    image = Image.new("RGB", (text.width, 320), "white")
    image.paste(text, (0, 100))
    return S.png_bytes(image)


def test_picture_text_in_docx_pptx_xlsx(picture: bytes) -> None:
    always = ParseSettings(ocr_images="always")
    docx = S.docx_with_picture(picture, "Before the chart.", "After the chart.")
    assert "Sales" not in parse_bytes(docx, "r.docx").markdown  # off by default
    doc = parse_bytes(docx, "r.docx", always)
    before, after = doc.markdown.index("Before the chart."), doc.markdown.index("After the chart.")
    quote = doc.markdown.index("> [Image text: image1.png]")
    assert before < quote < after
    assert S.cer(doc.markdown[quote:after].split("\n", 1)[1], "Sales grew twenty percent") < 0.1
    assert doc.metadata.extra["ocr"]["images"][0]["image"] == "image1.png"
    deck = parse_bytes(S.pptx_with_picture(picture, "Results"), "d.pptx", always)
    assert "> [Image text:" in deck.markdown and "twenty" in deck.markdown.split("# Results")[1]
    sheet = parse_bytes(S.xlsx_with_picture(picture), "s.xlsx", always)
    assert "at D5]" in sheet.markdown and "twenty" in sheet.markdown
    # auto reads only large pictures: this one is below the configured side
    auto = parse_bytes(docx, "r.docx", ParseSettings(ocr_images="auto", ocr_image_min_side=2000))
    assert "Image text" not in auto.markdown


def test_ocr_is_not_imported_for_other_formats(sample_docx) -> None:
    import subprocess

    code = (
        "import sys; from servers.parse import parse_path; parse_path(__import__('pathlib').Path(sys.argv[1])); "
        "print('rapidocr' in sys.modules, 'onnxruntime' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(sample_docx)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.skipif(not tesseract_available(), reason="the tesseract binary is not installed (apt-get install tesseract-ocr)")
def test_tesseract_engine(english_image: Image.Image) -> None:
    doc = parse_bytes(S.png_bytes(english_image), "t.png", ParseSettings(ocr_engine="tesseract", tesseract_languages="eng"))
    assert doc.metadata.extra["ocr"]["engine"] == "tesseract"
    assert S.cer(body_text(doc.markdown), ENGLISH) < 0.08, doc.markdown


def test_pdf_stamped_scan_and_picture_on_a_text_page(make_pdf, english_image: Image.Image, picture: bytes) -> None:
    from pypdf import PdfReader, PdfWriter, Transformation

    scan = PdfReader(io.BytesIO(S.scanned_pdf([english_image], dpi=100))).pages[0]
    prose = [(11, f"Line {i}: the committee discussed the pond, the reeds and the ducks at length.") for i in range(6)]
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([[(9, "CONFIDENTIAL")], prose]))))
    stamped, text_page = writer.pages
    stamped.merge_transformed_page(scan, Transformation().scale(612 / float(scan.mediabox.width)))
    chart = PdfReader(io.BytesIO(S.scanned_pdf([Image.open(io.BytesIO(picture))], dpi=100))).pages[0]
    text_page.merge_transformed_page(chart, Transformation().scale(0.5).translate(72, 150))
    buf = io.BytesIO()
    writer.write(buf)
    doc = parse_bytes(buf.getvalue(), "stamped.pdf", ParseSettings(ocr_dpi=100, ocr_images="always"))
    assert doc.metadata.extra["ocr"]["pages"] == [1]  # a full-page picture under a one-word stamp
    page1, page2 = doc.markdown.split("<!-- page 2 -->")
    assert S.cer(body_text(page1), "CONFIDENTIAL " + ENGLISH) < 0.1, page1
    assert "Line 5: the committee" in page2 and "> [Image text: page 2 picture 1]" in page2
    assert page2.index("Line 5") < page2.index("Image text")  # the picture sits below the text
    assert "twenty" in page2.split("Image text")[1]
