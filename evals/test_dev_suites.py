"""Suites on the real labelled data in ``../shared/data/dev``: skipped until the ESCO/O*NET import lands, because
they score against ESCO occupation and skill codes that the starter catalog does not hold."""

from __future__ import annotations

import pytest

from jdgraph.evals.cli import DEV_SUITES, dev_suite_available


@pytest.mark.parametrize("suite", sorted(DEV_SUITES))
def test_dev_suite(suite: str) -> None:
    if not dev_suite_available():
        pytest.skip(f"{suite}: {DEV_SUITES[suite]}; needs the ESCO import (not available yet)")
    pytest.fail(f"{suite}: ESCO occupations are loaded but the dev-suite runner is not written yet")
