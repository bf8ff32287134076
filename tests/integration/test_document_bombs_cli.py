"""`jdgraph classify BOMB --no-persist` exits 2 with one clear line (issue 19): a PDF bomb ended in pypdf's
LimitReachedError traceback with exit 1, and the issue's DOCX ran for minutes in gigabytes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import bombs

pytestmark = pytest.mark.integration

BOMBS: dict[str, tuple[Callable[[], bytes], str]] = {
    "bomb.docx": (bombs.docx_bomb, "word/document.xml expands to 334,692,168 bytes"),
    "flate.pdf": (bombs.pdf_flate_bomb, "the PDF is too large to read"),
    "page-tree.pdf": (bombs.pdf_page_tree_bomb, "the PDF is too large to read"),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_classify_refuses_a_document_bomb_with_exit_2(catalog: Any, name: str, tmp_path: Path) -> None:
    build, says = BOMBS[name]
    path = tmp_path / name
    path.write_bytes(build())
    out = subprocess.run(
        [sys.executable, "-m", "jdgraph.cli", "classify", str(path), "--no-persist"],
        capture_output=True,
        text=True,
        env={**os.environ, "JDGRAPH_DB_SCHEMA": catalog.db.schema, "COLUMNS": "200"},
        timeout=300,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert says in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]
