"""Help text the CLI's users can read: a name for what each option takes (``--top K``, ``--as-alias-of SLUG``), not
typer's type placeholders (``<str>``, ``<int range>``, ``<path>``), which say nothing a reader needs.

The command tree's root group (:class:`HelpGroup`, the root ``typer.Typer``'s ``cls``) names every parameter of
every command once, when typer builds the tree, so a new option is named without anyone remembering to: the README's
own names where it has them, else the option's name in capitals. Choices (``<skill|role>``) and flags are left
as typer shows them.
"""

from __future__ import annotations

import copy
from typing import Any

import typer.core

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
    """Give every parameter of ``command`` and its subcommands a metavar (see the module docstring)."""
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
