"""Text from a JD (or a catalog import, a model, a user's file) made safe to print on a terminal.

A JD is untrusted: Rich would read ``[/]`` in a title as markup (and crash on it after the run was saved, then on
every later ``runs list``), ``[link=…]`` as a hyperlink, and raw escape sequences would reach the terminal and
drive it. Every dynamic value the CLI prints goes through :func:`safe` (inside a markup string) or :func:`cell`
(a table cell, rendered as plain text).
"""

from __future__ import annotations

import re
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.text import Text

# C0 and C1 control characters except tab and newline, DEL, and the Unicode bidirectional overrides and isolates
# (which reorder what a reader sees).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plain(value: Any) -> str:
    """The value as text with control characters and bidi overrides removed (shown as U+FFFD)."""
    return _CONTROL.sub("\ufffd", str(value))


def safe(value: Any) -> str:
    """For an f-string that Rich renders as markup: no control characters, every ``[`` escaped."""
    return escape(plain(value))


def cell(value: Any) -> Text:
    """For a Rich table cell: plain text, never read as markup."""
    return Text(plain(value))


# A token that never begins a line: a number stays with its label ("confidence 0.95", "skills 0.74 (16)"), a
# unit with its number ("818 ms"), a separator with what it follows (a line never starts with "·" or "→").
_NO_BREAK_BEFORE = re.compile(r"[(\[]?[-+–$€£]?\d[\d.,:%/+–-]*[)\]]?[,;:.]?|(?:ms|tokens|years?)[)\],;:.]?|[·→=×|/]")


def wrap(text: Text | str, width: int, *, indent: int = 0, hang: int | None = None) -> list[Text]:
    """``text`` word-wrapped to ``width`` cells: its first line indented by ``indent``, the lines it wraps onto by
    ``hang`` (a hanging indent; default ``indent + 2``), no line padded or ending in a space. Rich's own wrapping
    loses a hanging indent (a label's value continued at column 0) and pads every line to the width, which a
    pipe keeps as trailing spaces. Newlines in the text start new lines; a word longer than a line is folded."""
    body = Text(text) if isinstance(text, str) else text
    hang = indent + 2 if hang is None else hang
    lines: list[Text] = []
    for paragraph in body.split("\n", allow_blank=True):
        lines.extend(_wrap_paragraph(paragraph, width, indent, hang))
    return lines


def _wrap_paragraph(paragraph: Text, width: int, indent: int, hang: int) -> list[Text]:
    if "\t" in paragraph.plain:
        paragraph.expand_tabs()
    plain_text = paragraph.plain.rstrip()
    # Units: runs of words that must stay on one line, as (start, end) offsets into the paragraph.
    units: list[list[int]] = []
    for m in re.finditer(r"\S+", plain_text):
        if units and _NO_BREAK_BEFORE.fullmatch(m.group(0)):
            units[-1][1] = m.end()
        else:
            units.append([m.start(), m.end()])
    if not units:
        return [Text("")]
    spans: list[tuple[int, int]] = []
    start, end = 0, units[0][1]  # the first line keeps the paragraph's own leading spaces
    for unit_start, unit_end in units[1:]:
        room = width - (indent if not spans else hang)
        if cell_len(plain_text[start:unit_end]) <= room:
            end = unit_end
            continue
        spans.append((start, end))
        start, end = unit_start, unit_end
    spans.append((start, end))
    out: list[Text] = []
    for start, end in spans:
        rest = paragraph[start:end]
        while True:
            pad = indent if not out else hang
            room = max(1, width - pad)
            if cell_len(rest.plain) <= room:
                out.append(Text(" " * pad) + rest)
                break
            head, rest = rest.divide([_fitting(rest.plain, room)])  # a word longer than a line: folded
            out.append(Text(" " * pad) + head)
    return out


def _fitting(text: str, room: int) -> int:
    """How many of ``text``'s characters fit in ``room`` cells (at least one)."""
    used = 0
    for i, ch in enumerate(text):
        used += cell_len(ch)
        if used > room:
            return max(1, i)
    return len(text)


def print_wrapped(
    console: Console, text: Text | str, *, indent: int = 0, hang: int | None = None, width: int | None = None
) -> None:
    """Print ``text`` (a Text, or a markup string) wrapped by :func:`wrap` at the console's width (or ``width``)."""
    body = Text.from_markup(text) if isinstance(text, str) else text
    for line in wrap(body, width or console.width, indent=indent, hang=hang):
        console.print(line, soft_wrap=True, highlight=False)


def progress_line(console: Console, text: str) -> None:
    """A short progress line ("loading the embedding model…", "case 10/49") on ``console`` where it is no
    terminal (a pipe, a log): there a wait of half a minute would otherwise pass in silence, since Rich draws no
    progress display off a terminal. On a terminal the progress display (or nothing, for a short wait) stays."""
    if not console.is_terminal:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
