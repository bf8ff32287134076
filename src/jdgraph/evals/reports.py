"""Evaluation reports: Markdown and a self-contained HTML page (inline SVG plots and PNGs, no scripts or external
assets).

Both show the configuration (suite, models, prompt versions), each metric against its threshold and the
baseline, per-case diffs of expected vs got for every case that did not pass, the role confusion, and cost and
latency per node.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter

from jdgraph.evals.dev import DevCase, DevRun, case_correct, expected_calibration_error, reliability_bins
from jdgraph.evals.runner import Baseline, CaseRun, Comparison, EvalRun


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def case_diff(case: CaseRun) -> list[tuple[str, str, str]]:
    """(field, expected, got) rows for what differs in one case."""
    exp, got = case.expected, case.output
    if got is None:
        return [("run", "a result", f"error: {case.error}")]
    rows: list[tuple[str, str, str]] = []
    if case.unrecorded:
        rows.append(("recording", "cassette answers", f"no recording for {', '.join(case.unrecorded)}"))
    if case.scores["role_top1"].score < 1:
        want = exp.role or exp.route
        rows.append(("role", ", ".join([want, *exp.role_alternates]), ", ".join(got.top_roles[:3]) or got.route))
    if case.scores["route_accuracy"].score < 1:
        rows.append(("route", exp.route, got.final_route))
    skills = case.scores["skill_f1"]
    if skills.score < 1:
        rows.append(("skills", f"{len(exp.skills)} labelled", skills.reason))
    primary = case.scores["primary_skill_f1"]
    if primary.score < 1:
        rows.append(("primary skills", "", primary.reason))
    parse = case.scores["parse_accuracy"]
    if parse.score < 1:
        rows.append(("parse", "", parse.reason))
    proposals = case.scores["new_skill_precision"]
    if proposals.score < 1:
        rows.append(("new skills", ", ".join(exp.new_skills) or "none", proposals.reason))
    return rows


def _differing(run: EvalRun) -> list[CaseRun]:
    """First-repeat cases that are not perfect on every metric (failed ones first)."""
    cases = [c for c in run.cases if c.repeat == 0 and (not c.passed or any(v.score < 1 for v in c.scores.values()))]
    return sorted(cases, key=lambda c: (c.passed, c.id))


def _baseline_value(baseline: Baseline | None, name: str) -> float | None:
    return baseline.metrics.get(name) if baseline else None


def markdown_report(run: EvalRun, baseline: Baseline | None = None, failures: list[str] | None = None) -> str:
    c = run.config
    out = [
        f"# jdgraph eval: {c.suite} ({c.mode})",
        "",
        f"- suite: `{c.suite_path}` sha256 `{c.suite_sha256[:12]}`, {int(run.totals.get('cases', 0))} cases"
        f" x {c.repeat} repeat(s)",
        f"- models: {', '.join(f'{k}={v}' for k, v in c.models.items())}",
        f"- prompts: {', '.join(f'{k}@{v}' for k, v in c.prompt_versions.items())}"
        + (f" (from `{c.prompts_dir}`)" if c.prompts_dir else ""),
        f"- cost ${run.totals.get('cost_usd', 0):.4f}, mean latency {run.totals.get('latency_ms_mean', 0):.0f} ms/case,"
        f" wall {run.totals.get('wall_s', 0):.1f} s, {int(run.totals.get('llm_calls', 0))} LLM calls",
        "",
        "| metric | value | threshold | baseline | Δ | spread (min–max) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, m in run.metrics.items():
        base = _baseline_value(baseline, name)
        delta = "" if base is None else f"{m.value - base:+.3f}"
        spread = f"{m.min:.3f}–{m.max:.3f} (sd {m.std:.3f})" if c.repeat > 1 else ""
        flag = " ❌" if m.below_threshold else ""
        out.append(f"| {name}{flag} | {m.value:.3f} | {m.threshold:.2f} | {_fmt(base)} | {delta} | {spread} |")
    if run.judge_metrics:
        out += ["", f"LLM judge ({c.judge}, informational): "]
        out += [f"- {name}: {value:.3f}" for name, value in run.judge_metrics.items()]
    if failures is not None:
        out += ["", "## Gate", ""]
        out += ["PASS"] if not failures else [f"FAIL\n\n```\n{chr(10).join(failures)}\n```"]
    if run.unrecorded:
        out += ["", "## Missing recordings", ""]
        out += [f"- {p} has no recording for {n} cases; re-record with a model" for p, n in run.unrecorded.items()]
    if c.repeat > 1:
        out += ["", "## Pass rate per case", "", "| case | pass rate |", "| --- | ---: |"]
        out += [f"| {i} | {r:.2f} |" for i, r in sorted(run.pass_rates.items(), key=lambda x: x[1])]
    differing = _differing(run)
    failed = sum(1 for case in differing if not case.passed)
    out += ["", f"## Cases with differences ({len(differing)}, {failed} below a per-case threshold)", ""]
    if not differing:
        out.append("None.")
    for case in differing:
        mark = "" if case.passed else " ❌"
        out += [f"### {case.id}{mark}", "", "| field | expected | got |", "| --- | --- | --- |"]
        out += [f"| {f} | {e} | {g} |" for f, e, g in case_diff(case)]
        out.append("")
    out += ["", "## Latency per node (mean ms)", "", "| node | ms |", "| --- | ---: |"]
    out += [f"| {n} | {ms:.1f} |" for n, ms in sorted(run.node_ms_mean.items(), key=lambda x: -x[1])]
    if run.cost_by_node:
        out += ["", "## LLM cost per node (USD, all cases)", "", "| node | cost |", "| --- | ---: |"]
        out += [f"| {n} | {v:.5f} |" for n, v in sorted(run.cost_by_node.items(), key=lambda x: -x[1])]
    return "\n".join(out) + "\n"


def _bars(values: dict[str, float], *, maximum: float | None = None, width: int = 520, fmt: str = "{:.3f}") -> str:
    if not values:
        return "<p>No data.</p>"
    top = maximum or max(values.values()) or 1.0
    row, label_w = 22, 170
    parts = [f'<svg width="{width + label_w + 70}" height="{row * len(values) + 6}" role="img">']
    for i, (name, value) in enumerate(values.items()):
        y = i * row + 3
        w = max(1, int(width * min(value, top) / top))
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{html.escape(name)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w}" height="16" fill="#4a7bd0"/>')
        parts.append(f'<text x="{label_w + w + 6}" y="{y + 13}" font-size="12">{fmt.format(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _confusion(run: EvalRun) -> str:
    pairs = Counter(
        ((c.expected.role or c.expected.route), (c.output.chosen_role if c.output else "error") or "none")
        for c in run.scored_cases(repeat=0)
        if c.output is None or c.output.status != "rejected" or c.expected.route != "rejected"
    )
    wrong = {k: v for k, v in pairs.items() if k[0] != k[1]}
    right = sum(v for k, v in pairs.items() if k[0] == k[1])
    rows = "".join(
        f"<tr><td>{html.escape(e)}</td><td>{html.escape(g)}</td><td>{n}</td></tr>"
        for (e, g), n in sorted(wrong.items(), key=lambda x: -x[1])
    )
    return (
        f"<p>{right} cases on the diagonal (expected role chosen).</p>"
        "<table><tr><th>expected</th><th>chosen</th><th>cases</th></tr>"
        f"{rows or '<tr><td colspan=3>none off the diagonal</td></tr>'}</table>"
    )


def html_report(run: EvalRun, baseline: Baseline | None = None, failures: list[str] | None = None) -> str:
    c = run.config
    metric_rows = "".join(
        f"<tr class='{'bad' if m.below_threshold else ''}'><td>{n}</td><td>{m.value:.3f}</td>"
        f"<td>{m.threshold:.2f}</td><td>{_fmt(_baseline_value(baseline, n))}</td>"
        f"<td>{'' if c.repeat == 1 else f'{m.min:.3f}–{m.max:.3f}'}</td></tr>"
        for n, m in run.metrics.items()
    )
    cases_html = []
    for case in _differing(run):
        rows = "".join(
            f"<tr><td>{html.escape(f)}</td><td>{html.escape(e)}</td><td>{html.escape(g)}</td></tr>"
            for f, e, g in case_diff(case)
        )
        cases_html.append(
            f"<details><summary class='{'' if case.passed else 'bad'}'>{html.escape(case.id)}"
            f"{'' if case.passed else ' (below a per-case threshold)'}</summary>"
            f"<table><tr><th>field</th><th>expected</th><th>got</th></tr>{rows}</table></details>"
        )
    gate = ""
    if failures is not None:
        gate = "<h2>Gate</h2>" + (
            "<p class='ok'>PASS</p>"
            if not failures
            else f"<pre class='bad'>{html.escape(chr(10).join(failures))}</pre>"
        )
    prompts = ", ".join(f"{k}@{v}" for k, v in c.prompt_versions.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>jdgraph eval {html.escape(c.suite)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}.bad{{color:#a00}}.ok{{color:#070}}
details{{margin:4px 0}}</style></head><body>
<h1>jdgraph eval: {html.escape(c.suite)} ({c.mode})</h1>
<p>suite sha256 {c.suite_sha256[:12]} · {int(run.totals.get("cases", 0))} cases × {c.repeat} ·
models {html.escape(", ".join(f"{k}={v}" for k, v in c.models.items()))} · prompts {html.escape(prompts)} ·
cost ${run.totals.get("cost_usd", 0):.4f} · mean latency {run.totals.get("latency_ms_mean", 0):.0f} ms</p>
{gate}
<h2>Metrics</h2><table><tr><th>metric</th><th>value</th><th>threshold</th><th>baseline</th><th>spread</th></tr>
{metric_rows}</table>
{_bars({n: m.value for n, m in run.metrics.items()}, maximum=1.0)}
<h2>Role confusion</h2>{_confusion(run)}
<h2>Latency per node (mean ms)</h2>{_bars(dict(sorted(run.node_ms_mean.items())), fmt="{:.1f}")}
<h2>LLM cost per node (USD)</h2>{_bars(dict(sorted(run.cost_by_node.items())), fmt="{:.5f}")}
<h2>Cases with differences ({len(cases_html)})</h2>{"".join(cases_html) or "<p>None.</p>"}
</body></html>
"""


