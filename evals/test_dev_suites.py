"""Suites on the real labelled data in ``../shared/data/dev`` against the ESCO catalog (``deepeval test run evals/``).

Skipped until ``jdgraph catalog import esco ../shared/data/esco-v1.1.1`` has been run. Each suite must stay above a
floor: the simple baseline the accuracy issue names where jdgraph already beats it, else the level first measured
(2026-11-26) less a small tolerance, so a change that hurts real ads fails here even when the goldens still pass.
The issue's targets are higher; they are reported, not gated, until they are reached.
"""

from __future__ import annotations

import pytest

from jdgraph.evals.cli import dev_suite_available
from jdgraph.evals.dev import DEV_SUITES, run_dev_suite

FLOORS = {
    "hahu-dev": {"top1": 0.331, "top5": 0.538},  # char-TF-IDF title→label baseline (measured 0.400 / 0.646)
    "titles-dev": {"top1": 0.256, "mrr": 0.355},  # MiniLM baseline (measured 0.274 / 0.362)
    "tech-dev": {"rp5": 49.0},  # measured 51.2; the MiniLM sentence→label baseline is 53.0
    "house-dev": {"rp5": 40.0},  # measured 42.3; the MiniLM baseline is 48.1
    "skillspan-dev": {"tech_knowledge_recall": 0.323, "house_skill_recall": 0.232},  # ESCO-label dictionary
}


@pytest.mark.parametrize("suite", sorted(DEV_SUITES))
def test_dev_suite(suite: str) -> None:
    if not dev_suite_available("esco"):
        pytest.skip(f"{suite}: {DEV_SUITES[suite]}; import ESCO first (jdgraph catalog import esco PATH)")
    run = run_dev_suite(suite, catalog="esco")
    below = {k: (run.metrics[k], floor) for k, floor in FLOORS[suite].items() if run.metrics[k] < floor}
    assert not below, f"{suite} below its floor (value, floor): {below}"
