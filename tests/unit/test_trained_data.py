"""Training data loaders: dev files are never training input, and a malformed file is an InputError with its line."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import jdgraph.trained
from jdgraph.errors import InputError
from jdgraph.settings import shared_dir
from jdgraph.trained import data

SHARED = shared_dir()
DEV_FILE = re.compile(r"data/dev/[\w.-]+\.(csv|jsonl)")
needs_shared = pytest.mark.skipif(not (SHARED / data.TITLES_TRAIN).is_file(), reason="no ../shared training data")


def _tree(tmp_path: Path) -> Path:
    for sub in ("data/train", "data/dev"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "data/dev/jobbert-titles-dev.csv").write_text(
        "title,occupation_uri\nx,http://data.europa.eu/esco/occupation/1\n", encoding="utf-8"
    )
    return tmp_path


@pytest.mark.parametrize(
    "relative",
    ["data/dev/jobbert-titles-dev.csv", "data/train/../dev/jobbert-titles-dev.csv", "data/train/link.csv"],
)
def test_training_loaders_refuse_dev_files(tmp_path: Path, relative: str) -> None:
    root = _tree(tmp_path)
    (root / "data/train/link.csv").symlink_to(root / "data/dev/jobbert-titles-dev.csv")
    with pytest.raises(InputError, match="dev files measure"):
        data.training_file(relative, root)


def test_every_training_source_is_outside_dev() -> None:
    names = [data.SKILLSPAN_TRAIN, data.TITLES_TRAIN, data.ESCO_EN_ZIP, data.ESCO_RELATIONS_ZIP]
    assert all("/dev/" not in name for name in names)
    assert set(names) == set(data.LICENCES)


def test_only_the_evaluation_module_names_a_dev_file() -> None:
    """Training code reaches files through training_file(); a literal dev path anywhere else would bypass it."""
    package = Path(jdgraph.trained.__file__).parent
    offenders = []
    for path in package.glob("*.py"):
        if path.name == "evaluate.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and DEV_FILE.search(node.value):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_trained_package_imports_only_settings_errors_and_itself() -> None:
    package = Path(jdgraph.trained.__file__).parent
    allowed = ("jdgraph.settings", "jdgraph.errors", "jdgraph.trained")
    bad = []
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jdgraph"):
                if not (node.module or "").startswith(allowed):
                    bad.append(f"{path.name}: {node.module}")
            elif isinstance(node, ast.Import):
                bad += [f"{path.name}: {a.name}" for a in node.names
                        if a.name.startswith("jdgraph") and not a.name.startswith(allowed)]  # fmt: skip
    assert bad == []


def test_malformed_titles_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "title,occupation_uri\nok,http://data.europa.eu/esco/occupation/a\nbad,http://example.com/x\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"t\.csv:3: 'http://example.com/x' is not an ESCO occupation"):
        data.read_titles_csv(path)
    path.write_text("name,uri\na,b\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"t\.csv:1: expected a header"):
        data.read_titles_csv(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not a SkillSpan posting"),
        (json.dumps({"id": "a", "text": "Java", "spans": [{"start": 0, "end": 9, "type": "knowledge"}]}),
         "outside the text"),
        (json.dumps({"id": "a", "text": "Java", "spans": [{"start": 0, "end": 4, "type": "tool"}]}),
         "unknown span type 'tool'"),
        (json.dumps({"id": "a", "text": "Java", "spans": [{"start": 0, "end": 4, "type": "skill", "text": "Jav"}]}),
         "reads 'Java', not 'Jav'"),
        (json.dumps({"id": "a", "text": "Java"}), "KeyError"),
    ],
)  # fmt: skip
def test_malformed_postings_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "s.jsonl"
    good = json.dumps({"id": "g", "text": "Go", "spans": [{"start": 0, "end": 2, "type": "knowledge"}]})
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"s\.jsonl:2: .*{message}"):
        data.read_postings(path)


@needs_shared
def test_real_training_files_load_and_hold_no_dev_posting() -> None:
    from jdgraph.trained.evaluate import load_dev_postings

    postings = data.load_skillspan()
    assert len(postings) == 140 and sum(len(p.spans) for p in postings) == 5190
    dev = load_dev_postings()
    # Ids restart in each split (both have a skillspan-house-30), so the postings are compared by their text.
    assert not {p.text for p in postings} & {p.text for p in dev}
    assert not {p.text[:300] for p in postings} & {p.text[:300] for p in dev}
    titles = data.load_titles()
    assert len(titles) == 15463
    occupations = data.load_occupations()
    assert len(occupations) == 3007 and sum(len(o.alts) for o in occupations.values()) > 30000


@pytest.mark.parametrize("reader", [data.read_titles_csv, data.read_postings], ids=["titles", "postings"])
def test_a_binary_training_file_is_an_input_error_naming_its_line(tmp_path: Path, reader) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "train.bin"
    path.write_bytes(b'{"id": 1}\n\xff\xfe\x00binary')
    with pytest.raises(InputError, match=r"train.bin:2: not UTF-8 text"):
        reader(path)
