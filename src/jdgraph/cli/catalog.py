"""``jdgraph catalog``: load the starter catalog, import ESCO or O*NET, count it, search it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table
from rich.text import Text

from jdgraph.cli.common import (
    CatalogOption,
    console,
    err_console,
    handle_errors,
    noted_catalog,
    open_catalog,
    read_file,
    stage_bars,
)
from jdgraph.errors import InputError
from jdgraph.terminal import cell, print_wrapped, progress_line, safe

catalog_app = typer.Typer(help="The skills-and-roles catalog.", no_args_is_help=True)


@catalog_app.command("init")
@handle_errors
def catalog_init(force: Annotated[bool, typer.Option(help="Reload even if unchanged.")] = False) -> None:
    """Load the starter catalog (idempotent)."""
    _import("starter", None, "starter", only=(), force=force)


@catalog_app.command("import")
@handle_errors
def catalog_import(
    source: Annotated[
        Literal["esco", "onet", "titles"],
        typer.Argument(help="Which taxonomy the files are; titles: coded vacancy titles (title,occupation_uri CSV)."),
    ],
    path: Annotated[
        Path, typer.Argument(help="A folder, or ESCO's official zip (a folder holding both zips), or the titles CSV.")
    ],
    catalog: CatalogOption = None,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Import a slice: ISCO code prefix (ESCO) or O*NET-SOC prefix (O*NET); repeatable."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Run the full merge even if the files are unchanged.")] = False,
) -> None:
    """Import ESCO or O*NET into a catalog (default: one named after the source), or coded vacancy titles into an
    ESCO catalog (default: esco) as examples that vote for their occupation. Re-importing the same files changes
    nothing; a new release changes and re-embeds only what changed."""
    _import(source, path, catalog or ("esco" if source == "titles" else source), only=tuple(only or ()), force=force)


@catalog_app.command("reembed")
@handle_errors
def catalog_reembed(catalog: CatalogOption = None) -> None:
    """Re-embed a catalog with the configured encoder (JDGRAPH_EMBEDDINGS; the shipped tuned one by default): what
    a catalog made with another model needs, e.g. after the default changed from minilm. One transaction; reviewed
    aliases, runs and the review queue are kept."""
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    with stage_bars(lines=True) as progress:
        done = service.reembed(catalog, progress=progress)
    console.print(
        f"re-embedded catalog [bold]{done.catalog}[/] ({done.texts} texts, {done.seconds:.1f}s): "
        f"{done.previous_model} → {done.model}; observed role centroids reset to their titles and KRAs: "
        f"{done.observed_centroids_reset}",
        highlight=False,
    )


def _import(
    source: Literal["starter", "esco", "onet", "titles"],
    path: Path | None,
    name: str,
    *,
    only: tuple[str, ...],
    force: bool,
) -> None:
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    with stage_bars(lines=True) as progress:
        done = service.import_taxonomy(source, path, name=name, only=only, force=force, progress=progress)
    report = done.report
    for note in report.notes:
        err_console.print(f"[yellow]note:[/] {safe(note)}", highlight=False)
    if report.skipped:
        console.print(
            f"{done.version} is already imported into catalog [bold]{name}[/] (unchanged files; --force to re-check)"
        )
    else:
        changed = ", ".join(f"{k}={v}" for k, v in report.changed.items() if v) or "nothing"
        removed = ", ".join(f"{k}={v}" for k, v in report.removed.items() if v) or "nothing"
        console.print(
            f"imported {done.version} into catalog [bold]{name}[/] in {report.seconds:.1f}s: changed {changed}; "
            f"removed {removed}; embedded {report.embedded} texts",
            highlight=False,
        )
    _print_stats(done.stats.model_dump())


def _print_stats(stats: dict[str, Any]) -> None:
    # A centred title is padded with spaces to the width, which a pipe keeps: the title starts the line instead.
    table = Table(title="catalog", show_header=False, title_justify="default")
    for key, value in stats.items():
        table.add_row(cell(key), cell(value))
    console.print(table)


@catalog_app.command("stats")
@handle_errors
def catalog_stats(
    catalog: CatalogOption = None, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Counts of skills, aliases, dimensions, roles, KRAs, links, reviews and runs."""
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    stats = service.stats(open_catalog(catalog)).model_dump()
    if as_json:
        print(json.dumps(stats, indent=2))
    else:
        _print_stats(stats)


