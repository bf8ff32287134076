"""The SQL of an import: the staging tables records are copied into, the set-based upserts that merge them into
the catalog (keyed by ``(source, source_id)``, changing a row only when its content differs), and what a complete
release no longer lists (retired or deleted). :class:`jdgraph.catalog.writer.CatalogWriter` runs them, in order."""

from __future__ import annotations

STAGES = {
    "st_dimensions": "ord int, source_id text, slug text, name text, rationale text, kind text, parent text",
    "st_skills": """ord int, source_id text, slug text, name text, nature text, category text, sub_category text,
                    volatility text, typical_lifespan text, version_strategy text, description text,
                    context_tags text, attributes text""",
    "st_skill_aliases": """ord int, skill text, alias text, alias_norm text, alias_type text, is_primary bool,
                           match_case bool""",
    "st_skill_dimensions": "skill text, dimension text",
    "st_roles": """ord int, source_id text, slug text, name text, description text, domain text, archetype text,
                   code text, parent text, attributes text""",
    "st_role_aliases": "ord int, role text, alias text, alias_norm text, is_primary bool",
    "st_role_kras": "ord int, role text, text text, text_norm text, kind text",
    "st_role_skills": "role text, skill text, importance text, weight real",
    "st_role_dimensions": "role text, dimension text, importance text, weight real",
    "st_skill_relations": "skill text, related text, kind text",
}


STAGE_INDEXES = {
    "st_skills": "source_id",
    "st_skill_aliases": "skill, alias_norm",
    "st_skill_dimensions": "skill, dimension",
    "st_roles": "source_id",
    "st_role_aliases": "role, alias_norm",
    "st_role_kras": "role, text_norm",
    "st_role_skills": "role, skill",
    "st_role_dimensions": "role, dimension",
    "st_dimensions": "source_id",
}


