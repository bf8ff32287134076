"""Decompression bombs dressed as job descriptions, built in memory in about a second (nothing large is committed):
DOCX files whose XML inflates to hundreds of MB, PDFs with a Flate bomb, a page-tree bomb or a form drawn again
and again. Used by the document-limit tests and the reliability benchmark."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
_W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
DOCUMENT_HEAD = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document ' + _W + b"><w:body>"
DOCUMENT_TAIL = b"</w:body></w:document>"
PARAGRAPH = b"<w:p><w:r><w:t>" + b"A" * 1000 + b"</w:t></w:r></w:p>"


def deflated(head: bytes, block: bytes, times: int, tail: bytes, *, zlib_wrapper: bool = False) -> tuple[bytes, int]:
    """``head + block * times + tail`` deflated without deflating it all: after a full flush the compressor
    forgets what it saw, so every later copy of ``block`` compresses to the same bytes. Returns the stream (raw
    deflate as in a ZIP, or zlib-wrapped as in a PDF) and the CRC-32 of what it inflates to."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    middle = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    last = c.compress(tail) + c.flush()
    crc = zlib.crc32(head)
    adler = zlib.adler32(head)
    for _ in range(times):
        crc = zlib.crc32(block, crc)
        if zlib_wrapper:
            adler = zlib.adler32(block, adler)
    crc = zlib.crc32(tail, crc)
    stream = first + middle * times + last
    if zlib_wrapper:
        stream = b"\x78\xda" + stream + struct.pack(">I", zlib.adler32(tail, adler))
    return stream, crc


def zip_archive(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A ZIP of ``(name, data as stored, CRC-32, size its directory declares, method)`` entries, written by hand
    so that a declared size can differ from what the data inflates to."""
    out = bytearray()
    central = bytearray()
    for name, data, crc, size, method in entries:
        n = name.encode()
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data), size, len(n), 0, 0, 0, 0, 0,
            len(out),
        ) + n  # fmt: skip
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(n), 0)
        out += n + data
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + end)


def docx_parts() -> list[tuple[str, bytes, int, int, int]]:
    """The parts of the corpus's real DOCX (tests/corpus/data-engineer.docx), deflated, as zip_archive entries."""
    import zipfile

    entries = []
    with zipfile.ZipFile(CORPUS / "data-engineer.docx") as archive:
        for info in archive.infolist():
            data = archive.read(info.filename)
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            entries.append((info.filename, c.compress(data) + c.flush(), zlib.crc32(data), len(data), 8))
    return entries


def docx_bomb(megabytes: int = 324, *, declared: int | None = None) -> bytes:
    """The issue's DOCX: the real document's parts around a word/document.xml of ``megabytes`` MB of paragraphs
    that deflates about 400:1 (324 MB in under 1 MB). ``declared``: the size its directory says instead."""
    stream, crc = deflated(DOCUMENT_HEAD, PARAGRAPH * 1000, megabytes, DOCUMENT_TAIL)
    size = len(DOCUMENT_HEAD) + len(PARAGRAPH) * 1000 * megabytes + len(DOCUMENT_TAIL)
    parts = [p for p in docx_parts() if p[0] != "word/document.xml"]
    return zip_archive([*parts, ("word/document.xml", stream, crc, declared if declared else size, 8)])


def pdf(objects: list[bytes]) -> bytes:
    """A PDF of these objects (numbered from 1; object 1 is the catalog) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
_SHOW = b"BT /F1 12 Tf 72 720 Td (Senior Data Engineer) Tj ET\n"


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def pdf_flate_bomb(megabytes: int = 100) -> bytes:
    """One page whose content stream inflates to ``megabytes`` MB (past pypdf's own 75 MB limit) from ~250 KB."""
    stream, _ = deflated(_SHOW, b" " * (1 << 20), megabytes, b"", zlib_wrapper=True)
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
            b"/Contents 4 0 R >>",
            _stream(stream, b"/Filter /FlateDecode "),
            _FONT,
        ]
    )


def pdf_page_tree_bomb(fan: int = 40, depth: int = 6) -> bytes:
    """A page tree of ``depth`` nodes, each listing the next ``fan`` times: ``fan ** depth`` pages (4 billion) in
    2 KB."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(depth):
        kids = b" ".join([b"%d 0 R" % (3 + level)] * fan)
        objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, fan ** (depth - level)))
    page = len(objects) + 1
    objects.append(
        b"<< /Type /Page /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
        % (page + 1, page + 2)
    )
    objects += [_FONT, _stream(_SHOW)]
    return pdf(objects)


def pdf_form_bomb(operations: int = 20_000, draws: int = 200, text: bytes = b"A") -> bytes:
    """One page that draws a form XObject of ``operations`` text-showing operations ``draws`` times: 2 KB that
    pypdf extracts 4,000,000 operations from (about 5 minutes)."""
    form = zlib.compress(b"BT /F1 12 Tf 72 720 Td " + (b"(" + text + b") Tj ") * operations + b"ET", 9)
    page = _SHOW + b"/X0 Do\n" * draws
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> "
            b"/XObject << /X0 6 0 R >> >> /Contents 4 0 R >>",
            _stream(page),
            _FONT,
            _stream(
                form,
                b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
                b"/Filter /FlateDecode ",
            ),
        ]
    )
