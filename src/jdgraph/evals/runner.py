"""Run a golden suite through the graph, score it, gate it against thresholds and a baseline, compare runs.

``run_suite`` classifies every case (``repeat`` times, ``concurrency`` at once, nothing persisted), scores each
with :mod:`jdgraph.evals.metrics` and aggregates per repeat. ``gate_failures`` lists what is below its threshold
or regressed beyond tolerance against a baseline, naming the cases that flipped. ``compare_runs`` gives paired
bootstrap confidence intervals of each metric's delta between two runs on the same suite.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from jdgraph.api import BatchItem, classify_many
from jdgraph.context import Context
from jdgraph.errors import ConfigError, InputError
from jdgraph.evals.cassettes import NO_RECORDING, CassetteServer
from jdgraph.evals.goldens import Expected, Suite
from jdgraph.evals.metrics import METRICS, CaseOutput, CaseScore, score_case
from jdgraph.graph.llm import make_chat_model
from jdgraph.prompts import load_prompt
from jdgraph.settings import local_model_base_url

Mode = Literal["deterministic", "llm", "replay", "record"]
MODEL_FIELDS = ("parse_model", "extract_model", "adjudicate_model", "enrich_model")
DEFAULT_TOLERANCE = 0.02


class CaseRun(BaseModel):
    id: str
    repeat: int = 0
    tags: list[str] = Field(default_factory=list)
    expected: Expected
    output: CaseOutput | None = None
    error: str | None = None
    unrecorded: list[str] = Field(default_factory=list, description="prompt refs the cassette could not answer")
    scores: dict[str, CaseScore] = Field(default_factory=dict)
    judge_scores: dict[str, CaseScore] = Field(default_factory=dict, description="LLM-judge metrics (--judge)")
    passed: bool = False


class MetricSummary(BaseModel):
    value: float = Field(description="mean over repeats of the aggregate")
    threshold: float
    per_repeat: list[float]
    std: float = 0.0
    min: float = 0.0
    max: float = 0.0

    @property
    def below_threshold(self) -> bool:
        return self.value + 1e-9 < self.threshold


class EvalConfig(BaseModel):
    suite: str
    suite_path: str
    suite_sha256: str
    mode: Mode
    models: dict[str, str]
    prompt_versions: dict[str, str]
    prompts_dir: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    repeat: int = 1
    concurrency: int = 1
    cassette: str | None = None
    judge: str | None = None
    accept_fallbacks: bool = False
    started_at: str
    python: str = platform.python_version()


class EvalRun(BaseModel):
    config: EvalConfig
    cases: list[CaseRun]
    metrics: dict[str, MetricSummary]
    pass_rates: dict[str, float]
    unrecorded: dict[str, int] = Field(default_factory=dict, description="prompt ref → cases without a recording")
    recorded_prompts: list[str] = Field(
        default_factory=list, description="replay: the prompt refs the cassette holds recordings for"
    )
    totals: dict[str, float] = Field(default_factory=dict)
    node_ms_mean: dict[str, float] = Field(default_factory=dict)
    cost_by_node: dict[str, float] = Field(default_factory=dict, description="LLM cost (USD) per graph node")
    judge_metrics: dict[str, float] = Field(default_factory=dict, description="mean judge score per metric")

    def scored_cases(self, repeat: int | None = None) -> list[CaseRun]:
        return [c for c in self.cases if not c.unrecorded and (repeat is None or c.repeat == repeat)]


def _case_passed(scores: dict[str, CaseScore]) -> bool:
    return all(scores[name].score + 1e-9 >= spec.case_threshold for name, spec in METRICS.items() if name in scores)


@contextmanager
def _llm_endpoint(
    mode: Mode, cassette: Path | None, *, local: bool = False, timeout_s: float = 30.0
) -> Iterator[CassetteServer | None]:
    """Point the OpenAI client at the cassette server for replay/record; leave it alone otherwise."""
    if mode not in ("replay", "record"):
        yield None
        return
    if cassette is None:
        raise ConfigError(f"--{mode} needs a cassette file (--cassette PATH)")
    # The live model behind the recording: the local server for local:* models, else the OpenAI-compatible one.
    upstream = local_model_base_url() if local else (os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1")
    server = CassetteServer(
        cassette, mode, upstream=upstream, api_key=os.environ.get("OPENAI_API_KEY"), timeout_s=timeout_s
    )
    saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "JDGRAPH_LOCAL_BASE_URL")}
    os.environ["OPENAI_BASE_URL"] = server.base_url
    os.environ["JDGRAPH_LOCAL_BASE_URL"] = server.base_url
    os.environ.setdefault("OPENAI_API_KEY", "sk-cassette-replay")
    try:
        yield server
    finally:
        server.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_suite(
    suite: Suite,
    *,
    model: str | None = None,
    mode: Mode | None = None,
    prompts_dir: str | None = None,
    repeat: int = 1,
    concurrency: int = 2,
    cassette: Path | None = None,
    judge: str | None = None,
    accept_fallbacks: bool = False,
    on_case: Callable[[CaseRun], None] | None = None,
    **context: Any,
) -> EvalRun:
    """Classify every case ``repeat`` times and score it. ``model`` sets every LLM step (``none``: deterministic)."""
    if repeat < 1:
        raise InputError("--repeat must be at least 1")
    # --model, then a per-step override, then the environment (PARSE_MODEL…, JDGRAPH_MODEL) as `classify` reads it.
    from_env = Context.from_env()
    models = {f: model or context.pop(f, None) or getattr(from_env, f, None) or "none" for f in MODEL_FIELDS}
    mode = mode or ("deterministic" if all(m == "none" for m in models.values()) else "llm")
    if mode in ("replay", "record") and all(m == "none" for m in models.values()):
        raise ConfigError(f"--{mode} needs --model (the model whose calls are recorded)")
    versions = {name: load_prompt(name, prompts_dir).version for name in ("parse", "extract", "adjudicate", "enrich")}
    config = EvalConfig(
        suite=suite.name,
        suite_path=suite.path,
        suite_sha256=suite.sha256,
        mode=mode,
        models=models,
        prompt_versions=versions,
        prompts_dir=prompts_dir,
        context={k: v for k, v in context.items() if v is not None},
        repeat=repeat,
        concurrency=concurrency,
        cassette=str(cassette) if cassette else None,
        judge=judge,
        accept_fallbacks=accept_fallbacks,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    by_id = {c.id: c for c in suite.cases}
    runs: list[CaseRun] = []
    judge_llm = None
    if judge:
        # deferred: deepeval takes seconds to import, and only a judged run needs it
        from jdgraph.evals.judge import JudgeLLM

        judge_llm = JudgeLLM(judge)
    t0 = time.perf_counter()
    llm_timeout = float(context.get("llm_timeout_s") or from_env.llm_timeout_s)
    local = any(m.startswith("local:") for m in models.values())
    with _llm_endpoint(mode, cassette, local=local, timeout_s=llm_timeout) as endpoint:
        for spec in sorted(set(models.values()) - {"none"}):
            make_chat_model(spec, timeout_s=5)  # a missing key or package fails here, once, not in every case
        items = [BatchItem(c.id, c.text, c.title, c.company) for c in suite.cases]
        run_context: dict[str, Any] = {**models, **context}
        for r in range(repeat):
            outcomes = classify_many(
                items, concurrency=concurrency, persist=False, prompts_dir=prompts_dir, repeat_index=r, **run_context
            )
            for outcome in outcomes:
                case = by_id[outcome.id]
                output = None
                unrecorded: list[str] = []
                if outcome.result is not None:
                    latency = sum(outcome.result.node_timings_ms.values())
                    output = CaseOutput.from_result(outcome.result, latency)
                    unrecorded = sorted(
                        {
                            c.prompt_name + "@" + c.prompt_version
                            for c in outcome.result.llm_calls
                            if NO_RECORDING in (c.error or "")
                        }
                    )
                scores = score_case(case.expected, output or CaseOutput(status="failed"))
                run = CaseRun(
                    id=case.id,
                    repeat=r,
                    tags=case.tags,
                    expected=case.expected,
                    output=output,
                    error=outcome.error.message if outcome.error else None,
                    unrecorded=unrecorded,
                    scores=scores,
                    passed=not unrecorded and _case_passed(scores),
                )
                if judge_llm is not None and output is not None and output.route == "adjudicated":
                    from jdgraph.evals.judge import judge_adjudication  # deferred: deepeval, as for JudgeLLM above

                    score, reason = judge_adjudication(judge_llm, case.text, output.chosen_role, output.reasoning)
                    run.judge_scores["adjudication_reasoning"] = CaseScore(score, reason=reason)
                runs.append(run)
                if on_case:
                    on_case(run)
        recorded = endpoint.recorded_prompts() if endpoint is not None else []
    summary = summarise(config, runs, wall_s=time.perf_counter() - t0)
    summary.recorded_prompts = recorded
    return summary


def summarise(config: EvalConfig, runs: list[CaseRun], *, wall_s: float = 0.0) -> EvalRun:
    metrics: dict[str, MetricSummary] = {}
    scored = [c for c in runs if not c.unrecorded]
    for name, spec in METRICS.items():
        per_repeat = [
            spec.aggregate([c.scores[name] for c in scored if c.repeat == r])
            for r in range(config.repeat)
            if any(c.repeat == r for c in scored)
        ]
        metrics[name] = MetricSummary(
            value=statistics.fmean(per_repeat) if per_repeat else 0.0,
            threshold=spec.threshold,
            per_repeat=[round(v, 4) for v in per_repeat],
            std=statistics.pstdev(per_repeat) if len(per_repeat) > 1 else 0.0,
            min=min(per_repeat, default=0.0),
            max=max(per_repeat, default=0.0),
        )
    by_id = _by_id(runs)
    ids = list(by_id)
    pass_rates = {i: statistics.fmean(float(c.passed) for c in cases) for i, cases in by_id.items()}
    unrecorded: dict[str, int] = {}
    for prompt in sorted({p for c in runs for p in c.unrecorded}):
        unrecorded[prompt] = len({c.id for c in runs if prompt in c.unrecorded})
    outputs = [c.output for c in scored if c.output is not None]
    node_ms: dict[str, list[float]] = {}
    for o in outputs:
        for node, ms in o.node_ms.items():
            node_ms.setdefault(node, []).append(ms)
    totals = {
        "cases": float(len(ids)),
        "runs": float(len(runs)),
        "errors": float(sum(1 for c in runs if c.error)),
        "cost_usd": round(sum(o.cost_usd for o in outputs), 6),
        "latency_ms_mean": round(statistics.fmean(o.latency_ms for o in outputs), 2) if outputs else 0.0,
        "llm_calls": float(sum(len(o.llm_calls) for o in outputs)),
        # Calls whose answer was not used (the deterministic implementation stood in): a recording made of them
        # measures the fallback, not the model.
        "llm_fallbacks": float(sum(1 for o in outputs for c in o.llm_calls if c.get("outcome") == "fallback")),
        "wall_s": round(wall_s, 2),
    }
    cost_by_node: dict[str, float] = {}
    for o in outputs:
        for call in o.llm_calls:
            cost_by_node[call["node"]] = cost_by_node.get(call["node"], 0.0) + float(call.get("cost_usd") or 0.0)
    judged: dict[str, list[float]] = {}
    for c in scored:
        for name, js in c.judge_scores.items():
            judged.setdefault(name, []).append(js.score)
    return EvalRun(
        config=config,
        cases=runs,
        judge_metrics={k: round(statistics.fmean(v), 4) for k, v in judged.items()},
        metrics=metrics,
        pass_rates=pass_rates,
        unrecorded=unrecorded,
        totals=totals,
        node_ms_mean={k: round(statistics.fmean(v), 2) for k, v in node_ms.items()},
        cost_by_node={k: round(v, 6) for k, v in cost_by_node.items()},
    )


# -- gate -------------------------------------------------------------------------------------------------------
class Baseline(BaseModel):
    suite: str
    suite_sha256: str
    mode: Mode
    models: dict[str, str]
    prompt_versions: dict[str, str]
    cassette: str | None = Field(None, description="for mode replay: the cassette the baseline was measured on")
    metrics: dict[str, float]
    tolerance: dict[str, float] = Field(default_factory=dict)
    below_threshold: list[str] = Field(
        default_factory=list,
        description="metrics this model was below its suite threshold on when the baseline was written: a known "
        "shortfall (listed in every report), gated against the baseline only, so a small model's recording can "
        "still guard against regressions",
    )
    cases: dict[str, dict[str, float]] = Field(default_factory=dict, description="case id → metric → score")

    @classmethod
    def from_run(cls, run: EvalRun, tolerance: dict[str, float] | None = None) -> Baseline:
        cases: dict[str, dict[str, float]] = {}
        for case in run.scored_cases(repeat=0):
            cases[case.id] = {k: round(v.score, 4) for k, v in case.scores.items()}
        return cls(
            suite=run.config.suite,
            suite_sha256=run.config.suite_sha256,
            mode=run.config.mode,
            models=run.config.models,
            prompt_versions=run.config.prompt_versions,
            cassette=run.config.cassette,
            metrics={k: round(v.value, 4) for k, v in run.metrics.items()},
            tolerance=tolerance or {k: DEFAULT_TOLERANCE for k in run.metrics},
            below_threshold=sorted(k for k, v in run.metrics.items() if v.below_threshold)
            if run.config.mode != "deterministic"
            else [],
            cases=cases,
        )

    @classmethod
    def load(cls, path: Path | str) -> Baseline:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"baseline {path} does not exist (write one with `jdgraph eval baseline`)")
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"baseline {path} is not valid: {exc}") from exc


def gate_failures(run: EvalRun, baseline: Baseline | None = None) -> list[str]:
    """Readable reasons the run fails the gate; empty when it passes."""
    failures: list[str] = []
    fallbacks = int(run.totals.get("llm_fallbacks", 0))
    if run.config.mode == "record" and fallbacks and not run.config.accept_fallbacks:
        failures.append(
            f"{fallbacks} of the recorded steps fell back to the deterministic implementation (the model's answers "
            "were unusable); the recording measures the fallback, not the model. Pass --accept-fallbacks to keep it"
        )
    cases = max(1, int(run.totals.get("cases", 1)))
    for prompt, n in run.unrecorded.items():
        if prompt not in run.recorded_prompts:  # an edited prompt: nothing of it is recorded
            failures.append(f"{prompt} has no recording for {n} cases; re-record with a model (--record)")
        elif n > max(1, cases // 10):
            # The prompt is recorded, but these cases rendered it differently (the catalog or the embedding model
            # changed what the prompt shows, e.g. candidate roles). A few are tolerated (and not scored).
            failures.append(
                f"{prompt}: {n} of {cases} cases asked what the cassette never recorded (inputs drifted from the "
                "recording: catalog or embeddings changed); re-record"
            )
    known = set(baseline.below_threshold) if baseline is not None else set()
    for name, summary in run.metrics.items():
        if summary.below_threshold and name not in known:
            failures.append(f"{name} {summary.value:.3f} is below its threshold {summary.threshold:.3f}")
    if baseline is None:
        return failures
    if baseline.suite_sha256 != run.config.suite_sha256:
        failures.append(
            f"the baseline was measured on another version of suite {baseline.suite} "
            f"({baseline.suite_sha256[:12]} vs {run.config.suite_sha256[:12]}); rewrite it with `jdgraph eval baseline`"
        )
        return failures
    current = {c.id: c for c in run.scored_cases(repeat=0)}
    for name, base in baseline.metrics.items():
        if name not in run.metrics:
            continue
        value, tol = run.metrics[name].value, baseline.tolerance.get(name, DEFAULT_TOLERANCE)
        if value + 1e-9 < base - tol:
            lines = [f"{name} regressed: {value:.3f} vs baseline {base:.3f} (tolerance {tol:.3f})"]
            for case_id, scores in sorted(baseline.cases.items()):
                now = current.get(case_id)
                if now is None or name not in scores or name not in now.scores:
                    continue
                if now.scores[name].score + 1e-9 < scores[name]:
                    lines.append(
                        f"    {case_id}: {scores[name]:.2f} -> {now.scores[name].score:.2f}"
                        f"  ({now.scores[name].reason})"
                    )
            failures.append("\n".join(lines))
    return failures


# -- compare ----------------------------------------------------------------------------------------------------
class MetricDelta(BaseModel):
    a: float
    b: float
    delta: float
    ci_low: float
    ci_high: float


class Comparison(BaseModel):
    suite: str
    cases: int
    metrics: dict[str, MetricDelta]
    flipped: list[dict[str, Any]]
    cost_usd: tuple[float, float]
    latency_ms_mean: tuple[float, float]
    node_ms_mean: dict[str, tuple[float, float]]


def _by_id(cases: list[CaseRun]) -> dict[str, list[CaseRun]]:
    """Each case id's runs (its repeats), in first-seen order."""
    out: dict[str, list[CaseRun]] = {}
    for case in cases:
        out.setdefault(case.id, []).append(case)
    return out


