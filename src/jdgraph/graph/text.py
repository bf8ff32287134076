"""Text utilities for the deterministic implementations: input checks, HTML to text, sentences, sections."""

from __future__ import annotations

import json
import math
import re
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
        raise InputError(f"the {name} holds a NUL character (\\u0000), which text cannot hold", field=name)
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


def document_text(data: bytes) -> str | None:
    """The text of a PDF or DOCX job description (recognised by its first bytes), or None when ``data`` is
    neither. A document that cannot be read, or has no text (a scan), is an InputError saying so."""
    if data.startswith(b"%PDF-"):
        return _pdf_text(data)
    if data.startswith(b"PK\x03\x04"):
        return _docx_text(data)
    return None


def _pdf_text(data: bytes) -> str:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    # What pypdf logs about odd files (even at "error") is handled here, and not the user's business.
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise InputError("the PDF is encrypted: send its text, or an unprotected PDF", field="jd_text")
        pages = reader.pages[:MAX_DOCUMENT_PAGES]
        text = "\n".join((page.extract_text() or "") for page in pages)
    except InputError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as exc:
        raise InputError(f"the PDF could not be read ({type(exc).__name__}: {exc})", field="jd_text") from exc
    if not text.strip():
        raise InputError(
            "the PDF has no text layer (a scanned image?): run OCR on it, or send its text", field="jd_text"
        )
    return text


def _docx_text(data: bytes) -> str:
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if "word/document.xml" not in archive.namelist():
                raise InputError("the file is a ZIP archive, not a DOCX document", field="jd_text")
    except zipfile.BadZipFile as exc:
        raise InputError(f"the file looks like a ZIP/DOCX but cannot be read ({exc})", field="jd_text") from exc
    from docx import Document

    try:
        document = Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises many kinds (KeyError, lxml errors) on a damaged file
        raise InputError(f"the DOCX could not be read ({type(exc).__name__}: {exc})", field="jd_text") from exc
    lines: list[str] = []
    for para in document.paragraphs:
        style = (para.style.name if para.style is not None else "") or ""
        # List paragraphs keep their bullet: the extractor reads responsibilities from bullets.
        lines.append(("• " if "List" in style else "") + para.text)
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    text = "\n".join(lines)
    if not text.strip():
        raise InputError("the DOCX has no text", field="jd_text")
    return text


def looks_like_html(text: str) -> bool:
    return len(_HTML_TAG.findall(text)) >= 2


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment, keeping block structure as lines and list items as bullets."""
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
