"""Fit a whole JD's role fusion and confidence curve on silver ads (training data), never on the dev suites.

``python -m jdgraph.evals.tune_fusion [--catalog escoship] [--limit N] [--skill-weight 0.15]``: builds the silver ads
(:mod:`jdgraph.evals.silver_ads`: held-out training titles over O*NET task statements), runs each through the
graph once with every candidate role's signals kept, then re-fuses those signals offline for every weight setting
of a simplex grid (step 0.05), so one pass ranks them all. The silver ads are split by O*NET occupation into a fit
half and a check half (other jobs); the weights are chosen by MRR on the fit half and reported on both, beside the
shipped weights. The confidence curve is then fitted (:func:`jdgraph.evals.calibration.fit_confidence`) to the
silver ads' chosen roles under the shipped weights.

The skill weight is held (``--skill-weight``) because a silver body lists O*NET's technology examples for the whole
O*NET occupation (often obscure products), not the skills an ad asks for; fitting it would learn that artefact.

What it found (ESCO v1.1.1 with the shipped encoder, 861 silver ads): the fit chose title 0.30, KRA 0.15, centroid
0.40, which raised the check half's top-1 0.491 → 0.526 and MRR 0.600 → 0.641, but on hahu-dev, measured once,
top-1 fell 0.500 → 0.469 (top-5 0.754 → 0.739); the silver-fitted confidence curve, applied to hahu-dev's recorded
cases, took its ECE from 0.057 to 0.084. Neither was
shipped: silver ads are cleaner than real ones (every line a task of the job), so they reward the centroid and
calibrate too confidently. Real labelled ads for training are what the fusion still lacks.

It also measures the new-role gate: each silver ad is scored once as run and once with its job's occupations (its
own and every ESCO occupation mapped to the same O*NET one) left out, a job the catalog lacks. On ESCO the leader's
fused score hardly tells the two apart (AUC 0.62; at ``NEW_ROLE_THRESHOLD`` 0.42, 16% of the ads whose job is there are
proposed as new roles against 21% of those whose job is not): a dense taxonomy always offers a near sibling, so a
score threshold cannot find new occupations, and lowering it only makes proposals rarer.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

STEP = 0.05


@dataclass(frozen=True)
class SilverCase:
    """One silver ad's candidates (title, KRA, skill and centroid signals), which of them is the ad's occupation,
    and what the graph chose with the shipped weights."""

    features: np.ndarray
    gold: np.ndarray
    onet_code: str
    top: float
    margin: float
    route: str
    chosen_correct: bool
    top_without_job: float = 0.0
    """The leader's fused score once the ad's occupation and every ESCO occupation mapped to its O*NET occupation
    are left out: the same ad as a job the catalog lacks."""


def _features(signals: Sequence[Any]) -> np.ndarray:
    """Each candidate's signals as the fused score weighs them (a negative centroid cosine counts as 0)."""
    rows = [[s.title_similarity, s.kra_similarity, s.skill_overlap, max(s.centroid_similarity, 0.0)] for s in signals]
    return np.array(rows, dtype=float)


def new_role_separation(cases: Sequence[SilverCase], thresholds: Sequence[float]) -> dict[str, Any]:
    """How well the leader's fused score tells a job the catalog has (each ad as run) from one it lacks (the same
    ad with its job's occupations left out): the AUC of a low score, and at each threshold the share of either kind
    that ``new_role_threshold`` would route to a new-role proposal."""
    has = np.array([c.top for c in cases])
    lacks = np.array([c.top_without_job for c in cases])
    auc = float((lacks[:, None] < has[None, :]).mean() + 0.5 * (lacks[:, None] == has[None, :]).mean())
    rates = {t: (round(float((has < t).mean()), 3), round(float((lacks < t).mean()), 3)) for t in thresholds}
    return {"auc": round(auc, 3), "proposed (has, lacks)": rates}


def weight_grid(skill_weight: float | None, step: float = STEP) -> list[np.ndarray]:
    """Every (title, KRA, skill, centroid) weighting on the simplex at ``step``, the skill weight held if given."""
    values = np.round(np.arange(0, 1 + 1e-9, step), 2)
    out = []
    for title in values:
        for kra in values:
            for skill in values if skill_weight is None else [skill_weight]:
                centroid = round(1 - title - kra - skill, 2)
                if centroid >= -1e-9:
                    out.append(np.array([title, kra, skill, max(centroid, 0.0)]))
    return out


def rank_metrics(cases: Sequence[SilverCase], weights: np.ndarray) -> dict[str, float]:
    """Top-1, top-5 and MRR@10 of the occupations ranked by ``weights`` · features (ties count against it)."""
    top1 = top5 = mrr = 0.0
    for case in cases:
        if not case.gold.any():
            continue
        scores = case.features @ weights
        rank = 1 + int((scores > scores[case.gold].max()).sum())
        top1 += rank == 1
        top5 += rank <= 5
        mrr += 1 / rank if rank <= 10 else 0.0
    n = len(cases) or 1
    return {"top1": round(top1 / n, 4), "top5": round(top5 / n, 4), "mrr": round(mrr / n, 4), "ads": len(cases)}