def paired_bootstrap(
    a: Sequence[Sequence[CaseScore]],
    b: Sequence[Sequence[CaseScore]],
    aggregate: Callable[[Sequence[CaseScore]], float],
    *,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Delta ``aggregate(b) - aggregate(a)`` and its percentile CI, resampling cases (each case's repeats
    travel together, and the same resample is used for both runs: the pairing)."""
    if len(a) != len(b) or not a:
        raise InputError("paired bootstrap needs the same non-empty list of cases in both runs")

    def agg(groups: Sequence[Sequence[CaseScore]], idx: Sequence[int]) -> float:
        return aggregate([s for i in idx for s in groups[i]])

    everything = range(len(a))
    observed = agg(b, everything) - agg(a, everything)
    rng = np.random.default_rng(seed)
    deltas = np.empty(resamples)
    for k in range(resamples):
        idx = rng.integers(0, len(a), size=len(a)).tolist()
        deltas[k] = agg(b, idx) - agg(a, idx)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return observed, float(low), float(high)


def results_file(path: Path | str) -> Path:
    """A run's ``results.json``: ``path`` itself, or the file of that name in the folder ``path``."""
    path = Path(path)
    return path / "results.json" if path.is_dir() else path


def load_run(path: Path | str) -> EvalRun:
    path = results_file(path)
    if not path.is_file():
        raise InputError(f"no results at {path}")
    return EvalRun.model_validate_json(path.read_text(encoding="utf-8"))


def compare_runs(a: EvalRun, b: EvalRun, *, resamples: int = 2000, seed: int = 0) -> Comparison:
    if a.config.suite_sha256 != b.config.suite_sha256:
        raise InputError(f"runs are on different suites or versions ({a.config.suite} vs {b.config.suite})")
    a_by_id, b_by_id = _by_id(a.scored_cases()), _by_id(b.scored_cases())
    ids = [i for i in a_by_id if i in b_by_id]
    metrics: dict[str, MetricDelta] = {}
    for name, spec in METRICS.items():
        groups_a = [[c.scores[name] for c in a_by_id[i]] for i in ids]
        groups_b = [[c.scores[name] for c in b_by_id[i]] for i in ids]
        delta, low, high = paired_bootstrap(groups_a, groups_b, spec.aggregate, resamples=resamples, seed=seed)
        va = spec.aggregate([s for g in groups_a for s in g])
        metrics[name] = MetricDelta(a=va, b=va + delta, delta=delta, ci_low=low, ci_high=high)
    flipped = []
    for i in ids:
        ra, rb = a.pass_rates.get(i, 0.0), b.pass_rates.get(i, 0.0)
        if (ra >= 0.5) != (rb >= 0.5):
            case_a, case_b = a_by_id[i][0], b_by_id[i][0]
            changed = {
                m: f"{case_a.scores[m].score:.2f} -> {case_b.scores[m].score:.2f} ({case_b.scores[m].reason})"
                for m in METRICS
                if not math.isclose(case_a.scores[m].score, case_b.scores[m].score)
            }
            flipped.append({"id": i, "direction": "fixed" if rb > ra else "broken", "changes": changed})
    nodes = sorted(set(a.node_ms_mean) | set(b.node_ms_mean))
    return Comparison(
        suite=a.config.suite,
        cases=len(ids),
        metrics=metrics,
        flipped=flipped,
        cost_usd=(a.totals.get("cost_usd", 0.0), b.totals.get("cost_usd", 0.0)),
        latency_ms_mean=(a.totals.get("latency_ms_mean", 0.0), b.totals.get("latency_ms_mean", 0.0)),
        node_ms_mean={n: (a.node_ms_mean.get(n, 0.0), b.node_ms_mean.get(n, 0.0)) for n in nodes},
    )


def write_json(obj: BaseModel, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
