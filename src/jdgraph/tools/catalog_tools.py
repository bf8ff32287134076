"""The catalog as LangChain tools.

Each tool is a thin typed wrapper over the run's catalog and :mod:`jdgraph.scoring`. Inside a graph run the tool
reads the run's :class:`Context` through LangGraph's runtime (its catalog, its scoring weights), so the
adjudicator's tools score candidates exactly as the match node did; called on its own, a tool uses the context
from the environment (``JDGRAPH_CATALOG`` …). Tools return pydantic models; LangChain serialises them.
"""

from __future__ import annotations

from langchain_core.tools import tool
from langgraph.runtime import get_runtime

from jdgraph.catalog.models import DimensionRef, Kra, RoleSkillOverlap, SkillCandidate, SkillMatch
from jdgraph.graph.context import Context
from jdgraph.scoring import RoleSignal
from jdgraph.scoring import roles_for_skills as rank_roles_for_skills
from jdgraph.scoring import search_roles as rank_roles


def current_context() -> Context:
    """The running graph's context, or the environment's outside a graph run."""
    try:
        runtime = get_runtime(Context)
    except RuntimeError:
        return Context.from_env()
    context = getattr(runtime, "context", None)  # a config without a graph runtime: a tool invoked on its own
    return context if isinstance(context, Context) else Context.from_env()


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
