"""``jdgraph db``: the catalog database's migrations, status (with its repair) and checkpoint pruning."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from jdgraph.cli.common import CatalogOption, console, handle_errors
from jdgraph.settings import CHECKPOINT_TTL_DAYS

db_app = typer.Typer(help="The catalog database: migrations and status.", no_args_is_help=True)


@db_app.command("migrate")
@handle_errors
def db_migrate(catalog: CatalogOption = None) -> None:
    """Apply pending schema migrations (a no-op when up to date)."""
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    done = service.migrate(catalog)
    applied = ", ".join(done.report.applied) if done.report.applied else "nothing to apply"
    console.print(f"schema [bold]{done.schema}[/] at version {done.report.version} ({applied}) on {done.display_url}")


@db_app.command("status")
@handle_errors
def db_status(
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    repair: Annotated[bool, typer.Option("--repair", help="Embed catalog texts that have no vector.")] = False,
) -> None:
    """Which server is in use, the schema version, row counts and the catalog's health (texts without a vector,
    left by an interrupted load; any command that opens the catalog, or --repair, embeds them)."""
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    status = service.status(catalog, repair=repair)
    if as_json:
        print(json.dumps(status, indent=2))
        return
    console.print(
        f"server: {status['server']} ({'embedded' if status['embedded'] else 'DATABASE_URL'}, "
        f"PostgreSQL {status['postgres_version']})",
        highlight=False,
    )
    console.print(f"schema: {status['schema']} at version {status['schema_version']}")
    for table, n in status["row_counts"].items():
        console.print(f"  {table:<16} {n:>8}")
    if status["repaired"]:
        console.print(f"repaired: embedded {status['repaired']} texts")
    checkpoints = status["checkpoints"]
    if checkpoints:
        console.print(
            f"checkpoints: {checkpoints['threads']} run threads ({checkpoints['of_finished_runs']} of finished runs, "
            f"{checkpoints['stale']} unfinished for over {CHECKPOINT_TTL_DAYS:g} days: "
            "`jdgraph db prune-checkpoints`)",
            highlight=False,
        )
    console.print(f"health: {status['health']}", highlight=False)


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
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    pruned = service.prune_checkpoints(catalog, older_than_days)
    console.print(
        f"pruned the checkpoints of {pruned['of_finished_runs']} finished runs and {pruned['stale']} unfinished runs "
        f"idle for over {older_than_days:g} days",
        highlight=False,
    )
