"""Small PDFs whose content stream inflates to hundreds of MB (decompression bombs), built here."""

from __future__ import annotations

import struct
import zlib


def deflate_zeros(mb: int, layers: int = 1) -> bytes:
    """``mb`` MB of spaces as one valid zlib stream, deflated ``layers`` times (each layer ~1000×).

    Built in milliseconds: each 1 MB block is compressed after a full flush, so every block after
    the first compresses to the same bytes; the checksum is computed for the whole stream."""
    block = b" " * (1 << 20)
    packer = zlib.compressobj(9)
    first = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    repeat = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    finish = packer.flush()
    checksum = 1
    for _ in range(mb):
        checksum = zlib.adler32(block, checksum)
    data = first + repeat * (mb - 1) + finish[:-4] + struct.pack(">I", checksum)
    for _ in range(layers - 1):
        data = zlib.compress(data, 9)
    return data


def pdf_with_stream(stream: bytes, filters: int = 1, text: str = "Hello bomb") -> bytes:
    """A one-page PDF (valid xref) whose page content is ``stream`` with ``filters`` FlateDecode filters.
    The decoded content is whitespace: the visible text comes from a second, plain content stream."""
    shown = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    flt = "/FlateDecode" if filters == 1 else "[" + " ".join(["/FlateDecode"] * filters) + "]"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents [4 0 R 5 0 R] "
        b"/Resources << /Font << /F1 6 0 R >> >> >>",
        f"<< /Length {len(stream)} /Filter {flt} >>\nstream\n".encode() + stream + b"\nendstream",
        f"<< /Length {len(shown)} >>\nstream\n".encode() + shown + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
