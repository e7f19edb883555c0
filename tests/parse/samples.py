"""Builders of real test files for the OCR and format tests (and ``bench/parse.py``):
images rendered from known text, scanned PDFs, Office files holding a picture of text,
EPUB, notebooks, feeds, ZIP archives, e-mail (``.eml`` with the standard library,
``.msg`` with a small OLE compound-file writer), RTF and OpenDocument files."""

from __future__ import annotations

import io
import json
import math
import random
import struct
import subprocess
import zipfile
from email.message import EmailMessage
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
LATIN_FONTS = ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf"]


# ------------------------------------------------------------------ fonts and images


def latin_font(size: int, name: str = "DejaVuSans.ttf") -> ImageFont.FreeTypeFont:
    path = DEJAVU / name
    if path.is_file():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def cjk_font_file() -> tuple[str, int] | None:
    """(font file, face index) of a font with Simplified Chinese glyphs: the
    ``noto-cjk-sans-otc`` wheel (a dev dependency), else one fontconfig knows, else None."""
    try:
        import noto_cjk_sans_otc

        return str(noto_cjk_sans_otc.FONT_PATH), 2  # face 2 of the collection is Noto Sans CJK SC
    except ImportError:
        pass
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    files = [line.split(":")[0].strip() for line in out.splitlines() if line.strip()]
    return (files[0], 0) if files else None


def cjk_font(size: int) -> ImageFont.FreeTypeFont | None:
    found = cjk_font_file()
    return ImageFont.truetype(found[0], size, index=found[1]) if found else None


