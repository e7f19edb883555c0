"""Bad input gets a clear QuiverError, never a crash or a hang."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from servers.core.errors import AccessDenied, InvalidInput, QuiverError, TooLarge
from servers.core.roots import resolve_under_roots
from servers.core.settings import ParseSettings
from servers.parse import parse_bytes, parse_path


def test_corrupted_pdf(sample_pdf: Path) -> None:
    data = sample_pdf.read_bytes()
    with pytest.raises(InvalidInput, match="corrupted"):
        parse_bytes(data[:200], "broken.pdf")
    with pytest.raises(InvalidInput, match="does not start with a PDF header"):
        parse_bytes(b"hello, not a pdf at all", "fake.pdf")


def test_corrupted_office_files(sample_docx: Path) -> None:
    data = sample_docx.read_bytes()
    with pytest.raises(InvalidInput, match="not a valid DOCX"):
        parse_bytes(data[: len(data) // 2], "half.docx")
    with pytest.raises(InvalidInput, match="not a valid XLSX"):
        parse_bytes(b"plain text pretending", "sheet.xlsx")
    # a zip with the right layout but garbage XML inside
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<<< not xml")
    with pytest.raises(InvalidInput, match="could not be parsed as DOCX"):
        parse_bytes(buf.getvalue(), "garbage.docx")


def test_encrypted_pdf(sample_pdf: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(sample_pdf))
    writer.encrypt(user_password="secret", owner_password="owner")
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(InvalidInput, match="encrypted PDF"):
        parse_bytes(buf.getvalue(), "locked.pdf")


def test_scanned_pdf_without_text_layer_and_ocr_off(make_pdf: Callable[..., bytes]) -> None:
    never = ParseSettings(ocr="never")
    with pytest.raises(InvalidInput, match="no text layer.*ocr='never'.*ocr='auto'"):
        parse_bytes(make_pdf([[], []]), "scan.pdf", never)
    # one scanned page among text pages: parsed, with a warning naming the page
    doc = parse_bytes(make_pdf([[(11, "Typed page.")], []]), "mixed.pdf", never)
    assert "Typed page." in doc.markdown
    assert any("OCR is off" in w and "2" in w for w in doc.warnings)


def test_unsupported_types() -> None:
    with pytest.raises(InvalidInput, match="unsupported file type"):
        parse_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00", "program.exe")
    with pytest.raises(InvalidInput, match="photo.png could not be read as an image"):
        parse_bytes(b"\x89PNG\r\n\x1a\n\x00\x00", "photo.png")
    with pytest.raises(InvalidInput, match="legacy binary Office"):
        parse_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "old.doc")
    with pytest.raises(InvalidInput, match="OLE compound file of an unsupported kind"):
        parse_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "thing.bin")


def test_file_over_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (300 * 1024))
    with pytest.raises(TooLarge, match="max_file_mb"):
        parse_path(big, ParseSettings(max_file_mb=0.25))
    with pytest.raises(TooLarge):
        parse_bytes(big.read_bytes(), "big.txt", ParseSettings(max_file_mb=0.25))
    assert parse_path(big, ParseSettings(max_file_mb=1)).format == "text"


@pytest.mark.parametrize(("name", "prefix"), [("bomb.docx", "word/"), ("bomb.xlsx", "xl/")])
def test_zip_bomb_refused_before_opening(name: str, prefix: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr(prefix + "huge.xml", b"\x00" * (30 * 1024 * 1024))  # 30 MB of zeros, ~30 KB zipped
    data = buf.getvalue()
    assert len(data) < 200_000
    with pytest.raises(TooLarge, match="zip bomb"):
        parse_bytes(data, name, ParseSettings(max_uncompressed_mb=10))


def test_path_outside_roots(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    for bad in ("../secret.txt", str(tmp_path / "secret.txt"), "file:///etc/passwd", "link.txt"):
        with pytest.raises(AccessDenied):
            resolve_under_roots(bad, [root])


def test_errors_are_quiver_errors_with_guidance() -> None:
    with pytest.raises(QuiverError) as info:
        parse_bytes(b"%PDF-1.4\ngarbage", "x.pdf")
    assert "corrupted" in str(info.value)


def test_bad_images_are_refused_before_decoding() -> None:
    from tests.parse import samples as S

    with pytest.raises(InvalidInput, match="scan.png is empty"):
        parse_bytes(b"", "scan.png")
    image = S.render_text([["Truncated duck"]], S.latin_font(20))
    png = S.png_bytes(image)
    with pytest.raises(InvalidInput, match="cut.png could not be (decoded|read)"):
        parse_bytes(png[: len(png) // 2], "cut.png")
    with pytest.raises(InvalidInput, match="noise.jpg could not be read as an image"):
        parse_bytes(b"\xff\xd8\xff" + b"garbage" * 20, "noise.jpg")
    bomb = S.png_bomb(30_000)  # ~110 kB on disk, 900 megapixels decoded
    with pytest.raises(TooLarge, match=r"bomb.png.*parse.max_image_pixels"):
        parse_bytes(bomb, "bomb.png")
    small_cap = ParseSettings(max_image_pixels=10_000)
    with pytest.raises(TooLarge, match=r"\d+×\d+ pixels.*parse.max_image_pixels"):
        parse_bytes(png, "big.png", small_cap)
