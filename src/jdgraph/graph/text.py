"""Text utilities for the deterministic implementations: input checks, HTML to text, sentences, sections."""

from __future__ import annotations

import io
import json
import logging
import math
import re
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jdgraph.errors import InputError

MAX_JD_CHARS = 100_000
_HTML_TAG = re.compile(r"<\s*(?:p|div|br|li|ul|ol|h[1-6]|span|strong|b|em|table|tr|td|body|html)\b[^>]*>", re.I)
BULLET = re.compile(r"^\s*(?:[•·▪◦●○■□➢➤►\-*–—]|\d{1,2}[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9•(\"'])")


def check_input(text: object) -> str:
    """Reject input that is empty, binary or huge with a clear error; return it as text."""
    if text is None:
        raise InputError("the job description is empty", field="jd_text")
    if not isinstance(text, str | bytes):  # JSON from a server client: {"jd_text": 123} was a TypeError
        raise InputError(f"the job description must be a string, got {type(text).__name__}", field="jd_text")
    if isinstance(text, bytes):
        document = document_text(text)
        if document is not None:
            text = document  # checked as text below, like any other
        elif b"\x00" in text:
            raise InputError("the job description is binary data, not text", field="jd_text")
        else:
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"the job description is not UTF-8 text ({exc.reason})", field="jd_text") from exc
    if "\x00" in text:
        raise InputError("the job description is binary data, not text", field="jd_text")
    if not is_unicode(text):
        # A lone surrogate (from a JSON "\ud800" escape or an undecodable argument) passed every step and then
        # failed the run's insert with a raw database error.
        raise InputError("the job description is not valid Unicode text (it holds a lone surrogate)", field="jd_text")
    if not text.strip():
        raise InputError("the job description is empty", field="jd_text")
    if len(text) > MAX_JD_CHARS:
        raise InputError(
            f"the job description is {len(text):,} characters; the limit is {MAX_JD_CHARS:,} "
            "(split it or send the relevant part)",
            field="jd_text",
        )
    control = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t")
    if control > max(10, len(text) // 100):
        raise InputError("the job description contains binary control characters", field="jd_text")
    return text


MAX_FIELD_CHARS = 500


def is_unicode(text: str) -> bool:
    """Text that can be written as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_field(value: object, name: str) -> str | None:
    """A short text given beside the JD (title, company, an input id): a string, valid Unicode (an undecodable
    command-line argument arrives as lone surrogates), no NUL and not huge; else an InputError naming it. Other
    control characters are allowed here and made inert where text is shown (terminal, web page)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"the {name} must be a string, got {type(value).__name__}", field=name)
    _check_storable(value, name)
    if len(value) > MAX_FIELD_CHARS:
        raise InputError(f"the {name} is {len(value):,} characters; the limit is {MAX_FIELD_CHARS}", field=name)
    return value


def _check_storable(value: str, name: str) -> None:
    """Text PostgreSQL can store: a NUL (UntranslatableCharacter) or a lone surrogate (InvalidTextRepresentation)
    failed the run's insert with a raw driver error, after every step had run."""
    if "\x00" in value:
        raise InputError(f"the {name} holds a NUL character (U+0000), which text cannot hold", field=name)
    if not is_unicode(value):
        raise InputError(f"the {name} is not valid UTF-8 text (it holds a lone surrogate)", field=name)


MAX_METADATA_CHARS = 10_000
"""The size of a run's metadata as JSON, at most: it is stored in every checkpoint of the run."""


