"""Dev measurements of the trained components. The only module of ``trained/`` that reads ``data/dev/``.

The skill-span scores follow ``run_skillspan`` in evals/dev.py, so the figures compare with the pipeline's: a gold
span is found when any predicted span overlaps it; precision is the share of predicted spans that overlap a gold
span (of any type). Recall is per gold type, tech and house halves apart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from jdgraph.errors import InputError
from jdgraph.settings import shared_dir
from jdgraph.trained.data import Posting, Span, TitleExample, read_postings, read_titles_csv

TITLES_DEV = "data/dev/jobbert-titles-dev.csv"
SKILLSPAN_DEV = "data/dev/skillspan-dev.jsonl"


def dev_file(relative: str, root: Path | None = None) -> Path:
    path = (root or shared_dir()) / relative
    if not path.is_file():
        raise InputError(f"{path}: dev file not found (set JDGRAPH_SHARED to the shared folder)")
    return path


def load_dev_titles(root: Path | None = None) -> list[TitleExample]:
    return read_titles_csv(dev_file(TITLES_DEV, root))


def load_dev_postings(root: Path | None = None) -> list[Posting]:
    return read_postings(dev_file(SKILLSPAN_DEV, root))


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def span_metrics(postings: Sequence[Posting], predicted: Sequence[Sequence[Span]]) -> dict[str, float]:
    """``{source}_{type}_recall`` and ``{source}_precision`` for the tech and house halves, plus span-level exact
    F1 per source (a predicted span equal in offsets and type to a gold one), the literature's stricter measure."""
    counts: dict[str, float] = defaultdict(float)
    for posting, preds in zip(postings, predicted, strict=True):
        src = posting.source
        gold = [(s.start, s.end) for s in posting.spans]
        for s in posting.spans:
            counts[f"{src}:{s.type}:gold"] += 1
            counts[f"{src}:{s.type}:found"] += any(_overlaps((s.start, s.end), (p.start, p.end)) for p in preds)
        exact_gold = {(s.start, s.end, s.type) for s in posting.spans}
        for p in preds:
            counts[f"{src}:pred"] += 1
            counts[f"{src}:pred_hit"] += any(_overlaps((p.start, p.end), g) for g in gold)
            counts[f"{src}:exact"] += (p.start, p.end, p.type) in exact_gold
        counts[f"{src}:gold"] += len(exact_gold)

    def ratio(a: str, b: str) -> float:
        return counts[a] / counts[b] if counts[b] else 0.0

    out: dict[str, float] = {}
    for src in ("tech", "house"):
        for kind in ("skill", "knowledge"):
            out[f"{src}_{kind}_recall"] = ratio(f"{src}:{kind}:found", f"{src}:{kind}:gold")
        out[f"{src}_precision"] = ratio(f"{src}:pred_hit", f"{src}:pred")
        prec, rec = ratio(f"{src}:exact", f"{src}:pred"), ratio(f"{src}:exact", f"{src}:gold")
        out[f"{src}_exact_f1"] = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[f"{src}_predicted"] = counts[f"{src}:pred"]
    return out
