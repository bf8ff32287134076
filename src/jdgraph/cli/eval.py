"""``jdgraph eval``: run a golden suite, gate it, write its reports, rewrite baselines, compare two runs."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from jdgraph.cli.common import console, err_console, handle_errors
from jdgraph.errors import EvalGateError, GoldenError, InputError
from jdgraph.evals.dev import DEV_SUITES, dev_suite_available, run_dev_suite
from jdgraph.evals.goldens import check_suite, load_suite, resolve_suite
from jdgraph.terminal import progress_line

eval_app = typer.Typer(help="Evaluate the agent on golden suites.", no_args_is_help=True)


def _context_overrides(pairs: list[str]) -> dict[str, Any]:
    from jdgraph.context import Context, _coerce  # deferred: the context loads langchain_core (2 s), not for --help

    known = {f.name: f for f in fields(Context)}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in known:
            raise InputError(f"--set {pair!r}: expected FIELD=VALUE with FIELD one of {sorted(known)}")
        out[key] = _coerce(key, value, known[key].type)
    return out


def _run(
    suite_name: str,
    *,
    model: str | None,
    prompts: Path | None,
    repeat: int,
    concurrency: int,
    record: bool,
    replay: bool,
    cassette: Path | None,
    overrides: list[str],
    judge: str | None = None,
    accept_fallbacks: bool = False,
) -> Any:
    from jdgraph.evals.runner import Mode, run_suite  # deferred: the runner loads langgraph and deepeval (seconds)

    if prompts is not None and not prompts.is_dir():
        raise InputError(f"--prompts {prompts} is not a folder")
    suite = load_suite(resolve_suite(suite_name))
    if record and replay:
        raise InputError("--record and --replay exclude each other")
    mode: Mode | None = "record" if record else "replay" if replay else None
    total = len(suite.cases) * repeat
    run = partial(
        run_suite,
        suite,
        model=model,
        mode=mode,
        prompts_dir=str(prompts) if prompts else None,
        repeat=repeat,
        concurrency=concurrency,
        cassette=cassette,
        judge=judge,
        accept_fallbacks=accept_fallbacks,
        **_context_overrides(overrides),
    )
    if err_console.is_terminal:
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task(f"{suite.name}", total=total)
            return run(on_case=lambda _case: progress.advance(task))
    # Off a terminal Rich draws no progress, and a pipe or a log saw half a minute of silence: a line a stage, and
    # one every tenth of the cases.
    progress_line(err_console, f"{suite.name}: {total} cases; loading the embedding model and opening the catalog…")
    every = max(1, -(-total // 10))
    done = 0

    def count(_case: Any) -> None:
        nonlocal done
        done += 1
        if done in (1, total) or done % every == 0:
            progress_line(err_console, f"case {done}/{total}")

    return run(on_case=count)


def _summary(run: Any, baseline: Any, failures: list[str]) -> None:
    from jdgraph.evals.runner import DEFAULT_TOLERANCE  # deferred: the runner loads langgraph and deepeval (seconds)

    # A centred title is padded with spaces to the width, which a pipe keeps: the title starts the line instead.
    table = Table(
        title=f"{run.config.suite} ({run.config.mode}), {int(run.totals['cases'])} cases", title_justify="default"
    )
    for col in ("metric", "value", "threshold", "baseline", "Δ"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, m in run.metrics.items():
        base = baseline.metrics.get(name) if baseline else None
        tolerance = baseline.tolerance.get(name, DEFAULT_TOLERANCE) if baseline else 0.0
        style = "red" if m.below_threshold or (base is not None and m.value < base - tolerance) else ""
        table.add_row(
            name,
            f"{m.value:.3f}" + (f" ±{m.std:.3f}" if run.config.repeat > 1 else ""),
            f"{m.threshold:.2f}",
            "" if base is None else f"{base:.3f}",
            "" if base is None else f"{m.value - base:+.3f}",
            style=style,
        )
    console.print(table)
    if baseline is not None and baseline.below_threshold:
        console.print(
            "known shortfalls of this model (gated against its baseline only): " + ", ".join(baseline.below_threshold),
            highlight=False,
        )
    for name, value in run.judge_metrics.items():
        console.print(f"judge {name}: {value:.3f} (mean over judged cases; informational, not gated)")
    console.print(
        f"cost ${run.totals['cost_usd']:.4f} · mean latency {run.totals['latency_ms_mean']:.0f} ms/case · "
        f"wall {run.totals['wall_s']:.1f} s · {int(run.totals['errors'])} errors · "
        f"{int(run.totals.get('llm_calls', 0))} LLM calls, {int(run.totals.get('llm_fallbacks', 0))} fell back"
    )
    if failures:
        err_console.print("[bold red]gate: FAIL[/]")
        for f in failures:
            err_console.print(f, highlight=False, markup=False)
    else:
        console.print("[green]gate: PASS[/]")


SuiteArg = Annotated[str, typer.Argument(help="A suite name (evals/goldens/NAME.vN.jsonl) or a JSONL path")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="provider:model for every LLM step; none = rules")]
PromptsOpt = Annotated[Path | None, typer.Option("--prompts", help="Folder whose prompt files override the package's")]
RepeatOpt = Annotated[int, typer.Option("--repeat", min=1, max=50, help="Runs per case (pass rate and spread)")]
ConcOpt = Annotated[int, typer.Option("--concurrency", min=1, max=32)]
SetOpt = Annotated[list[str], typer.Option("--set", help="Context override FIELD=VALUE (e.g. new_role_threshold=0.5)")]
CassetteOpt = Annotated[Path | None, typer.Option("--cassette", help="Cassette JSONL for --record / --replay")]


@eval_app.command("run")
@handle_errors
def eval_run(
    suite: SuiteArg,
    model: ModelOpt = None,
    prompts: PromptsOpt = None,
    repeat: RepeatOpt = 1,
    concurrency: ConcOpt = 2,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for results.json, report.md, report.html")] = None,
    baseline: Annotated[Path | None, typer.Option("--baseline", help="Fail on regression against this")] = None,
    record: Annotated[bool, typer.Option("--record", help="Call the live model and store its answers")] = False,
    replay: Annotated[bool, typer.Option("--replay", help="Answer LLM calls from the cassette only")] = False,
    cassette: CassetteOpt = None,
    accept_fallbacks: Annotated[
        bool,
        typer.Option(
            "--accept-fallbacks", help="--record: keep a recording in which some steps fell back (said in the report)"
        ),
    ] = False,
    overrides: SetOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    judge: Annotated[
        str | None, typer.Option("--judge", help="provider:model for LLM-judge metrics (GEval); off by default")
    ] = None,
    catalog: Annotated[str | None, typer.Option("--catalog", help="Which catalog (env JDGRAPH_CATALOG)")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Dev suites: only the first N cases")] = None,
    ci_slice: Annotated[
        bool, typer.Option("--ci-slice", help="Dev suites: the fixed slice the CI gate runs (30 ads, 200 titles...)")
    ] = False,
) -> None:
    """Run SUITE through the graph, score it, write reports, and exit 1 if the gate fails. The dev suites
    (hahu-dev, titles-dev, tech-dev, house-dev, skillspan-dev) score the real data against an ESCO catalog."""
    # deferred: the runner and the reports load langgraph and deepeval (seconds) that --help must not wait for
    from jdgraph.evals.reports import html_report, markdown_report
    from jdgraph.evals.runner import Baseline, gate_failures, write_json

    if suite in DEV_SUITES:
        if not dev_suite_available(catalog or "esco"):
            err_console.print(
                f"[yellow]skipped {suite}[/]: {DEV_SUITES[suite]} needs ESCO occupations and skills in the catalog; "
                "import them first: jdgraph catalog import esco ../shared/data/esco-v1.1.1"
            )
            raise typer.Exit(0)
        _dev_run(suite, catalog or "esco", limit, concurrency, out, _context_overrides(overrides), ci_slice)
        return
    if catalog:
        overrides = [*overrides, f"catalog={catalog}"]
    base = Baseline.load(baseline) if baseline else None
    result = _run(
        suite,
        model=model,
        prompts=prompts,
        repeat=repeat,
        concurrency=concurrency,
        record=record,
        replay=replay,
        cassette=cassette,
        overrides=overrides,
        judge=judge,
        accept_fallbacks=accept_fallbacks,
    )
    failures = gate_failures(result, base)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = out or Path("evals") / "runs" / f"{result.config.suite}-{result.config.mode}-{stamp}"
    write_json(result, folder / "results.json")
    (folder / "report.md").write_text(markdown_report(result, base, failures), encoding="utf-8")
    (folder / "report.html").write_text(html_report(result, base, failures), encoding="utf-8")
    _summary(result, base, failures)
    console.print(f"reports: {folder}/report.md, {folder}/report.html")
    if failures:
        raise EvalGateError(f"{len(failures)} gate failure(s); see {folder}/report.md")


def _dev_run(
    suite: str,
    catalog: str,
    limit: int | None,
    concurrency: int,
    out: Path | None,
    context: dict[str, Any],
    ci_slice: bool = False,
) -> None:
    # deferred: the runner and the reports load langgraph and deepeval (seconds) that --help must not wait for
    from jdgraph.evals.reports import dev_html_report, dev_markdown_report
    from jdgraph.evals.runner import write_json

    run = run_dev_suite(
        suite, catalog=catalog, limit=limit, concurrency=concurrency, context=context, ci_slice=ci_slice
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = out or Path("evals") / "runs" / f"{suite}-{catalog}-{stamp}"
    write_json(run, folder / "results.json")
    (folder / "report.md").write_text(dev_markdown_report(run), encoding="utf-8")
    (folder / "report.html").write_text(dev_html_report(run), encoding="utf-8")
    table = Table(
        title=f"{suite} on catalog {catalog} ({run.cases} cases, {run.selection}, {run.wall_s:.0f} s)",
        title_justify="default",  # not centred: no trailing spaces
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in run.metrics.items():
        table.add_row(name, f"{value:.3f}")
    console.print(table)
    console.print(f"data: {run.data_source}; catalog sources: {run.catalog_sources}", highlight=False)
    console.print(f"reports: {folder}/report.md, {folder}/report.html, {folder}/results.json")


@eval_app.command("calibrate")
@handle_errors
def eval_calibrate(
    suite: Annotated[str, typer.Argument(help="A labelled dev suite of whole ads (hahu-dev)")] = "hahu-dev",
    catalog: Annotated[str, typer.Option("--catalog", help="Which catalog")] = "esco",
    folds: Annotated[int, typer.Option("--folds", min=2, max=20, help="Cross-validation folds")] = 5,
    concurrency: ConcOpt = 2,
    overrides: SetOpt = [],  # noqa: B006 - typer reads the default, never mutates it
) -> None:
    """Fit the role confidence (centre, slope, full margin) to SUITE's labels and print the settings, with the
    expected calibration error before, after, and out of fold (the estimate for ads the fit has not seen)."""
    # deferred: the context and the calibration load langchain_core (2 s) that --help must not wait for
    from jdgraph.context import Context
    from jdgraph.evals.calibration import fit_confidence, points_from_cases

    if suite != "hahu-dev":
        raise InputError(f"calibrate needs a suite of whole ads with labelled roles (hahu-dev), not {suite!r}")
    if not dev_suite_available(catalog):
        raise InputError(f"{suite} needs ESCO in catalog {catalog!r}: jdgraph catalog import esco PATH")
    context = _context_overrides(overrides)
    run = run_dev_suite(suite, catalog=catalog, concurrency=concurrency, context=context)
    ctx = Context.from_env(**{**context, "catalog": catalog})
    fit = fit_confidence(points_from_cases(run.results, ctx.adjudicated_confidence_factor), ctx.scoring(),
                         folds=folds)  # fmt: skip
    table = Table(title=f"confidence fitted on {suite} ({fit.cases} ads, catalog {catalog})", title_justify="default")
    table.add_column("")
    table.add_column("value", justify="right")
    for name, value in [("confidence_center", fit.center), ("confidence_slope", fit.slope),
                        ("confidence_full_margin", fit.full_margin), ("log loss", fit.log_loss),
                        ("ECE now", fit.ece_before), ("ECE fitted (in sample)", fit.ece_after),
                        (f"ECE out of fold ({folds}-fold)", fit.ece_out_of_fold)]:  # fmt: skip
        table.add_row(name, f"{value:g}")
    console.print(table)
    console.print(
        f"use: CONFIDENCE_CENTER={fit.center} CONFIDENCE_SLOPE={fit.slope:g} "
        f"CONFIDENCE_FULL_MARGIN={fit.full_margin} (or --set FIELD=VALUE)",
        highlight=False,
    )


@eval_app.command("baseline")
@handle_errors
def eval_baseline(
    suite: SuiteArg,
    model: ModelOpt = None,
    prompts: PromptsOpt = None,
    replay: Annotated[bool, typer.Option("--replay")] = False,
    cassette: CassetteOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Default: evals/baselines/SUITE.MODE.json")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", min=0, max=1)] = 0.02,
) -> None:
    """Run SUITE and (deliberately) rewrite its baseline with the figures of this run."""
    from jdgraph.evals.runner import Baseline, write_json  # deferred: the runner loads langgraph and deepeval

    result = _run(
        suite,
        model=model,
        prompts=prompts,
        repeat=1,
        concurrency=2,
        record=False,
        replay=replay,
        cassette=cassette,
        overrides=[],
    )
    if result.unrecorded:
        raise InputError(f"cannot write a baseline with unrecorded calls: {result.unrecorded}")
    name = f"{result.config.suite}.{result.config.mode}"
    if result.config.mode != "deterministic":  # one baseline per model
        name += "." + "-".join(
            sorted({re.sub(r"[^\w.-]+", "-", m) for m in result.config.models.values() if m != "none"})
        )
    path = out or Path("evals") / "baselines" / f"{name}.json"
    write_json(Baseline.from_run(result, {k: tolerance for k in result.metrics}), path)
    _summary(result, None, [])
    console.print(f"baseline written: {path}")


@eval_app.command("compare")
@handle_errors
def eval_compare(
    run_a: Annotated[Path, typer.Argument(help="results.json (or its folder) of run A")],
    run_b: Annotated[Path, typer.Argument(help="results.json (or its folder) of run B")],
    resamples: Annotated[int, typer.Option(min=100, max=100_000)] = 2000,
    seed: int = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Per-metric deltas B − A with paired-bootstrap 95% CIs, flipped cases, cost and latency deltas."""
    # deferred: the runner and the reports load langgraph and deepeval (seconds) that --help must not wait for
    from jdgraph.evals.dev_compare import compare_dev_runs, is_dev_result, load_dev_run
    from jdgraph.evals.reports import comparison_markdown
    from jdgraph.evals.runner import compare_runs, load_run

    if is_dev_result(run_a) or is_dev_result(run_b):
        cmp = compare_dev_runs(load_dev_run(run_a), load_dev_run(run_b), resamples=resamples, seed=seed)
    else:
        cmp = compare_runs(load_run(run_a), load_run(run_b), resamples=resamples, seed=seed)
    if as_json:
        print(json.dumps(cmp.model_dump(mode="json"), indent=2))
    else:
        console.print(comparison_markdown(cmp, str(run_a), str(run_b)), markup=False, highlight=False)


@eval_app.command("validate")
@handle_errors
def eval_validate(path: Annotated[Path, typer.Argument(help="A golden JSONL file")]) -> None:
    """Check a golden file against the schema: every problem, each naming the file and line."""
    suite, problems = check_suite(path)
    if problems:
        for problem in problems:
            err_console.print(problem, highlight=False, markup=False, soft_wrap=True)  # one line each: greppable
        raise GoldenError(f"{path}: {len(problems)} problem(s)")
    assert suite is not None
    console.print(f"{path}: {len(suite.cases)} valid cases (sha256 {suite.sha256[:12]})")
