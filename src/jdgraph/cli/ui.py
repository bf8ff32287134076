"""``jdgraph ui``: the review queue, run history and run pages in a browser (the page itself is jdgraph.ui)."""

from __future__ import annotations

from typing import Annotated

import typer

from jdgraph.cli.common import CatalogOption, console, handle_errors, open_catalog, reviewer_name


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
    # deferred: uvicorn and the page (starlette, jinja2, the catalog's psycopg) take seconds --help must not wait for
    import uvicorn

    from jdgraph.ui.app import create_app, host_names

    hosts = host_names(host, allowed_host or [])
    app_ = create_app(open_catalog(catalog), reviewer=reviewer_name(reviewer), allowed_hosts=hosts)
    console.print(f"jdgraph ui on http://{host}:{port}/ (Ctrl-C stops it)", highlight=False)
    uvicorn.run(app_, host=host, port=port, log_level="warning")
