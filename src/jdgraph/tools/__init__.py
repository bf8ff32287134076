"""LangChain tools over the catalog (typed inputs, pydantic outputs), for the adjudicator LLM and for users."""

from jdgraph.tools.catalog_tools import (
    CATALOG_TOOLS,
    lookup_skill,
    role_kras,
    roles_for_skills,
    search_roles,
    search_skills,
    skill_dimensions,
    tool_config,
)

__all__ = [
    "CATALOG_TOOLS",
    "lookup_skill",
    "role_kras",
    "roles_for_skills",
    "search_roles",
    "search_skills",
    "skill_dimensions",
    "tool_config",
]
