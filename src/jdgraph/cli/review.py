"""``jdgraph review``: the human review queue from the terminal (the web page, ``jdgraph ui``, does the same)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from jdgraph.cli.common import CatalogOption, ReviewerOption, console, handle_errors, open_catalog, reviewer_name
from jdgraph.terminal import print_wrapped, safe

review_app = typer.Typer(
    help="Review what runs proposed: new skills, aliases, KRAs, roles and links. Nothing a JD proposes reaches "
    "the catalog until it is approved here (or on the web page).",
    no_args_is_help=True,
)


def _print_outcome(outcome: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(outcome.__dict__, default=str))
        return
    mark = "[green]done[/]" if outcome.changed else "[yellow]no change[/]"
    console.print(f"{mark} item {outcome.item_id}: {safe(outcome.message)}", highlight=False)


@review_app.command("list")
@handle_errors
def review_list(
    kind: Annotated[
        str | None,
        typer.Option(help="new_skill, new_alias, new_kra, new_role, new_link or quarantine (runs held for injection)."),
    ] = None,
    status: Annotated[str, typer.Option(help="pending, approved, rejected, merged or all.")] = "pending",
    search: Annotated[str | None, typer.Option(help="Only items whose key or payload contains this text.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array of items.")] = False,
    catalog: CatalogOption = None,
) -> None:
    """Items, most frequently proposed first."""
    # deferred: the catalog service and the run page's helpers load psycopg and langchain_core (2 s), not for --help
    from jdgraph.catalog import service
    from jdgraph.runview import clip

    queue = service.review_queue(open_catalog(catalog))
    items = queue.list(kind=kind, status=None if status == "all" else status, search=search, limit=limit)
    if as_json:
        print(json.dumps([i.as_dict() for i in items]))
        return
    if not items:
        console.print(f"no {status if status != 'all' else ''} review items".replace("  ", " "))
        return
    # Two lines an item (like `runs list`): the id and what it is, then the evidence, readable at 80 columns: what
    # wraps hangs under its column.
    console.print(f"[bold]{'id':>5}  {'kind':<10}  {'seen':<4} {'status':<8}  proposed[/]", highlight=False)
    for i in items:
        print_wrapped(
            console, f"[bold]{i.id:>5}[/]  {i.kind:<10}  ×{i.occurrences:<3} {i.status:<8}  {safe(i.label)}", hang=34
        )
        if i.evidence and i.kind != "new_kra":
            print_wrapped(console, f"[dim]“{safe(clip(i.evidence, 140))}”[/]", indent=7, hang=8)
    counts = queue.counts()
    console.print("pending: " + (", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "none"), highlight=False)


@review_app.command("show")
@handle_errors
def review_show(
    item_id: Annotated[int, typer.Argument(help="The item's id (from `review list`).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    catalog: CatalogOption = None,
) -> None:
    """One item: the proposal, its evidence, the runs that proposed it and its audit trail."""
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    item = service.review_queue(open_catalog(catalog)).get(item_id)
    if as_json:
        print(json.dumps(item.as_dict()))
        return
    console.print(f"[bold]item {item.id}[/]  {item.kind}  status: {item.status}", highlight=False)
    print_wrapped(console, f"  proposed: {safe(item.label)}", hang=4)
    print_wrapped(console, f"  key: {safe(item.key)}   seen {item.occurrences} time(s)", hang=4)
    findings = (item.payload.get("findings") or []) if item.kind == "quarantine" else []
    for f in findings:  # a quarantined run: what held it, quoted (the terminal strips control characters)
        how = f" ({', '.join(f['how'])})" if f.get("how") else ""
        snippet = " ".join(str(f["snippet"]).split())
        console.print(f"  held for {safe(str(f['family']) + how)}: “{safe(snippet)}”", highlight=False)
    for k, v in item.payload.items():
        if v in (None, "", []) or k in ("evidence", "findings"):
            continue
        shown = ", ".join(map(str, v)) if isinstance(v, list) else json.dumps(v) if isinstance(v, dict) else v
        print_wrapped(console, f"  {k}: {safe(shown)}", hang=4)
    if item.evidence:
        print_wrapped(console, f"  evidence: “{safe(' '.join(item.evidence.split()))}”", hang=4)
    if item.decided_by:
        console.print(
            f"  decided: {item.status} by {safe(item.decided_by)} at {item.decided_at:%Y-%m-%d %H:%M} UTC"
            + (f" → {safe(json.dumps(item.decision))}" if item.decision else ""),
            highlight=False,
        )
    if item.runs:
        more = f" (the newest {len(item.runs)} of {item.runs_total})" if item.runs_total > len(item.runs) else ""
        console.print(f"  proposed by runs{more}:", highlight=False)
        for r in item.runs:
            print_wrapped(
                console,
                f"    {r['run_id']}  {safe(r['title'] or '(untitled)')} → {safe(r['chosen_role'] or '-')}",
                hang=8,
            )
    for a in item.audit:
        console.print(
            f"  audit: {a['action']} by {safe(a['reviewer'])} at {a['created_at']:%Y-%m-%d %H:%M} UTC",
            highlight=False,
        )


@review_app.command("approve")
@handle_errors
def review_approve(
    item_id: Annotated[int, typer.Argument()],
    as_alias_of: Annotated[
        str | None, typer.Option("--as-alias-of", help="Attach as an alias of this existing skill (or role) slug.")
    ] = None,
    role: Annotated[
        str | None, typer.Option(help="The role to attach to: a KRA's role, a new skill's role, a title's role.")
    ] = None,
    rename: Annotated[str | None, typer.Option(help="Approve under this name/text instead.")] = None,
    reviewer: ReviewerOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    catalog: CatalogOption = None,
) -> None:
    """Apply the proposal to the catalog (one transaction, audited). Approving twice changes nothing."""
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    outcome = service.review_queue(open_catalog(catalog)).approve(
        item_id,
        reviewer=reviewer_name(reviewer),
        as_alias_of=as_alias_of,
        role=role,
        rename=rename,
    )
    _print_outcome(outcome, as_json)


@review_app.command("reject")
@handle_errors
def review_reject(
    item_id: Annotated[int, typer.Argument()],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")],
    reviewer: ReviewerOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    catalog: CatalogOption = None,
) -> None:
    """Close the item; later runs that propose it again never re-open it."""
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    outcome = service.review_queue(open_catalog(catalog)).reject(
        item_id, reviewer=reviewer_name(reviewer), reason=reason
    )
    _print_outcome(outcome, as_json)


@review_app.command("merge")
@handle_errors
def review_merge(
    item_id: Annotated[int, typer.Argument(help="The duplicate.")],
    into_id: Annotated[int, typer.Argument(help="The item it folds into (same kind, pending).")],
    reviewer: ReviewerOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    catalog: CatalogOption = None,
) -> None:
    """Fold a duplicate proposal into another: its runs and occurrences count there from now on."""
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    outcome = service.review_queue(open_catalog(catalog)).merge(item_id, into_id, reviewer=reviewer_name(reviewer))
    _print_outcome(outcome, as_json)
