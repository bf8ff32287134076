"""The catalog as LangChain tools.

Each tool is a thin typed wrapper over :class:`jdgraph.catalog.queries.Catalog` on the process-wide catalog
(``jdgraph.catalog.queries.set_catalog`` swaps it, e.g. in tests). Tools return pydantic models; LangChain
serialises them for the model.
"""

from __future__ import annotations

from langchain_core.tools import tool

from jdgraph.catalog.models import (
    DimensionRef,
    Kra,
    RoleCandidate,
    RoleSkillOverlap,
    SkillCandidate,
    SkillMatch,
)
from jdgraph.catalog.queries import get_catalog


@tool
def lookup_skill(term: str) -> SkillMatch:
    """Resolve a skill name to the canonical catalog skill (exact alias, then normalised alias, then the nearest
    alias embedding). Returns the skill, how it matched (match_via), the score and the alias that matched."""
    return get_catalog().lookup_skill(term)


@tool
def search_skills(text: str, k: int = 10) -> list[SkillCandidate]:
    """Find the k catalog skills closest to a free-text description, best first, with scores."""
    return get_catalog().search_skills(text, k=max(1, min(k, 50)))


@tool
def search_roles(title_or_text: str, k: int = 5) -> list[RoleCandidate]:
    """Find the k catalog roles closest to a job title or responsibility text. Each candidate carries the
    evidence for its score: best title alias, best KRA matches and centroid similarity."""
    return get_catalog().search_roles(title_or_text, k=max(1, min(k, 25)))


@tool
def role_kras(role: str) -> list[Kra]:
    """List the key responsibility areas (KRAs) of a role, by role slug."""
    return get_catalog().role_kras(role)


@tool
def roles_for_skills(skills: list[str], k: int = 5) -> list[RoleSkillOverlap]:
    """Rank roles by how many of the given canonical skill slugs they use (weighted overlap)."""
    return get_catalog().roles_for_skills(skills, k=max(1, min(k, 25)))


@tool
def skill_dimensions(skill: str) -> list[DimensionRef]:
    """List the dimensions (skill clusters) a canonical skill belongs to, by skill slug."""
    return get_catalog().skill_dimensions(skill)


CATALOG_TOOLS = [lookup_skill, search_skills, search_roles, role_kras, roles_for_skills, skill_dimensions]
