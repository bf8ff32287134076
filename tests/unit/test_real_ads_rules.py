"""The rules added for real job ads, on hand-made inputs: IDF-weighted skill overlap, the calibration fit, the
rule adjudicator, how taxonomy aliases are matched, technology names listed with known skills, the CI slice."""

from __future__ import annotations

import math
import random

import pytest

from jdgraph.evals.calibration import CalibrationPoint, fit_confidence
from jdgraph.evals.dev import DevCase, case_correct, expected_calibration_error, fixed_slice, reliability_bins
from jdgraph.graph.extract import Mention, _listed_together, _not_a_term, _term_mentions
from jdgraph.graph.parse import lexical_match_case
from jdgraph.graph.text import Sentence
from jdgraph.matching.adjudication import adjudicate_by_rules
from jdgraph.matching.roles import RoleSignal, ScoringParams, confidence_from, skill_idf, skill_overlap


def test_idf_makes_a_skill_every_role_lists_worth_little() -> None:
    sets = {1: {"communication": 1.0, "rust": 1.0}, 2: {"communication": 1.0}, 3: {"communication": 1.0}}
    idf = skill_idf(sets)
    assert idf["rust"] > idf["communication"] == 0.0  # every role lists it: it tells roles apart not at all
    plain, _ = skill_overlap(["communication", "rust"], sets[2])
    weighted, matched = skill_overlap(["communication", "rust"], sets[2], idf)
    assert plain == 0.5 and matched == ["communication"]
    assert weighted == 0.0
    assert skill_overlap(["rust"], sets[1], idf)[0] == 1.0
    assert skill_overlap([], sets[1], idf) == (0.0, [])


def test_reliability_bins_and_ece_agree() -> None:
    conf = [0.15, 0.15, 0.85, 0.85, 0.85, 0.85]
    hits = [False, True, True, True, True, False]
    bins = reliability_bins(conf, hits)
    assert [(b.cases, b.accuracy) for b in bins] == [(2, 0.5), (4, 0.75)]
    expected = (2 / 6) * abs(0.15 - 0.5) + (4 / 6) * abs(0.85 - 0.75)
    assert expected_calibration_error(conf, hits) == pytest.approx(expected)


def test_calibration_fit_recovers_a_known_confidence_curve() -> None:
    # Ads whose chance of being right is exactly the curve at centre 0.5, slope 10, full margin 0.1.
    truth = ScoringParams(confidence_center=0.5, confidence_slope=10.0, confidence_full_margin=0.1)
    rng = random.Random(7)
    points = []
    for _ in range(2000):
        top, margin = rng.uniform(0.2, 0.9), rng.uniform(0.0, 0.2)
        p = confidence_from(top, margin, truth)
        points.append(CalibrationPoint(top=top, margin=margin, factor=1.0, correct=rng.random() < p))
    miscalibrated = ScoringParams(confidence_center=0.3, confidence_slope=20.0, confidence_full_margin=0.02)
    fit = fit_confidence(points, miscalibrated)
    assert fit.ece_before > 0.15
    assert fit.ece_after < 0.04 and fit.ece_out_of_fold < 0.05
    assert abs(fit.center - 0.5) <= 0.05 and abs(fit.slope - 10) <= 4


def test_calibration_needs_enough_cases() -> None:
    with pytest.raises(ValueError, match="at least"):
        fit_confidence([CalibrationPoint(0.5, 0.1, 1.0, True)] * 3, ScoringParams())


def _signal(slug: str, score: float, **kw: float) -> RoleSignal:
    return RoleSignal(slug=slug, display_name=slug, score=score, **kw)


def test_rule_adjudication_keeps_the_fused_leader_on_a_close_call() -> None:
    leader = _signal("a", 0.61, kra_similarity=0.2, skill_overlap=0.1)
    runner = _signal("b", 0.60, kra_similarity=0.6, skill_overlap=0.5)
    chosen, reason = adjudicate_by_rules([leader, runner], {"kind": "close_call", "roles": ["a", "b"]})
    assert chosen.slug == "a" and "fused leader" in reason


