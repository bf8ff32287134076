"""``jdgraph runs``: past runs, listed and shown as the reference run page shows them (``classify`` prints its
result the same way)."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from jdgraph.cli.common import CatalogOption, console, handle_errors, open_catalog
from jdgraph.errors import NotFoundError
from jdgraph.terminal import plain, print_wrapped, safe

if TYPE_CHECKING:
    from jdgraph.graph.schemas import ClassificationResult
    from jdgraph.runview import RunPage

runs_app = typer.Typer(help="Past runs.", no_args_is_help=True)


@runs_app.command("list")
@handle_errors
def runs_list(limit: Annotated[int, typer.Option(min=1, max=500)] = 20, catalog: CatalogOption = None) -> None:
    """The most recent runs."""
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    rows = service.list_runs(open_catalog(catalog), limit)
    # Two lines a run, not a table: the whole id (what `runs show` takes) and the title stay readable at 80
    # columns, where a six-column table cut both. The header names both lines' columns.
    if not rows:
        console.print("no runs yet")
        return
    console.print(f"[bold]{'run id':<36}  {'status':<9}  conf  created[/]", highlight=False)
    console.print("[bold]    title → chosen role[/]", highlight=False)
    for r in rows:
        console.print(
            f"[bold]{r['run_id']}[/]  {r['status']:<9}  {r['confidence'] or 0:.2f}  "
            f"{r['created_at'].astimezone(UTC).strftime('%Y-%m-%d %H:%M')} UTC",
            highlight=False,
        )
        role = r["chosen_role"] or "no catalog role"
        print_wrapped(console, f"{safe(r['title'] or '(untitled)')} → {safe(role)}", indent=4, hang=6)


@runs_app.command("show")
@handle_errors
def runs_show(
    run_id: Annotated[str, typer.Argument(help="A run id, or its first characters (4 or more)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    no_text: Annotated[bool, typer.Option("--no-text", help="Leave out the stored JD text.")] = False,
    catalog: CatalogOption = None,
) -> None:
    """One run, as the reference run page shows it."""
    # deferred: the catalog service and the result schemas load psycopg and langchain_core (2 s), not for --help
    from jdgraph.catalog import service
    from jdgraph.graph.schemas import ClassificationResult
    from jdgraph.runview import RunPage

    key, record = service.run_record(open_catalog(catalog), run_id)
    if record is None or record["result"] is None:
        raise NotFoundError(f"no run {key}", kind="run", key=key)
    result = ClassificationResult.model_validate(record["result"])
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        page = RunPage(result, record["jd_text"], record["created_at"], record["updated_at"])
        print_result(result, page, show_text=not no_text)


def print_result(r: ClassificationResult, page: RunPage | None = None, *, show_text: bool = False) -> None:
    """A run as the reference run page shows it, in text that wraps at the terminal's width (80 columns and up):
    lists of lines, not tables squeezed into unreadable columns."""
    # deferred: the run page's helpers load the graph's schemas (langchain_core, 2 s) that --help must not wait for
    from jdgraph.runview import (
        RunPage,
        clip,
        evidence_window,
        llm_cost_text,
        persistence_lines,
        timings_text,
        years_text,
    )

    page = page or RunPage(r)
    width = max(60, min(console.width, 120))
    d = r.decision

    def line(text: str, indent: int = 0, hang: int | None = None) -> None:
        # Continuation lines hang under their first line (a label's value under the value), never at column 0.
        print_wrapped(console, text, indent=indent, hang=hang, width=width)

    def field(label: str, value: str) -> None:
        line(f"{label:<17}{value}", 2, hang=2 + 17)

    def heading(text: str) -> None:
        console.print(f"\n[bold]{text}[/]", highlight=False)

    line(f"[bold]run[/] {r.run_id}  status: {r.status}  route: {d.route}")
    if page.created_at and page.updated_at:  # both stored with the run, or neither (a fresh result)
        line(
            f"created {page.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC · updated "
            f"{page.updated_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        )
    for w in r.warnings:
        line(f"[yellow]warning:[/] {safe(w)}")
    if r.status == "rejected":
        line(f"rejected: {safe(r.parsed.reject_reason)}")
        return
    heading("Role")
    if d.chosen_role.slug is None:
        near = d.nearest_role
        line(
            "none of the catalog's roles fits"
            + (f" (nearest: {safe(near.display_name)} ({safe(near.slug)}), score {near.score:.3f})" if near else "")
        )
    else:
        line(
            f"{safe(d.chosen_role.display_name)} ({safe(d.chosen_role.slug)}) · score {d.chosen_role.score:.3f} · "
            f"confidence {d.confidence:.2f}"
        )
    line(
        f"decided by {d.decided_by}"
        + (f"; adjudicated because {safe(d.llm2_reason)}" if d.llm2_reason else "")
        + ("; the adjudicator model answered" if d.llm2_fired else "")
    )
    line(safe(d.reasoning), 2)
    if d.new_role_flag:
        line(f"[yellow]new-role flag:[/] {safe(d.new_role_flag)}", 2)
    if d.alternatives:
        line("alternatives: " + ", ".join(f"{safe(a.slug)} {a.score:.3f}" for a in d.alternatives), 2)
    heading("Role signals (fused = title · KRA · skills · centroid)")
    for x in r.role_signals[:5]:
        line(
            f"{safe(x.slug)}  {x.score:.3f} = title {x.title_similarity:.2f} · KRA {x.kra_similarity:.2f} · "
            f"skills {x.skill_overlap:.2f} ({len(x.matched_skills)}) · centroid {x.centroid_similarity:.2f}",
            2,
        )
    if page.matched_kras:
        heading("Matched KRAs")
        for kra, _sentence, sim in page.matched_kras:
            line(f"{sim:.2f}  {safe(kra)}", 2)
    p = r.parsed
    heading("Parsed")
    locs = "; ".join(
        f"{(loc.city + ', ') if loc.city else ''}{loc.country or '?'} ({loc.iso_code or '-'}, {loc.work_mode or '-'})"
        for loc in p.job_locations
    )
    for label, value in (
        ("title", p.role),
        ("company", p.company_name),
        ("locations", locs),
        ("experience", f"{years_text(r)} years" if years_text(r) else None),
        ("salary", (p.salary.raw or f"{p.salary.min}-{p.salary.max} {p.salary.currency}") if p.salary else None),
        ("education", "; ".join(p.education)),
        ("certifications", "; ".join(p.certifications)),
        ("domain", p.domain.primary.domain if p.domain and p.domain.primary else None),
        ("responsibilities", f"{len(p.roles_and_responsibilities)} section(s)"),
    ):
        field(label, safe(value or "-"))
    if r.enrichment:
        e = r.enrichment
        heading("Enrichment")
        field("nature of work", safe(e.nature_of_work))
        if e.nature_of_work_evidence:
            line(f"“{safe(clip(e.nature_of_work_evidence, width - 6))}”", 4)
        field("tech stack", f"{safe(e.tech_stack_maturity)}: {safe(e.tech_stack_reasoning)}")
        field("AI index", f"{e.ai_index:.2f} / 5")
        for cluster, names in e.skill_clusters.items():
            field("cluster", f"{safe(cluster)}: {safe(', '.join(names))}")
    heading(f"Skills ({len(page.listed_skills)})")
    for sk in page.listed_skills:
        canonical = f" → {safe(sk.canonical_slug)}" if sk.canonical_slug else " (new)"
        dims = f" · {safe(', '.join(x.name for x in sk.dimensions))}" if sk.dimensions else ""
        line(
            f"{'*' if sk.is_primary else '-'} {safe(sk.name)}{canonical} · {sk.match_via} {sk.score:.2f}{dims}",
            2,
        )
        if sk.evidence:
            line(f"“{safe(evidence_window(sk, width - 8))}”", 4, hang=5)
    if page.unmatched_names:
        line(
            f"also asked for, no catalog skill ({len(page.unmatched_names)}): " + safe("; ".join(page.unmatched_names)),
            2,
            hang=4,
        )
    if page.dimensions:
        line("dimensions: " + safe(" · ".join(page.dimensions)), 2)
    heading(f"Captured for review ({len(r.queued)})")
    for q in r.queued:
        line(f"{q.kind}: {safe(clip(q.key, width - 20))}", 2)
    heading("Post-classification")
    for kind, item, outcome in persistence_lines(r.persistence):
        line(f"{kind}: {safe(clip(item, 50))} → {safe(outcome)}", 2)
    heading(f"LLM calls ({len(r.llm_calls)}): {llm_cost_text(r)}")
    for c in r.llm_calls:
        line(
            f"{c.seq}. {c.node} · {safe(c.model)} · {c.prompt_name}@{c.prompt_version}"
            f"{' · ' + c.method if c.method else ''} · {c.input_tokens}/{c.output_tokens} tokens · "
            f"${c.cost_usd:.4f} · {c.latency_ms:.0f} ms · {c.outcome}",
            2,
        )
        if c.error:
            line(f"[red]{safe(clip(c.error, 2 * width))}[/]", 5)
    heading("Timings")
    line(timings_text(r.node_timings_ms), 2)
    if show_text and page.jd_text:
        heading("Job description")
        print_wrapped(console, Text(plain(page.jd_text)), hang=2, width=width)
