-- Real taxonomies (ESCO, O*NET): source codes and attributes, KRA kinds, broader relations, import bookkeeping.

ALTER TABLE roles ADD COLUMN code text;
ALTER TABLE roles ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}';
ALTER TABLE skills ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}';
ALTER TABLE dimensions ADD COLUMN parent_id bigint REFERENCES dimensions (id) ON DELETE SET NULL;
ALTER TABLE dimensions ADD COLUMN kind text NOT NULL DEFAULT 'skill_group';
-- O*NET task statements are core or supplemental; ESCO description sentences are 'description'.
ALTER TABLE role_kras ADD COLUMN kind text;
CREATE INDEX role_aliases_alias_idx ON role_aliases (alias);
CREATE INDEX role_kras_role_idx ON role_kras (role_id);
CREATE INDEX skills_source_idx ON skills (source, source_id);

-- Skill hierarchy below the skill groups (ESCO: a skill's broader skill).
CREATE TABLE skill_relations (
    skill_id   bigint NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    related_id bigint NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('broader')),
    source     text NOT NULL,
    PRIMARY KEY (skill_id, related_id, kind)
);

-- One row per import of a source into this catalog: what was read, what changed, what was embedded.
CREATE TABLE catalog_imports (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL,
    version      text,
    content_hash text NOT NULL,
    counts       jsonb NOT NULL,
    embedded     integer NOT NULL DEFAULT 0,
    seconds      real NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Importers upsert by the source's own id, for dimensions as for skills and roles.
ALTER TABLE dimensions ADD CONSTRAINT dimensions_source_key UNIQUE (source, source_id);
ALTER TABLE role_kras ALTER COLUMN source SET DEFAULT 'starter';
