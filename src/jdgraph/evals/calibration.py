"""Fitting the role confidence to labelled ads, and measuring how well it is calibrated.

The chosen role's confidence is :func:`jdgraph.matching.roles.confidence_from` of the fused score and the margin over
the runner-up, times ``adjudicated_confidence_factor`` when the choice was contested. Its three constants (centre,
slope, full margin) are fitted here by minimising the log loss of "the chosen role is the labelled one" over a
grid; the expected calibration error is reported in-sample and out of fold (k-fold cross-validation), the honest
estimate for ads the fit has not seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from jdgraph.evals.dev import DevCase, case_correct, expected_calibration_error
from jdgraph.matching.roles import ScoringParams, confidence_curve, confidence_from

CENTERS = np.round(np.arange(0.20, 0.70, 0.01), 2)
SLOPES = np.arange(2.0, 31.0, 1.0)
FULL_MARGINS = np.round(np.arange(0.02, 0.22, 0.02), 2)


@dataclass(frozen=True)
class CalibrationPoint:
    top: float
    margin: float
    factor: float
    """The confidence factor the route applied (``adjudicated_confidence_factor`` for a contested choice, else 1)."""
    correct: bool


@dataclass(frozen=True)
class CalibrationFit:
    center: float
    slope: float
    full_margin: float
    log_loss: float
    ece_before: float
    ece_after: float
    ece_out_of_fold: float
    cases: int


def points_from_cases(cases: Sequence[DevCase], adjudicated_factor: float) -> list[CalibrationPoint]:
    return [
        CalibrationPoint(
            top=float(c.detail["top_score"]),
            margin=float(c.detail["margin"]),
            factor=adjudicated_factor if c.detail.get("route") == "adjudicated" else 1.0,
            correct=case_correct(c),
        )
        for c in cases
        if c.confidence is not None and "top_score" in c.detail and c.detail.get("route") != "rejected"
    ]


def _grid_confidences(points: Sequence[CalibrationPoint]) -> np.ndarray:
    """Confidence of every point under every grid setting: shape (centers, slopes, margins, points)."""
    top = np.array([p.top for p in points])
    margin = np.array([p.margin for p in points])
    factor = np.array([p.factor for p in points])
    grid = confidence_curve(
        top, margin, CENTERS[:, None, None, None], SLOPES[None, :, None, None], FULL_MARGINS[None, None, :, None]
    )
    return np.asarray(grid) * factor


def _best(points: Sequence[CalibrationPoint]) -> tuple[float, float, float, float]:
    conf = np.clip(_grid_confidences(points), 1e-4, 1 - 1e-4)
    hit = np.array([p.correct for p in points], dtype=float)
    loss = -(hit * np.log(conf) + (1 - hit) * np.log(1 - conf)).mean(axis=-1)
    i, j, k = np.unravel_index(int(np.argmin(loss)), loss.shape)
    return float(CENTERS[i]), float(SLOPES[j]), float(FULL_MARGINS[k]), float(loss[i, j, k])


def _confidences(points: Sequence[CalibrationPoint], params: ScoringParams) -> list[float]:
    return [confidence_from(p.top, p.margin, params) * p.factor for p in points]


def fit_confidence(points: Sequence[CalibrationPoint], current: ScoringParams, *, folds: int = 5) -> CalibrationFit:
    if len(points) < 2 * folds:
        raise ValueError(f"calibration needs at least {2 * folds} labelled cases, got {len(points)}")
    hits = [p.correct for p in points]
    center, slope, full_margin, loss = _best(points)
    fitted = replace(current, confidence_center=center, confidence_slope=slope, confidence_full_margin=full_margin)
    # Out of fold: every point's confidence comes from a fit on the other folds (a fixed interleaved split).
    oof: list[float] = [0.0] * len(points)
    for fold in range(folds):
        train = [p for i, p in enumerate(points) if i % folds != fold]
        c, s, m, _ = _best(train)
        params = replace(current, confidence_center=c, confidence_slope=s, confidence_full_margin=m)
        for i in range(fold, len(points), folds):
            oof[i] = _confidences([points[i]], params)[0]
    return CalibrationFit(
        center=center,
        slope=slope,
        full_margin=full_margin,
        log_loss=round(loss, 4),
        ece_before=round(expected_calibration_error(_confidences(points, current), hits), 4),
        ece_after=round(expected_calibration_error(_confidences(points, fitted), hits), 4),
        ece_out_of_fold=round(expected_calibration_error(oof, hits), 4),
        cases=len(points),
    )


__all__ = ["CalibrationFit", "CalibrationPoint", "fit_confidence", "points_from_cases"]
