"""What the CLI prints at 80 columns into a pipe: wrapped lines keep their hanging indent, no line is padded with
spaces, a number stays with its label; progress lines go to stderr only where it is no terminal."""

from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text

from jdgraph.terminal import print_wrapped, progress_line, wrap

ROLE_LINE = "Systems Software Engineer (systems-software-engineer) · score 0.791 · confidence 0.95"
LOCATIONS = (
    "  locations        India (IN, remote); Pakistan (PK, remote); Nigeria (NG, remote); Kenya (KE, remote); "
    "Egypt (EG, remote)"
)


def _lines(text: str | Text, **kw: int) -> list[str]:
    return [line.plain for line in wrap(text, 80, **kw)]


def test_wrapped_lines_keep_their_hanging_indent_and_end_without_a_space() -> None:
    lines = _lines(LOCATIONS, hang=19)
    assert len(lines) == 2 and lines[0].startswith("  locations        India")
    assert lines[1].startswith(" " * 19) and lines[1][19] != " "  # under the value, not at column 0
    assert all(len(x) <= 80 and x == x.rstrip() for x in lines)


def test_a_number_is_never_split_from_its_label() -> None:
    lines = _lines(ROLE_LINE)
    assert lines == [
        "Systems Software Engineer (systems-software-engineer) · score 0.791 ·",
        "  confidence 0.95",
    ]  # was "… · confidence" / "0.95", the continuation at column 0
    for width in range(30, 60):  # wherever the line breaks, a unit or a separator never starts a line
        for line in wrap("parse 23 ms · extract 818 ms · match 136 ms · total 977 ms", width, indent=2):
            assert line.plain.split()[0] in ("parse", "extract", "match", "total"), (width, line.plain)


def test_styles_and_leading_spaces_survive_and_a_word_longer_than_a_line_is_folded() -> None:
    lines = wrap(Text.from_markup("[bold]run[/] " + "x" * 10), 8)
    assert [x.plain for x in lines] == ["run", "  xxxxxx", "  xxxx"] and lines[0].spans  # bold kept on its word
    assert _lines("  - an indented bullet") == ["  - an indented bullet"]
    assert _lines("one\n\ntwo") == ["one", "", "two"]
    folded = _lines("y" * 170, indent=2)
    assert [len(x) for x in folded] == [80, 80, 20] and "".join(x.strip() for x in folded) == "y" * 170


def test_print_wrapped_pads_nothing() -> None:
    out = io.StringIO()
    print_wrapped(Console(file=out, width=80), "[bold]label[/]  " + "word " * 40, hang=7)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and all(x == x.rstrip() and len(x) <= 80 for x in lines)
    assert all(x.startswith(" " * 7 + "word") for x in lines[1:])


def test_progress_lines_only_off_a_terminal() -> None:
    piped = io.StringIO()
    progress_line(Console(file=piped, width=80), "loading the embedding model…")
    assert piped.getvalue() == "loading the embedding model…\n"
    terminal = io.StringIO()
    progress_line(Console(file=terminal, width=80, force_terminal=True), "loading the embedding model…")
    assert terminal.getvalue() == ""  # a terminal has the progress display
