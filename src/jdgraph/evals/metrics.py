"""Deterministic metrics of a run against a golden case, as plain functions and as deepeval ``BaseMetric``s.

Each metric scores one case (``score`` in [0, 1] plus the counts its aggregate needs and a readable reason) and
aggregates over cases either as a mean of case scores or "micro" from summed counts. The same functions serve
the runner, the bootstrap in ``compare`` and ``deepeval test run``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from deepeval.metrics import BaseMetric
from deepeval.test_case import LLMTestCase
from pydantic import BaseModel, Field

from jdgraph.catalog.normalize import normalize_alias
from jdgraph.evals.goldens import Expected
from jdgraph.graph.schemas import ClassificationResult


class CaseOutput(BaseModel):
    """What a run produced for one case, reduced to what the metrics and the report's diffs look at."""

    status: str
    chosen_role: str | None = None
    top_roles: list[str] = Field(default_factory=list, description="chosen role then alternatives, best first")
    route: str = "direct"
    is_new_role: bool = False
    skills: dict[str, bool] = Field(default_factory=dict, description="canonical slug → primary")
    new_skills: list[str] = Field(default_factory=list)
    parse: dict[str, Any] = Field(default_factory=dict)
    confidence: float = 0.0
    reasoning: str = ""
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    node_ms: dict[str, float] = Field(default_factory=dict)
    llm_calls: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    @property
    def final_route(self) -> str:
        """The route the run ended on: a rejected JD never reached the router."""
        return "rejected" if self.status == "rejected" else self.route

    @classmethod
    def from_result(cls, result: ClassificationResult, latency_ms: float) -> CaseOutput:
        decision = result.decision
        # A new-role result ranks its nearest role first: role_top1 still asks whether the closest role was right.
        top = [r.slug for r in [decision.role_or_nearest, *decision.alternatives] if r.slug]
        modes = [loc.work_mode for loc in result.parsed.job_locations if loc.work_mode]
        exp = result.parsed.experience
        return cls(
            status=result.status,
            chosen_role=decision.chosen_role.slug,
            top_roles=list(dict.fromkeys(top)),
            route=decision.route,
            is_new_role=decision.is_new_role,
            skills={s.canonical_slug: s.is_primary for s in result.skills if s.canonical_slug},
            new_skills=[s.name for s in result.skills if s.tag == "new"],
            parse={
                "experience_min": exp.min if exp else None,
                "experience_max": exp.max if exp else None,
                "countries": sorted({loc.iso_code for loc in result.parsed.job_locations if loc.iso_code}),
                "work_mode": max(set(modes), key=modes.count) if modes else None,
            },
            confidence=decision.confidence,
            reasoning=decision.reasoning,
            cost_usd=result.llm_cost_usd,
            latency_ms=latency_ms,
            node_ms=result.node_timings_ms,
            llm_calls=[c.model_dump() for c in result.llm_calls],
            warnings=result.warnings,
        )


@dataclass
class CaseScore:
    score: float
    counts: dict[str, float] = field(default_factory=dict)
    reason: str = ""


def prf(predicted: set[str], expected: set[str]) -> tuple[float, float, float]:
    """Precision, recall, F1. Nothing expected and nothing predicted is perfect; nothing predicted when something
    was expected has recall 0 (and precision 0: an empty answer is not a precise one)."""
    if not predicted and not expected:
        return 1.0, 1.0, 1.0
    tp = len(predicted & expected)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(expected) if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _set_counts(predicted: set[str], expected: set[str]) -> dict[str, float]:
    return {
        "tp": len(predicted & expected),
        "fp": len(predicted - expected),
        "fn": len(expected - predicted),
        "empty": float(not predicted and not expected),
    }


def _diff(predicted: set[str], expected: set[str]) -> str:
    missing, extra = sorted(expected - predicted), sorted(predicted - expected)
    parts = [f"missing {', '.join(missing)}" if missing else "", f"extra {', '.join(extra)}" if extra else ""]
    return "; ".join(p for p in parts if p) or "exact"


def _acceptable_roles(expected: Expected) -> set[str]:
    return {r for r in [expected.role, *expected.role_alternates] if r}


