"""The hand-written starter catalog: validated from YAML package data and loaded idempotently.

Loading is a set of keyed upserts (slug, (skill, normalised alias), (role, normalised KRA)...), so running it
twice changes nothing, and editing the YAML then re-running updates the catalog in place.
"""

from __future__ import annotations

import hashlib
import logging
from importlib import resources
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from jdgraph.catalog.db import Database
from jdgraph.catalog.normalize import normalize_alias, normalize_text, slugify
from jdgraph.embeddings import ModelEmbeddings, as_array
from jdgraph.errors import CatalogError

log = logging.getLogger(__name__)

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


def _alias_rows(skill: StarterSkill, case_sensitive: set[str]) -> list[tuple[str, str, str, bool, bool]]:
    """(alias, normalised, type, is_primary, match_case) rows; variants that normalise alike are kept once."""
    rows: list[tuple[str, str, str, bool, bool]] = []
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
        rows.append((alias, norm, kind, i == 0, alias in case_sensitive))
    return rows


def load_starter_catalog(db: Database, embeddings: ModelEmbeddings, *, force: bool = False) -> dict[str, int]:
    """Upsert the starter catalog and embed whatever has no embedding yet. Returns row counts touched."""
    catalog = load_starter_definition()
    with db.connection() as conn:
        row = conn.execute("SELECT value FROM catalog_meta WHERE key = 'starter_hash'").fetchone()
        if row and row["value"] == catalog.content_hash and not force:
            return {"skipped": 1}
    case_sensitive = set(catalog.case_sensitive_aliases)
    counts = {"dimensions": 0, "skills": 0, "skill_aliases": 0, "roles": 0, "role_aliases": 0, "kras": 0}
    with db.connection() as conn, conn.transaction():
        # Serialise concurrent loaders (two processes on an empty catalog).
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('jdgraph-starter-load'))")
        dim_ids: dict[str, int] = {}
        for dim in catalog.dimensions:
            r = conn.execute(
                """INSERT INTO dimensions (slug, name, rationale, source, source_id)
                   VALUES (%s, %s, %s, 'starter', %s)
                   ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, rationale = EXCLUDED.rationale
                   RETURNING id""",
                (dim.slug, dim.name, dim.rationale, dim.slug),
            ).fetchone()
            assert r is not None
            dim_ids[dim.slug] = r["id"]
            counts["dimensions"] += 1
        skill_ids: dict[str, int] = {}
        for slug, (skill, dims) in catalog.skills.items():
            nature = skill.nature or "CONCEPT"
            category, volatility, lifespan, version = NATURE_PROFILE[nature]
            first_dim = next(d for d in catalog.dimensions if d.slug == dims[0])
            r = conn.execute(
                """INSERT INTO skills (slug, display_name, category, sub_category, nature, volatility,
                                       typical_lifespan, version_strategy, context_tags, source, source_id)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'starter', %s)
                   ON CONFLICT (slug) DO UPDATE SET display_name = EXCLUDED.display_name,
                       category = EXCLUDED.category, sub_category = EXCLUDED.sub_category,
                       nature = EXCLUDED.nature, volatility = EXCLUDED.volatility,
                       typical_lifespan = EXCLUDED.typical_lifespan, version_strategy = EXCLUDED.version_strategy,
                       context_tags = EXCLUDED.context_tags, updated_at = now()
                   RETURNING id""",
                (
                    slug,
                    skill.name,
                    skill.category or category,
                    skill.sub_category or first_dim.name,
                    nature,
                    skill.volatility or volatility,
                    skill.typical_lifespan or lifespan,
                    skill.version_strategy or version,
                    skill.tags,
                    slug,
                ),
            ).fetchone()
            assert r is not None
            skill_ids[slug] = r["id"]
            counts["skills"] += 1
            for alias, norm, kind, primary, match_case in _alias_rows(skill, case_sensitive):
                conn.execute(
                    """INSERT INTO skill_aliases (skill_id, alias, alias_norm, alias_type, is_primary, match_case)
                       VALUES (%s, %s, %s, %s, %s, %s)
                       ON CONFLICT (skill_id, alias_norm) DO UPDATE SET alias = EXCLUDED.alias,
                           alias_type = EXCLUDED.alias_type, is_primary = EXCLUDED.is_primary,
                           match_case = EXCLUDED.match_case""",
                    (r["id"], alias, norm, kind, primary, match_case),
                )
                counts["skill_aliases"] += 1
            for dim_slug in dims:
                conn.execute(
                    """INSERT INTO skill_dimensions (skill_id, dimension_id, source) VALUES (%s, %s, 'starter')
                       ON CONFLICT DO NOTHING""",
                    (r["id"], dim_ids[dim_slug]),
                )
        role_ids: dict[str, int] = {}
        for role in catalog.roles:
            r = conn.execute(
                """INSERT INTO roles (slug, display_name, archetype, description, domain, source, source_id)
                   VALUES (%s, %s, %s, %s, %s, 'starter', %s)
                   ON CONFLICT (slug) DO UPDATE SET display_name = EXCLUDED.display_name,
                       archetype = EXCLUDED.archetype, description = EXCLUDED.description,
                       domain = EXCLUDED.domain, updated_at = now()
                   RETURNING id""",
                (role.slug, role.name, role.archetype, role.description, role.domain, role.slug),
            ).fetchone()
            assert r is not None
            role_ids[role.slug] = r["id"]
            counts["roles"] += 1
            seen_aliases: set[str] = set()
            for i, alias in enumerate([role.name, *role.aliases]):
                norm = normalize_alias(alias)
                if norm in seen_aliases:
                    continue
                seen_aliases.add(norm)
                conn.execute(
                    """INSERT INTO role_aliases (role_id, alias, alias_norm, is_primary) VALUES (%s, %s, %s, %s)
                       ON CONFLICT (role_id, alias_norm) DO UPDATE SET alias = EXCLUDED.alias""",
                    (r["id"], alias, norm, i == 0),
                )
                counts["role_aliases"] += 1
            for kra in role.kras:
                conn.execute(
                    """INSERT INTO role_kras (role_id, text, text_norm, source) VALUES (%s, %s, %s, 'starter')
                       ON CONFLICT (role_id, text_norm) DO NOTHING""",
                    (r["id"], kra, normalize_text(kra)),
                )
                counts["kras"] += 1
            for importance, weight, slugs in (
                ("essential", 1.0, role.dimensions.essential),
                ("optional", 0.5, role.dimensions.optional),
            ):
                for dim_slug in slugs:
                    conn.execute(
                        """INSERT INTO role_dimensions (role_id, dimension_id, importance, weight, source)
                           VALUES (%s, %s, %s, %s, 'starter')
                           ON CONFLICT (role_id, dimension_id) DO UPDATE
                           SET importance = EXCLUDED.importance, weight = EXCLUDED.weight""",
                        (r["id"], dim_ids[dim_slug], importance, weight),
                    )
            for skill_slug in role.skills:
                conn.execute(
                    """INSERT INTO role_skills (role_id, skill_id, importance, weight, source)
                       VALUES (%s, %s, 'essential', 1.0, 'starter') ON CONFLICT DO NOTHING""",
                    (r["id"], skill_ids[skill_slug]),
                )
        for role in catalog.roles:
            if role.parent:
                conn.execute(
                    "UPDATE roles SET parent_id = %s WHERE id = %s", (role_ids[role.parent], role_ids[role.slug])
                )
    embed_missing(db, embeddings)
    with db.connection() as conn:
        conn.execute(
            """INSERT INTO catalog_meta (key, value) VALUES ('starter_hash', %s)
               ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""",
            (catalog.content_hash,),
        )
    return counts