def comparison_markdown(cmp: Comparison, a_label: str, b_label: str) -> str:
    out = [
        f"# compare {a_label} → {b_label} ({cmp.suite}, {cmp.cases} paired cases)",
        "",
        "| metric | A | B | Δ | 95% CI (paired bootstrap) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, d in cmp.metrics.items():
        sig = " *" if d.ci_low > 0 or d.ci_high < 0 else ""
        out.append(f"| {name} | {d.a:.3f} | {d.b:.3f} | {d.delta:+.3f}{sig} | [{d.ci_low:+.3f}, {d.ci_high:+.3f}] |")
    out += [
        "",
        f"cost: ${cmp.cost_usd[0]:.4f} → ${cmp.cost_usd[1]:.4f}; "
        f"mean latency {cmp.latency_ms_mean[0]:.0f} → {cmp.latency_ms_mean[1]:.0f} ms",
        "",
        "## Flipped cases",
        "",
    ]
    if not cmp.flipped:
        out.append("None.")
    for f in cmp.flipped:
        out.append(f"- **{f['id']}** ({f['direction']}): " + "; ".join(f"{k} {v}" for k, v in f["changes"].items()))
    return "\n".join(out) + "\n"


# -- dev suites (real data against ESCO) -------------------------------------------------------------------------
def reliability_diagram_png(confidences: list[float], correct: list[bool], *, bins: int = 10) -> bytes:
    """Confidence vs accuracy per equal-width bin, with the diagonal and each bin's share of cases, as a PNG."""
    import matplotlib  # deferred: matplotlib takes over a second to import, and only this diagram draws

    matplotlib.use("Agg")  # no display; never pick an interactive backend
    import matplotlib.pyplot as plt  # deferred: only once the backend above is chosen

    data = reliability_bins(confidences, correct, bins)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 5.6), height_ratios=[3, 1], sharex=True)
    width = 1 / bins
    top.plot([0, 1], [0, 1], "--", color="#888", linewidth=1, label="perfect calibration")
    top.bar([b.low for b in data], [b.accuracy for b in data], width=width, align="edge", color="#4a7bd0",
            edgecolor="white", label="accuracy")  # fmt: skip
    top.plot([b.mean_confidence for b in data], [b.accuracy for b in data], "o", color="#d0554a",
             label="mean confidence")  # fmt: skip
    ece = expected_calibration_error(confidences, correct, bins)
    top.set(ylim=(0, 1), ylabel="accuracy (top-1)", title=f"Reliability diagram, ECE {ece:.3f}")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar([b.low for b in data], [b.cases for b in data], width=width, align="edge", color="#999",
               edgecolor="white")  # fmt: skip
    bottom.set(xlim=(0, 1), xlabel="confidence", ylabel="cases")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _dev_misses(run: DevRun, limit: int = 60) -> list[DevCase]:
    return [c for c in run.results if c.error or not case_correct(c)][:limit]