def role_at_k(k: int) -> Callable[[Expected, CaseOutput], CaseScore]:
    def score(expected: Expected, got: CaseOutput) -> CaseScore:
        if expected.route == "rejected":
            ok = got.status == "rejected"
            return CaseScore(float(ok), reason="rejected" if ok else f"not rejected (chose {got.chosen_role})")
        if expected.route == "new-role":
            ok = got.is_new_role or got.route == "new-role"
            return CaseScore(float(ok), reason="new role flagged" if ok else f"no new role (chose {got.chosen_role})")
        accept = _acceptable_roles(expected)
        hit = next((i for i, r in enumerate(got.top_roles[:k]) if r in accept), None)
        if hit is not None:
            return CaseScore(1.0, reason=f"{got.top_roles[hit]} at rank {hit + 1}")
        return CaseScore(0.0, reason=f"expected {expected.role}, got {', '.join(got.top_roles[:k]) or 'nothing'}")

    return score


def _skill_sets(expected: Expected, got: CaseOutput, *, primary_only: bool) -> tuple[set[str], set[str]]:
    exp = {s.slug for s in expected.skills if s.primary or not primary_only}
    pred = {slug for slug, primary in got.skills.items() if primary or not primary_only}
    return pred, exp


def skill_metric(
    which: Literal["precision", "recall", "f1"], *, primary_only: bool = False
) -> Callable[..., CaseScore]:
    index = {"precision": 0, "recall": 1, "f1": 2}[which]

    def score(expected: Expected, got: CaseOutput) -> CaseScore:
        pred, exp = _skill_sets(expected, got, primary_only=primary_only)
        return CaseScore(prf(pred, exp)[index], _set_counts(pred, exp), _diff(pred, exp))

    return score


def parse_accuracy(expected: Expected, got: CaseOutput) -> CaseScore:
    labelled = expected.parse.model_fields_set
    if not labelled:
        return CaseScore(1.0, {"correct": 0, "total": 0}, "no parse labels")
    wrong = []
    for name in sorted(labelled):
        want, have = getattr(expected.parse, name), got.parse.get(name)
        if name == "countries":
            same = sorted(want or []) == sorted(have or [])
        elif name.startswith("experience"):
            same = (want is None and have is None) or (
                want is not None and have is not None and abs(float(want) - float(have)) < 0.01
            )
        else:
            same = want == have
        if not same:
            wrong.append(f"{name}: expected {want!r}, got {have!r}")
    correct = len(labelled) - len(wrong)
    return CaseScore(correct / len(labelled), {"correct": correct, "total": len(labelled)}, "; ".join(wrong) or "all")


def route_accuracy(expected: Expected, got: CaseOutput) -> CaseScore:
    route = got.final_route
    ok = route == expected.route
    return CaseScore(float(ok), reason=route if ok else f"expected {expected.route}, got {route}")


def new_skill_precision(expected: Expected, got: CaseOutput) -> CaseScore:
    """Of the skills proposed as new, the share the golden names as genuinely new (no proposal: nothing wrong)."""
    proposed = {normalize_alias(n) for n in got.new_skills} - {""}
    wanted = {normalize_alias(n) for n in expected.new_skills}
    tp = len(proposed & wanted)
    score = tp / len(proposed) if proposed else 1.0
    reason = f"unexpected proposals: {', '.join(sorted(proposed - wanted))}" if proposed - wanted else "ok"
    return CaseScore(score, {"tp": tp, "fp": len(proposed - wanted)}, reason)


Aggregate = Callable[[Sequence[CaseScore]], float]


def mean_of_scores(scores: Sequence[CaseScore]) -> float:
    return sum(s.score for s in scores) / len(scores) if scores else 0.0


def _micro(kind: Literal["precision", "recall", "f1"]) -> Aggregate:
    def aggregate(scores: Sequence[CaseScore]) -> float:
        tp = sum(s.counts.get("tp", 0) for s in scores)
        fp = sum(s.counts.get("fp", 0) for s in scores)
        fn = sum(s.counts.get("fn", 0) for s in scores)
        if tp + fp + fn == 0:
            return 1.0
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}[kind]

    return aggregate


def _ratio(numerator: str, denominator_keys: tuple[str, ...]) -> Aggregate:
    def aggregate(scores: Sequence[CaseScore]) -> float:
        num = sum(s.counts.get(numerator, 0) for s in scores)
        den = sum(sum(s.counts.get(k, 0) for k in denominator_keys) for s in scores)
        return num / den if den else 1.0

    return aggregate


@dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str
    score_case: Callable[[Expected, CaseOutput], CaseScore]
    aggregate: Aggregate
    threshold: float  # the aggregate must reach this (absolute floor, independent of any baseline)
    case_threshold: float = 1.0  # one case passes the metric at this score (deepeval's per-test threshold)


