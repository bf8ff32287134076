"""The README's Python snippets run as written (from the project root, on the test catalog). The
``langgraph_sdk`` snippet needs a server: ``tests/integration/test_server.py`` runs it against its own."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_readme_has_python_snippets_and_they_run(catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = [b for b in readme_python_blocks() if "get_sync_client" not in b]
    assert len(blocks) >= 2
    monkeypatch.chdir(ROOT)
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
        printed = out.getvalue()
        assert printed.strip(), f"a README snippet printed nothing:\n{block}"
        if "classify(" in block:
            assert "systems-software-engineer" in printed and "registered-nurse" in printed
    assert os.environ.get("JDGRAPH_DB_SCHEMA")  # it ran on the test schema, not a developer's catalog
