"""Pydantic models returned by catalog queries and tools (the catalog's public edge)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

MatchVia = Literal["exact", "normalized", "embedding", "none"]


class SkillRef(BaseModel):
    """A canonical catalog skill."""

    id: int
    slug: str
    display_name: str
    nature: str
    category: str | None = None
    sub_category: str | None = None
    volatility: str | None = None
    typical_lifespan: str | None = None
    status: str = "active"
    source: str = "starter"
    source_id: str | None = None


class SkillMatch(BaseModel):
    """The result of resolving one term to a canonical skill."""

    term: str
    skill: SkillRef | None = Field(None, description="The canonical skill, or None when nothing matched")
    match_via: MatchVia = "none"
    score: float = Field(0.0, description="1.0 for exact/normalised alias matches; cosine similarity otherwise")
    alias_id: int | None = None
    alias: str | None = Field(None, description="The alias text that matched")
    ambiguous: bool = Field(False, description="True when the normalised alias belongs to several skills")
    candidates: list[SkillCandidate] = Field(default_factory=list)


class SkillCandidate(BaseModel):
    skill: SkillRef
    score: float
    match_via: MatchVia
    alias: str
    alias_id: int | None = None


class DimensionRef(BaseModel):
    id: int
    slug: str
    name: str
    rationale: str | None = None


class RoleRef(BaseModel):
    id: int
    slug: str
    display_name: str
    domain: str | None = None
    archetype: str | None = None
    parent_slug: str | None = None
    source: str = "starter"
    source_id: str | None = None


class KraMatch(BaseModel):
    kra_id: int
    kra: str
    sentence: str | None = None
    similarity: float


class Kra(BaseModel):
    id: int
    text: str


class RoleSkillOverlap(BaseModel):
    role: RoleRef
    matched: list[str]
    total: int
    score: float


class CatalogStats(BaseModel):
    model_config = {"populate_by_name": True}

    catalog: str
    schema_name: str = Field(alias="schema")
    sources: dict[str, str] = Field(default_factory=dict, description="source → version of its latest import")
    skills: int
    skill_aliases: int
    dimensions: int
    skill_dimension_links: int
    roles: int
    role_aliases: int
    kras: int
    role_dimension_links: int
    role_skill_links: int
    pending_reviews: int
    runs: int
    embedding_model: str | None = None
    embedding_dim: int | None = None


SkillMatch.model_rebuild()
