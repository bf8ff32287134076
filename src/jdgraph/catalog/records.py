"""What an importer hands the catalog writer: plain records keyed by the source's own ids.

Records name each other by ``source_id`` (a concept URI, an O*NET-SOC code, a starter slug), never by database
ids, so an importer needs no database and the writer resolves every reference in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Importance = Literal["essential", "optional"]

# Profile defaults per nature: (category, volatility, typical lifespan, version strategy).
NATURE_PROFILE: dict[str, tuple[str, str, str, str]] = {
    "LANGUAGE": ("Language", "STABLE", "EVERGREEN", "MAJOR_ONLY"),
    "FRAMEWORK": ("Framework", "MEDIUM", "DECADE", "MAJOR_ONLY"),
    "LIBRARY": ("Library", "MEDIUM", "MULTI_YEAR", "MAJOR_MINOR"),
    "TOOL": ("Tool", "MEDIUM", "DECADE", "MAJOR_ONLY"),
    "PLATFORM": ("Platform", "MEDIUM", "DECADE", "UNVERSIONED"),
    "DATABASE": ("Database", "STABLE", "DECADE", "MAJOR_ONLY"),
    "METHODOLOGY": ("Methodology", "STABLE", "EVERGREEN", "NOT_APPLICABLE"),
    "CONCEPT": ("Concept", "STABLE", "EVERGREEN", "NOT_APPLICABLE"),
    "KNOWLEDGE": ("Knowledge", "STABLE", "EVERGREEN", "NOT_APPLICABLE"),
    "SOFT_SKILL": ("Soft Skill", "STABLE", "EVERGREEN", "NOT_APPLICABLE"),
    "PRACTICE": ("Practice", "STABLE", "EVERGREEN", "NOT_APPLICABLE"),
    "CERTIFICATION": ("Certification", "MEDIUM", "MULTI_YEAR", "UNVERSIONED"),
    "STANDARD": ("Standard", "STABLE", "DECADE", "MAJOR_ONLY"),
    "DOMAIN": ("Domain", "STABLE", "EVERGREEN", "NOT_APPLICABLE"),
}
AliasType = Literal["CANONICAL", "SYNONYM", "ABBREVIATION", "VARIANT", "LEARNED"]


CURATED_SOURCES = frozenset({"starter", "review"})
"""Alias sources written by people for jdgraph (the starter catalog, approved review items). Aliases from bulk
taxonomy imports (ESCO alt and hidden labels, O*NET titles) are not curated: many are ordinary words ("current",
"care", "engineering") that name a skill only in their taxonomy's context, so the extractor trusts them less."""


@dataclass(frozen=True)
class AliasRecord:
    text: str
    alias_type: AliasType = "SYNONYM"
    match_case: bool = False
    """Aliases that are also ordinary words ("Go", "Excel") only match text with this exact casing."""


@dataclass
class DimensionRecord:
    source_id: str
    slug: str
    name: str
    rationale: str | None = None
    kind: str = "skill_group"
    parent: str | None = None
    """source_id of the broader dimension."""


@dataclass
class SkillRecord:
    source_id: str
    slug: str
    name: str
    nature: str
    category: str | None = None
    sub_category: str | None = None
    volatility: str = "STABLE"
    typical_lifespan: str = "EVERGREEN"
    version_strategy: str = "NOT_APPLICABLE"
    description: str | None = None
    context_tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    aliases: list[AliasRecord] = field(default_factory=list)
    """Every name of the skill; the first is its canonical label."""
    dimensions: list[str] = field(default_factory=list)
    """source_ids of its dimensions."""


@dataclass
class RoleRecord:
    source_id: str
    slug: str
    name: str
    description: str | None = None
    domain: str | None = None
    archetype: str | None = None
    code: str | None = None
    parent: str | None = None
    """source_id of the broader role."""
    attributes: dict[str, Any] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    """Title aliases; the role's name is always the first."""
    kras: list[tuple[str, str | None]] = field(default_factory=list)
    """(text, kind) — kind is 'core', 'supplemental', 'description' or None."""


@dataclass(frozen=True)
class RoleSkillLink:
    role: str
    skill: str
    importance: Importance = "essential"
    weight: float = 1.0


@dataclass(frozen=True)
class RoleDimensionLink:
    role: str
    dimension: str
    importance: Importance = "essential"
    weight: float = 1.0


@dataclass(frozen=True)
class SkillRelation:
    skill: str
    related: str
    kind: Literal["broader"] = "broader"


@dataclass(frozen=True)
class TitleExampleRecord:
    """A vacancy title as an employer wrote it, coded to a role (by the role's ``source_id``); ``line`` is where the
    file holds it, for errors and for taking a fold out when tuning."""

    title: str
    role_source_id: str
    line: int


@dataclass
class ImportBundle:
    """One source's content. The iterables are consumed once, in field order, so an importer can stream them."""

    source: str
    version: str
    content_hash: str
    """Hash of the input files: an import of identical files is skipped unless forced."""
    dimensions: Iterable[DimensionRecord] = ()
    skills: Iterable[SkillRecord] = ()
    roles: Iterable[RoleRecord] = ()
    role_skills: Iterable[RoleSkillLink] = ()
    role_dimensions: Iterable[RoleDimensionLink] = ()
    skill_relations: Iterable[SkillRelation] = ()
    notes: list[str] = field(default_factory=list)
    """What the importer had to leave out of the files, and why (shown to the user, kept in the import log)."""
