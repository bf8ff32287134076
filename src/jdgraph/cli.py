"""The ``jdgraph`` command line: database, catalog, classification, runs and evaluation."""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from jdgraph.cli_help import HelpGroup
from jdgraph.errors import InputError, JdgraphError
from jdgraph.settings import LOCAL_MODEL_PORT
from jdgraph.terminal import cell, plain, print_wrapped, progress_line, safe

# A traceback never prints local variables: they hold database URLs with passwords, and JD text. HelpGroup names
# what each option takes in --help (SLUG, N), where typer would print <str> and <int range>.
app = typer.Typer(
    help="Resolve job descriptions against a skills-and-roles catalog.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    cls=HelpGroup,
)
db_app = typer.Typer(help="The catalog database: migrations and status.", no_args_is_help=True)
catalog_app = typer.Typer(help="The skills-and-roles catalog.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog")

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
CatalogOption = Annotated[
    str | None,
    typer.Option("--catalog", help="Which catalog: starter (default), esco, onet … (env JDGRAPH_CATALOG)."),
]


def _catalog(name: str | None) -> Any:
    """The named catalog (default: JDGRAPH_CATALOG, else starter), opened once per process. Opening it the first
    time builds the starter catalog (a minute or more on a slow machine): that shows as progress bars on stderr,
    or as lines where stderr is no terminal (a bar there printed nothing but a blank line)."""
    from jdgraph.catalog.registry import default_catalog_name, get_catalog

    with _stage_bars(lines=True) as progress:
        return get_catalog(name or default_catalog_name(), progress=progress)


