"""Suites on the real labelled data in ``../shared/data/dev`` against the ESCO catalog (``deepeval test run evals/``).

Skipped until ``jdgraph catalog import esco ../shared/data/esco-v1.1.1`` has been run. Each suite must stay above a
floor: the simple baseline the accuracy issue names where jdgraph already beats it, else the level first measured
(2026-11-26) less a small tolerance, so a change that hurts real ads fails here even when the goldens still pass.
The issue's targets are higher; they are reported, not gated, until they are reached.
"""

from __future__ import annotations

import pytest

from jdgraph.evals.dev import DEV_SUITES, dev_suite_available, run_dev_suite

FLOORS = {
    "hahu-dev": {"top1": 0.438, "top5": 0.69},  # MiniLM title+description top-1 (measured 0.446 / 0.715)
    "titles-dev": {"top1": 0.44, "mrr": 0.53},  # measured 0.4535 / 0.544 with the coded titles vote (before 0.280)
    "tech-dev": {"rp5": 60.0},  # measured 62.4 with the token-attention rerank (57.2 before; MiniLM baseline 53.0)
    "house-dev": {"rp5": 49.0},  # measured 51.9 with the rerank (45.5 before; the MiniLM baseline 48.1)
    "skillspan-dev": {"tech_knowledge_recall": 0.76, "house_skill_recall": 0.60},  # measured 0.804 / 0.634, tagger
}
CEILINGS = {"hahu-dev": {"ece": 0.07}}  # measured 0.050 with the fitted confidence


@pytest.mark.parametrize("suite", sorted(DEV_SUITES))
def test_dev_suite(suite: str) -> None:
    if not dev_suite_available("esco"):
        pytest.skip(f"{suite}: {DEV_SUITES[suite]}; import ESCO first (jdgraph catalog import esco PATH)")
    run = run_dev_suite(suite, catalog="esco")
    below = {k: (run.metrics[k], floor) for k, floor in FLOORS[suite].items() if run.metrics[k] < floor}
    above = {k: (run.metrics[k], top) for k, top in CEILINGS.get(suite, {}).items() if run.metrics[k] > top}
    assert not below, f"{suite} below its floor (value, floor): {below}"
    assert not above, f"{suite} above its ceiling (value, ceiling): {above}"