_EMBED_TARGETS = (
    # (table, text column, vector column)
    ("skill_aliases", "alias", "embedding"),
    ("role_aliases", "alias", "embedding"),
    ("role_kras", "text", "embedding"),
    ("dimensions", "name", "embedding"),
)


def embed_missing(db: Database, embeddings: ModelEmbeddings, *, batch: int = 512) -> int:
    """Fill every NULL embedding column (new aliases, KRAs, imported rows). Returns the number embedded."""
    total = 0
    for table, text_col, vec_col in _EMBED_TARGETS:
        while True:
            with db.connection() as conn:
                rows = conn.execute(
                    f"SELECT id, {text_col} AS text FROM {table} WHERE {vec_col} IS NULL ORDER BY id LIMIT %s",
                    (batch,),
                ).fetchall()
            if not rows:
                break
            vectors = embeddings.embed_array([r["text"] for r in rows])
            with db.connection() as conn, conn.cursor() as cur:
                cur.executemany(
                    f"UPDATE {table} SET {vec_col} = %s WHERE id = %s",
                    [(vec, r["id"]) for vec, r in zip(vectors, rows, strict=True)],
                )
            total += len(rows)
    _seed_centroids(db)
    return total


def _seed_centroids(db: Database) -> None:
    """A role without a centroid starts from the mean of its KRA and title embeddings, counted as one observation."""
    with db.connection() as conn:
        rows = conn.execute(
            """SELECT r.id,
                      (SELECT array_agg(k.embedding) FROM role_kras k WHERE k.role_id = r.id) AS kras,
                      (SELECT array_agg(a.embedding) FROM role_aliases a WHERE a.role_id = r.id) AS titles
               FROM roles r WHERE r.centroid IS NULL"""
        ).fetchall()
        for row in rows:
            vectors = [as_array(v) for v in (row["kras"] or []) + (row["titles"] or [])]
            if not vectors:
                continue
            mean = np.mean(vectors, axis=0)
            mean /= np.linalg.norm(mean) or 1.0
            conn.execute("UPDATE roles SET centroid = %s, centroid_n = 1 WHERE id = %s", (mean, row["id"]))
