"""The catalog as LangChain tools.

Each tool is a thin typed wrapper over the run's catalog and :mod:`jdgraph.matching.roles`. A tool reads the run's
:class:`Context` through LangGraph's runtime (its catalog, its scoring weights), so the adjudicator's tools score
candidates exactly as the match node did. Called on its own, a tool is given that context in its config
(:func:`tool_config`); it never opens a catalog itself. Tools return pydantic models; LangChain serialises them.
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import tool
from langgraph.runtime import Runtime, get_runtime

from jdgraph.catalog.models import DimensionRef, Kra, RoleSkillOverlap, SkillCandidate, SkillMatch
from jdgraph.context import Context
from jdgraph.errors import ConfigError
from jdgraph.matching.roles import RoleSignal
from jdgraph.matching.roles import roles_for_skills as rank_roles_for_skills
from jdgraph.matching.roles import search_roles as rank_roles

_RUNTIME_KEY = "__pregel_runtime"
"""Where LangGraph keeps a run's :class:`Runtime` in the config (``langgraph.config.get_runtime`` reads it)."""


def tool_config(context: Context) -> dict[str, Any]:
    """The config that runs a tool outside a graph with ``context`` (its ``catalog_reader`` set):
    ``lookup_skill.invoke({"term": "Rust"}, config=tool_config(Context(catalog_reader=catalog)))``."""
    return {"configurable": {_RUNTIME_KEY: Runtime(context=context)}}


def current_context() -> Context:
    """The context of the run that calls the tool: a graph run's, or the one :func:`tool_config` gave it."""
    try:
        runtime = get_runtime(Context)
    except (RuntimeError, KeyError):  # not called through LangChain, or with a config that has no runtime
        runtime = None
    context = getattr(runtime, "context", None)
    if not isinstance(context, Context):
        raise ConfigError(
            "a catalog tool reads its catalog from the run's context: call it inside a graph run, or pass "
            "config=tool_config(Context(catalog_reader=catalog)) (jdgraph.tools.tool_config)",
            setting="catalog_reader",
        )
    return context


@tool
def lookup_skill(term: str) -> SkillMatch:
    """Resolve a skill name to the canonical catalog skill (exact alias, then normalised alias, then the nearest
    alias embedding). Returns the skill, how it matched (match_via), the score and the alias that matched."""
    ctx = current_context()
    return ctx.resolve_catalog().lookup_skill(term, accept=ctx.embedding_accept)


@tool
def search_skills(text: str, k: int = 10) -> list[SkillCandidate]:
    """Find the k catalog skills closest to a free-text description, best first, with scores."""
    return current_context().resolve_catalog().search_skills(text, k=max(1, min(k, 50)))


@tool
def search_roles(title_or_text: str, k: int = 5) -> list[RoleSignal]:
    """Find the k catalog roles closest to a job title or responsibility text, scored like the JD's own
    candidates. Each carries its evidence: best title alias, best KRA matches and centroid similarity."""
    ctx = current_context()
    return rank_roles(ctx.resolve_catalog(), title_or_text, ctx.scoring(), k=max(1, min(k, 25)))


@tool
def role_kras(role: str) -> list[Kra]:
    """List the key responsibility areas (KRAs) of a role, by role slug."""
    return current_context().resolve_catalog().role_kras(role)


@tool
def roles_for_skills(skills: list[str], k: int = 5) -> list[RoleSkillOverlap]:
    """Rank roles by how many of the given canonical skill slugs they use (weighted overlap)."""
    ctx = current_context()
    return rank_roles_for_skills(ctx.resolve_catalog(), skills, k=max(1, min(k, 25)), params=ctx.scoring())


@tool
def skill_dimensions(skill: str) -> list[DimensionRef]:
    """List the dimensions (skill clusters) a canonical skill belongs to, by skill slug."""
    return current_context().resolve_catalog().skill_dimensions(skill)


CATALOG_TOOLS = [lookup_skill, search_skills, search_roles, role_kras, roles_for_skills, skill_dimensions]