def split_by_occupation(cases: Sequence[SilverCase], seed: int) -> tuple[list[SilverCase], list[SilverCase]]:
    """(fit, check): the check half holds other O*NET occupations than the fit half, so it measures other jobs."""
    codes = sorted({c.onet_code for c in cases})
    random.Random(seed).shuffle(codes)
    fit_codes = set(codes[: len(codes) // 2])
    return [c for c in cases if c.onet_code in fit_codes], [c for c in cases if c.onet_code not in fit_codes]


def best_weights(cases: Sequence[SilverCase], grid: Sequence[np.ndarray]) -> np.ndarray:
    """The grid's weights with the best MRR on ``cases`` (then top-1, then the earliest in the grid)."""
    scored = [(rank_metrics(cases, w), i) for i, w in enumerate(grid)]
    _, i = max(scored, key=lambda s: (s[0]["mrr"], s[0]["top1"], -s[1]))
    return grid[i]


@contextmanager
def _every_candidate_kept(kept: list[list[Any]]) -> Iterator[None]:
    """The match node's role_signals, returning its usual top k but keeping every candidate in ``kept``."""
    # deferred: the graph (LangGraph, the models) is loaded only when silver ads are run
    import sys

    from jdgraph.matching.roles import role_signals

    node = sys.modules["jdgraph.graph.nodes.match"]

    def keep_all(catalog: Any, **kwargs: Any) -> list[Any]:
        k = kwargs.pop("k", 10)
        signals = role_signals(catalog, **kwargs, k=1_000_000)
        kept.append(signals)
        return signals[:k]

    node.role_signals = keep_all  # type: ignore[attr-defined]
    try:
        yield
    finally:
        node.role_signals = role_signals  # type: ignore[attr-defined]


def run_silver(catalog_name: str, limit: int | None) -> list[SilverCase]:
    """Every silver ad through the graph (no persistence), one at a time, with every candidate's signals."""
    # deferred: the API brings LangGraph and the graph
    import jdgraph.graph.nodes.match  # noqa: F401  (the module whose role_signals is wrapped)
    from jdgraph.api import classify
    from jdgraph.evals.silver_ads import build_silver_ads, held_out_titles
    from jdgraph.trained.compact_encoder import shipped_encoder_card

    card = shipped_encoder_card()
    ads = build_silver_ads(held_out_titles(float(card.get("holdout", 0.1)), int(card["seed"])))
    ads = ads[:limit] if limit else ads
    cases = []
    kept: list[list[Any]] = []
    with _every_candidate_kept(kept):
        for i, ad in enumerate(ads):
            kept.clear()
            result = classify(ad.description, title=ad.title, catalog=catalog_name, persist=False)
            signals = kept[-1] if kept else []
            if not signals or result.decision.route == "rejected":
                continue
            top = signals[0].score
            left = {*ad.same_job, ad.occupation_uri}
            others = [x.score for x in signals if x.source_id not in left]
            cases.append(
                SilverCase(
                    features=_features(signals),
                    gold=np.array([s.source_id == ad.occupation_uri for s in signals]),
                    onet_code=ad.onet_code,
                    top=top,
                    margin=top - signals[1].score if len(signals) > 1 else top,
                    route=result.decision.route,
                    chosen_correct=result.decision.role_or_nearest.source_id == ad.occupation_uri,
                    top_without_job=others[0] if others else 0.0,
                )
            )
            if (i + 1) % 100 == 0:
                print(f"  {i + 1} of {len(ads)} silver ads", flush=True)
    return cases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jdgraph.evals.tune_fusion")
    parser.add_argument("--catalog", default="escoship")
    parser.add_argument("--limit", type=int, help="only the first N silver ads")
    parser.add_argument("--skill-weight", type=float, default=0.15, help="held skill weight; -1 fits it too")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    # deferred: the context loads langchain_core, which --help must not wait for
    from jdgraph.context import Context
    from jdgraph.evals.calibration import CalibrationPoint, fit_confidence

    ctx = Context.from_env(catalog=args.catalog)
    params = ctx.jd_scoring()
    shipped = np.array([params.title_weight, params.kra_weight, params.skill_weight, params.centroid_weight])
    cases = run_silver(args.catalog, args.limit)
    fit, check = split_by_occupation(cases, args.seed)
    grid = weight_grid(None if args.skill_weight < 0 else args.skill_weight)
    chosen = best_weights(fit, grid)
    print(f"silver ads run: {len(cases)} (fit {len(fit)}, check {len(check)}); weights (title, KRA, skill, centroid)")
    for name, weights in (("shipped", shipped), ("fitted on the fit half", chosen)):
        print(f"  {name} {tuple(float(w) for w in weights)}: fit {rank_metrics(fit, weights)}, "
              f"check {rank_metrics(check, weights)}")  # fmt: skip
    points = [
        CalibrationPoint(
            c.top, c.margin, ctx.adjudicated_confidence_factor if c.route == "adjudicated" else 1.0, c.chosen_correct
        )
        for c in cases
    ]
    curve = fit_confidence(points, params)
    print(f"confidence fitted on the silver ads (shipped weights): {curve}")
    separation = new_role_separation(cases, (0.34, 0.38, ctx.new_role_threshold, 0.46))
    print(
        f"new-role gate (leader's score below NEW_ROLE_THRESHOLD {ctx.new_role_threshold}) on the same ads as jobs "
        f"the catalog has and lacks: {separation}"
    )


if __name__ == "__main__":
    main()
