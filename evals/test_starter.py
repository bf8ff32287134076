"""deepeval view of the starter suite: one test per golden, the jdgraph metrics as deepeval metrics.

Run: ``DEEPEVAL_TELEMETRY_OPT_OUT=1 DEEPEVAL_DISABLE_DOTENV=1 deepeval test run evals/`` (offline: the metrics are
deterministic and no judge model is called). Uses the configured catalog (DATABASE_URL or the embedded default)
and the configured models (``JDGRAPH_MODEL``, default ``none``: the deterministic implementations). The aggregate
gate with baselines is ``jdgraph eval run starter --baseline evals/baselines/starter.deterministic.json``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "1")
os.environ.setdefault("DEEPEVAL_DISABLE_DOTENV", "1")

from deepeval import assert_test

from jdgraph.evals.goldens import GoldenCase, load_suite, resolve_suite
from jdgraph.evals.metrics import DEEPEVAL_METRICS, CaseOutput, golden_test_case

SUITE = load_suite(resolve_suite(os.environ.get("JDGRAPH_EVAL_SUITE", "starter"), Path(__file__).parents[1]))
# JDGRAPH_EVAL_CASES=id1,id2 runs a subset (a quick check, or one case while iterating on a prompt).
if os.environ.get("JDGRAPH_EVAL_CASES"):
    wanted = set(os.environ["JDGRAPH_EVAL_CASES"].split(","))
    SUITE.cases = [c for c in SUITE.cases if c.id in wanted]


@pytest.mark.parametrize("case", SUITE.cases, ids=[c.id for c in SUITE.cases])
def test_golden(case: GoldenCase) -> None:
    import jdgraph

    result = jdgraph.classify(case.text, title=case.title, company=case.company, persist=False)
    output = CaseOutput.from_result(result, sum(result.node_timings_ms.values()))
    assert_test(golden_test_case(case.id, case.text, case.expected, output), [m() for m in DEEPEVAL_METRICS])
