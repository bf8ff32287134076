"""Where stderr is no terminal, an import's progress is plain lines: one per stage, and within a long stage one per
tenth of it (or per STAGE_LINE_EVERY_S), not a line per callback nor a bar drawn into a log."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from jdgraph.cli import common as cli


def test_a_long_stage_prints_a_line_per_tenth_and_a_stage_without_count_once(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(cli, "err_console", Console(file=out, width=200))
    progress = cli._stage_lines()
    progress("reading esco files", 0, 0)
    progress("reading esco files", 0, 0)
    for done in range(0, 1001, 7):
        progress("embedding skill_aliases", done, 1000)
    progress("embedding skill_aliases", 1000, 1000)
    progress("staged skills", 747, 747)
    lines = out.getvalue().splitlines()
    assert sum("reading esco files" in line for line in lines) == 1
    embedding = [line for line in lines if "embedding skill_aliases" in line]
    assert len(embedding) == 11  # 0%, 10%, ..., 90%, and the count when done
    assert embedding[3].endswith(": 301/1,000 (30%)") and embedding[-1].endswith(": 1,000")
    assert lines[-1].endswith("] staged skills: 747")


def test_a_slow_stage_prints_a_line_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(cli, "err_console", Console(file=out, width=200))
    monkeypatch.setattr(cli, "STAGE_LINE_EVERY_S", 0.0)
    progress = cli._stage_lines()
    for done in range(5):
        progress("embedding role_kras", done, 1000)  # under 1% in all
    assert out.getvalue().count("embedding role_kras") == 5