def test_rule_adjudication_of_a_shared_title_reads_the_description() -> None:
    leader = _signal("a", 0.70, kra_similarity=0.2, centroid_similarity=0.3)
    other = _signal("b", 0.69, kra_similarity=0.5, centroid_similarity=0.5, skill_overlap=0.2)
    chosen, reason = adjudicate_by_rules([leader, other], {"kind": "shared_title", "roles": ["a", "b"]})
    assert chosen.slug == "b" and "profile fit" in reason


def _row(alias: str, source: str = "esco", match_case: bool = False, alias_type: str = "SYNONYM") -> dict[str, object]:
    return {"alias": alias, "alias_source": source, "match_case": match_case, "alias_type": alias_type}


def test_taxonomy_acronyms_match_by_case_and_curated_aliases_as_stored() -> None:
    assert lexical_match_case(_row("IT")) is True  # "it" the pronoun is not computer technology
    assert lexical_match_case(_row("project management")) is False
    assert lexical_match_case(_row("SQL", source="starter")) is False  # the starter says it is case-free
    assert lexical_match_case(_row("Go", source="starter", match_case=True)) is True


def _sentence(text: str) -> Sentence:
    return Sentence(text, 0, len(text), None, True)


def test_a_technology_name_listed_with_a_known_skill_is_a_candidate() -> None:
    text = "Experience with Jenkins, Travis and/or CircleCI and AWS; product management in B2B SaaS"
    s = _sentence(text)
    known = [Mention("Jenkins", 16, 23, s, "alias"), Mention("product management", 56, 74, s, "alias")]
    found = [m.name for m in _term_mentions(text, [s], known, set())]
    assert found == ["CircleCI", "AWS"]  # not SaaS: "in B2B SaaS" qualifies, it is no list item
    assert [m.name for m in _term_mentions(text, [s], known, {"circleci"})] == ["AWS"]  # a role-title word


def test_not_terms_and_list_gaps() -> None:
    assert _not_a_term("CV", False) and _not_a_term("TO", False) and _not_a_term("EUR", False)
    assert _not_a_term("andEvolution", False) and _not_a_term("SENIOR", True)
    assert not _not_a_term("GCP", False) and not _not_a_term("HIPAA", False)
    text = "Python, Docker and Kubernetes with our team"
    assert _listed_together(text, (0, 6), (8, 14)) and _listed_together(text, (0, 6), (19, 29))
    assert not _listed_together(text, (0, 6), (35, 43))


def test_ci_slice_is_fixed_and_evenly_spread() -> None:
    rows = list(range(130))
    picked = fixed_slice(rows, 30)
    assert len(picked) == 30 and picked == fixed_slice(rows, 30)
    assert picked[0] == 0 and picked[-1] >= 120
    assert fixed_slice(rows, None) == rows and fixed_slice(rows[:5], 30) == rows[:5]


def test_a_case_is_correct_only_on_its_first_answer() -> None:
    assert case_correct(DevCase(id="a", expected=["x"], ranked=["x", "y"]))
    assert not case_correct(DevCase(id="b", expected=["x"], ranked=["y", "x"]))
    assert not case_correct(DevCase(id="c", expected=["x"], ranked=[]))
    assert math.isclose(confidence_from(0.46, 1.0, ScoringParams(confidence_center=0.46)), 0.5)


def test_a_list_gap_that_does_not_match_fails_fast() -> None:
    """A real ad hung a batch for good: the list-gap pattern split capitalised runs into names in exponentially many
    ways before failing. The alarm turns a hang back into a failure; the check is that it ends at all."""
    import signal

    from jdgraph.graph.extract import _listed_together

    def hung(*_: object) -> None:
        raise TimeoutError("the list-gap pattern backtracked catastrophically")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        text = "Rust " + "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ" + ", xyz Docker"
        assert not _listed_together(text, (0, 4), (len(text) - 6, len(text)))
        assert _listed_together("Jenkins Travis and/or CircleCI", (0, 7), (22, 30))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
