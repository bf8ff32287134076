"""Prompt files shipped as package data, rendered with strict Jinja2 and versioned by content hash.

A prompt file holds a system part and a user part separated by a line ``===== user =====``. Its version is the
first 8 hex digits of the SHA-256 of the file, so any edit is a new version. A folder given as ``prompts_dir``
(``--prompts`` on the CLI) overrides package files of the same name without touching the package.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from jdgraph.errors import PromptError

SEPARATOR = "===== user ====="
_env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    system: jinja2.Template
    user: jinja2.Template

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def render(self, **variables: Any) -> tuple[str, str]:
        try:
            return self.system.render(**variables).strip(), self.user.render(**variables).strip()
        except jinja2.UndefinedError as exc:
            raise PromptError(f"prompt {self.ref}: {exc.message}", prompt=self.name) from exc


@lru_cache(maxsize=64)
def _compile(name: str, source: str) -> Prompt:
    if SEPARATOR not in source:
        raise PromptError(f"prompt {name} has no '{SEPARATOR}' line", prompt=name)
    system, user = source.split(SEPARATOR, 1)
    version = hashlib.sha256(source.encode("utf-8")).hexdigest()[:8]
    try:
        return Prompt(name, version, _env.from_string(system), _env.from_string(user))
    except jinja2.TemplateSyntaxError as exc:
        raise PromptError(f"prompt {name}: {exc}", prompt=name) from exc


def load_prompt(name: str, prompts_dir: str | Path | None = None) -> Prompt:
    """The prompt ``name`` (e.g. ``parse``), from ``prompts_dir`` when it has ``name.md``, else from the package."""
    if prompts_dir:
        override = Path(prompts_dir) / f"{name}.md"
        if override.exists():
            return _compile(name, override.read_text(encoding="utf-8"))
    try:
        source = (resources.files("jdgraph.prompts") / f"{name}.md").read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PromptError(f"no prompt named {name!r}", prompt=name) from exc
    return _compile(name, source)


def prompt_versions(prompts_dir: str | Path | None = None) -> dict[str, str]:
    return {n: load_prompt(n, prompts_dir).version for n in ("parse", "extract", "adjudicate")}
