"""``jdgraph serve``: the production HTTP route (:mod:`jdgraph.serving`) in several uvicorn worker processes."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from jdgraph.cli.common import CatalogOption, console, handle_errors, open_catalog


@handle_errors
def serve_cmd(
    host: Annotated[str, typer.Option(help="Interface to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8123,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (each loads the models once).")] = 2,
    graceful_timeout: Annotated[
        int, typer.Option(min=1, max=3600, help="Seconds in-flight runs get to finish on SIGTERM.")
    ] = 60,
    model_threads: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="Threads each worker's models use (default: the cores / workers)."),
    ] = None,
    catalog: CatalogOption = None,
) -> None:
    """An HTTP service for other services: POST /classify, GET /healthz, GET /readyz.

    Every worker shares the one PostgreSQL; workers × (JDGRAPH_DB_POOL_MAX + the checkpointer's 4) must fit its
    connections (checked before starting)."""
    # deferred: uvicorn and the app (starlette, langgraph) take seconds that --help must not wait for
    import uvicorn

    from jdgraph.catalog.db import check_connection_budget

    opened = open_catalog(catalog)  # an unreachable database is exit 3 here, before any worker starts
    check_connection_budget(workers, opened.db.settings.pool_max, *opened.db.connection_budget(), what="workers")
    if catalog:
        os.environ["JDGRAPH_CATALOG"] = catalog  # the workers' factory reads it
    # Each worker's torch would take every core: N workers would run N × cores threads and spend the cores
    # switching between them. Split the cores (torch reads OMP_NUM_THREADS when a worker imports it), unless the
    # environment already says.
    threads = model_threads or max(1, (os.cpu_count() or 1) // workers)
    if model_threads or "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    console.print(f"jdgraph serve on http://{host}:{port}/ with {workers} worker(s), "
                  f"{os.environ['OMP_NUM_THREADS']} model thread(s) each (SIGTERM or Ctrl-C stops it, "
                  f"letting in-flight runs finish for up to {graceful_timeout}s)", highlight=False)  # fmt: skip
    opened.db.close()
    uvicorn.run("jdgraph.serving:app_from_env", factory=True, host=host, port=port, workers=workers,
                timeout_graceful_shutdown=graceful_timeout, log_level="warning")  # fmt: skip
