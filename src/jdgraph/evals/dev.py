"""Suites on the real labelled data in ``../shared/data/dev``, scored against an ESCO catalog.

- ``hahu-dev``: 130 job ads (Tabiya livelihoods classifier eval set, Hahu, CC BY 4.0) → the graph's ranked role
  candidates vs the labelled ESCO occupation: top-1, top-5, MRR, and the expected calibration error of the
  chosen role's confidence.
- ``titles-dev``: 2,000 vacancy titles (Decorte et al., JobBERT evaluation set) → ``search_roles``: top-1, top-5,
  MRR.
- ``tech-dev``, ``house-dev``: job-ad sentences with the ESCO skills they denote (Decorte et al.,
  Skill-Extraction-benchmark, CC BY 4.0) → ``search_skills`` on the sentence: RP@5, RP@10, MRR over the sentences
  that have at least one ESCO label.
- ``skillspan-dev``: 58 postings with annotated skill and knowledge spans (SkillSpan, Zhang et al., NAACL 2022,
  MIT) → the extractor's evidence spans: recall of gold skill / knowledge spans per source (a gold span counts
  when an evidence span overlaps it), evidence precision (evidence spans overlapping any gold span), and the
  precision of new-skill proposals (a proposal whose evidence overlaps a gold span is a hit).

Every result records the catalog, its sources and versions, and the data file it read.
"""

from __future__ import annotations

import csv
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, Field

from jdgraph.errors import CatalogError, InputError
from jdgraph.settings import shared_dir

T = TypeVar("T")

DEV_SUITES = {
    "hahu-dev": "role choice from title + description against ESCO occupation codes (top-1, top-5, MRR, ECE)",
    "titles-dev": "vacancy title → ESCO occupation (top-1, top-5, MRR)",
    "tech-dev": "ESCO skills ranked per sentence (RP@5, RP@10, MRR; Decorte et al.)",
    "house-dev": "ESCO skills ranked per sentence (RP@5, RP@10, MRR; Decorte et al.)",
    "skillspan-dev": "extraction: gold skill/knowledge span recall, evidence precision, proposal precision",
}
SOURCES = {
    "hahu-dev": ("hahu-dev.jsonl", "Tabiya livelihoods classifier eval set (Hahu), CC BY 4.0"),
    "titles-dev": ("jobbert-titles-dev.csv", "Decorte et al., JobBERT evaluation set"),
    "tech-dev": ("tech_validation_annotations.csv", "Decorte et al., Skill-Extraction-benchmark, CC BY 4.0"),
    "house-dev": ("house_validation_annotations.csv", "Decorte et al., Skill-Extraction-benchmark, CC BY 4.0"),
    "skillspan-dev": ("skillspan-dev.jsonl", "SkillSpan (Zhang, Jensen, Sonniks, Plank, NAACL 2022), MIT"),
}
NO_LABEL = "LABEL NOT PRESENT"
CI_SLICE: dict[str, int | None] = {
    "hahu-dev": 30,
    "titles-dev": 200,
    "tech-dev": None,  # all 77 labelled sentences
    "house-dev": None,  # all 63
    "skillspan-dev": 8,
}
"""Cases per suite in the fixed slice the CI gate runs (``--ci-slice``; None: the whole file): evenly spaced
through each file, so the slice spans the file's sources and kinds of ads, and never changes while the file does
not."""


