"""``jdgraph eval compare`` for two runs of one dev suite: each metric's delta B − A with a paired-bootstrap 95% CI
(the same resampled cases for both runs), and the cases whose top answer flipped between right and wrong.

Each suite's metrics are recomputed from the per-case results, so a delta is exactly what the two reports show:
top-1, top-5 and MRR (hahu-dev, titles-dev; ECE too for hahu-dev), RP@5, RP@10 and MRR (tech-dev, house-dev), and
for skillspan-dev the span recalls and evidence precision as ratios of sums over the resampled postings (from the
per-posting counts each run records; a run made before they were recorded is compared on its totals, without a CI).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from jdgraph.errors import InputError
from jdgraph.evals.dev import (
    DEV_SUITES,
    DevCase,
    DevRun,
    _r_precision_at,
    case_correct,
    case_rank,
    expected_calibration_error,
)
from jdgraph.evals.runner import Comparison, MetricDelta, results_file

Aggregate = Callable[[np.ndarray], float]
"""A metric over a resample of the cases: their positions in the run's case list (repeats allowed)."""
Metric = Callable[[Sequence[DevCase]], Aggregate]
"""Builds a metric's :data:`Aggregate` from one run's cases: per-case values are computed once, each resample
only indexes them (2,000 resamples of 2,000 titles would otherwise rank every case four million times)."""


def _mean(value: Callable[[DevCase], float]) -> Metric:
    def metric(cases: Sequence[DevCase]) -> Aggregate:
        values = np.asarray([value(c) for c in cases], dtype=float)
        return lambda idx: float(values[idx].mean()) if len(idx) else 0.0

    return metric


def _top(k: int) -> Metric:
    return _mean(lambda c: 1.0 if (r := case_rank(c)) is not None and r <= k else 0.0)


_mrr = _mean(lambda c: 1 / r if (r := case_rank(c)) else 0.0)


def _ece(cases: Sequence[DevCase]) -> Aggregate:
    scored = np.asarray([c.confidence is not None for c in cases])
    conf = np.asarray([c.confidence or 0.0 for c in cases], dtype=float)
    right = np.asarray([case_correct(c) for c in cases])

    def aggregate(idx: np.ndarray) -> float:
        keep = idx[scored[idx]]
        return expected_calibration_error(conf[keep].tolist(), right[keep].tolist())

    return aggregate


def _ratio(num: str, den: str) -> Metric:
    def metric(cases: Sequence[DevCase]) -> Aggregate:
        counts = [c.detail.get("counts", {}) for c in cases]
        n = np.asarray([x.get(num, 0.0) for x in counts], dtype=float)
        d = np.asarray([x.get(den, 0.0) for x in counts], dtype=float)
        return lambda idx: float(n[idx].sum() / d[idx].sum()) if d[idx].sum() else 0.0

    return metric


def suite_metrics(suite: str) -> dict[str, Metric]:
    """The metrics the suite's report shows, each built from a list of its cases."""
    if suite in ("hahu-dev", "titles-dev"):
        ranked: dict[str, Metric] = {"top1": _top(1), "top5": _top(5), "mrr": _mrr}
        return {**ranked, "ece": _ece} if suite == "hahu-dev" else ranked
    if suite in ("tech-dev", "house-dev"):
        return {
            "rp5": _mean(lambda c: 100 * _r_precision_at(c, 5)),
            "rp10": _mean(lambda c: 100 * _r_precision_at(c, 10)),
            "mrr": _mrr,
        }
    out: dict[str, Metric] = {}
    for source in ("tech", "house"):
        for kind in ("skill", "knowledge"):
            out[f"{source}_{kind}_recall"] = _ratio(f"{source}:{kind}:found", f"{source}:{kind}:gold")
        out[f"{source}_evidence_precision"] = _ratio(f"{source}:evidence_hit", f"{source}:evidence")
    out["new_skill_proposal_precision"] = _ratio("proposal_hits", "proposals")
    return out


def load_dev_run(path: Path | str) -> DevRun:
    path = results_file(path)
    if not path.is_file():
        raise InputError(f"no results at {path}")
    return DevRun.model_validate_json(path.read_text(encoding="utf-8"))


def is_dev_result(path: Path | str) -> bool:
    """Is this a dev suite's run (rather than a golden suite's)?"""
    try:
        head = results_file(path).read_text(encoding="utf-8")[:4000]
    except OSError:
        return False
    return any(f'"suite": "{s}"' in head or f'"suite":"{s}"' in head for s in DEV_SUITES)


def compare_dev_runs(a: DevRun, b: DevRun, *, resamples: int = 2000, seed: int = 0) -> Comparison:
    if a.suite != b.suite:
        raise InputError(f"runs are of different suites ({a.suite} vs {b.suite})")
    if a.data != b.data and Path(a.data).name != Path(b.data).name:
        raise InputError(f"runs read different data ({a.data} vs {b.data})")
    b_by_id = {c.id: c for c in b.results}
    pairs = [(c, b_by_id[c.id]) for c in a.results if c.id in b_by_id]
    if not pairs:
        raise InputError("the two runs share no case")
    cases_a, cases_b = [p[0] for p in pairs], [p[1] for p in pairs]
    counted = all("counts" in c.detail for c in cases_a + cases_b)
    rng = np.random.default_rng(seed)
    samples = [rng.integers(0, len(pairs), size=len(pairs)) for _ in range(resamples)]
    metrics: dict[str, MetricDelta] = {}
    everything = np.arange(len(pairs))
    for name, metric in suite_metrics(a.suite).items():
        if a.suite == "skillspan-dev" and not counted:
            va, vb = a.metrics.get(name, 0.0), b.metrics.get(name, 0.0)
            metrics[name] = MetricDelta(a=va, b=vb, delta=vb - va, ci_low=float("nan"), ci_high=float("nan"))
            continue
        agg_a, agg_b = metric(cases_a), metric(cases_b)
        va, vb = agg_a(everything), agg_b(everything)
        deltas = [agg_b(idx) - agg_a(idx) for idx in samples]
        low, high = np.percentile(deltas, [2.5, 97.5])
        metrics[name] = MetricDelta(a=va, b=vb, delta=vb - va, ci_low=float(low), ci_high=float(high))
    flipped = []
    if a.suite != "skillspan-dev":
        for ca, cb in pairs:
            ra, rb = case_rank(ca), case_rank(cb)
            if (ra == 1) != (rb == 1):
                label = ca.detail.get("title") or ca.detail.get("sentence", "")[:80]
                flipped.append({"id": ca.id, "direction": "fixed" if rb == 1 else "broken",
                                "changes": {"case": str(label), "rank": f"{ra} -> {rb}"}})  # fmt: skip
    return Comparison(
        suite=a.suite,
        cases=len(pairs),
        metrics=metrics,
        flipped=flipped,
        cost_usd=(0.0, 0.0),
        latency_ms_mean=(1000 * a.wall_s / max(1, a.cases), 1000 * b.wall_s / max(1, b.cases)),
        node_ms_mean={},
    )
