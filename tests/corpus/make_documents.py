"""Writes the corpus's PDF, DOCX and ZIP files (committed; run again only to change them):
``python tests/corpus/make_documents.py``. The PDF is written by hand (a text layer in Helvetica, as word
processors export), so no PDF-writing library is needed; the DOCX by python-docx, as Word would save it."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

HERE = Path(__file__).parent

JD_LINES = [
    "Senior Data Engineer",
    "Company: Northwind Analytics, Berlin, Germany",
    "Responsibilities:",
    "- Design and build batch and streaming data pipelines with Apache Spark and Kafka",
    "- Model data warehouses in Snowflake and write performant SQL",
    "- Orchestrate workflows with Airflow and monitor data quality",
    "Requirements:",
    "- 5+ years of Python and SQL",
    "- Experience with AWS and Terraform",
]


def pdf(lines: list[str]) -> bytes:
    """A one-page PDF 1.4 whose page draws ``lines`` (empty: a page with no text, like a scan)."""
    ops = ["BT", "/F1 11 Tf", "14 TL", "72 740 Td"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1") if lines else b"0 0 m 100 100 l S"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def docx(lines: list[str]) -> bytes:
    from docx import Document

    document = Document()
    for line in lines:
        if line.startswith("- "):
            document.add_paragraph(line[2:], style="List Bullet")
        elif line.endswith(":") or line == lines[0]:
            document.add_heading(line, level=1 if line == lines[0] else 2)
        else:
            document.add_paragraph(line)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def main() -> None:
    (HERE / "data-engineer.pdf").write_bytes(pdf(JD_LINES))
    (HERE / "scanned.pdf").write_bytes(pdf([]))
    (HERE / "data-engineer.docx").write_bytes(docx(JD_LINES))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "not a document")
    (HERE / "archive.zip").write_bytes(archive.getvalue())


if __name__ == "__main__":
    main()