def render_text(
    paragraphs: list[list[str]],
    font: ImageFont.FreeTypeFont,
    *,
    title: str | None = None,
    title_font: ImageFont.FreeTypeFont | None = None,
    width: int | None = None,
    margin: int = 40,
    noise: float = 0.0,
    angle: float = 0.0,
    blur: float = 0.0,
    seed: int = 0,
) -> Image.Image:
    """Dark text on white: an optional title, then paragraphs (lists of lines) separated by a blank line."""
    size = font.size
    line_h = int(size * 1.45)
    heights = (int(title_font.size * 1.8) if title and title_font else 0) + sum(
        len(p) * line_h + line_h for p in paragraphs
    )
    widest = max([font.getlength(line) for p in paragraphs for line in p] + [title_font.getlength(title) if title and title_font else 0])
    image = Image.new("L", (width or int(widest + 2 * margin), heights + 2 * margin), 255)
    draw = ImageDraw.Draw(image)
    y = margin
    if title and title_font:
        draw.text((margin, y), title, font=title_font, fill=0)
        y += int(title_font.size * 1.8)
    for para in paragraphs:
        for line in para:
            draw.text((margin, y), line, font=font, fill=0)
            y += line_h
        y += line_h
    if noise:
        rng = random.Random(seed)
        pixels = image.load()
        for _ in range(int(image.width * image.height * noise)):
            x, yy = rng.randrange(image.width), rng.randrange(image.height)
            pixels[x, yy] = rng.choice((0, 255, 128))
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    if angle:
        image = image.rotate(angle, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    return image.convert("RGB")


def png_bytes(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def scanned_pdf(pages: list[Image.Image], dpi: int = 200) -> bytes:
    """A PDF of page images with no text layer (what a scanner writes)."""
    buf = io.BytesIO()
    first, *rest = [p.convert("RGB") for p in pages]
    first.save(buf, "PDF", save_all=True, append_images=rest, resolution=dpi)
    return buf.getvalue()


def cer(hypothesis: str, reference: str) -> float:
    """Character error rate: edit distance over the reference length, whitespace ignored."""
    hyp = "".join(hypothesis.split())
    ref = "".join(reference.split())
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / len(ref)


# ------------------------------------------------------------------ office files with a picture


def docx_with_picture(picture: bytes, before: str, after: str) -> bytes:
    import docx
    from docx.shared import Inches

    document = docx.Document()
    document.add_heading("Picture Report", level=1)
    document.add_paragraph(before)
    document.add_picture(io.BytesIO(picture), width=Inches(5))
    document.add_paragraph(after)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def pptx_with_picture(picture: bytes, title: str) -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = title
    slide.shapes.add_picture(io.BytesIO(picture), Inches(1), Inches(2), width=Inches(7))
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue()


def xlsx_with_picture(picture: bytes) -> bytes:
    import openpyxl
    from openpyxl.drawing.image import Image as SheetImage

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Chart"
    sheet.append(["Quarter", "Sales"])
    sheet.append(["Q1", 10])
    sheet.add_image(SheetImage(io.BytesIO(picture)), "D5")
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


# ------------------------------------------------------------------ EPUB, notebook, feeds


def epub(title: str = "The Pond Book", author: str = "Jane Duck") -> bytes:
    chapter1 = """<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>One</title></head><body>
<h1>Chapter One: Arrival</h1>
<p>The ducks arrived at <em>dawn</em> and were <strong>very hungry</strong>.</p>
<ul><li>Mallards</li><li>Teals</li></ul>
<blockquote><p>Quack, said the eldest duck.</p></blockquote>
</body></html>"""
    chapter2 = """<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Two</title></head><body>
<p>Winter came and the pond froze over completely.</p>
<ol><li>Fly south</li><li>Return in spring</li></ol>
</body></html>"""
    nav = """<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops"><body>
<nav epub:type="toc"><ol><li><a href="text/ch1.xhtml">Chapter One: Arrival</a></li>
<li><a href="text/ch2.xhtml">Chapter Two: Winter</a></li></ol></nav></body></html>"""
    opf = f"""<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:identifier id="id">urn:uuid:1234</dc:identifier><dc:title>{title}</dc:title>
<dc:creator>{author}</dc:creator><dc:language>en</dc:language><dc:date>2024-05-01</dc:date>
<dc:publisher>Pond Press</dc:publisher></metadata>
<manifest><item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
<item id="c1" href="text/ch1.xhtml" media-type="application/xhtml+xml"/>
<item id="c2" href="text/ch2.xhtml" media-type="application/xhtml+xml"/></manifest>
<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>"""
    container = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        z.writestr("META-INF/container.xml", container)
        z.writestr("OEBPS/content.opf", opf)
        z.writestr("OEBPS/nav.xhtml", nav)
        z.writestr("OEBPS/text/ch1.xhtml", chapter1, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("OEBPS/text/ch2.xhtml", chapter2, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def notebook() -> bytes:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Duck Analysis\n", "\n", "We count *ducks*."]},
        {"cell_type": "code", "metadata": {"tags": ["x"]}, "execution_count": 1, "source": ["ducks = 3\n", "print(ducks * 2)"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["6\n"]}]},
        {"cell_type": "code", "metadata": {}, "execution_count": 2, "source": "ducks / 0",
         "outputs": [{"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
                      "traceback": ["\x1b[31mTraceback\x1b[0m"]}]},
        {"cell_type": "code", "metadata": {}, "execution_count": 3, "source": "plot()",
         "outputs": [{"output_type": "display_data", "metadata": {},
                      "data": {"image/png": "iVBORw0KGgo=", "text/plain": ["<Figure size 640x480>"]}}]},
    ]
    nb = {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
          "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
                       "language_info": {"name": "python"}}}
    return json.dumps(nb).encode()


def rss() -> bytes:
    return b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>Pond News</title><link>https://pond.example/</link><description>All about ducks</description>
<lastBuildDate>Tue, 07 May 2024 10:00:00 GMT</lastBuildDate>
<item><title>Ducklings hatched</title><link>https://pond.example/ducklings</link>
<pubDate>Mon, 06 May 2024 08:30:00 GMT</pubDate>
<description>&lt;p&gt;Seven &lt;b&gt;ducklings&lt;/b&gt; hatched today.&lt;/p&gt;&lt;h2&gt;Names&lt;/h2&gt;&lt;ul&gt;&lt;li&gt;Pip&lt;/li&gt;&lt;/ul&gt;</description></item>
<item><title>Pond cleaned</title><link>https://pond.example/clean</link>
<pubDate>Sun, 05 May 2024 12:00:00 GMT</pubDate>
<content:encoded><![CDATA[<p>Volunteers removed <em>plastic</em> from the water.</p>]]></content:encoded></item>
</channel></rss>"""


def atom() -> bytes:
    return b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Duck Blog</title><updated>2024-05-07T10:00:00Z</updated>
<author><name>Jane Duck</name></author><link href="https://blog.example/"/>
<entry><title>Migration notes</title><link href="https://blog.example/migration"/>
<published>2024-05-01T09:00:00Z</published>
<content type="html">&lt;p&gt;Ducks fly &lt;strong&gt;south&lt;/strong&gt; in autumn.&lt;/p&gt;</content></entry>
<entry><title>Plain entry</title><updated>2024-04-01T09:00:00Z</updated>
<summary>Feathers keep ducks dry.</summary></entry></feed>"""


# ------------------------------------------------------------------ ZIP and e-mail


def zip_archive(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def eml(attachments: dict[str, tuple[str, bytes]] | None = None) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = "Duck census results"
    msg["From"] = "Jane Duck <jane@pond.example>"
    msg["To"] = "Bob Goose <bob@pond.example>"
    msg["Cc"] = "team@pond.example"
    msg["Date"] = "Tue, 07 May 2024 10:00:00 +0000"
    msg["Message-ID"] = "<census-1@pond.example>"
    msg.set_content("Hello Bob,\n\nWe counted 120 ducks this spring.\n\nJane")
    msg.add_alternative("<html><body><p>Hello Bob,</p><p>We counted <b>120</b> ducks this spring.</p></body></html>",
                        subtype="html")
    for name, (mime, data) in (attachments or {}).items():
        maintype, subtype = mime.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


# ------------------------------------------------------------------ OLE compound files (.msg)

FREE, END, FATSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
SECTOR, MINI, CUTOFF = 512, 64, 4096


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A version-3 OLE compound file holding ``streams`` ("storage/stream" paths), with a
    mini stream for the small ones, as Outlook and Excel write them."""
    # directory tree: root (0), then storages and streams
    entries: list[dict] = [{"name": "Root Entry", "type": 5, "children": [], "data": b""}]
    index: dict[str, int] = {"": 0}
    for path in sorted(streams):
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            key = "/".join(parts[:depth])
            if key in index:
                continue
            is_stream = depth == len(parts)
            entries.append({"name": parts[depth - 1], "type": 2 if is_stream else 1, "children": [],
                            "data": streams[path] if is_stream else b""})
            index[key] = len(entries) - 1
            entries[index["/".join(parts[: depth - 1])]]["children"].append(index[key])
    # mini stream for small streams
    mini = bytearray()
    minifat: list[int] = []
    for entry in entries:
        if entry["type"] == 2 and 0 < len(entry["data"]) < CUTOFF:
            count = math.ceil(len(entry["data"]) / MINI)
            entry["start"] = len(minifat)
            minifat += [len(minifat) + i + 1 for i in range(count - 1)] + [END]
            mini += entry["data"].ljust(count * MINI, b"\x00")
    big = [e for e in entries if e["type"] == 2 and len(e["data"]) >= CUTOFF]
    n_dir = math.ceil(len(entries) * 128 / SECTOR)
    n_minifat = math.ceil(len(minifat) * 4 / SECTOR)
    n_mini = math.ceil(len(mini) / SECTOR)
    n_big = sum(math.ceil(len(e["data"]) / SECTOR) for e in big)
    n_fat = 1
    while math.ceil((n_dir + n_minifat + n_mini + n_big + n_fat) / 128) > n_fat:
        n_fat += 1
    fat: list[int] = []

    def chain(count: int) -> int:
        start = len(fat)
        fat.extend([start + i + 1 for i in range(count - 1)] + [END])
        return start

    dir_start = chain(n_dir)
    minifat_start = chain(n_minifat) if n_minifat else END
    mini_start = chain(n_mini) if n_mini else END
    for entry in big:
        entry["start"] = chain(math.ceil(len(entry["data"]) / SECTOR))
    fat_start = len(fat)
    fat.extend([FATSECT] * n_fat)
    fat.extend([FREE] * (n_fat * 128 - len(fat)))
    entries[0]["start"], entries[0]["size"] = mini_start, len(mini)

    def sort_key(i: int) -> tuple[int, str]:
        return len(entries[i]["name"]), entries[i]["name"].upper()

    for entry in entries:  # children as a right-leaning chain in directory order
        kids = sorted(entry["children"], key=sort_key)
        entry["child"] = kids[0] if kids else FREE
        for a, b in zip(kids, kids[1:], strict=False):
            entries[a]["right"] = b
    directory = bytearray()
    for entry in entries:
        name = entry["name"].encode("utf-16-le") + b"\x00\x00"
        size = entry.get("size", len(entry["data"]))
        start = entry.get("start", END if entry["type"] == 2 else 0) if size or entry["type"] == 5 else END
        directory += struct.pack(
            "<64sHBBIII16sIQQIQ", name, len(name), entry["type"], 1, FREE, entry.get("right", FREE),
            entry.get("child", FREE), b"\x00" * 16, 0, 0, 0, start if entry["type"] != 1 else 0, size,
        )
    directory = directory.ljust(n_dir * SECTOR, b"\x00")
    for offset in range(len(entries) * 128, len(directory), 128):  # unused entries
        directory[offset + 68 : offset + 80] = struct.pack("<III", FREE, FREE, FREE)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\x00" * 16, 0x3E, 3, 0xFFFE, 9, 6,
        b"\x00" * 6, 0, n_fat, dir_start, 0, CUTOFF, minifat_start, n_minifat, END, 0,
    )
    difat = [fat_start + i for i in range(n_fat)] + [FREE] * (109 - n_fat)
    header += struct.pack("<109I", *difat)
    body = bytes(directory)
    body += struct.pack(f"<{len(minifat)}I", *minifat).ljust(n_minifat * SECTOR, b"\xff") if n_minifat else b""
    body += bytes(mini).ljust(n_mini * SECTOR, b"\x00")
    for entry in big:
        body += entry["data"].ljust(math.ceil(len(entry["data"]) / SECTOR) * SECTOR, b"\x00")
    body += struct.pack(f"<{len(fat)}I", *fat)
    return header + body


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def _props(header: int, entries: list[tuple[int, int, bytes]]) -> bytes:
    out = b"\x00" * header
    for kind, pid, value in entries:
        out += struct.pack("<HHI8s", kind, pid, 6, value)
    return out


def outlook_msg(attachment: tuple[str, bytes] | None = None) -> bytes:
    """An Outlook message with a subject, sender, recipients, submit time, body and optionally one attachment."""
    filetime = (1715076000 + 11644473600) * 10_000_000  # 2024-05-07T10:00:00Z
    streams = {
        "__properties_version1.0": _props(32, [(0x0040, 0x0039, struct.pack("<q", filetime))]),
        "__substg1.0_0037001F": _utf16("Pond budget 2024"),
        "__substg1.0_0C1A001F": _utf16("Jane Duck"),
        "__substg1.0_5D01001F": _utf16("jane@pond.example"),
        "__substg1.0_0E04001F": _utf16("Bob Goose"),
        "__substg1.0_0E03001F": _utf16("Carl Swan"),
        "__substg1.0_1000001F": _utf16("Hi Bob,\r\n\r\nThe pond budget for 2024 is 500 euros.\r\n"),
        "__recip_version1.0_#00000000/__substg1.0_3001001F": _utf16("Bob Goose"),
        "__recip_version1.0_#00000000/__substg1.0_39FE001F": _utf16("bob@pond.example"),
        "__recip_version1.0_#00000000/__properties_version1.0": _props(8, [(0x0003, 0x0C15, struct.pack("<q", 1))]),
    }
    if attachment:
        name, data = attachment
        prefix = "__attach_version1.0_#00000000/"
        streams[prefix + "__substg1.0_3707001F"] = _utf16(name)
        streams[prefix + "__substg1.0_37010102"] = data
        streams[prefix + "__substg1.0_370E001F"] = _utf16("text/csv")
        streams[prefix + "__properties_version1.0"] = _props(8, [(0x0003, 0x3705, struct.pack("<q", 1))])
    return compound_file(streams)


# ------------------------------------------------------------------ RTF and OpenDocument


def rtf() -> bytes:
    return (
        b"{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times;}}{\\info{\\title Pond Minutes}{\\author Jane Duck}"
        b"{\\creatim\\yr2024\\mo5\\dy7\\hr9\\min30}}\n"
        b"\\pard\\b Pond Minutes\\b0\\par\n"
        b"The committee met on Tuesday and approved the caf\\'e9 budget.\\par\n"
        b"\\pard Chinese: \\u40493?\\u23376? means duck.\\par\n}"
    )


def odt() -> bytes:
    from odfdo import Document, Header, List, Paragraph, Table

    doc = Document("text")
    doc.meta.title = "Pond Handbook"
    doc.meta.initial_creator = "Jane Duck"
    body = doc.body
    body.append(Header(1, "Pond Handbook"))
    body.append(Paragraph("Ducks need clean water and shade."))
    body.append(Header(2, "Feeding"))
    body.append(List(["Grain", "Peas"]))
    table = Table("Food", width=2, height=2)
    table.set_values([["Food", "Grams"], ["Grain", "50"]])
    body.append(table)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def ods() -> bytes:
    from odfdo import Document, Table

    doc = Document("spreadsheet")
    doc.body.clear()
    table = Table("Counts", width=2, height=3)
    table.set_values([["Year", "Ducks"], [2023, 110], [2024, 120]])
    doc.body.append(table)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def odp() -> bytes:
    from odfdo import Document, DrawPage, Frame

    doc = Document("presentation")
    doc.body.clear()
    page = DrawPage("p1", name="Slide 1")
    page.append(Frame.text_frame("Duck Strategy", presentation_class="title", size=("20cm", "2cm"), position=("1cm", "1cm")))
    page.append(Frame.text_frame("Grow the flock by ten percent", size=("20cm", "5cm"), position=("1cm", "4cm")))
    doc.body.append(page)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


# ------------------------------------------------------------------ hostile inputs


def encrypted_zip(name: str, data: bytes, password: bytes) -> bytes:
    """A real ZipCrypto (traditional PKWARE) encrypted archive; Python's zipfile writes none."""
    import zlib

    def crc_byte(crc: int, b: int) -> int:
        return zlib.crc32(bytes([b]), crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF

    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(b: int) -> None:
        keys[0] = crc_byte(keys[0], b)
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = crc_byte(keys[2], keys[1] >> 24)

    for b in password:
        update(b)
    crc = zlib.crc32(data)
    plain = bytes(random.Random(1).randrange(256) for _ in range(11)) + bytes([crc >> 24]) + data
    cipher = bytearray()
    for b in plain:
        temp = (keys[2] | 2) & 0xFFFF
        cipher.append(b ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
        update(b)
    encoded = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 1, 0, 0, 0, crc, len(cipher), len(data), len(encoded), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 1, 0, 0, 0, crc, len(cipher), len(data),
                          len(encoded), 0, 0, 0, 0, 0, 0)
    body = local + encoded + bytes(cipher)
    directory = central + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(directory), len(body), 0)
    return body + directory + end


def png_bomb(side: int = 30_000) -> bytes:
    """A small PNG that decodes to side × side pixels (1-bit, all black)."""
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
