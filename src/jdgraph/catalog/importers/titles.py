"""Coded vacancy titles (``title,occupation_uri`` CSV, as JobBERT's training titles) → title examples.

The file is read by :mod:`jdgraph.trained.data`, the one home of the training files' formats and of the rule that
a file under ``data/dev/`` (which measures) is never training input: the examples shape every later ranking, so
importing the dev titles would make titles-dev measure a lookup.
"""

from __future__ import annotations

from pathlib import Path

from jdgraph.catalog.records import TitleExampleRecord
from jdgraph.trained.data import read_titles_csv, sha256_of, training_file


def read_title_examples(path: Path) -> tuple[str, list[TitleExampleRecord], str]:
    """(source name, examples, content hash) of the CSV at ``path``; a dev file or a malformed line is an
    InputError naming it."""
    checked = training_file(path.expanduser().resolve())
    rows = read_titles_csv(checked)
    examples = [TitleExampleRecord(r.title, r.occupation_uri, r.line) for r in rows]
    return f"titles:{checked.name}", examples, sha256_of(checked)