def check_metadata(value: object) -> dict[str, Any]:
    """A run's metadata: a JSON object (string keys; strings, numbers, booleans, null, lists and objects) whose
    texts are storable. A surrogate key or a non-JSON value (a set, a datetime) failed the first checkpoint with
    the serializer's TypeError."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"the metadata must be a JSON object, got {type(value).__name__}", field="metadata")
    _check_json(value, "metadata")
    size = len(json.dumps(value))
    if size > MAX_METADATA_CHARS:
        raise InputError(
            f"the metadata is {size:,} characters as JSON; the limit is {MAX_METADATA_CHARS:,}", field="metadata"
        )
    return value


def _check_json(value: object, where: str, depth: int = 0) -> None:
    if depth > 20:
        raise InputError(f"the {where} is nested more than 20 levels deep", field="metadata")
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, str):
            _check_storable(value, where)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"the {where} is {value}, which JSON cannot hold", field="metadata")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(f"a key of the {where} is a {type(key).__name__}, not text", field="metadata")
            _check_storable(key, f"key {key!r} of the {where}")
            _check_json(item, f"{where}[{key!r}]", depth + 1)
        return
    raise InputError(f"the {where} is a {type(value).__name__}, which is not JSON", field="metadata")


MAX_DOCUMENT_PAGES = 50
"""Pages of a PDF read at most: a JD is a page or two; a 500-page upload is not one (and would be slow)."""

# Documents are read within limits in line with MAX_JD_CHARS, so that a small file that expands to gigabytes (a
# decompression bomb) is an InputError in a fraction of a second and a few hundred MB at most: a 980 KB DOCX whose
# document.xml inflated to 324 MB took 4.5 GB and had not finished after 300 s.
MAX_DOCUMENT_SECONDS = 30.0
"""Time the text extraction of a document may take, checked between PDF pages, every 1,024 drawing operations and
between DOCX paragraphs; far more than a real JD needs (well under a second)."""

MAX_PDF_PAGE_TREE = 2_000
"""Entries of a PDF's page tree at most. pypdf walks the whole tree to count the pages before it reads one; a tree
whose few nodes list one child hundreds of times (a page-tree bomb) cost 7 s before pypdf's own limit (100,000)."""

MAX_PDF_STREAM_BYTES = 8_000_000
"""Bytes one PDF stream may inflate to (pypdf's own default is 75 MB). A page of text is tens of KB of content
stream; a Flate bomb of 1 MB inflates to a gigabyte."""

MAX_PDF_OPERATIONS = 500_000
"""Drawing operations a PDF's text extraction may run (form XObjects included, each time one is drawn): a page of
text is a few thousand. A 2 KB PDF whose page draws a form of 20,000 operations 200 times took 290 s."""

_PDF_LIMITS: dict[str, Any] = {
    "page_tree_maximum_entries": MAX_PDF_PAGE_TREE,
    "page_tree_maximum_page_entries": 50 * MAX_PDF_PAGE_TREE,  # keys of the page dictionaries copied (inherited)
    "page_tree_maximum_depth": 32,
    "zlib_maximum_output_length": MAX_PDF_STREAM_BYTES,
    "lzw_maximum_output_length": MAX_PDF_STREAM_BYTES,
    "run_length_maximum_output_length": MAX_PDF_STREAM_BYTES,
    "brotli_maximum_output_length": MAX_PDF_STREAM_BYTES,
    "jbig2_maximum_output_length": MAX_PDF_STREAM_BYTES,
    "array_based_stream_maximum_output_length": MAX_PDF_STREAM_BYTES,
    "image_maximum_buffer_size": MAX_PDF_STREAM_BYTES,
    "stream_decoding_work_maximum_length": 4 * MAX_PDF_STREAM_BYTES,
    "stream_parsing_work_maximum_count": 500_000,  # operators and operands of one content stream
    "xform_maximum_invocations_per_extraction": 1_000,  # form XObjects drawn per page (nested forms multiply)
}

MAX_DOCX_PARTS = 1_000
"""Files in a DOCX (a ZIP archive) at most: Word writes one or two dozen, a few more per image."""

MAX_DOCX_PART_BYTES = 10_000_000
"""Bytes one file of a DOCX may inflate to. Word's XML is several times the text it holds (markup around every run;
a plain document's styles.xml alone is 350 KB), so 10 MB holds far more than MAX_JD_CHARS of text, and python-docx's
lxml tree of it stays within a few hundred MB. An image over 10 MB in a JD is refused too, naming it."""

