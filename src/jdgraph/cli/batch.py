"""``jdgraph batch run``: re-classify a whole archive, as a Ray Data job (``--engine ray``) or in this process
(``--engine local``). Input and output are JSON Lines or Parquet; ``id`` is the idempotency key, so running the
same command again after a crash completes the job and saves every item once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from jdgraph.cli.common import CatalogOption, err_console, handle_errors

batch_app = typer.Typer(help="Bulk re-classification of many JDs (Ray Data, or this process).", no_args_is_help=True)


@batch_app.command("run")
@handle_errors
def batch_run(
    input_path: Annotated[Path, typer.Argument(help='JSON Lines of {"id", "text", "title"?, "company"?}, or Parquet.')],
    output_path: Annotated[Path, typer.Argument(help="Where the result lines go: .jsonl, or .parquet.")],
    engine: Annotated[Literal["ray", "local"], typer.Option(help="ray: an actor pool; local: threads here.")] = "ray",
    actors: Annotated[int, typer.Option(min=1, max=256, help="ray: actors (each loads the models once).")] = 2,
    threads: Annotated[int, typer.Option(min=1, max=32, help="Runs at once per actor (local: in all).")] = 2,
    pool_size: Annotated[int, typer.Option(min=1, max=64, help="Database connections per actor.")] = 3,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="ray: lines per batch.")] = 32,
    ray_address: Annotated[
        str | None, typer.Option(help="ray: a cluster's address (ray://HOST:10001); default: a local Ray.")
    ] = None,
    catalog: CatalogOption = None,
) -> None:
    """Classify every line of INPUT and write one result or error line per input line to OUTPUT (written beside
    it and renamed when complete). Items saved by an earlier run of the same input are read back, not run again.
    Exit 1 when a line failed (its output line says why)."""
    from jdgraph.bulk import BulkPlan, BulkSummary, run_bulk, run_local  # deferred: the API loads langgraph

    plan = BulkPlan(actors=actors, threads=threads, pool_size=pool_size, batch_size=batch_size)
    context: dict[str, Any] = {"catalog": catalog} if catalog else {}
    last = [0.0]

    def progress(summary: BulkSummary) -> None:
        now = time.monotonic()
        if now - last[0] >= 10:  # a line every 10 s: a terminal, a pipe and a log read the same
            last[0] = now
            err_console.print(f"{summary.total} lines: {summary.done} classified, {summary.done_before} saved "
                              f"before, {summary.failed} failed", highlight=False)  # fmt: skip

    if engine == "ray":
        summary = run_bulk(input_path, output_path, plan, context, progress=progress, ray_address=ray_address)
    else:
        summary = run_local(input_path, output_path, plan, context, progress=progress)
    rate = summary.total / summary.seconds if summary.seconds else 0.0
    err_console.print(
        f"{summary.total} lines in {summary.seconds:.1f}s ({rate:.2f}/s): {summary.done} classified, "
        f"{summary.done_before} saved before (not run again), {summary.failed} failed",
        highlight=False,
    )
    for reason, count in sorted(summary.reasons.items(), key=lambda x: -x[1]):
        err_console.print(f"  failed {count}×: {reason}", highlight=False)
    if summary.failed:
        raise typer.Exit(1)
