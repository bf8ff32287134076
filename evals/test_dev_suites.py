"""Suites on the real labelled data in ``../shared/data/dev`` against the ESCO catalog (``deepeval test run evals/``).

Skipped until ``jdgraph catalog import esco ../shared/data/esco-v1.1.1`` has been run. Each suite must stay above a
floor: the simple baseline the accuracy issue names where jdgraph already beats it, else the level first measured
(2026-11-26) less a small tolerance, so a change that hurts real ads fails here even when the goldens still pass.
The issue's targets are higher; they are reported, not gated, until they are reached.
"""

from __future__ import annotations

import pytest

from jdgraph.evals.dev import DEV_SUITES, dev_suite_available, run_dev_suite

FLOORS = {  # measured 2026-12-07 with the shipped tuned encoder, the default (full suites; MiniLM's in brackets)
    "hahu-dev": {
        "top1": 0.48,
        "top5": 0.73,
    },  # measured 0.500 / 0.754 (MiniLM 0.469 / 0.738)
    "titles-dev": {"top1": 0.455, "mrr": 0.55},  # measured 0.464 / 0.558 (MiniLM 0.454 / 0.544; before the vote 0.280)
    "tech-dev": {"rp5": 67.0},  # measured 69.6 (MiniLM with the rerank 62.4; the MiniLM baseline 53.0)
    "house-dev": {"rp5": 54.0},  # measured 56.4 (MiniLM with the rerank 51.9; the MiniLM baseline 48.1)
    "skillspan-dev": {"tech_knowledge_recall": 0.77, "house_skill_recall": 0.62},  # measured 0.789 / 0.640
}
CEILINGS = {"hahu-dev": {"ece": 0.07}}  # measured 0.060 (the curve fitted to MiniLM scores; 0.069 with MiniLM)


@pytest.mark.parametrize("suite", sorted(DEV_SUITES))
def test_dev_suite(suite: str) -> None:
    if not dev_suite_available("esco"):
        pytest.skip(f"{suite}: {DEV_SUITES[suite]}; import ESCO first (jdgraph catalog import esco PATH)")
    run = run_dev_suite(suite, catalog="esco")
    below = {k: (run.metrics[k], floor) for k, floor in FLOORS[suite].items() if run.metrics[k] < floor}
    above = {k: (run.metrics[k], top) for k, top in CEILINGS.get(suite, {}).items() if run.metrics[k] > top}
    assert not below, f"{suite} below its floor (value, floor): {below}"
    assert not above, f"{suite} above its ceiling (value, ceiling): {above}"