@contextmanager
def _stage_bars(*, lines: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback (stage, done, total) that draws one bar a stage on stderr, gone when done; with
    ``lines``, where stderr is no terminal (a log, a pipe), one line a stage instead (see :func:`_stage_lines`)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if lines and not err_console.is_terminal:
        yield _stage_lines()
        return
    with Progress(
        TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True,
    ) as bar:  # fmt: skip
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        yield progress


STAGE_LINE_EVERY_S = 30.0
"""Within a long stage (embedding), a line at least this often, besides one per 10% of it."""


def _stage_lines() -> Callable[[str, int, int], None]:
    """A progress callback that prints a line per stage with its count, and within a long stage a line every 10%
    or every STAGE_LINE_EVERY_S seconds: a bar drawn to a log or a pipe would show nothing for half an hour."""
    import time

    start = time.monotonic()
    last: dict[str, tuple[int, float]] = {}  # stage -> (tenths of it printed, when)

    def progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        tenth = 10 * done // total if total else 0
        seen = last.get(stage)
        if seen is not None and (not total or (tenth <= seen[0] and now - seen[1] < STAGE_LINE_EVERY_S)):
            return  # a stage without a count says itself once
        last[stage] = (tenth, now)
        if not total:
            count = ""
        elif done == total:
            count = f": {done:,}"
        else:
            count = f": {done:,}/{total:,} ({100 * done // total}%)"
        err_console.print(f"[{now - start:6.1f}s] {stage}{count}", highlight=False, markup=False, soft_wrap=True)

    return progress


def handle_errors(func: F) -> F:
    """Map jdgraph errors to one red line on stderr and the error's exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except JdgraphError as exc:
            err_console.print(f"[bold red]error:[/] {safe(exc.message)}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EPIPE, errno.EDQUOT):
                raise
            # The output (a full disk, a closed pipe) failed, not the work: what was classified is saved. Stop
            # quietly, so a pipe's reader that left is not answered with a traceback.
            with suppress(OSError):
                err_console.print(
                    f"[bold red]error:[/] cannot write the output ({exc.strerror}); runs finished so far are saved: "
                    "`runs list` shows them, and `classify --batch FILE --resume` prints a batch without redoing it",
                    highlight=False,
                )
            with suppress(OSError):  # nothing more may be flushed at exit to the output that failed
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


# -- db -------------------------------------------------------------------------------------------------------
@db_app.command("migrate")
@handle_errors
def db_migrate(catalog: CatalogOption = None) -> None:
    """Apply pending schema migrations (a no-op when up to date)."""
    from jdgraph.catalog.db import Database
    from jdgraph.catalog.migrations import migrate
    from jdgraph.catalog.registry import catalog_schema, default_catalog_name, shared_embeddings
    from jdgraph.settings import DatabaseSettings

    db = Database(DatabaseSettings.from_env(schema=catalog_schema(catalog or default_catalog_name())))
    embedder = shared_embeddings()
    report = migrate(db, embedding_model=embedder.model_id, embedding_dim=embedder.dimension)
    applied = ", ".join(report.applied) if report.applied else "nothing to apply"
    console.print(f"schema [bold]{db.schema}[/] at version {report.version} ({applied}) on {db.display_url}")


@db_app.command("status")
@handle_errors
def db_status(
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    repair: Annotated[bool, typer.Option("--repair", help="Embed catalog texts that have no vector.")] = False,
) -> None:
    """Which server is in use, the schema version, row counts and the catalog's health (texts without a vector,
    left by an interrupted load; any command that opens the catalog, or --repair, embeds them)."""
    from jdgraph.catalog.checkpoints import checkpoint_health
    from jdgraph.catalog.db import Database
    from jdgraph.catalog.migrations import schema_version
    from jdgraph.catalog.queries import Catalog
    from jdgraph.catalog.registry import catalog_schema, default_catalog_name, shared_embeddings
    from jdgraph.catalog.writer import CatalogWriter, import_in_progress
    from jdgraph.errors import DatabaseLockTimeoutError
    from jdgraph.settings import DatabaseSettings

    name = catalog or default_catalog_name()
    # An import rebuilding an index holds its table until it commits: status says so rather than wait for it.
    db = Database(DatabaseSettings.from_env(schema=catalog_schema(name)), lock_timeout_s=STATUS_LOCK_TIMEOUT_S)
    info = db.server_info()
    version = schema_version(db)
    running = import_in_progress(db) if version else None
    counts: dict[str, int] = {}
    missing: dict[str, int] = {}
    writer = CatalogWriter(db, shared_embeddings())
    try:
        counts = Catalog(db, shared_embeddings(), name=name).row_counts() if version else {}
        missing = writer.missing_vectors_by_table() if version else {}
    except DatabaseLockTimeoutError:
        if running is None:
            raise
    without_vector: int = sum(missing.values())
    repaired = writer.embed_missing() if repair and without_vector > 0 and running is None else 0
    if repaired:
        missing = writer.missing_vectors_by_table()
        without_vector = sum(missing.values())
    health = "ok" if without_vector == 0 else "texts without a vector: run jdgraph db status --repair"
    if running is not None:
        # Counts are the last committed release's (none while a first import runs; none while a table is locked).
        health = f"being imported ({running.describe()})" + ("" if counts else "; row counts when it finishes")
    checkpoints = checkpoint_health(db, CHECKPOINT_TTL_DAYS) if version else {}
    status = {
        "server": info.url,
        "embedded": info.embedded,
        "postgres_version": info.version,
        "catalog": name,
        "schema": db.schema,
        "schema_version": version,
        "row_counts": counts,
        "missing_vectors": missing,
        "repaired": repaired,
        "health": health,
        "checkpoints": checkpoints,
        "import_in_progress": None
        if running is None
        else {"source": running.source, "stage": running.stage, "percent": running.percent},
    }
    if as_json:
        print(json.dumps(status, indent=2))
        return
    console.print(
        f"server: {info.url} ({'embedded' if info.embedded else 'DATABASE_URL'}, PostgreSQL {info.version})",
        highlight=False,
    )
    console.print(f"schema: {db.schema} at version {version}")
    for table, n in counts.items():
        console.print(f"  {table:<16} {n:>8}")
    if repaired:
        console.print(f"repaired: embedded {repaired} texts")
    if checkpoints:
        console.print(
            f"checkpoints: {checkpoints['threads']} run threads ({checkpoints['of_finished_runs']} of finished runs, "
            f"{checkpoints['stale']} unfinished for over {CHECKPOINT_TTL_DAYS:g} days: `jdgraph db prune-checkpoints`)",
            highlight=False,
        )
    console.print(f"health: {health}", highlight=False)


STATUS_LOCK_TIMEOUT_S = 2.0
"""How long `db status` waits for a table lock before it reports an import in progress instead of counts."""

CHECKPOINT_TTL_DAYS = 7.0
"""An unfinished run's checkpoints older than this are reported (and pruned by `db prune-checkpoints`)."""