def dev_markdown_report(run: DevRun) -> str:
    out = [
        f"# jdgraph dev suite: {run.suite}",
        "",
        f"- data: `{run.data}` ({run.data_source})",
        f"- catalog: `{run.catalog}` ({', '.join(f'{k} {v}' for k, v in run.catalog_sources.items())})",
        f"- {run.cases} cases ({run.selection}), wall {run.wall_s:.1f} s",
        "",
        "| metric | value |",
        "| --- | ---: |",
        *[f"| {name} | {value:.3f} |" for name, value in run.metrics.items()],
    ]
    misses = _dev_misses(run)
    if misses and run.suite != "skillspan-dev":
        out += ["", f"## First {len(misses)} cases whose top answer is not expected", "",
                "| case | expected | got (top 3) |", "| --- | --- | --- |"]  # fmt: skip
        for case in misses:
            want = case.detail.get("expected_label") or ", ".join(case.expected)
            got = case.error or ", ".join(case.ranked[:3])
            out.append(f"| {case.id} | {want} | {got} |".replace("\n", " "))
    return "\n".join(out) + "\n"


def dev_html_report(run: DevRun) -> str:
    esc = html.escape
    metric_rows = "".join(f"<tr><td>{esc(n)}</td><td>{v:.3f}</td></tr>" for n, v in run.metrics.items())
    scored = [c for c in run.results if c.confidence is not None]
    diagram = ""
    if scored:
        png = reliability_diagram_png([c.confidence or 0.0 for c in scored], [case_correct(c) for c in scored])
        diagram = (
            "<h2>Calibration</h2><p>The chosen role's confidence against top-1 accuracy, 10 equal-width bins; "
            f"ECE {run.metrics.get('ece', 0.0):.3f} over {len(scored)} cases.</p>"
            f'<img alt="reliability diagram" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        )
    misses = _dev_misses(run)
    rows = "".join(
        f"<tr><td>{esc(c.id)}</td><td>{esc(str(c.detail.get('title') or c.detail.get('sentence') or ''))[:200]}</td>"
        f"<td>{esc(str(c.detail.get('expected_label') or ', '.join(c.expected)))}</td>"
        f"<td>{esc(c.error or ', '.join(c.ranked[:3]))}</td>"
        f"<td>{'' if c.confidence is None else f'{c.confidence:.2f}'}</td></tr>"
        for c in misses
    )
    sources = esc(", ".join(f"{k} {v}" for k, v in run.catalog_sources.items()))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>jdgraph dev suite {esc(run.suite)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}}</style></head><body>
<h1>jdgraph dev suite: {esc(run.suite)}</h1>
<p>data <code>{esc(run.data)}</code> ({esc(run.data_source)}) · catalog {esc(run.catalog)} ({sources}) ·
{run.cases} cases ({esc(run.selection)}) · wall {run.wall_s:.1f} s</p>
<h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>{metric_rows}</table>
{diagram}
<h2>Misses (first {len(misses)})</h2>
<table><tr><th>case</th><th>input</th><th>expected</th><th>got (top 3)</th><th>confidence</th></tr>{rows}</table>
</body></html>
"""
