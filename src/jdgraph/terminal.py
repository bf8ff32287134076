"""Text from a JD (or a catalog import, a model, a user's file) made safe to print on a terminal.

A JD is untrusted: Rich would read ``[/]`` in a title as markup (and crash on it after the run was saved, then on
every later ``runs list``), ``[link=…]`` as a hyperlink, and raw escape sequences would reach the terminal and
drive it. Every dynamic value the CLI prints goes through :func:`safe` (inside a markup string) or :func:`cell`
(a table cell, rendered as plain text).
"""

from __future__ import annotations

import re
from typing import Any

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