@db_app.command("prune-checkpoints")
@handle_errors
def db_prune_checkpoints(
    catalog: CatalogOption = None,
    older_than_days: Annotated[
        float, typer.Option(min=0, help="Unfinished runs idle for longer than this are pruned too.")
    ] = CHECKPOINT_TTL_DAYS,
) -> None:
    """Delete checkpoints nothing will resume: those of finished runs, and of unfinished runs idle for longer than
    --older-than-days (a run killed and never resumed). Finished runs prune their own; this catches the rest."""
    from jdgraph.catalog.checkpoints import prune_checkpoints
    from jdgraph.catalog.db import Database
    from jdgraph.catalog.registry import catalog_schema, default_catalog_name
    from jdgraph.settings import DatabaseSettings

    db = Database(DatabaseSettings.from_env(schema=catalog_schema(catalog or default_catalog_name())))
    pruned = prune_checkpoints(db, older_than_days)
    console.print(
        f"pruned the checkpoints of {pruned['of_finished_runs']} finished runs and {pruned['stale']} unfinished runs "
        f"idle for over {older_than_days:g} days",
        highlight=False,
    )


# -- catalog --------------------------------------------------------------------------------------------------
@catalog_app.command("init")
@handle_errors
def catalog_init(force: Annotated[bool, typer.Option(help="Reload even if unchanged.")] = False) -> None:
    """Load the starter catalog (idempotent)."""
    from jdgraph.catalog.importers.starter import StarterImporter

    _import(StarterImporter(), "starter", force=force, complete=True)


@catalog_app.command("import")
@handle_errors
def catalog_import(
    source: Annotated[Literal["esco", "onet"], typer.Argument(help="Which taxonomy the files are.")],
    path: Annotated[Path, typer.Argument(help="A folder, or ESCO's official zip (a folder holding both zips).")],
    catalog: CatalogOption = None,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Import a slice: ISCO code prefix (ESCO) or O*NET-SOC prefix (O*NET); repeatable."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Run the full merge even if the files are unchanged.")] = False,
) -> None:
    """Import ESCO or O*NET into a catalog (default: one named after the source). Re-importing the same files
    changes nothing; a new release changes and re-embeds only what changed."""
    from jdgraph.catalog.importers.esco import EscoImporter
    from jdgraph.catalog.importers.onet import OnetImporter

    importer = (EscoImporter if source == "esco" else OnetImporter)(path, only=tuple(only or ()))
    _import(importer, catalog or source, force=force, complete=not only)


def _import(importer: Any, name: str, *, force: bool, complete: bool) -> None:
    from jdgraph.catalog.registry import forget_catalogs, open_catalog
    from jdgraph.catalog.writer import CatalogWriter

    with _stage_bars(lines=True) as progress:
        catalog = open_catalog(name, require_content=False, progress=progress)
        progress(f"reading {importer.source} files", 0, 0)
        bundle = importer.bundle()
        report = CatalogWriter(catalog.db, catalog.embeddings, progress=progress).apply(
            bundle, force=force, complete=complete
        )
    forget_catalogs()
    for note in report.notes:
        err_console.print(f"[yellow]note:[/] {safe(note)}", highlight=False)
    if report.skipped:
        console.print(
            f"{bundle.version} is already imported into catalog [bold]{name}[/] (unchanged files; --force to re-check)"
        )
    else:
        changed = ", ".join(f"{k}={v}" for k, v in report.changed.items() if v) or "nothing"
        removed = ", ".join(f"{k}={v}" for k, v in report.removed.items() if v) or "nothing"
        console.print(
            f"imported {bundle.version} into catalog [bold]{name}[/] in {report.seconds:.1f}s: changed {changed}; "
            f"removed {removed}; embedded {report.embedded} texts",
            highlight=False,
        )
    _print_stats(catalog.stats().model_dump())


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
    stats = _catalog(catalog).stats().model_dump()
    if as_json:
        print(json.dumps(stats, indent=2))
    else:
        _print_stats(stats)


def _search(catalog: Any, kind: str, query: str, top: int) -> list[dict[str, Any]]:
    from jdgraph.context import Context
    from jdgraph.matching.roles import search_roles

    if kind == "skill":
        return [
            {
                "slug": c.skill.slug,
                "display_name": c.skill.display_name,
                "source_id": c.skill.source_id,
                "score": c.score,
                "match_via": c.match_via,
                "alias": c.alias,
            }
            for c in catalog.search_skills(query, k=top)
        ]
    return [
        {
            "slug": c.slug,
            "display_name": c.display_name,
            "source_id": c.source_id,
            "score": c.score,
            "evidence": c.model_dump(
                include={
                    "title_alias",
                    "title_similarity",
                    "title_match_via",
                    "kra_similarity",
                    "kra_matches",
                    "centroid_similarity",
                }
            ),
        }
        for c in search_roles(catalog, query, Context.from_env().scoring(), k=top)
    ]


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
    if batch is not None:
        _search_batch(_noted_catalog(catalog), batch, kind, top)
        return
    if query is None or not query.strip():
        raise InputError("the query is empty: give a skill name, a title or some text")
    opened = _noted_catalog(catalog)
    progress_line(err_console, "searching…")
    results = _search(opened, kind, query, top)
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