def fixed_slice(rows: Sequence[T], n: int | None) -> list[T]:
    """``n`` rows evenly spaced through ``rows`` (all of them when ``n`` is None or not smaller)."""
    if n is None or n >= len(rows):
        return list(rows)
    return [rows[(i * len(rows)) // n] for i in range(n)]


class DevCase(BaseModel):
    id: str
    expected: list[str]
    ranked: list[str] = Field(default_factory=list, description="what the system ranked, best first")
    confidence: float | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class DevRun(BaseModel):
    suite: str
    catalog: str
    catalog_sources: dict[str, str]
    data: str
    data_source: str
    selection: str = Field(default="all", description="all, the fixed CI slice, or the first N cases")
    cases: int
    metrics: dict[str, float]
    wall_s: float
    results: list[DevCase]


def data_path(suite: str) -> Path:
    path = shared_dir() / "data" / "dev" / SOURCES[suite][0]
    if not path.exists():
        raise InputError(f"{suite}: {path} not found (set JDGRAPH_SHARED to the shared folder)")
    return path


def _rank_metrics(cases: Sequence[DevCase], ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """top-k accuracy and MRR for cases with one correct answer (any of ``expected``)."""
    out: dict[str, float] = {}
    ranks = [case_rank(case) for case in cases]
    for k in ks:
        out[f"top{k}"] = sum(1 for r in ranks if r is not None and r <= k) / len(cases) if cases else 0.0
    out["mrr"] = sum(1 / r for r in ranks if r) / len(cases) if cases else 0.0
    return out


class ReliabilityBin(BaseModel):
    low: float
    high: float
    cases: int
    mean_confidence: float
    accuracy: float


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width confidence bins with each bin's mean confidence and accuracy (the reliability diagram's data)."""
    conf = np.asarray(confidences, dtype=float)
    hit = np.asarray(correct, dtype=float)
    out = []
    for lo, hi in itertools.pairwise(np.linspace(0, 1, bins + 1)):
        mask = (conf >= lo) & ((conf < hi) if hi < 1 else (conf <= hi))
        if mask.any():
            out.append(
                ReliabilityBin(
                    low=float(lo),
                    high=float(hi),
                    cases=int(mask.sum()),
                    mean_confidence=float(conf[mask].mean()),
                    accuracy=float(hit[mask].mean()),
                )
            )
    return out


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """ECE: the case-weighted gap between mean confidence and accuracy over equal-width confidence bins."""
    total = len(confidences)
    if not total:
        return 0.0
    return float(sum(b.cases / total * abs(b.mean_confidence - b.accuracy)
                     for b in reliability_bins(confidences, correct, bins)))  # fmt: skip


def case_rank(case: DevCase) -> int | None:
    """The 1-based position of the first expected answer in what the system ranked; None when it is not there."""
    return next((i + 1 for i, r in enumerate(case.ranked) if r in case.expected), None)


def case_correct(case: DevCase) -> bool:
    """A ranked case is right when its first answer is one of the expected ones."""
    return bool(case.ranked) and case.ranked[0] in case.expected


def _r_precision_at(case: DevCase, k: int) -> float:
    relevant = set(case.expected)
    return len([r for r in case.ranked[:k] if r in relevant]) / min(k, len(relevant))


# -- suites -------------------------------------------------------------------------------------------------------
def _take(rows: Sequence[T], suite: str, limit: int | None, ci_slice: bool) -> list[T]:
    """The suite's CI slice when asked for, else the first ``limit`` rows, else all."""
    if ci_slice:
        return fixed_slice(rows, CI_SLICE[suite])
    return list(rows[:limit] if limit else rows)


def run_hahu(
    catalog_name: str, limit: int | None, concurrency: int, context: dict[str, Any], ci_slice: bool = False
) -> tuple[list[DevCase], dict[str, float]]:
    # deferred: the API brings LangGraph and the graph (3 s); reports and calibration import this module without it
    from jdgraph.api import BatchItem, classify_many

    rows = [json.loads(line) for line in data_path("hahu-dev").read_text(encoding="utf-8").splitlines() if line]
    rows = _take(rows, "hahu-dev", limit, ci_slice)
    items = [BatchItem(r["id"], r["description"] or r["title"], r["title"]) for r in rows]
    cases = []
    outcomes = classify_many(items, concurrency=concurrency, **{**context, "catalog": catalog_name, "persist": False})
    for row, outcome in zip(rows, outcomes, strict=True):
        case = DevCase(id=row["id"], expected=[row["occupation_uri"]])
        if outcome.result is None:
            case.error = outcome.error.message if outcome.error else "failed"
        else:
            result = outcome.result
            chosen = result.decision.role_or_nearest.source_id
            others = [s.source_id for s in result.role_signals if s.source_id and s.source_id != chosen]
            case.ranked = [x for x in [chosen, *others] if x]
            case.confidence = result.decision.confidence
            case.detail = {
                "title": row["title"],
                "expected_label": row["occupation_label"],
                "chosen": result.decision.role_or_nearest.display_name,
                "route": result.decision.route,
                "fused_top": result.role_signals[0].source_id if result.role_signals else None,
                "top_score": result.role_signals[0].score if result.role_signals else 0.0,
                "margin": (result.role_signals[0].score - result.role_signals[1].score)
                if len(result.role_signals) > 1
                else 0.0,
            }
        cases.append(case)
    metrics = _rank_metrics(cases)
    scored = [c for c in cases if c.confidence is not None]
    metrics["ece"] = expected_calibration_error(
        [c.confidence or 0.0 for c in scored], [case_correct(c) for c in scored]
    )
    metrics["errors"] = float(sum(1 for c in cases if c.error))
    return cases, metrics


def run_titles(
    catalog_name: str, limit: int | None, context: dict[str, Any], ci_slice: bool = False
) -> tuple[list[DevCase], dict[str, float]]:
    # deferred: the catalog's modules (0.7 s) are needed only to run a suite, not to read or report one
    from jdgraph.catalog.registry import get_catalog
    from jdgraph.context import Context
    from jdgraph.matching.roles import search_roles

    catalog = get_catalog(catalog_name)
    params = Context.from_env(**{**context, "catalog": catalog_name}).scoring()
    with data_path("titles-dev").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows = _take(rows, "titles-dev", limit, ci_slice)
    catalog.embeddings.embed_array(list(dict.fromkeys(r["title"] for r in rows)))  # one batch, cached
    cases = []
    for i, row in enumerate(rows):
        ranked = [s.source_id for s in search_roles(catalog, row["title"], params, k=10) if s.source_id]
        cases.append(DevCase(id=f"title-{i}", expected=[row["occupation_uri"]], ranked=ranked,
                             detail={"title": row["title"]}))  # fmt: skip
    return cases, _rank_metrics(cases)


def run_sentences(
    suite: str, catalog_name: str, limit: int | None, ci_slice: bool = False
) -> tuple[list[DevCase], dict[str, float]]:
    from jdgraph.catalog.registry import get_catalog  # deferred: only running a suite opens a catalog

    catalog = get_catalog(catalog_name)
    gold: dict[str, set[str]] = defaultdict(set)
    with data_path(suite).open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            gold.setdefault(row["sentence"], set())
            if row["label"] and row["label"] != NO_LABEL:
                gold[row["sentence"]].add(row["label"])
    sentences = _take([s for s, labels in gold.items() if labels], suite, limit, ci_slice)
    catalog.embeddings.embed_array(sentences)
    cases = []
    for i, sentence in enumerate(sentences):
        ranked = [c.skill.display_name for c in catalog.search_skills(sentence[:2000], k=10)]
        cases.append(DevCase(id=f"{suite}-{i}", expected=sorted(gold[sentence]), ranked=ranked,
                             detail={"sentence": sentence}))  # fmt: skip
    return cases, sentence_metrics(cases)


def sentence_metrics(cases: Sequence[DevCase]) -> dict[str, float]:
    """RP@5 and RP@10 (as percentages) and MRR over sentence → skills cases (Decorte et al.'s measures)."""
    n = len(cases) or 1
    return {
        "rp5": 100 * sum(_r_precision_at(c, 5) for c in cases) / n,
        "rp10": 100 * sum(_r_precision_at(c, 10) for c in cases) / n,
        "mrr": _rank_metrics(cases)["mrr"],
    }


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def run_skillspan(
    catalog_name: str, limit: int | None, concurrency: int, context: dict[str, Any], ci_slice: bool = False
) -> tuple[list[DevCase], dict[str, float]]:
    # deferred: the API brings LangGraph and the graph (3 s); reports and calibration import this module without it
    from jdgraph.api import BatchItem, classify_many

    rows = [json.loads(line) for line in data_path("skillspan-dev").read_text(encoding="utf-8").splitlines() if line]
    rows = _take(rows, "skillspan-dev", limit, ci_slice)
    items = [BatchItem(r["id"], r["text"]) for r in rows]
    counts: dict[str, float] = defaultdict(float)
    cases = []
    outcomes = classify_many(items, concurrency=concurrency, **{**context, "catalog": catalog_name, "persist": False})
    for row, outcome in zip(rows, outcomes, strict=True):
        case = DevCase(id=row["id"], expected=[f"{s['type']}:{s['text']}" for s in row["spans"]])
        if outcome.result is None:
            case.error = outcome.error.message if outcome.error else "failed"
            cases.append(case)
            continue
        result = outcome.result
        text = row["text"]
        # Evidence offsets refer to the text after parse's normalisation; a span is located in the posting by its
        # text where the offsets moved (HTML, whitespace), else dropped from precision.
        evidence: list[tuple[int, int, bool]] = []
        for skill in result.skills:
            for ev in skill.evidence:
                if ev.start is None or ev.end is None or ev.start < 0:
                    continue
                span = (ev.start, ev.end)
                if text[ev.start : ev.end].lower() != skill.name.lower():
                    found = text.lower().find(skill.name.lower())
                    if found < 0:
                        continue
                    span = (found, found + len(skill.name))
                evidence.append((*span, skill.tag == "new"))
        gold = [(s["start"], s["end"], s["type"]) for s in row["spans"]]
        source = row["source"]
        mine: dict[str, float] = defaultdict(float)  # this posting's counts: compare resamples postings with them
        for start, end, kind in gold:
            mine[f"{source}:{kind}:gold"] += 1
            if any(_overlaps((start, end), (a, b)) for a, b, _ in evidence):
                mine[f"{source}:{kind}:found"] += 1
        proposals = []
        for a, b, new in evidence:
            hit = any(_overlaps((a, b), (s, e)) for s, e, _ in gold)
            mine[f"{source}:evidence"] += 1
            mine[f"{source}:evidence_hit"] += hit
            if new:
                mine["proposals"] += 1
                mine["proposal_hits"] += hit
                proposals.append({"text": text[a:b], "overlaps_gold": hit})
        for key, value in mine.items():
            counts[key] += value
        case.detail = {"source": source, "proposals": proposals, "counts": dict(mine)}
        case.ranked = [f"{text[a:b]}" for a, b, _ in evidence]
        cases.append(case)

    def ratio(num: str, den: str) -> float:
        return counts[num] / counts[den] if counts[den] else 0.0

    metrics = {}
    for source in ("tech", "house"):
        for kind in ("skill", "knowledge"):
            metrics[f"{source}_{kind}_recall"] = ratio(f"{source}:{kind}:found", f"{source}:{kind}:gold")
        metrics[f"{source}_evidence_precision"] = ratio(f"{source}:evidence_hit", f"{source}:evidence")
    metrics["new_skill_proposal_precision"] = ratio("proposal_hits", "proposals")
    metrics["proposals"] = counts["proposals"]
    return cases, metrics


def run_dev_suite(
    suite: str,
    *,
    catalog: str = "esco",
    limit: int | None = None,
    concurrency: int = 2,
    context: dict[str, Any] | None = None,
    ci_slice: bool = False,
) -> DevRun:
    """Run one dev suite (its fixed CI slice with ``ci_slice``); ``context`` overrides
    :class:`jdgraph.context.Context` fields."""
    from jdgraph.catalog.registry import get_catalog  # deferred: only running a suite opens a catalog

    if suite not in DEV_SUITES:
        raise InputError(f"unknown dev suite {suite!r}; one of {sorted(DEV_SUITES)}")
    sources = get_catalog(catalog).sources()
    if "esco" not in sources:
        raise InputError(
            f"{suite} scores against ESCO; catalog {catalog!r} has {sorted(sources) or 'no import'} "
            "(jdgraph catalog import esco ../shared/data/esco-v1.1.1)"
        )
    overrides = context or {}
    t0 = time.perf_counter()
    runners: dict[str, Callable[[], tuple[list[DevCase], dict[str, float]]]] = {
        "hahu-dev": lambda: run_hahu(catalog, limit, concurrency, overrides, ci_slice),
        "titles-dev": lambda: run_titles(catalog, limit, overrides, ci_slice),
        "tech-dev": lambda: run_sentences("tech-dev", catalog, limit, ci_slice),
        "house-dev": lambda: run_sentences("house-dev", catalog, limit, ci_slice),
        "skillspan-dev": lambda: run_skillspan(catalog, limit, concurrency, overrides, ci_slice),
    }
    cases, metrics = runners[suite]()
    return DevRun(
        suite=suite,
        catalog=catalog,
        catalog_sources=sources,
        data=str(data_path(suite)),
        data_source=SOURCES[suite][1],
        selection="ci slice" if ci_slice else (f"first {limit}" if limit else "all"),
        cases=len(cases),
        metrics={k: round(v, 4) for k, v in metrics.items()},
        wall_s=round(time.perf_counter() - t0, 1),
        results=cases,
    )


def dev_suite_available(catalog: str = "esco") -> bool:
    """True once ``catalog`` holds an ESCO import (``jdgraph catalog import esco PATH``)."""
    from jdgraph.catalog.registry import get_catalog  # deferred: psycopg and langchain_core take 2 s to import

    try:
        return "esco" in get_catalog(catalog).sources()
    except CatalogError:
        return False