@catalog_app.command("search")
@handle_errors
def catalog_search(
    query: Annotated[str | None, typer.Argument(help="A skill name, job title or text.")] = None,
    kind: Annotated[Literal["skill", "role"], typer.Option(help="What to search.")] = "skill",
    top: Annotated[int, typer.Option(min=1, max=100, help="How many candidates.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    batch: Annotated[
        Path | None, typer.Option(help='JSONL file of {"id", "query"} lines; one JSON result line each.')
    ] = None,
    catalog: CatalogOption = None,
) -> None:
    """Search the catalog for skills or roles."""
    from jdgraph.api import search  # deferred: the API loads langgraph (seconds) that --help must not wait for

    if batch is not None:
        noted_catalog(catalog)
        _search_batch(catalog, batch, kind, top)
        return
    if query is None or not query.strip():
        raise InputError("the query is empty: give a skill name, a title or some text")
    noted_catalog(catalog)
    progress_line(err_console, "searching…")
    results = search(query, kind=kind, top=top, catalog=catalog)
    if as_json:
        print(json.dumps({"query": query, "kind": kind, "candidates": results}, indent=2))
        return
    # Two lines a candidate, not a table: a table squeezed into 80 columns cut slugs ("systems-software-e…"), and
    # the slug is what `review approve --as-alias-of` takes. The slug's line is never wrapped or cut; the name and
    # how it matched wrap under it.
    console.print(f"{kind} candidates for {safe(repr(query))}", highlight=False)
    console.print("[bold]  #  score  slug[/]", highlight=False)
    console.print("[bold]           display name · via / evidence[/]", highlight=False)
    for i, r in enumerate(results, 1):
        if kind == "skill":
            detail = f"{r['match_via']} ({r['alias']})"
        else:
            ev = r["evidence"]
            detail = (
                f"title {ev.get('title_alias')} {ev.get('title_similarity', 0):.2f}, "
                f"kra {ev.get('kra_similarity', 0):.2f}"
            )
        console.print(Text(f"{i:>3}  {r['score']:.3f}  ") + cell(r["slug"]), soft_wrap=True, highlight=False)
        print_wrapped(console, cell(f"{r['display_name']} · {detail}"), indent=11, hang=13)


def _search_batch(catalog: str | None, path: Path, kind: Literal["skill", "role"], top: int) -> None:
    """Like `classify --batch`: every line is read and checked first; a bad line becomes an output line
    {"line", "error"} where it was, the others are searched, and the exit status says if any failed."""
    from jdgraph.api import search  # deferred: the API loads langgraph (seconds) that --help must not wait for

    entries: list[tuple[int, Any]] = []
    for n, raw in enumerate(read_file(path, "batch file ").split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw.decode("utf-8"))
            if not isinstance(item, dict) or "id" not in item or not isinstance(item.get("query"), str):
                raise ValueError("expected a JSON object with 'id' and a string 'query'")
            entries.append((n, (item["id"], item["query"])))
        except (UnicodeDecodeError, ValueError) as exc:
            entries.append((n, f"line {n}: {exc}"))
    failed = 0
    for n, entry in entries:
        if isinstance(entry, str):
            failed += 1
            out: dict[str, Any] = {"line": n, "error": entry}
        else:
            query_id, query = entry
            try:
                out = {"id": query_id, "candidates": search(query, kind=kind, top=top, catalog=catalog)}
            except InputError as exc:
                failed += 1
                out = {"id": query_id, "line": n, "error": exc.message, "candidates": []}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    if failed:
        err_console.print(f"[yellow]{failed} of {len(entries)} lines failed; their output lines carry an 'error'[/]")
        raise typer.Exit(1)
