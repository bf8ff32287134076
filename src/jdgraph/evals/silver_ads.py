"""Silver job ads: labelled whole ads assembled from training data only, for fitting how a JD's role signals fuse.

The training data holds no labelled whole ad (the labelled ads are hahu-dev's, which measure), so the fusion of a
JD's title, responsibilities, skills and centroid into one role score was set by hand. A silver ad is assembled
from public parts that are training data:

- its **title** is a training title coded to an ESCO occupation, taken from the titles the shipped encoder held out
  (the encoder's own split: seed and share from its card), so the title signal is as strong as on a title the
  encoder never saw, not as on one it learned;
- its **body** is what O*NET says about the same job: task statements as responsibilities and technology examples
  as requirements, from the O*NET occupation that shares that ESCO occupation's labels. The crosswalk is made from
  exact, unambiguous matches of O*NET's alternate and reported titles with ESCO's labels: an ESCO occupation is
  mapped to the O*NET occupation with the most such titles, and left out on a tie. No ESCO text the catalog holds
  (descriptions, which are its KRAs; skill labels) is copied into a body.

Silver labels are noisy (one O*NET occupation covers several ESCO ones, so its tasks support the siblings as well);
they are for fitting a handful of weights, never for measuring: the dev suites measure.
"""

from __future__ import annotations

import csv
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jdgraph.catalog.normalize import normalize_alias
from jdgraph.errors import InputError
from jdgraph.trained.data import (
    Occupation,
    TitleExample,
    load_occupations,
    load_titles,
    split_titles,
    training_file,
)

ONET_DIR = "data/onet-27.0"
TASKS_PER_AD = (4, 8)
"""Responsibilities a silver ad lists: drawn between these counts, as real ads list a handful."""
TECHNOLOGIES_PER_AD = 4


@dataclass(frozen=True)
class SilverAd:
    id: str
    title: str
    description: str
    occupation_uri: str
    occupation_label: str
    onet_code: str
    same_job: tuple[str, ...] = ()
    """Every ESCO occupation the crosswalk maps to ``onet_code`` (its own among them): the occupations its body
    describes."""


def _onet_rows(root: Path | None, name: str) -> list[dict[str, str]]:
    path = training_file(f"{ONET_DIR}/{name}", root)
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if rows and "O*NET-SOC Code" not in rows[0]:
        raise InputError(f"{path}: not an O*NET table (no 'O*NET-SOC Code' column)")
    return rows


def onet_esco_crosswalk(root: Path | None, occupations: dict[str, Occupation]) -> dict[str, str]:
    """ESCO occupation URI → the O*NET-SOC code sharing most of its labels (exact normalised matches of O*NET's
    alternate and reported titles, each naming one ESCO occupation only); ties are left out."""
    by_key: dict[str, set[str]] = defaultdict(set)
    for occupation in occupations.values():
        for label in occupation.labels:
            by_key[normalize_alias(label)].add(occupation.uri)
    onet_titles: dict[str, set[str]] = defaultdict(set)
    for row in _onet_rows(root, "Alternate Titles.txt"):
        onet_titles[row["O*NET-SOC Code"]].add(row["Alternate Title"])
    for row in _onet_rows(root, "Sample of Reported Titles.txt"):
        onet_titles[row["O*NET-SOC Code"]].add(row["Reported Job Title"])
    shared: Counter[tuple[str, str]] = Counter()
    for code, titles in onet_titles.items():
        for title in titles:
            hits = by_key.get(normalize_alias(title), set())
            if len(hits) == 1:
                shared[(next(iter(hits)), code)] += 1
    candidates: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for (uri, code), n in shared.items():
        candidates[uri].append((n, code))
    crosswalk = {}
    for uri, options in candidates.items():
        options.sort(key=lambda o: (-o[0], o[1]))
        if len(options) == 1 or options[0][0] > options[1][0]:
            crosswalk[uri] = options[0][1]
    return crosswalk


def _body(rng: random.Random, tasks: Sequence[str], technologies: Sequence[str]) -> str:
    lines = ["Responsibilities:"]
    lines += [f"- {t}" for t in rng.sample(list(tasks), min(len(tasks), rng.randint(*TASKS_PER_AD)))]
    lines.append("Requirements:")
    if technologies:
        picked = rng.sample(list(technologies), min(len(technologies), TECHNOLOGIES_PER_AD))
        named = picked[0] if len(picked) == 1 else ", ".join(picked[:-1]) + f" and {picked[-1]}"
        lines.append(f"- Experience with {named}.")
    lines.append(f"- At least {rng.randint(1, 6)} years of relevant experience.")
    return "\n".join(lines)


def build_silver_ads(
    held_titles: Sequence[TitleExample], root: Path | None = None, *, seed: int = 13
) -> list[SilverAd]:
    """One silver ad per held-out training title whose occupation the crosswalk maps and whose O*NET occupation has
    at least three tasks; seeded, so the same inputs give the same ads."""
    occupations = load_occupations(root)
    crosswalk = onet_esco_crosswalk(root, occupations)
    tasks: dict[str, list[str]] = defaultdict(list)
    for row in _onet_rows(root, "Task Statements.txt"):
        tasks[row["O*NET-SOC Code"]].append(" ".join(row["Task"].split()))
    technologies: dict[str, list[str]] = defaultdict(list)
    for row in _onet_rows(root, "Technology Skills.txt"):
        technologies[row["O*NET-SOC Code"]].append(row["Example"].strip())
    same_job: dict[str, list[str]] = defaultdict(list)
    for uri, onet in sorted(crosswalk.items()):
        same_job[onet].append(uri)
    rng = random.Random(seed)
    ads = []
    for t in sorted(held_titles, key=lambda t: t.line):
        code = crosswalk.get(t.occupation_uri)
        if code is None or len(tasks[code]) < 3:
            continue
        ads.append(
            SilverAd(
                id=f"silver-{t.line}",
                title=t.title,
                description=_body(rng, tasks[code], sorted(set(technologies[code]))),
                occupation_uri=t.occupation_uri,
                occupation_label=occupations[t.occupation_uri].preferred,
                onet_code=code,
                same_job=tuple(same_job[code]),
            )
        )
    return ads


def held_out_titles(holdout: float, seed: int, root: Path | None = None) -> list[TitleExample]:
    """The training titles the encoder held out (its own split), coded to an occupation ESCO v1.1.1 lists."""
    known = set(load_occupations(root))
    return split_titles([t for t in load_titles(root) if t.occupation_uri in known], holdout, seed)[1]