def _noted_catalog(name: str | None) -> Any:
    """:func:`_catalog`, saying its stages on stderr where that is no terminal: loading the embedding model and
    starting the database take 10 s or more on a small machine, which a pipe or a log would see as a hang."""
    from jdgraph.catalog.registry import shared_embeddings

    progress_line(err_console, "loading the embedding model…")
    shared_embeddings()  # the instance the catalog opens with (one per process)
    progress_line(err_console, "opening the catalog (starting the database if it is not running)…")
    return _catalog(name)


def _read_file(path: Path, what: str = "") -> bytes:
    """A file's bytes; a missing path or a directory is an InputError saying which."""
    if not path.is_file():
        raise InputError(f"{what}{path} {'is not a file' if path.exists() else 'does not exist'}")
    return path.read_bytes()


def _search_batch(catalog: Any, path: Path, kind: str, top: int) -> None:
    """Like `classify --batch`: every line is read and checked first; a bad line becomes an output line
    {"line", "error"} where it was, the others are searched, and the exit status says if any failed."""
    entries: list[tuple[int, Any]] = []
    for n, raw in enumerate(_read_file(path, "batch file ").split(b"\n"), 1):
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
                out = {"id": query_id, "candidates": _search(catalog, kind, query, top)}
            except InputError as exc:
                failed += 1
                out = {"id": query_id, "line": n, "error": exc.message, "candidates": []}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    if failed:
        err_console.print(f"[yellow]{failed} of {len(entries)} lines failed; their output lines carry an 'error'[/]")
        raise typer.Exit(1)


