"""A minimal PDF writer for the reference SUT's N1 documents (CDA nonXMLBody).

The DMP stores an unstructured (N1) document as a PDF encapsulated in the CDA; the reference
SUT needs one that any reader opens, written without a third-party library and byte-identical
for the same lines, so tests and journals stay deterministic. Output: PDF 1.4, uncompressed
content streams, the standard Helvetica font in WinAnsiEncoding (French accents print; a
character outside cp1252 prints as "?"), A4 pages, a cross-reference table with exact offsets.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

PAGE_WIDTH, PAGE_HEIGHT = 595, 842
MARGIN = 56
FONT_SIZE = 11
LEADING = 14
WRAP_COLUMNS = 90
LINES_PER_PAGE = (PAGE_HEIGHT - 2 * MARGIN) // LEADING


def _literal(text: str) -> bytes:
    """A PDF literal string: cp1252 bytes, with the three characters the syntax reserves escaped."""
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _page_stream(lines: Sequence[str]) -> bytes:
    operations = [b"BT", f"/F1 {FONT_SIZE} Tf {LEADING} TL {MARGIN} {PAGE_HEIGHT - MARGIN} Td".encode()]
    operations += [_literal(line) + b" Tj T*" for line in lines]
    operations.append(b"ET")
    return b"\n".join(operations)


def make_pdf(lines: Sequence[str]) -> bytes:
    """A small valid PDF showing ``lines`` (long lines wrapped, one page per 52 lines, at least one page)."""
    wrapped = [part for line in lines for part in (textwrap.wrap(line, WRAP_COLUMNS) or [""])]
    pages = [wrapped[start : start + LINES_PER_PAGE] for start in range(0, len(wrapped), LINES_PER_PAGE)] or [[]]
    first_page = 4
    page_numbers = [first_page + 2 * index for index in range(len(pages))]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % n for n in page_numbers) + b"] /Count %d >>" % len(pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for number, page_lines in zip(page_numbers, pages, strict=True):
        stream = _page_stream(page_lines)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % (PAGE_WIDTH, PAGE_HEIGHT, number + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1) + b"0000000000 65535 f \n"
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
