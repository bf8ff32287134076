"""What every command module shares: the consoles, the error handling with the exit codes, the ``--catalog``
option and opening that catalog, reading an input file, progress output, the reviewer's name, and the root group
that names what each option takes in ``--help``."""

from __future__ import annotations

import copy
import errno
import getpass
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
import typer.core
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from jdgraph.errors import InputError, JdgraphError
from jdgraph.settings import env_value
from jdgraph.terminal import progress_line, safe

if TYPE_CHECKING:
    from jdgraph.catalog.service import Catalog

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
CatalogOption = Annotated[
    str | None,
    typer.Option("--catalog", help="Which catalog: starter (default), esco, onet … (env JDGRAPH_CATALOG)."),
]
ReviewerOption = Annotated[
    str | None,
    typer.Option("--reviewer", help="Who decides (recorded in the audit log; env JDGRAPH_REVIEWER, else your login)."),
]


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


def open_catalog(name: str | None) -> Catalog:
    """The named catalog (default: JDGRAPH_CATALOG, else starter), opened once per process. Opening it the first
    time builds the starter catalog (a minute or more on a slow machine): that shows as progress bars on stderr,
    or as lines where stderr is no terminal (a bar there printed nothing but a blank line)."""
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    with stage_bars(lines=True) as progress:
        return service.catalog(name, progress=progress)


def noted_catalog(name: str | None) -> Catalog:
    """:func:`open_catalog`, saying its stages on stderr where that is no terminal: loading the embedding model and
    starting the database take 10 s or more on a small machine, which a pipe or a log would see as a hang."""
    from jdgraph.catalog import service  # deferred: psycopg and langchain_core take 2 s that --help must not wait

    progress_line(err_console, "loading the embedding model…")
    service.load_embedding_model()  # the instance the catalog opens with (one per process)
    progress_line(err_console, "opening the catalog (starting the database if it is not running)…")
    return open_catalog(name)


def read_file(path: Path, what: str = "") -> bytes:
    """A file's bytes; a missing path or a directory is an InputError saying which."""
    if not path.is_file():
        raise InputError(f"{what}{path} {'is not a file' if path.exists() else 'does not exist'}")
    return path.read_bytes()


def reviewer_name(explicit: str | None) -> str:
    return explicit or env_value("JDGRAPH_REVIEWER") or getpass.getuser()


# -- progress -------------------------------------------------------------------------------------------------
@contextmanager
def stage_bars(*, lines: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback (stage, done, total) that draws one bar a stage on stderr, gone when done; with
    ``lines``, where stderr is no terminal (a log, a pipe), one line a stage instead (see :func:`_stage_lines`)."""
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


# -- help -----------------------------------------------------------------------------------------------------
# Help names what each option takes (``--top K``, ``--as-alias-of SLUG``), not typer's type placeholders (``<str>``,
# ``<int range>``, ``<path>``), which say nothing a reader needs. The root group (:class:`HelpGroup`, the root
# ``typer.Typer``'s ``cls``) names every parameter of every command once, when typer builds the tree, so a new option
# is named without anyone remembering to: the README's own names where it has them, else the option's name in
# capitals. Choices (``<skill|role>``) and flags are left as typer shows them.

# The names the README's command table uses for what an option takes.
METAVARS = {
    "top": "K",
    "limit": "N",
    "concurrency": "N",
    "repeat": "N",
    "folds": "N",
    "resamples": "N",
    "slots": "N",
    "seed": "N",
    "actors": "N",
    "threads": "N",
    "pool_size": "N",
    "batch_size": "N",
    "workers": "N",
    "graceful_timeout": "SECONDS",
    "ray_address": "ADDRESS",
    "input_path": "INPUT",
    "output_path": "OUTPUT",
    "older_than_days": "DAYS",
    "catalog": "NAME",
    "as_alias_of": "SLUG",
    "role": "ROLE",
    "rename": "NAME",
    "reviewer": "NAME",
    "reason": "TEXT",
    "title": "TEXT",
    "search": "TEXT",
    "model": "PROVIDER:MODEL",
    "judge": "PROVIDER:MODEL",
    "batch": "FILE",
    "baseline": "FILE",
    "cassette": "FILE",
    "out": "DIR",
    "prompts": "DIR",
    "overrides": "FIELD=VALUE",
    "run_id": "UUID",
    "input_id": "ID",
    "only": "PREFIX",
    "tolerance": "X",
}


def metavar(param: Any) -> str:
    """What ``param`` takes, as help shows it."""
    return METAVARS.get(param.name or "", (param.name or "value").upper())


def _is_choice(param: Any) -> bool:
    return hasattr(param.type, "choices")


def name_parameters(command: Any) -> None:
    """Give every parameter of ``command`` and its subcommands a metavar (see the comment above METAVARS)."""
    for param in command.params:
        if getattr(param, "is_flag", False) or getattr(param, "count", False) or _is_choice(param):
            continue
        if isinstance(param, typer.core.TyperArgument):
            param.metavar = param.metavar or (param.name or "value").upper()
            # Help prints an argument's type beside its name (``ITEM_ID <int>``); its name says enough. A copy: the
            # type object (click's STRING, INT) is shared by every parameter of that type.
            param.type = copy.copy(param.type)
            param.type.get_metavar = lambda param, ctx: ""  # type: ignore[method-assign]
        elif param.metavar is None:
            param.metavar = metavar(param)
    for sub in getattr(command, "commands", {}).values():
        name_parameters(sub)


class HelpGroup(typer.core.TyperGroup):
    """The root group: names the parameters of the whole tree (typer builds the tree before the root)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_parameters(self)