runs_app = typer.Typer(help="Past runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


def _print_result(r: Any, page: Any = None, *, show_text: bool = False) -> None:
    """A run as the reference run page shows it, in text that wraps at the terminal's width (80 columns and up):
    lists of lines, not tables squeezed into unreadable columns."""
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
    if page.created_at:
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
    heading(f"Skills ({len(r.skills)})")
    for sk in r.skills:
        canonical = f" → {safe(sk.canonical_slug)}" if sk.canonical_slug else " (new)"
        dims = f" · {safe(', '.join(x.name for x in sk.dimensions))}" if sk.dimensions else ""
        line(
            f"{'*' if sk.is_primary else '-'} {safe(sk.name)}{canonical} · {sk.match_via} {sk.score:.2f}{dims}",
            2,
        )
        if sk.evidence:
            line(f"“{safe(evidence_window(sk, width - 8))}”", 4, hang=5)
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


@app.command("classify")
@handle_errors
def classify_cmd(
    source: Annotated[str | None, typer.Argument(help="A JD file, or - for standard input.")] = None,
    title: Annotated[str | None, typer.Option(help="The posting's title, if known.")] = None,
    model: Annotated[str | None, typer.Option(help="provider:model for every LLM step, or none.")] = None,
    no_persist: Annotated[bool, typer.Option("--no-persist", help="Do not write to the catalog.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    batch: Annotated[
        Path | None, typer.Option(help='JSONL of {"id", "text", "title"?}; one JSON result per line.')
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Parallel runs with --batch.")] = 2,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="With --batch: lines saved before are not run again; cut-off runs continue."),
    ] = False,
    run_id: Annotated[str | None, typer.Option(help="A UUID: classifying again with it writes nothing twice.")] = None,
    input_id: Annotated[str | None, typer.Option(help="Your id for this input, stored on the run.")] = None,
    catalog: CatalogOption = None,
) -> None:
    """Classify a job description end to end."""
    from jdgraph.api import classify
    from jdgraph.catalog.registry import default_catalog_name

    name = catalog or default_catalog_name()
    _catalog(name)  # start the server, migrate, load the starter catalog once, before any worker thread
    overrides: dict[str, Any] = {"persist": not no_persist, "catalog": name}
    if model:
        overrides.update(parse_model=model, extract_model=model, adjudicate_model=model, enrich_model=model)
    if batch is not None:
        _classify_batch(batch, overrides, concurrency, resume=resume)
        return
    if source is None:
        raise InputError("give a JD file, or - to read standard input")
    # Bytes, not text: check_input reads PDF and DOCX, and says clearly what else is wrong (binary, not UTF-8).
    if source == "-":
        text: bytes = sys.stdin.buffer.read()
    else:
        text = _read_file(Path(source))
    result = classify(text, title=title, run_id=run_id, input_id=input_id, **overrides)
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        _print_result(result)


def _batch_line(n: int, raw: bytes) -> Any:
    """One line of a batch file as a BatchItem, or the reason it is not one (a line's fault never stops the
    batch: it is reported in order, with its number, and the other lines are classified)."""
    from jdgraph.api import BatchItem
    from jdgraph.graph.text import check_field, is_unicode

    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"line {n} is not valid UTF-8 (byte {exc.start})"
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"line {n} is not JSON ({exc.msg})"
    expected = "a JSON object with 'id' and 'text' (or 'description', as job-ad exports have it)"
    if not isinstance(item, dict):
        return f"line {n}: expected {expected}, got {type(item).__name__}"
    # A job-ad export names the text 'description'; 'text' wins when a line has both.
    text_field = "text" if "text" in item else "description"
    if text_field not in item or "id" not in item:
        missing = "'id'" if "id" not in item else "'text' or 'description'"
        return f"line {n}: expected {expected} (missing {missing})"
    if isinstance(item["id"], bool) or not isinstance(item["id"], str | int):
        return f"line {n}: 'id' must be a string or an integer"
    text = item[text_field]
    if not isinstance(text, str):
        return f"line {n}: '{text_field}' must be a string, got {type(text).__name__}"
    if not is_unicode(text):
        return f"line {n}: '{text_field}' is not valid Unicode text (it holds a lone surrogate)"
    try:  # the id, title and company are checked as a single run's are: a NUL or lone surrogate in one
        # ended the whole batch with a driver error (or a UnicodeEncodeError hashing the id)
        for field in ("id", "title", "company"):
            check_field(str(item[field]) if field == "id" else item.get(field), field)
    except InputError as exc:
        return f"line {n}: {exc.message}"
    return BatchItem(str(item["id"]), text, item.get("title"), item.get("company"))


def _classify_batch(path: Path, overrides: dict[str, Any], concurrency: int, *, resume: bool = False) -> None:
    from rich.progress import Progress

    from jdgraph.api import BatchItem, classify_many

    entries: list[tuple[int, Any]] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(_read_file(path, "batch file ").split(b"\n"), 1):
        if not raw.strip():
            continue
        entry = _batch_line(n, raw)
        if isinstance(entry, BatchItem):
            if entry.id in seen:  # an id names one input: a second line with it would be ambiguous on --resume
                entry = f"line {n}: id {entry.id!r} is also the id of line {seen[entry.id]}"
            else:
                seen[entry.id] = n
        entries.append((n, entry))
    items = [e for _, e in entries if isinstance(e, BatchItem)]
    failed = 0
    done_before: dict[str, int] = {}
    with Progress(console=err_console) as progress:
        task = progress.add_task("classifying", total=len(entries))
        outcomes = classify_many(items, concurrency=concurrency, resume=resume, **overrides)
        for n, entry in entries:  # in input order: a bad line's error where the line was
            if isinstance(entry, str):
                failed += 1
                line_out: dict[str, Any] = {"line": n, "error": entry}
            else:
                outcome = next(outcomes)
                if outcome.result is not None:
                    line_out = {"id": outcome.id, "result": outcome.result.model_dump(mode="json")}
                    before = outcome.done_before or _already_persisted(outcome.result)
                    if before:
                        line_out["done_before"] = before
                        done_before[before] = done_before.get(before, 0) + 1
                else:  # one bad JD does not stop the batch, and is reported, not lost
                    failed += 1
                    error = outcome.error
                    line_out = {"id": outcome.id, "line": n, "error": error.message if error else "unknown error"}
            sys.stdout.write(json.dumps(line_out) + "\n")
            sys.stdout.flush()
            progress.advance(task)
    if done_before:
        said = {
            "saved": "were saved before (not run again)",
            "checkpointed": "were cut off before and continued from their last step",
            "persisted": "were saved before (run again, nothing written twice)",
        }
        for how, count in done_before.items():
            err_console.print(f"{count} of {len(entries)} lines {said[how]}; their output lines say done_before")
    if failed:
        err_console.print(
            f"[yellow]{failed} of {len(entries)} lines failed; their output lines carry an 'error'[/yellow]"
        )
        raise typer.Exit(1)


def _already_persisted(result: Any) -> str | None:
    """'persisted' when the store found the run saved before (a rerun without --resume)."""
    from jdgraph.catalog.runs import ALREADY_PERSISTED

    first = result.persistence[0].outcome if result.persistence else ""
    return "persisted" if first == ALREADY_PERSISTED else None


@runs_app.command("list")
@handle_errors
def runs_list(limit: Annotated[int, typer.Option(min=1, max=500)] = 20, catalog: CatalogOption = None) -> None:
    """The most recent runs."""
    rows = _catalog(catalog).runs.list_runs(limit)
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
    from jdgraph.errors import NotFoundError
    from jdgraph.graph.schemas import ClassificationResult

    runs = _catalog(catalog).runs
    key = runs.resolve_run_id(run_id)
    from jdgraph.runview import RunPage

    record = runs.run_record(key)
    if record is None or record["result"] is None:
        raise NotFoundError(f"no run {key}", kind="run", key=key)
    result = ClassificationResult.model_validate(record["result"])
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        page = RunPage(result, record["jd_text"], record["created_at"], record["updated_at"])
        _print_result(result, page, show_text=not no_text)


llm_app = typer.Typer(help="A real local model for development (llama.cpp's llama-server).", no_args_is_help=True)
app.add_typer(llm_app, name="llm")


@llm_app.command("build")
@handle_errors
def llm_build() -> None:
    """Build llama-server from llama.cpp's source once (cached; about 5-13 minutes on 2 cores)."""
    from jdgraph import localmodel

    console.print(f"llama-server: {localmodel.server_binary(log=err_console.print)}", highlight=False)


@llm_app.command("serve")
@handle_errors
def llm_serve(
    model: Annotated[str, typer.Option(help="Which local model (smollm2: SmolLM2-135M-Instruct, Q4_1).")] = "smollm2",
    port: Annotated[int, typer.Option(min=1024, max=65535)] = LOCAL_MODEL_PORT,
    slots: Annotated[int, typer.Option(min=1, max=16, help="Parallel requests (-np); the context is split.")] = 2,
) -> None:
    """Serve the model on 127.0.0.1 (OpenAI-compatible; built/downloaded on first use). Prints how to point
    jdgraph at it, then runs until interrupted."""
    import subprocess

    from jdgraph import localmodel

    command = localmodel.serve_command(model, port=port, slots=slots, log=err_console.print)
    alias = localmodel.local_model(model).alias
    log_path = localmodel.cache_dir() / "llama-server.log"
    # The server logs every request: to a file, never to a pipe nobody reads (a full pipe blocks the server).
    log_file = log_path.open("ab")
    proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        localmodel.wait_ready(port, proc=proc)
        console.print(
            f"serving {alias} on http://127.0.0.1:{port}/v1 — use it with:\n"
            + (f"  export JDGRAPH_LOCAL_BASE_URL=http://127.0.0.1:{port}/v1\n" if port != LOCAL_MODEL_PORT else "")
            + f"  jdgraph classify examples/rust-developer.txt --model local:{alias}\n"
            f"server log: {log_path}",
            highlight=False,
        )
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log_file.close()


@app.command("ui")
@handle_errors
def ui_cmd(
    host: Annotated[str, typer.Option(help="Interface to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8765,
    reviewer: Annotated[
        str | None, typer.Option(help="Name recorded on decisions (env JDGRAPH_REVIEWER, else your login).")
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            metavar="NAME",
            help="Another Host name the page answers to (a proxy's, a name for this machine); repeatable. "
            "127.0.0.1, localhost, [::1] and a specific --host always are; other names get 400 (DNS rebinding).",
        ),
    ] = None,
    catalog: CatalogOption = None,
) -> None:
    """The review queue, run history and run pages in a browser."""
    import uvicorn

    from jdgraph.review_cli import reviewer_name
    from jdgraph.ui.app import create_app, host_names

    hosts = host_names(host, allowed_host or [])
    app_ = create_app(_catalog(catalog), reviewer=reviewer_name(reviewer), allowed_hosts=hosts)
    console.print(f"jdgraph ui on http://{host}:{port}/ (Ctrl-C stops it)", highlight=False)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


# Registered last: the eval and review commands reuse handle_errors from this module.
from jdgraph.evals.cli import eval_app  # noqa: E402
from jdgraph.review_cli import review_app  # noqa: E402

app.add_typer(eval_app, name="eval")
app.add_typer(review_app, name="review")


def _show_version(value: bool) -> None:
    if value:
        from jdgraph import __version__

        print(f"jdgraph {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Resolve job descriptions against a skills-and-roles catalog."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
