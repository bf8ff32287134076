"""Alias normalisation: the key that makes spelling variants of one name collapse.

``Multi-threading``, ``multithreading`` and ``Multi Threading`` share one key; so do ``Node.js`` and ``NodeJS``.
Names whose meaning lives in their symbols stay distinct: ``C`` → ``c``, ``C#`` → ``csharp``,
``C++`` → ``cplusplus``, ``.NET`` → ``dotnet``, ``R`` → ``r``, ``Go`` → ``go``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Order matters: "++" before "+", and symbols before the catch-all strip.
_SYMBOLS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\+\+"), "plusplus "),
    (re.compile(r"\+"), "plus "),
    (re.compile(r"#"), "sharp "),
    # A dot that starts a word (".NET", ".net core") is spoken: "dot net".
    (re.compile(r"(?:(?<=^)|(?<=[\s/(,]))\.(?=\w)"), "dot"),
    (re.compile(r"&"), " and "),
    (re.compile(r"@"), " at "),
)
_SYMBOL_CHARS = frozenset("+#.&@")
"""Every character a pattern of ``_SYMBOLS`` needs: text with none of them is left as it is by all six."""
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _fold(text: str) -> str:
    """Compatibility-normalised, casefolded, accents removed, recomposed (so a second pass changes nothing)."""
    if text.isascii():
        # ASCII is its own NFKC and NFKD form and has no accents; its casefold is its lower case. Most of a JD's
        # n-grams are ASCII, and the extractor normalises every one of them.
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", stripped).casefold()


@lru_cache(maxsize=1 << 16)  # the extractor normalises every n-gram of every JD; most repeat
def normalize_alias(text: str) -> str:
    """The normalised key of an alias: casefolded, accents removed, symbols spelled, separators dropped."""
    value = _fold(text)
    if not _SYMBOL_CHARS.isdisjoint(value):  # six regex passes over every n-gram of a JD cost 30 ms a JD
        for pattern, replacement in _SYMBOLS:
            value = pattern.sub(replacement, value)
    return _NON_WORD.sub("", value)


def normalize_text(text: str) -> str:
    """A looser key for sentences (KRAs): casefolded words separated by single spaces."""
    value = _fold(text)
    return " ".join(_NON_WORD.sub(" ", value).split())


def slugify(text: str) -> str:
    """A readable slug: ``C++ Developer`` → ``cplusplus-developer``."""
    value = _fold(text)
    for pattern, replacement in _SYMBOLS:
        value = pattern.sub(replacement, value)
    return "-".join(_NON_WORD.sub(" ", value).split())