MAX_DOCX_BYTES = 30_000_000
"""Bytes all the files of a DOCX may inflate to together (python-docx loads every part, images included)."""

MAX_DOCX_RATIO = 200
"""Compression ratio a DOCX file over 1 MB may have at most: XML deflates 10-40:1; a bomb's is several hundred to
1000:1."""


def document_text(data: bytes) -> str | None:
    """The text of a PDF or DOCX job description (recognised by its first bytes), or None when ``data`` is
    neither. A document that cannot be read, has no text (a scan) or goes past the limits above is an InputError
    saying so."""
    if data.startswith(b"%PDF-"):
        return _pdf_text(data)
    if data.startswith(b"PK\x03\x04"):
        return _docx_text(data)
    return None


class _PdfBudget:
    """The work and text of one PDF's extraction so far, as pypdf's visitor callbacks. Past a limit every callback
    raises the InputError: pypdf swallows an error inside a form XObject and goes on, so it stops at its next
    operation outside."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.operations = 0
        self.chars = 0
        self.refusal: str | None = None

    def check(self) -> None:
        if self.refusal is None and time.monotonic() > self.deadline:
            self.refusal = f"the PDF took over {MAX_DOCUMENT_SECONDS:.0f} s to read: send its text"
        if self.refusal is not None:
            raise InputError(self.refusal, field="jd_text")

    def operation(self, *_: Any) -> None:
        self.operations += 1
        if self.operations > MAX_PDF_OPERATIONS and self.refusal is None:
            self.refusal = (
                f"the PDF draws over {MAX_PDF_OPERATIONS:,} operations (a page of text draws a few thousand): "
                "send its text"
            )
        if self.operations % 1024 == 0 or self.refusal is not None:
            self.check()

    def text(self, text: str, *_: Any) -> None:
        self.chars += len(text)
        if self.chars > MAX_JD_CHARS and self.refusal is None:
            self.refusal = (
                f"the PDF holds over {MAX_JD_CHARS:,} characters of text; the limit is {MAX_JD_CHARS:,} "
                "(split it or send the relevant part)"
            )
            self.check()


def _pdf_text(data: bytes) -> str:
    # deferred: pypdf loads only when a PDF arrives (most JDs are plain text)
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError, PyPdfError

    # What pypdf logs about odd files (even at "error") is handled here, and not the user's business.
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    budget = _PdfBudget(time.monotonic() + MAX_DOCUMENT_SECONDS)
    parts: list[str] = []
    try:
        # A context variable: it applies to this thread's reading only (classify_many reads in threads).
        with apply_configuration(**_PDF_LIMITS):
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                raise InputError("the PDF is encrypted: send its text, or an unprotected PDF", field="jd_text")
            for index in range(min(len(reader.pages), MAX_DOCUMENT_PAGES)):
                budget.check()
                page = reader.pages[index]
                parts.append(page.extract_text(visitor_operand_before=budget.operation, visitor_text=budget.text) or "")
    except InputError:
        raise
    except LimitReachedError as exc:
        raise InputError(
            f"the PDF is too large to read: it goes past a limit on what one job description may hold ({exc}); "
            "send its text",
            field="jd_text",
        ) from exc
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as exc:
        raise InputError(f"the PDF could not be read ({type(exc).__name__}: {exc})", field="jd_text") from exc
    text = "\n".join(parts)
    if not text.strip():
        raise InputError(
            "the PDF has no text layer (a scanned image?): run OCR on it, or send its text", field="jd_text"
        )
    return text


def _check_docx_archive(data: bytes) -> None:
    """A ZIP that holds a DOCX and expands within the DOCX limits, judged from its directory and then by inflating
    every file with a cap (a directory's sizes are the file's word only), before python-docx loads it whole."""

    def bomb(what: str) -> InputError:
        return InputError(f"the DOCX is refused: {what} (a decompression bomb, not a document?)", field="jd_text")

    # Counted before zipfile reads the directory: millions of tiny entries are a memory bomb of their own.
    entries = data.count(b"PK\x01\x02")
    if entries > MAX_DOCX_PARTS:
        raise bomb(f"it holds {entries:,} files; the limit is {MAX_DOCX_PARTS:,}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if "word/document.xml" not in {info.filename for info in infos}:
                raise InputError("the file is a ZIP archive, not a DOCX document", field="jd_text")
            declared = 0
            for info in infos:
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    # Word only deflates; zipfile inflates bzip2/LZMA without an output cap per read.
                    raise InputError(
                        f"the DOCX's {info.filename} uses ZIP compression method {info.compress_type}, which "
                        "Word does not write",
                        field="jd_text",
                    )
                if info.file_size > MAX_DOCX_PART_BYTES:
                    raise bomb(
                        f"{info.filename} expands to {info.file_size:,} bytes; the limit is {MAX_DOCX_PART_BYTES:,}"
                    )
                if info.file_size > 1_000_000 and info.file_size > MAX_DOCX_RATIO * max(info.compress_size, 1):
                    ratio = info.file_size // max(info.compress_size, 1)
                    raise bomb(f"{info.filename} is compressed {ratio:,}:1; the limit is {MAX_DOCX_RATIO}:1")
                declared += info.file_size
            if declared > MAX_DOCX_BYTES:
                raise bomb(f"its files expand to {declared:,} bytes; the limit is {MAX_DOCX_BYTES:,}")
            inflated = 0
            for info in infos:
                with archive.open(info) as part:
                    size = 0
                    while chunk := part.read(1 << 16):
                        size += len(chunk)
                        inflated += len(chunk)
                        if size > MAX_DOCX_PART_BYTES or inflated > MAX_DOCX_BYTES:
                            raise bomb(f"{info.filename} expands past the limits ({inflated:,} bytes read)")
    except InputError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, ValueError, OSError) as exc:
        # RuntimeError: an encrypted entry; zlib.error/EOFError: a damaged or cut stream.
        raise InputError(f"the file looks like a ZIP/DOCX but cannot be read ({exc})", field="jd_text") from exc


def _docx_text(data: bytes) -> str:
    _check_docx_archive(data)
    # deferred: python-docx loads only when a DOCX arrives (most JDs are plain text)
    from docx import Document

    try:
        document = Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises many kinds (KeyError, lxml errors) on a damaged file
        raise InputError(f"the DOCX could not be read ({type(exc).__name__}: {exc})", field="jd_text") from exc
    deadline = time.monotonic() + MAX_DOCUMENT_SECONDS
    pieces: list[str] = []
    size = 0
    for piece in _docx_pieces(document):
        pieces.append(piece)
        size += len(piece)
        if size > MAX_JD_CHARS:
            break  # already over the text limit, which check_input then reports: no need to read on
        if time.monotonic() > deadline:
            raise InputError(f"the DOCX took over {MAX_DOCUMENT_SECONDS:.0f} s to read: send its text", field="jd_text")
    text = "".join(pieces)
    if not text.strip():
        raise InputError("the DOCX has no text", field="jd_text")
    return text


def _docx_pieces(document: Any) -> Iterator[str]:
    """A DOCX's text in pieces (paragraphs, table cells, the separators between them), so that its reader can stop
    at the text limit or the deadline anywhere, even inside one table row of 100,000 cells: paragraphs as lines (a
    list paragraph with a bullet), then each table row as a line of its cells joined by " | "."""
    # deferred: python-docx loads only when a DOCX arrives (most JDs are plain text)
    from docx.enum.style import WD_STYLE_TYPE
    from docx.table import _Cell

    # A paragraph's style looked up through python-docx is an XPath over styles.xml (ms each: 95,000 paragraphs
    # took minutes); one map of the paragraph styles serves them all, with python-docx's rule for an unknown id.
    styles = document.styles
    names = {s.style_id: s.name or "" for s in styles if s.type == WD_STYLE_TYPE.PARAGRAPH}
    default = styles.default(WD_STYLE_TYPE.PARAGRAPH)
    default_name = (default.name or "") if default is not None else ""
    separator = ""
    for para in document.paragraphs:
        yield separator
        separator = "\n"
        # List paragraphs keep their bullet: the extractor reads responsibilities from bullets.
        yield ("• " if "List" in names.get(para._p.style, default_name) else "") + para.text
    for table in document.tables:
        for row in table.rows:
            yield separator
            separator = "\n"
            # Each <w:tc> once: python-docx's row.cells repeats a merged cell once per grid column it spans (a
            # span of 10^9 is a tuple of 10^9) and resolves a vertically merged one by recursing up the rows.
            for i, tc in enumerate(tc for tc in row._tr.tc_lst if tc.vMerge != "continue"):
                yield " | " if i else ""
                yield _Cell(tc, table).text


def looks_like_html(text: str) -> bool:
    return len(_HTML_TAG.findall(text)) >= 2


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment, keeping block structure as lines and list items as bullets."""
    # deferred: the HTML parser loads only when a JD holds HTML (most are plain text)
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    for node in tree.css("script, style, noscript, head"):
        node.decompose()
    for li in tree.css("li"):
        li.insert_before("\n• ")
    for tag in ("br", "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "tr", "section"):
        for node in tree.css(tag):
            node.insert_after("\n")
            if tag.startswith("h"):
                node.insert_before("\n")
    root = tree.body or tree.root
    text = root.text(separator="", strip=False) if root is not None else ""
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def normalise_text(raw: str) -> str:
    text = html_to_text(raw) if looks_like_html(raw) else raw
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int
    section: str | None
    is_bullet: bool


HEADING_WORDS = re.compile(
    r"^(about|role|position|job|the role|overview|summary|responsibilit|duties|what you|what we|who you|"
    r"requirements|qualifications|skills|must|nice|preferred|bonus|benefits|perks|offer|compensation|"
    r"salary|location|how to apply|your|key|day-to-day|essential|desired|experience|education|why|our|we)",
    re.I,
)


def is_heading(line: str) -> bool:
    stripped = line.strip().strip("#*_ ").strip()
    if not stripped or BULLET.match(line) or len(stripped) > 70:
        return False
    if stripped.endswith(":"):
        return len(stripped.split()) <= 9
    words = stripped.split()
    if len(words) <= 6 and not stripped.endswith((".", ",", ";")) and HEADING_WORDS.match(stripped):
        return True
    return stripped.isupper() and 1 <= len(words) <= 6


def sentences(text: str) -> list[Sentence]:
    """Sentences with offsets; each bullet is a sentence; headings set the section of what follows."""
    out: list[Sentence] = []
    section: str | None = None
    offset = 0
    for line in text.split("\n"):
        line_start = offset
        offset += len(line) + 1
        if not line.strip():
            continue
        if is_heading(line):
            section = line.strip().strip("#*_: ").strip()
            continue
        bullet = BULLET.match(line)
        body_start = line_start + (bullet.end() if bullet else len(line) - len(line.lstrip()))
        body = text[body_start : line_start + len(line)]
        pos = 0
        for part in _SENTENCE_END.split(body):
            idx = body.find(part, pos)
            pos = idx + len(part)
            cleaned = part.strip()
            if len(cleaned) < 3:
                continue
            start = body_start + idx + (len(part) - len(part.lstrip()))
            out.append(Sentence(cleaned, start, start + len(cleaned), section, bool(bullet)))
    return out


def source_marker(text: str) -> dict[str, str]:
    words = text.split()
    return {"first_5_words": " ".join(words[:5]), "last_5_words": " ".join(words[-5:])}
