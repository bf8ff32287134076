"""`--help` of every command names what its options take (SLUG, N, FILE), never typer's placeholders."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from jdgraph.cli import app

# typer 0.28 prints a parameter's type as <str>, <int>, <int range>, <float range>, <path>, <filename>…
PLACEHOLDER = re.compile(r"<(?:str|text|int|integer|float|path|filename|uuid|datetime|boolean|bool)\b[^>]*>")


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    for name, sub in getattr(command, "commands", {}).items():
        out.extend(_commands(sub, (*path, name)))
    return out


COMMANDS = _commands(typer.main.get_command(app))


def test_every_command_is_walked() -> None:
    assert len(COMMANDS) > 20 and ("review", "approve") in COMMANDS and ("eval", "run") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "jdgraph")
def test_help_shows_no_type_placeholders(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert PLACEHOLDER.search(result.stdout) is None, PLACEHOLDER.findall(result.stdout)


def test_options_and_arguments_are_named_as_the_readme_names_them() -> None:
    runner = CliRunner()
    approve = runner.invoke(app, ["review", "approve", "--help"], env={"COLUMNS": "100"}).stdout
    assert re.search(r"--as-alias-of\s+SLUG", approve) and "ITEM_ID" in approve
    search = runner.invoke(app, ["catalog", "search", "--help"], env={"COLUMNS": "100"}).stdout
    assert re.search(r"--top\s+K \[1<=x<=100\]", search) and re.search(r"--kind\s+<skill\|role>", search)
    assert "[QUERY]" in search  # the usage line
