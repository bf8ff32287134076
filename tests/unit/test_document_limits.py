"""Documents are read within limits (issue 19): a DOCX or PDF decompression bomb is a clear InputError in bounded
memory, not gigabytes and minutes (a 980 KB DOCX took 4.55 GB and was still running at 300 s) or a pypdf
traceback. The bombs are built by tests/bombs.py; the real corpus documents still read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jdgraph.errors import InputError
from jdgraph.graph import text as text_module
from jdgraph.graph.text import check_input
from tests import bombs

MEMORY_LIMIT = 1_500_000_000
"""Address space the child reading a bomb may use (RLIMIT_AS): past it, an allocation fails."""
MAX_RSS_MB = 300
"""Peak resident memory a refused bomb may cost, imports included (the real documents take about 40 MB)."""

_CHILD = f"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))
from jdgraph.errors import InputError
from jdgraph.graph.text import check_input
try:
    out = {{"text": check_input(open(sys.argv[1], "rb").read())[:2000]}}
except InputError as exc:
    out = {{"error": exc.message}}
# VmHWM (this process image's peak), not ru_maxrss: Linux carries the parent's peak across fork and exec, so a
# child of a large test process reported the parent's 1.4 GB whatever it read.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
out["maxrss_mb"] = int(hwm.split()[1]) // 1024
print(json.dumps(out))
"""


def _read_in_bounded_child(path: Path) -> dict[str, object]:
    """check_input on the file in a child process whose address space is capped; its answer and peak memory.
    The timeout only keeps a regression from hanging the suite (the old code ran for minutes)."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    return dict(json.loads(out.stdout))


def _merged_cells_docx() -> bytes:
    """A DOCX table whose first cell spans 10^9 grid columns and whose second column is one cell merged down 3,000
    rows: python-docx's row.cells made a tuple of 10^9 and recursed up 3,000 rows."""
    tc = b"<w:tc><w:p><w:r><w:t>%s</w:t></w:r></w:p></w:tc>"
    first = (
        b'<w:tr><w:tc><w:tcPr><w:gridSpan w:val="1000000000"/></w:tcPr><w:p><w:r><w:t>Apache Kafka</w:t></w:r>'
        b'</w:p></w:tc><w:tc><w:tcPr><w:vMerge w:val="restart"/></w:tcPr><w:p><w:r><w:t>Spark</w:t></w:r></w:p>'
        b"</w:tc></w:tr>"
    )
    below = b"<w:tr>" + tc % b"SQL" + b"<w:tc><w:tcPr><w:vMerge/></w:tcPr><w:p/></w:tc></w:tr>"
    body = b"<w:p><w:r><w:t>Senior Data Engineer</w:t></w:r></w:p><w:tbl>" + first + below * 3000 + b"</w:tbl>"
    document = bombs.DOCUMENT_HEAD + body + bombs.DOCUMENT_TAIL
    stream, crc = bombs.deflated(document, b"", 0, b"")
    parts = [p for p in bombs.docx_parts() if p[0] != "word/document.xml"]
    return bombs.zip_archive([*parts, ("word/document.xml", stream, crc, len(document), 8)])


BOUNDED = {
    # name: (the file, what the InputError says, or None when it is read)
    "docx-330MB-xml": (bombs.docx_bomb, "word/document.xml expands to 334,692,168 bytes; the limit is 10,000,000"),
    "docx-xml-larger-than-declared": (lambda: bombs.docx_bomb(declared=2000), "cannot be read (Bad CRC-32"),
    "docx-merged-cells": (_merged_cells_docx, None),
    "pdf-flate-100MB": (bombs.pdf_flate_bomb, "the PDF is too large to read"),
    "pdf-page-tree-4-billion": (bombs.pdf_page_tree_bomb, "page tree entry limit reached: 2001 > 2000"),
    "pdf-form-drawn-200-times": (bombs.pdf_form_bomb, "holds over 100,000 characters of text; the limit is 100,000"),
}


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_a_document_bomb_is_a_clear_input_error_in_bounded_memory(name: str, tmp_path: Path) -> None:
    build, says = BOUNDED[name]
    path = tmp_path / name
    path.write_bytes(build())
    out = _read_in_bounded_child(path)
    if says is None:
        assert "Apache Kafka | Spark" in str(out["text"]) and "SQL" in str(out["text"]), out
    else:
        assert says in str(out.get("error")), out
    assert int(str(out["maxrss_mb"])) < MAX_RSS_MB, out


def test_the_real_documents_still_read() -> None:
    docx = check_input((bombs.CORPUS / "data-engineer.docx").read_bytes())
    pdf = check_input((bombs.CORPUS / "data-engineer.pdf").read_bytes())
    for text in (docx, pdf):
        assert text.startswith("Senior Data Engineer") and "Apache Spark and Kafka" in text
    assert "• Design and build batch and streaming data pipelines" in docx  # a list paragraph keeps its bullet


def _docx_with(*extra: tuple[str, bytes, int, int, int]) -> bytes:
    return bombs.zip_archive([*bombs.docx_parts(), *extra])


def test_a_docx_of_thousands_of_files_is_refused_before_its_directory_is_read() -> None:
    tiny = [(f"customXml/item{i}.xml", b"", 0, 0, 0) for i in range(2, 1100)]
    with pytest.raises(InputError, match=r"it holds 1,115 files; the limit is 1,000"):
        check_input(_docx_with(*tiny))


def test_a_docx_part_compressed_past_the_ratio_is_refused() -> None:
    stream, crc = bombs.deflated(b"<x>", b" " * 100_000, 20, b"</x>")  # 2 MB at about 400:1, under the size cap
    with pytest.raises(InputError, match=r"word/extra\.xml is compressed [0-9,]+:1; the limit is 200:1"):
        check_input(_docx_with(("word/extra.xml", stream, crc, 2_000_007, 8)))


def test_a_docx_whose_files_add_up_past_the_total_is_refused() -> None:
    import zlib

    image = bytes(9_000_000)  # stored, not compressed: no ratio to catch, only the total
    images = [(f"word/media/image{i}.png", image, zlib.crc32(image), len(image), 0) for i in range(4)]
    with pytest.raises(InputError, match=r"its files expand to 36,[0-9,]+ bytes; the limit is 30,000,000"):
        check_input(_docx_with(*images))


def test_a_docx_part_in_a_compression_word_does_not_write_is_refused() -> None:
    import bz2
    import zlib

    data = b"<x/>" * 1000
    with pytest.raises(InputError, match="ZIP compression method 12, which Word does not write"):
        check_input(_docx_with(("word/extra.xml", bz2.compress(data), zlib.crc32(data), len(data), 12)))


def test_a_pdf_past_the_operation_budget_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A form of 1,000 operations that show no text, drawn 20 times: the budget, not the text limit, stops it.
    monkeypatch.setattr(text_module, "MAX_PDF_OPERATIONS", 5_000)
    with pytest.raises(InputError, match="the PDF draws over 5,000 operations"):
        check_input(bombs.pdf_form_bomb(operations=1_000, draws=20, text=b""))


@pytest.mark.parametrize("name", ["data-engineer.pdf", "data-engineer.docx"])
def test_reading_a_document_stops_at_the_deadline(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_module, "MAX_DOCUMENT_SECONDS", -1.0)  # already past it when the first page is read
    with pytest.raises(InputError, match=r"took over -1 s to read"):
        check_input((bombs.CORPUS / name).read_bytes())