# Merge statements, in order. %(src)s is the bundle's source. Each upsert changes a row only when its content
# differs, so a re-import of the same files reports 0 rows and leaves every vector in place.
MERGE: list[tuple[str, str]] = [
    (
        "dimensions",
        """INSERT INTO dimensions (slug, name, rationale, kind, source, source_id)
           SELECT slug, name, rationale, kind, %(src)s, source_id FROM st_dimensions ORDER BY ord
           ON CONFLICT (source, source_id) DO UPDATE SET slug = EXCLUDED.slug, name = EXCLUDED.name,
               rationale = EXCLUDED.rationale, kind = EXCLUDED.kind,
               embedding = CASE WHEN dimensions.name = EXCLUDED.name THEN dimensions.embedding END
           WHERE (dimensions.slug, dimensions.name, dimensions.rationale, dimensions.kind)
                 IS DISTINCT FROM (EXCLUDED.slug, EXCLUDED.name, EXCLUDED.rationale, EXCLUDED.kind)""",
    ),
    (
        "dimension parents",
        """UPDATE dimensions d SET parent_id = p.id FROM st_dimensions st
           JOIN dimensions p ON p.source = %(src)s AND p.source_id = st.parent
           WHERE d.source = %(src)s AND d.source_id = st.source_id AND d.parent_id IS DISTINCT FROM p.id""",
    ),
    (
        "skills",
        """INSERT INTO skills (slug, display_name, nature, category, sub_category, volatility, typical_lifespan,
                               version_strategy, description, context_tags, attributes, source, source_id)
           SELECT slug, name, nature, category, sub_category, volatility, typical_lifespan, version_strategy,
                  description, ARRAY(SELECT jsonb_array_elements_text(context_tags::jsonb)), attributes::jsonb,
                  %(src)s, source_id
           FROM st_skills ORDER BY ord
           ON CONFLICT (source, source_id) DO UPDATE SET slug = EXCLUDED.slug, display_name = EXCLUDED.display_name,
               nature = EXCLUDED.nature, category = EXCLUDED.category, sub_category = EXCLUDED.sub_category,
               volatility = EXCLUDED.volatility, typical_lifespan = EXCLUDED.typical_lifespan,
               version_strategy = EXCLUDED.version_strategy, description = EXCLUDED.description,
               context_tags = EXCLUDED.context_tags, attributes = EXCLUDED.attributes, status = 'active',
               updated_at = now()
           WHERE (skills.slug, skills.display_name, skills.nature, skills.category, skills.sub_category,
                  skills.volatility, skills.typical_lifespan, skills.version_strategy, skills.description,
                  skills.context_tags, skills.attributes, skills.status)
                 IS DISTINCT FROM (EXCLUDED.slug, EXCLUDED.display_name, EXCLUDED.nature, EXCLUDED.category,
                  EXCLUDED.sub_category, EXCLUDED.volatility, EXCLUDED.typical_lifespan, EXCLUDED.version_strategy,
                  EXCLUDED.description, EXCLUDED.context_tags, EXCLUDED.attributes, 'active')""",
    ),
    (
        "skill_aliases",
        """INSERT INTO skill_aliases (skill_id, alias, alias_norm, alias_type, is_primary, match_case, source)
           SELECT DISTINCT ON (s.id, st.alias_norm) s.id, st.alias, st.alias_norm, st.alias_type, st.is_primary,
                  st.match_case, %(src)s
           FROM st_skill_aliases st JOIN skills s ON s.source = %(src)s AND s.source_id = st.skill
           ORDER BY s.id, st.alias_norm, st.is_primary DESC, st.ord
           ON CONFLICT (skill_id, alias_norm) DO UPDATE SET alias = EXCLUDED.alias,
               alias_type = EXCLUDED.alias_type, is_primary = EXCLUDED.is_primary, match_case = EXCLUDED.match_case,
               source = EXCLUDED.source,
               embedding = CASE WHEN skill_aliases.alias = EXCLUDED.alias THEN skill_aliases.embedding END
           WHERE (skill_aliases.alias, skill_aliases.alias_type, skill_aliases.is_primary, skill_aliases.match_case,
                  skill_aliases.source)
                 IS DISTINCT FROM (EXCLUDED.alias, EXCLUDED.alias_type, EXCLUDED.is_primary, EXCLUDED.match_case,
                  EXCLUDED.source)""",
    ),
    (
        "skill_dimensions",
        """INSERT INTO skill_dimensions (skill_id, dimension_id, source)
           SELECT DISTINCT s.id, d.id, %(src)s FROM st_skill_dimensions st
           JOIN skills s ON s.source = %(src)s AND s.source_id = st.skill
           JOIN dimensions d ON d.source = %(src)s AND d.source_id = st.dimension
           ON CONFLICT DO NOTHING""",
    ),
    (
        "roles",
        """INSERT INTO roles (slug, display_name, description, domain, archetype, code, attributes, source, source_id)
           SELECT slug, name, description, domain, archetype, code, attributes::jsonb, %(src)s, source_id
           FROM st_roles ORDER BY ord
           ON CONFLICT (source, source_id) DO UPDATE SET slug = EXCLUDED.slug, display_name = EXCLUDED.display_name,
               description = EXCLUDED.description, domain = EXCLUDED.domain, archetype = EXCLUDED.archetype,
               code = EXCLUDED.code, attributes = EXCLUDED.attributes, status = 'active', updated_at = now()
           WHERE (roles.slug, roles.display_name, roles.description, roles.domain, roles.archetype, roles.code,
                  roles.attributes, roles.status)
                 IS DISTINCT FROM (EXCLUDED.slug, EXCLUDED.display_name, EXCLUDED.description, EXCLUDED.domain,
                  EXCLUDED.archetype, EXCLUDED.code, EXCLUDED.attributes, 'active')""",
    ),
    (
        "role parents",
        """UPDATE roles r SET parent_id = p.id FROM st_roles st
           JOIN roles p ON p.source = %(src)s AND p.source_id = st.parent
           WHERE r.source = %(src)s AND r.source_id = st.source_id AND r.parent_id IS DISTINCT FROM p.id""",
    ),
    (
        "role_aliases",
        """INSERT INTO role_aliases (role_id, alias, alias_norm, is_primary)
           SELECT DISTINCT ON (r.id, st.alias_norm) r.id, st.alias, st.alias_norm, st.is_primary
           FROM st_role_aliases st JOIN roles r ON r.source = %(src)s AND r.source_id = st.role
           ORDER BY r.id, st.alias_norm, st.is_primary DESC, st.ord
           ON CONFLICT (role_id, alias_norm) DO UPDATE SET alias = EXCLUDED.alias, is_primary = EXCLUDED.is_primary,
               embedding = CASE WHEN role_aliases.alias = EXCLUDED.alias THEN role_aliases.embedding END
           WHERE (role_aliases.alias, role_aliases.is_primary)
                 IS DISTINCT FROM (EXCLUDED.alias, EXCLUDED.is_primary)""",
    ),
    (
        "role_kras",
        """INSERT INTO role_kras (role_id, text, text_norm, kind, source)
           SELECT DISTINCT ON (r.id, st.text_norm) r.id, st.text, st.text_norm, st.kind, %(src)s
           FROM st_role_kras st JOIN roles r ON r.source = %(src)s AND r.source_id = st.role
           ORDER BY r.id, st.text_norm, st.ord
           ON CONFLICT (role_id, text_norm) DO UPDATE SET text = EXCLUDED.text, kind = EXCLUDED.kind,
               source = EXCLUDED.source,
               embedding = CASE WHEN role_kras.text = EXCLUDED.text THEN role_kras.embedding END
           WHERE (role_kras.text, role_kras.kind, role_kras.source)
                 IS DISTINCT FROM (EXCLUDED.text, EXCLUDED.kind, EXCLUDED.source)""",
    ),
    (
        "role_skills",
        """INSERT INTO role_skills (role_id, skill_id, importance, weight, source)
           SELECT DISTINCT ON (r.id, s.id) r.id, s.id, st.importance, st.weight, %(src)s FROM st_role_skills st
           JOIN roles r ON r.source = %(src)s AND r.source_id = st.role
           JOIN skills s ON s.source = %(src)s AND s.source_id = st.skill
           ORDER BY r.id, s.id, st.weight DESC
           ON CONFLICT (role_id, skill_id) DO UPDATE SET importance = EXCLUDED.importance, weight = EXCLUDED.weight
           WHERE (role_skills.importance, role_skills.weight)
                 IS DISTINCT FROM (EXCLUDED.importance, EXCLUDED.weight)""",
    ),
    (
        "role_dimensions",
        """INSERT INTO role_dimensions (role_id, dimension_id, importance, weight, source)
           SELECT DISTINCT ON (r.id, d.id) r.id, d.id, st.importance, st.weight, %(src)s FROM st_role_dimensions st
           JOIN roles r ON r.source = %(src)s AND r.source_id = st.role
           JOIN dimensions d ON d.source = %(src)s AND d.source_id = st.dimension
           ORDER BY r.id, d.id, st.weight DESC
           ON CONFLICT (role_id, dimension_id) DO UPDATE SET importance = EXCLUDED.importance,
               weight = EXCLUDED.weight
           WHERE (role_dimensions.importance, role_dimensions.weight)
                 IS DISTINCT FROM (EXCLUDED.importance, EXCLUDED.weight)""",
    ),
    (
        "skill_relations",
        """INSERT INTO skill_relations (skill_id, related_id, kind, source)
           SELECT DISTINCT s.id, o.id, st.kind, %(src)s FROM st_skill_relations st
           JOIN skills s ON s.source = %(src)s AND s.source_id = st.skill
           JOIN skills o ON o.source = %(src)s AND o.source_id = st.related
           ON CONFLICT DO NOTHING""",
    ),
]