# Suite thresholds are floors for the aggregate. Per case, a role or a route is right or wrong (1.0); a set-valued
# metric passes at "mostly right".
METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in [
        MetricSpec(
            "role_top1", "chosen role is the expected one (or an alternate)", role_at_k(1), mean_of_scores, 0.85
        ),
        MetricSpec("role_top3", "expected role among the top 3", role_at_k(3), mean_of_scores, 0.9),
        MetricSpec(
            "skill_precision", "canonical skills, micro", skill_metric("precision"), _micro("precision"), 0.8, 0.5
        ),
        MetricSpec("skill_recall", "canonical skills, micro", skill_metric("recall"), _micro("recall"), 0.7, 0.5),
        MetricSpec("skill_f1", "canonical skills, micro", skill_metric("f1"), _micro("f1"), 0.75, 0.5),
        MetricSpec(
            "skill_f1_macro", "canonical skills, mean of case F1", skill_metric("f1"), mean_of_scores, 0.75, 0.5
        ),
        MetricSpec(
            "primary_skill_f1", "primary skills, micro", skill_metric("f1", primary_only=True), _micro("f1"), 0.7, 0.5
        ),
        MetricSpec(
            "parse_accuracy",
            "labelled parse fields correct",
            parse_accuracy,
            _ratio("correct", ("total",)),
            0.85,
            0.66,
        ),
        MetricSpec(
            "route_accuracy", "direct / adjudicated / new-role / rejected", route_accuracy, mean_of_scores, 0.85
        ),
        MetricSpec(
            "new_skill_precision",
            "new-skill proposals the golden expects",
            new_skill_precision,
            _ratio("tp", ("tp", "fp")),
            0.5,
            0.5,
        ),
    ]
}


def score_case(expected: Expected, got: CaseOutput) -> dict[str, CaseScore]:
    return {name: spec.score_case(expected, got) for name, spec in METRICS.items()}


# -- deepeval ---------------------------------------------------------------------------------------------------
def golden_test_case(case_id: str, text: str, expected: Expected, got: CaseOutput) -> LLMTestCase:
    """A deepeval test case carrying the golden and the run's output (metrics read them from the metadata)."""
    return LLMTestCase(
        name=case_id,
        input=text,
        actual_output=got.model_dump_json(),
        expected_output=expected.model_dump_json(),
        additional_metadata={"expected": expected.model_dump(), "output": got.model_dump()},
    )


class GoldenMetric(BaseMetric):
    """A jdgraph metric on one golden case, as deepeval expects: score, threshold, success, reason."""

    metric_key: str = ""

    def __init__(self, threshold: float | None = None) -> None:
        spec = METRICS[self.metric_key]
        self.threshold = spec.case_threshold if threshold is None else threshold
        self.async_mode = False
        self.strict_mode = False
        self.include_reason = True
        self.evaluation_model = None
        self.evaluation_cost = 0.0
        self.counts: dict[str, float] = {}

    def measure(self, test_case: LLMTestCase, *args: Any, **kwargs: Any) -> float:
        meta = test_case.additional_metadata or {}
        try:
            expected = Expected.model_validate(meta["expected"])
            got = CaseOutput.model_validate(meta["output"])
        except (KeyError, ValueError) as exc:
            self.error = f"test case lacks the golden or the output: {exc}"
            self.success = False
            raise
        result = METRICS[self.metric_key].score_case(expected, got)
        self.score, self.reason, self.counts = result.score, result.reason, result.counts
        self.success = self.score >= self.threshold
        return self.score

    async def a_measure(self, test_case: LLMTestCase, *args: Any, **kwargs: Any) -> float:
        return self.measure(test_case)

    def is_successful(self) -> bool:
        return bool(self.success) and self.error is None

    @property
    def __name__(self) -> str:
        return self.metric_key


class RoleTop1Metric(GoldenMetric):
    metric_key = "role_top1"


class RoleTop3Metric(GoldenMetric):
    metric_key = "role_top3"


class SkillF1Metric(GoldenMetric):
    metric_key = "skill_f1"


class PrimarySkillF1Metric(GoldenMetric):
    metric_key = "primary_skill_f1"


class ParseFieldAccuracyMetric(GoldenMetric):
    metric_key = "parse_accuracy"


class RouteAccuracyMetric(GoldenMetric):
    metric_key = "route_accuracy"


class NewSkillPrecisionMetric(GoldenMetric):
    metric_key = "new_skill_precision"


DEEPEVAL_METRICS: list[type[GoldenMetric]] = [
    RoleTop1Metric,
    RoleTop3Metric,
    SkillF1Metric,
    PrimarySkillF1Metric,
    ParseFieldAccuracyMetric,
    RouteAccuracyMetric,
    NewSkillPrecisionMetric,
]
