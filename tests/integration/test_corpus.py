"""The bad-input corpus (``tests/corpus/``, described by its ``manifest.json``): every file gets a clear error
(an InputError saying what is wrong) or a run whose status and reason say what it is; nothing crashes and nothing is
persisted from a rejected text."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

import jdgraph
from jdgraph.errors import InputError

pytestmark = pytest.mark.integration
CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MANIFEST = {k: v for k, v in json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8")).items() if k != "_"}


def _content(name: str) -> bytes:
    if name == "huge.txt":
        return ("Python developer. Requirements: 3+ years. " * 50_000).encode()  # 2 MB
    return (CORPUS / name).read_bytes()


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_every_corpus_file_gets_a_clear_answer(catalog, name: str) -> None:
    expected = MANIFEST[name]
    if "error" in expected:
        with pytest.raises(InputError) as err:
            jdgraph.classify(_content(name), run_id=str(uuid.uuid4()))
        assert type(err.value).__name__ == expected["error"] and expected["says"] in err.value.message
        return
    result = jdgraph.classify(_content(name), run_id=str(uuid.uuid4()))
    assert result.status == expected["status"], result.parsed.reject_reason
    if "role" in expected:
        assert result.decision.chosen_role.slug == expected["role"]
    if result.status == "rejected":
        assert expected["says"] in (result.parsed.reject_reason or "")
        assert not result.queued  # a rejected text proposes nothing
        assert [p.kind for p in result.persistence] == ["run"]  # the run is kept (nothing lost), nothing else


def test_the_corpus_covers_what_the_issue_lists() -> None:
    assert {"empty.txt", "whitespace.txt", "huge.txt", "nul-bytes.bin", "invalid-utf8.bin", "fake.pdf", "fake.docx",
            "html-jd.html", "german.txt", "chinese.txt", "recipe.txt", "data-engineer.pdf", "data-engineer.docx",
            "scanned.pdf", "archive.zip", "markdown-jd.md", "repeated-bullets.txt"} <= set(MANIFEST)  # fmt: skip
    assert all((CORPUS / n).exists() for n in MANIFEST if n != "huge.txt")


@pytest.mark.parametrize("name", ["data-engineer.pdf", "data-engineer.docx", "invalid-utf8.bin", "archive.zip"])
def test_the_cli_reads_documents_and_refuses_other_files_clearly(catalog, name: str) -> None:
    import os
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "jdgraph.cli", "classify", str(CORPUS / name), "--json", "--no-persist"],
        capture_output=True,
        text=True,
        env={**os.environ, "JDGRAPH_DB_SCHEMA": catalog.db.schema},
        timeout=300,
    )
    expected = MANIFEST[name]
    if "error" in expected:
        assert out.returncode == 2 and expected["says"] in out.stderr and "Traceback" not in out.stderr
    else:
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["decision"]["chosen_role"]["slug"] == expected["role"]


def test_invalid_utf8_in_the_title_or_on_stdin_is_a_clear_error(catalog) -> None:
    """An undecodable --title reached the run as lone surrogates and crashed it with a UnicodeEncodeError
    traceback; undecodable stdin must be refused the same way as an undecodable file."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "JDGRAPH_DB_SCHEMA": catalog.db.schema}
    jd = str(CORPUS / "markdown-jd.md")
    base = [sys.executable, "-m", "jdgraph.cli", "classify"]
    title = subprocess.run(
        [*base, jd, "--no-persist", "--title", os.fsdecode(b"\xff\xfe Nurse")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert title.returncode == 2 and "the title is not valid UTF-8" in title.stderr and "Traceback" not in title.stderr
    stdin = subprocess.run(
        [*base, "-", "--no-persist"], input=b"Nurse \xff\xfe\n", capture_output=True, env=env, timeout=300
    )
    assert stdin.returncode == 2 and b"not UTF-8" in stdin.stderr and b"Traceback" not in stdin.stderr
    with pytest.raises(InputError, match="the company is 600 characters"):
        jdgraph.classify((CORPUS / "markdown-jd.md").read_bytes(), company="x" * 600, persist=False)


def test_a_lone_surrogate_in_the_text_is_a_clear_error_not_a_database_error(catalog) -> None:
    """Through the Python API or a LangGraph server's JSON ("\\ud800"), a lone surrogate passed every step and then
    failed the run's insert with psycopg's InvalidTextRepresentation."""
    text = (CORPUS / "markdown-jd.md").read_text(encoding="utf-8") + "\n- Keep dashboards current \ud800\n"
    with pytest.raises(InputError, match="lone surrogate"):
        jdgraph.classify(text, run_id=str(uuid.uuid4()))
