"""Training data: SkillSpan's training postings, JobBERT's training titles and the ESCO taxonomy.

Every reader here takes its file through :func:`training_file`, which refuses anything under ``data/dev/``: the dev
suites measure, and a model that saw them would report numbers nobody can trust. Evaluation reads dev files through
:mod:`jdgraph.trained.evaluate`, never through this module.

A malformed row is an :class:`InputError` naming the file and its line, so a bad download is found before an
hour of training is spent on it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import random
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jdgraph.errors import InputError
from jdgraph.settings import shared_dir

SKILLSPAN_TRAIN = "data/train/skillspan-train.jsonl"
TITLES_TRAIN = "data/train/jobbert-titles-train.csv"
ESCO_EN_ZIP = "data/esco-v1.1.1/ESCO dataset - v1.1.1 - classification - en - csv.zip"
ESCO_RELATIONS_ZIP = "data/esco-v1.1.1/ESCO dataset - v1.1.1 - classification -  - csv.zip"

# What a model card says about each source (../shared/README.md).
LICENCES = {
    SKILLSPAN_TRAIN: "SkillSpan (Zhang, Jensen, Sonniks, Plank, NAACL 2022), MIT",
    TITLES_TRAIN: "JobBERT evaluation set, validation split (Decorte et al.)",
    ESCO_EN_ZIP: "ESCO v1.1.1, (c) European Union, CC BY 4.0",
    ESCO_RELATIONS_ZIP: "ESCO v1.1.1, (c) European Union, CC BY 4.0",
}
SPAN_TYPES = ("skill", "knowledge")
OCCUPATION_PREFIX = "http://data.europa.eu/esco/occupation/"


def training_file(relative: str | Path, root: Path | None = None) -> Path:
    """The training file at ``relative`` under the shared folder (or ``root``); a dev file is refused.

    The check is on the resolved path's parts, so ``data/train/../dev/x`` and symlinks into dev are refused too.
    """
    base = (root or shared_dir()).resolve()
    path = (base / relative).resolve()
    parts = path.parts
    if any(a == "data" and b == "dev" for a, b in itertools.pairwise(parts)):
        raise InputError(f"{path}: dev files measure and are never training input", field="path")
    if not path.is_file():
        raise InputError(f"{path}: training file not found (set JDGRAPH_SHARED to the shared folder)", field="path")
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_sources(paths: dict[str, Path]) -> list[dict[str, str]]:
    """The model card's ``training_data``: each file with its sha256 and licence."""
    return [
        {"file": name, "sha256": sha256_of(path), "licence": LICENCES.get(name, "see ../shared/README.md")}
        for name, path in paths.items()
    ]


# -- titles ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TitleExample:
    title: str
    occupation_uri: str
    line: int


def split_titles(
    titles: Sequence[TitleExample], holdout: float, seed: int
) -> tuple[list[TitleExample], list[TitleExample]]:
    """(fit, held out) with every case-folded title string on one side only: a title repeated in both halves would
    make the kNN vote look better on the hold-out than it is on unseen titles."""
    keys = sorted({t.title.lower() for t in titles})
    random.Random(seed).shuffle(keys)
    held = set(keys[: int(len(keys) * holdout)])
    return [t for t in titles if t.title.lower() not in held], [t for t in titles if t.title.lower() in held]