# What a complete release no longer lists: skills and roles are retired (runs and reviews refer to them), the
# rest is deleted. Rows another source added (learned aliases, approved KRAs) are never touched.
PRUNE: list[tuple[str, str]] = [
    (
        "skills",
        """UPDATE skills s SET status = 'retired', updated_at = now() WHERE s.source = %(src)s
           AND s.status <> 'retired' AND NOT EXISTS (SELECT 1 FROM st_skills st WHERE st.source_id = s.source_id)""",
    ),
    (
        "roles",
        """UPDATE roles r SET status = 'retired', updated_at = now() WHERE r.source = %(src)s
           AND r.status <> 'retired' AND NOT EXISTS (SELECT 1 FROM st_roles st WHERE st.source_id = r.source_id)""",
    ),
    (
        "skill_aliases",
        """DELETE FROM skill_aliases a USING skills s WHERE a.skill_id = s.id AND s.source = %(src)s
           AND a.source = %(src)s AND NOT EXISTS (SELECT 1 FROM st_skill_aliases st
               WHERE st.skill = s.source_id AND st.alias_norm = a.alias_norm)""",
    ),
    (
        "skill_dimensions",
        """DELETE FROM skill_dimensions sd USING skills s, dimensions d
           WHERE sd.skill_id = s.id AND sd.dimension_id = d.id AND sd.source = %(src)s
           AND NOT EXISTS (SELECT 1 FROM st_skill_dimensions st WHERE st.skill = s.source_id
                           AND st.dimension = d.source_id)""",
    ),
    (
        "role_aliases",
        """DELETE FROM role_aliases a USING roles r WHERE a.role_id = r.id AND r.source = %(src)s
           AND NOT EXISTS (SELECT 1 FROM st_role_aliases st WHERE st.role = r.source_id
                           AND st.alias_norm = a.alias_norm)""",
    ),
    (
        "role_kras",
        """DELETE FROM role_kras k USING roles r WHERE k.role_id = r.id AND r.source = %(src)s
           AND k.source = %(src)s AND NOT EXISTS (SELECT 1 FROM st_role_kras st WHERE st.role = r.source_id
                                                 AND st.text_norm = k.text_norm)""",
    ),
    (
        "role_skills",
        """DELETE FROM role_skills rs USING roles r, skills s
           WHERE rs.role_id = r.id AND rs.skill_id = s.id AND rs.source = %(src)s
           AND NOT EXISTS (SELECT 1 FROM st_role_skills st WHERE st.role = r.source_id AND st.skill = s.source_id)""",
    ),
    (
        "role_dimensions",
        """DELETE FROM role_dimensions rd USING roles r, dimensions d
           WHERE rd.role_id = r.id AND rd.dimension_id = d.id AND rd.source = %(src)s
           AND NOT EXISTS (SELECT 1 FROM st_role_dimensions st WHERE st.role = r.source_id
                           AND st.dimension = d.source_id)""",
    ),
    (
        "dimensions",
        """DELETE FROM dimensions d WHERE d.source = %(src)s
           AND NOT EXISTS (SELECT 1 FROM st_dimensions st WHERE st.source_id = d.source_id)""",
    ),
]
