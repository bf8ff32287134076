"""The hand-written starter catalog: validated from YAML package data, imported like any other source.

Slugs are the starter's own ids (``source_id``), so the writer's keyed upserts make a second load a no-op and an
edited YAML file update the catalog in place.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from jdgraph.catalog.normalize import normalize_alias, slugify
from jdgraph.catalog.records import (
    NATURE_PROFILE,
    AliasRecord,
    DimensionRecord,
    ImportBundle,
    RoleDimensionLink,
    RoleRecord,
    RoleSkillLink,
    SkillRecord,
)
from jdgraph.errors import CatalogError

Nature = Literal[
    "LANGUAGE",
    "FRAMEWORK",
    "LIBRARY",
    "TOOL",
    "PLATFORM",
    "DATABASE",
    "METHODOLOGY",
    "CONCEPT",
    "KNOWLEDGE",
    "SOFT_SKILL",
    "PRACTICE",
    "CERTIFICATION",
    "STANDARD",
    "DOMAIN",
]


class StarterSkill(BaseModel):
    name: str
    slug: str = ""
    nature: Nature | None = None
    aliases: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    category: str | None = None
    sub_category: str | None = None
    volatility: str | None = None
    typical_lifespan: str | None = None
    version_strategy: str | None = None

    @field_validator("aliases", "tags", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> list[str]:
        return [str(v) for v in value or []]


class StarterDimension(BaseModel):
    slug: str
    name: str
    rationale: str
    default_nature: Nature = "CONCEPT"
    skills: list[StarterSkill | str]


class RoleDimensions(BaseModel):
    essential: list[str] = Field(default_factory=list)
    optional: list[str] = Field(default_factory=list)


class StarterRole(BaseModel):
    slug: str
    name: str
    domain: str
    archetype: str
    description: str
    parent: str | None = None
    aliases: list[str] = Field(min_length=3)
    kras: list[str] = Field(min_length=5)
    dimensions: RoleDimensions
    skills: list[str] = Field(default_factory=list)


class StarterCatalog(BaseModel):
    dimensions: list[StarterDimension]
    roles: list[StarterRole]
    case_sensitive_aliases: list[str] = Field(default_factory=list)
    content_hash: str = ""

    @property
    def skills(self) -> dict[str, tuple[StarterSkill, list[str]]]:
        """slug → (skill, dimension slugs)."""
        out: dict[str, tuple[StarterSkill, list[str]]] = {}
        for dim in self.dimensions:
            for entry in dim.skills:
                if isinstance(entry, StarterSkill):
                    out[entry.slug] = (entry, [*out.get(entry.slug, (entry, []))[1], dim.slug])
        for dim in self.dimensions:
            for entry in dim.skills:
                if isinstance(entry, str):
                    out[entry][1].append(dim.slug)
        return out


def _read(name: str) -> tuple[str, dict[str, Any]]:
    text = (resources.files("jdgraph.catalog") / "starter" / name).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"starter/{name} is not valid YAML: {exc}") from exc
    return text, data


def load_starter_definition() -> StarterCatalog:
    """Parse and cross-check the starter YAML files. Errors name the file and the offending slug."""
    skills_text, skills_data = _read("skills.yaml")
    roles_text, roles_data = _read("roles.yaml")
    try:
        catalog = StarterCatalog(
            dimensions=skills_data["dimensions"],
            roles=roles_data["roles"],
            case_sensitive_aliases=skills_data.get("case_sensitive_aliases", []),
            content_hash=hashlib.sha256((skills_text + roles_text).encode()).hexdigest()[:16],
        )
    except (ValidationError, KeyError) as exc:
        raise CatalogError(f"starter catalog is invalid: {exc}") from exc
    defined: set[str] = set()
    for dim in catalog.dimensions:
        for entry in dim.skills:
            if isinstance(entry, StarterSkill):
                entry.slug = entry.slug or slugify(entry.name)
                entry.nature = entry.nature or dim.default_nature
                if entry.slug in defined:
                    raise CatalogError(f"starter/skills.yaml: skill {entry.slug!r} is defined twice")
                defined.add(entry.slug)
    dimension_slugs = {d.slug for d in catalog.dimensions}
    for dim in catalog.dimensions:
        for entry in dim.skills:
            if isinstance(entry, str) and entry not in defined:
                raise CatalogError(f"starter/skills.yaml: dimension {dim.slug!r} links unknown skill {entry!r}")
    role_slugs = {r.slug for r in catalog.roles}
    for role in catalog.roles:
        for dim_slug in role.dimensions.essential + role.dimensions.optional:
            if dim_slug not in dimension_slugs:
                raise CatalogError(f"starter/roles.yaml: role {role.slug!r} links unknown dimension {dim_slug!r}")
        for skill_slug in role.skills:
            if skill_slug not in defined:
                raise CatalogError(f"starter/roles.yaml: role {role.slug!r} links unknown skill {skill_slug!r}")
        if role.parent and role.parent not in role_slugs:
            raise CatalogError(f"starter/roles.yaml: role {role.slug!r} has unknown parent {role.parent!r}")
    return catalog


def _aliases(skill: StarterSkill, case_sensitive: set[str]) -> list[AliasRecord]:
    """The skill's names with their alias type; variants that normalise alike are kept once."""
    out: list[AliasRecord] = []
    seen: set[str] = set()
    for i, alias in enumerate([skill.name, *skill.aliases]):
        norm = normalize_alias(alias)
        if not norm or norm in seen:
            continue
        seen.add(norm)
        if i == 0:
            kind = "CANONICAL"
        elif alias.isupper() and len(alias) <= 6 and " " not in alias:
            kind = "ABBREVIATION"
        elif norm == normalize_alias(skill.name):
            kind = "VARIANT"
        else:
            kind = "SYNONYM"
        out.append(AliasRecord(alias, kind, alias in case_sensitive))  # type: ignore[arg-type]
    return out