def _utf8_text(path: Path) -> str:
    """The file's text; bytes that are not UTF-8 (a binary or mis-encoded file) are an InputError naming the file
    and the line they are on, not a traceback."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte {exc.start}); is this the right file?") from exc


def read_titles_csv(path: Path) -> list[TitleExample]:
    """Rows ``title,occupation_uri``; a missing column, empty title or a URI that is no ESCO occupation is an
    InputError with the line (the header is line 1)."""
    out: list[TitleExample] = []
    reader = csv.DictReader(io.StringIO(_utf8_text(path), newline=""))
    try:
        if reader.fieldnames is None or not {"title", "occupation_uri"} <= set(reader.fieldnames):
            raise InputError(f"{path}:1: expected a header with title,occupation_uri, got {reader.fieldnames}")
        for row in reader:
            line = reader.line_num
            title = (row.get("title") or "").strip()
            uri = (row.get("occupation_uri") or "").strip()
            if not title:
                raise InputError(f"{path}:{line}: empty title")
            if not uri.startswith(OCCUPATION_PREFIX):
                raise InputError(f"{path}:{line}: {uri!r} is not an ESCO occupation URI")
            out.append(TitleExample(title, uri, line))
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}: not CSV ({exc})") from exc
    if not out:
        raise InputError(f"{path}: no titles")
    return out


def load_titles(root: Path | None = None) -> list[TitleExample]:
    return read_titles_csv(training_file(TITLES_TRAIN, root))


# -- SkillSpan ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str
    score: float = field(default=1.0, compare=False)
    """How sure the tagger was: the mean probability, over the span's tokens, that a token is inside a span (1.0
    for a gold span)."""


@dataclass(frozen=True)
class Posting:
    id: str
    source: str
    text: str
    spans: tuple[Span, ...]
    not_spans: tuple[Span, ...] = ()
    """Words known not to be a skill (a rejected proposal): taught as outside any span."""
    partial: bool = False
    """Only ``spans`` and ``not_spans`` are labelled; every other token is left out of the loss (a reviewed
    sentence, where nobody said whether its other words are skills)."""


def read_postings(path: Path) -> list[Posting]:
    """SkillSpan JSONL: ``{"id", "source", "text", "spans": [{"start", "end", "type"}]}`` per line.

    A span outside the text, an unknown type or a span text that disagrees with the offsets is an InputError with
    the line: offsets that drifted would teach the tagger the wrong tokens."""
    out: list[Posting] = []
    # One text, decoded up front: a binary file is an InputError, not a traceback mid-iteration.
    for line_no, line in enumerate(_utf8_text(path).split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            row = json.loads(line)
            text = row["text"]
            spans = []
            for s in row["spans"]:
                start, end, kind = int(s["start"]), int(s["end"]), s["type"]
                if kind not in SPAN_TYPES:
                    raise InputError(f"{where}: unknown span type {kind!r} (expected one of {SPAN_TYPES})")
                if not 0 <= start < end <= len(text):
                    raise InputError(f"{where}: span {start}..{end} lies outside the text ({len(text)} chars)")
                if "text" in s and text[start:end] != s["text"]:
                    raise InputError(f"{where}: span {start}..{end} reads {text[start:end]!r}, not {s['text']!r}")
                spans.append(Span(start, end, kind))
            out.append(Posting(str(row["id"]), str(row.get("source", "")), text, tuple(spans)))
        except InputError:
            raise
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: not a SkillSpan posting ({type(exc).__name__}: {exc})") from exc
    if not out:
        raise InputError(f"{path}: no postings")
    return out


def load_skillspan(root: Path | None = None) -> list[Posting]:
    return read_postings(training_file(SKILLSPAN_TRAIN, root))


# -- ESCO --------------------------------------------------------------------------------------------------------
@dataclass
class Occupation:
    uri: str
    preferred: str
    alts: list[str]
    isco: str
    essential_skills: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        """Preferred first, then the alternative labels, without repeats."""
        return list(dict.fromkeys([self.preferred, *self.alts]))


@dataclass(frozen=True)
class Skill:
    uri: str
    preferred: str
    alts: tuple[str, ...]
    skill_type: str
    description: str = ""


def _zip_rows(path: Path, member: str) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: not a zip archive ({exc})") from exc
    with archive, archive.open(member) as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        for row in reader:
            yield reader.line_num, row


def _labels(cell: str | None) -> list[str]:
    return [x.strip() for x in (cell or "").split("\n") if x.strip()]


def read_occupations(en_zip: Path, relations_zip: Path | None = None) -> dict[str, Occupation]:
    """ESCO occupations by URI, with alt labels, ISCO unit group and (given the relations zip) essential skills."""
    out: dict[str, Occupation] = {}
    where = f"{en_zip}:occupations_en.csv"
    for line, row in _zip_rows(en_zip, "occupations_en.csv"):
        uri, preferred = (row.get("conceptUri") or "").strip(), (row.get("preferredLabel") or "").strip()
        if not uri.startswith(OCCUPATION_PREFIX) or not preferred:
            raise InputError(f"{where}:{line}: an occupation needs conceptUri and preferredLabel")
        out[uri] = Occupation(uri, preferred, _labels(row.get("altLabels")), (row.get("iscoGroup") or "").strip())
    if relations_zip is not None:
        where = f"{relations_zip}:occupationSkillRelations.csv"
        for line, row in _zip_rows(relations_zip, "occupationSkillRelations.csv"):
            if not row.get("occupationUri") or not row.get("skillUri"):
                raise InputError(f"{where}:{line}: a relation needs occupationUri and skillUri")
            # The published relations name a few occupations the English file does not list; they are skipped.
            occupation = out.get(row["occupationUri"])
            if occupation is not None and row.get("relationType") == "essential":
                occupation.essential_skills.append(row["skillUri"])
    return out


def read_skills(en_zip: Path) -> dict[str, Skill]:
    out: dict[str, Skill] = {}
    for line, row in _zip_rows(en_zip, "skills_en.csv"):
        uri, preferred = (row.get("conceptUri") or "").strip(), (row.get("preferredLabel") or "").strip()
        if not uri or not preferred:
            raise InputError(f"{en_zip}:skills_en.csv:{line}: a skill needs conceptUri and preferredLabel")
        out[uri] = Skill(
            uri,
            preferred,
            tuple(_labels(row.get("altLabels"))),
            (row.get("skillType") or "").strip(),
            " ".join((row.get("description") or "").split()),
        )
    return out


def load_occupations(root: Path | None = None, *, with_skills: bool = False) -> dict[str, Occupation]:
    relations = training_file(ESCO_RELATIONS_ZIP, root) if with_skills else None
    return read_occupations(training_file(ESCO_EN_ZIP, root), relations)


def load_skills(root: Path | None = None) -> dict[str, Skill]:
    return read_skills(training_file(ESCO_EN_ZIP, root))
