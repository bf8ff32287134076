"""The dev suites' metrics on hand-made cases: top-k/MRR, R-precision@k and the expected calibration error."""

from __future__ import annotations

import pytest

from jdgraph.evals.dev import DevCase, _r_precision_at, _rank_metrics, expected_calibration_error


def test_rank_metrics_count_the_first_correct_rank() -> None:
    cases = [
        DevCase(id="a", expected=["x"], ranked=["x", "y"]),  # rank 1
        DevCase(id="b", expected=["x"], ranked=["y", "z", "x"]),  # rank 3
        DevCase(id="c", expected=["x"], ranked=["y"]),  # missed
        DevCase(id="d", expected=["x"], ranked=[]),  # failed case: counts as missed
    ]
    m = _rank_metrics(cases)
    assert m["top1"] == 0.25 and m["top5"] == 0.5
    assert m["mrr"] == pytest.approx((1 + 1 / 3) / 4)


def test_r_precision_divides_by_the_reachable_number_of_relevant_items() -> None:
    one = DevCase(id="a", expected=["s1"], ranked=["s2", "s1", "s3"])
    three = DevCase(id="b", expected=["s1", "s2", "s9"], ranked=["s1", "x", "s2", "y", "z", "s9"])
    assert _r_precision_at(one, 5) == 1.0  # one relevant skill, found in the top 5
    assert _r_precision_at(three, 5) == pytest.approx(2 / 3)
    assert _r_precision_at(three, 10) == 1.0


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident() -> None:
    assert expected_calibration_error([0.75] * 4, [True, True, True, False]) == pytest.approx(0.0)
    assert expected_calibration_error([0.95] * 4, [False] * 4) == pytest.approx(0.95)
    assert expected_calibration_error([], []) == 0.0