class StarterImporter:
    """The starter catalog as an import bundle."""

    source = "starter"

    def bundle(self) -> ImportBundle:
        catalog = load_starter_definition()
        case_sensitive = set(catalog.case_sensitive_aliases)
        dim_names = {d.slug: d.name for d in catalog.dimensions}
        skills: list[SkillRecord] = []
        for slug, (skill, dims) in catalog.skills.items():
            nature = skill.nature or "CONCEPT"
            category, volatility, lifespan, version = NATURE_PROFILE[nature]
            skills.append(
                SkillRecord(
                    source_id=slug,
                    slug=slug,
                    name=skill.name,
                    nature=nature,
                    category=skill.category or category,
                    sub_category=skill.sub_category or dim_names[dims[0]],
                    volatility=skill.volatility or volatility,
                    typical_lifespan=skill.typical_lifespan or lifespan,
                    version_strategy=skill.version_strategy or version,
                    context_tags=skill.tags,
                    aliases=_aliases(skill, case_sensitive),
                    dimensions=dims,
                )
            )
        roles = [
            RoleRecord(
                source_id=role.slug,
                slug=role.slug,
                name=role.name,
                description=role.description,
                domain=role.domain,
                archetype=role.archetype,
                parent=role.parent,
                aliases=role.aliases,
                kras=[(k, None) for k in role.kras],
            )
            for role in catalog.roles
        ]
        role_dims = [
            RoleDimensionLink(role.slug, dim, importance, weight)  # type: ignore[arg-type]
            for role in catalog.roles
            for importance, weight, dims in (
                ("essential", 1.0, role.dimensions.essential),
                ("optional", 0.5, role.dimensions.optional),
            )
            for dim in dims
        ]
        return ImportBundle(
            source=self.source,
            version="starter",
            content_hash=catalog.content_hash,
            dimensions=[DimensionRecord(d.slug, d.slug, d.name, d.rationale) for d in catalog.dimensions],
            skills=skills,
            roles=roles,
            role_skills=[RoleSkillLink(r.slug, s) for r in catalog.roles for s in r.skills],
            role_dimensions=role_dims,
        )
