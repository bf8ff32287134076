"""The evaluation metrics and the bootstrap, on hand-computed cases and hypothesis properties."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jdgraph.errors import GoldenError
from jdgraph.evals.goldens import Expected, load_suite
from jdgraph.evals.metrics import METRICS, CaseOutput, CaseScore, RoleTop1Metric, golden_test_case, prf, score_case
from jdgraph.evals.runner import paired_bootstrap

slugs = st.sets(st.sampled_from([f"s{i}" for i in range(12)]), max_size=8)


@given(slugs, slugs)
def test_f1_is_symmetric_and_bounded(a: set[str], b: set[str]) -> None:
    p, r, f1 = prf(a, b)
    p2, r2, f1b = prf(b, a)
    assert (p, r) == (r2, p2) and math.isclose(f1, f1b)
    assert 0.0 <= p <= 1.0 and 0.0 <= r <= 1.0 and 0.0 <= f1 <= 1.0
    assert f1 <= max(p, r) + 1e-12 and (f1 >= min(p, r) - 1e-12 or f1 == 0.0)


@given(slugs)
def test_perfect_prediction_scores_one(a: set[str]) -> None:
    assert prf(a, a) == (1.0, 1.0, 1.0)


def test_hand_computed_precision_recall_f1() -> None:
    assert prf({"a", "b", "c"}, {"a", "b", "d", "e"}) == pytest.approx((2 / 3, 2 / 4, 4 / 7))
    assert prf(set(), set()) == (1.0, 1.0, 1.0)  # nothing expected, nothing said: perfect
    assert prf(set(), {"a"}) == (0.0, 0.0, 0.0)
    assert prf({"a"}, set()) == (0.0, 0.0, 0.0)


def _expected(**kw: object) -> Expected:
    base: dict[str, object] = {"role": "backend-engineer", "skills": [{"slug": "python"}, {"slug": "sql"}]}
    return Expected.model_validate({**base, **kw})


def test_micro_and_macro_aggregate_differently() -> None:
    # case 1: 1 of 1 right; case 2: 1 of 4 expected found, no extras.
    s1 = METRICS["skill_f1"].score_case(
        _expected(skills=[{"slug": "a"}]), CaseOutput(status="completed", skills={"a": True})
    )
    e2 = _expected(skills=[{"slug": x} for x in "bcde"])
    s2 = METRICS["skill_f1"].score_case(e2, CaseOutput(status="completed", skills={"b": True}))
    assert s1.score == 1.0 and s2.score == pytest.approx(2 * 1 * 0.25 / 1.25)
    micro = METRICS["skill_f1"].aggregate([s1, s2])  # tp 2, fp 0, fn 3: p 1, r 0.4
    macro = METRICS["skill_f1_macro"].aggregate([s1, s2])
    assert micro == pytest.approx(2 * 0.4 / 1.4) and macro == pytest.approx((1 + 0.4) / 2)


def test_role_route_parse_and_new_skill_scores() -> None:
    exp = _expected(
        role_alternates=["fullstack-engineer"],
        parse={"experience_min": 3, "countries": ["DE", "PL"], "work_mode": None},
        new_skills=["Zig"],
    )
    got = CaseOutput(
        status="completed",
        chosen_role="fullstack-engineer",
        top_roles=["fullstack-engineer", "backend-engineer"],
        route="adjudicated",
        skills={"python": True, "sql": False},
        new_skills=["zig", "Program Support"],
        parse={"experience_min": 3.0, "experience_max": None, "countries": ["PL", "DE"], "work_mode": "remote"},
    )
    scores = score_case(exp, got)
    assert scores["role_top1"].score == 1.0  # an acceptable alternate
    assert (
        scores["route_accuracy"].score == 0.0 and "expected direct, got adjudicated" in scores["route_accuracy"].reason
    )
    assert scores["parse_accuracy"].score == pytest.approx(2 / 3)  # work_mode labelled null, got remote
    assert scores["primary_skill_f1"].score == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert scores["new_skill_precision"].score == 0.5 and "programsupport" in scores["new_skill_precision"].reason
    rejected = score_case(Expected(role=None, route="rejected"), CaseOutput(status="rejected", route="rejected"))
    assert all(s.score == 1.0 for s in rejected.values())


def test_deepeval_metric_reads_the_case_and_reports() -> None:
    exp = _expected()
    got = CaseOutput(status="completed", chosen_role="data-engineer", top_roles=["data-engineer"])
    metric = RoleTop1Metric()
    assert metric.measure(golden_test_case("c1", "jd text", exp, got)) == 0.0
    assert not metric.is_successful() and "expected backend-engineer" in (metric.reason or "")
    assert metric.__name__ == "role_top1"


def test_bootstrap_of_a_constant_delta_is_exact() -> None:
    a = [[CaseScore(0.0)] for _ in range(20)]
    b = [[CaseScore(1.0)] for _ in range(20)]
    assert paired_bootstrap(a, b, METRICS["role_top1"].aggregate, resamples=200) == (1.0, 1.0, 1.0)


def test_bootstrap_matches_the_normal_approximation_and_is_seeded() -> None:
    # Paired deltas: 30 cases fixed (+1), 10 broken (-1), 60 unchanged. Mean delta 0.2, sd of the mean
    # sqrt(var/n) with var = E[d^2] - 0.04 = 0.4 - 0.04 = 0.36 -> se 0.06, 95% CI about 0.2 -/+ 0.118.
    a = [[CaseScore(0.0)]] * 30 + [[CaseScore(1.0)]] * 10 + [[CaseScore(1.0)]] * 30 + [[CaseScore(0.0)]] * 30
    b = [[CaseScore(1.0)]] * 30 + [[CaseScore(0.0)]] * 10 + [[CaseScore(1.0)]] * 30 + [[CaseScore(0.0)]] * 30
    agg = METRICS["role_top1"].aggregate
    delta, low, high = paired_bootstrap(a, b, agg, resamples=4000, seed=7)
    assert delta == pytest.approx(0.2)
    assert low == pytest.approx(0.2 - 1.96 * 0.06, abs=0.02) and high == pytest.approx(0.2 + 1.96 * 0.06, abs=0.02)
    assert paired_bootstrap(a, b, agg, resamples=4000, seed=7) == (delta, low, high)  # same seed, same answer


def test_a_bad_golden_names_file_and_line(tmp_path: Path) -> None:
    good = {"id": "ok-1", "text": "x", "expected": {"role": "chef"}}
    path = tmp_path / "s.v1.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "bad", "expected": {"role": None}}) + "\n")
    with pytest.raises(GoldenError, match=r"s\.v1\.jsonl:2: .*role must be null exactly when"):
        load_suite(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(GoldenError, match=r":2: duplicate id 'ok-1' \(first on line 1\)"):
        load_suite(path)
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(GoldenError, match=r":2: not JSON"):
        load_suite(path)
    path.write_text(json.dumps({**good, "expected": {"role": "chef", "skils": []}}) + "\n")
    with pytest.raises(GoldenError, match=r":1: expected.skils: Extra inputs"):
        load_suite(path)
