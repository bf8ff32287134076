"""The ``jdgraph`` command line: database, catalog, classification, runs, review, evaluation, a local model and
the web page, and the trained models.

The face of the package, imported by nothing but its entry points (``jdgraph`` = :func:`main`, ``python -m
jdgraph.cli``). Each command group is a module of its own that calls the library (:mod:`jdgraph.api`,
:mod:`jdgraph.catalog.service`) and shares :mod:`jdgraph.cli.common`; this module builds the root app from them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from jdgraph import __version__
from jdgraph.cli.batch import batch_app
from jdgraph.cli.catalog import catalog_app
from jdgraph.cli.classify import classify_cmd
from jdgraph.cli.common import HelpGroup
from jdgraph.cli.db import db_app
from jdgraph.cli.eval import eval_app
from jdgraph.cli.llm import llm_app
from jdgraph.cli.models import models_app
from jdgraph.cli.review import review_app
from jdgraph.cli.runs import runs_app
from jdgraph.cli.serve import serve_cmd
from jdgraph.cli.ui import ui_cmd

# A traceback never prints local variables: they hold database URLs with passwords, and JD text. HelpGroup names
# what each option takes in --help (SLUG, N), where typer would print <str> and <int range>.
app = typer.Typer(
    help="Resolve job descriptions against a skills-and-roles catalog.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    cls=HelpGroup,
)
# In --help, the commands first, then the groups, each in the order registered here. A new group is a module beside
# these with its own typer.Typer, added with one line below.
app.command("classify")(classify_cmd)
app.command("ui")(ui_cmd)
app.command("serve")(serve_cmd)
app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog")
app.add_typer(runs_app, name="runs")
app.add_typer(llm_app, name="llm")
app.add_typer(eval_app, name="eval")
app.add_typer(review_app, name="review")
app.add_typer(models_app, name="models")
app.add_typer(batch_app, name="batch")


def _show_version(value: bool) -> None:
    if value:
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
