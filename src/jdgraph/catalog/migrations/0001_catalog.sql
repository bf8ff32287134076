-- Catalog: skills, aliases, dimensions, roles, role aliases, KRAs and the links between them.
-- {{EMBEDDING_DIM}} is replaced by the catalog's embedding dimension when the schema is first created.

CREATE TABLE catalog_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE skills (
    id               bigserial PRIMARY KEY,
    slug             text NOT NULL UNIQUE,
    display_name     text NOT NULL,
    description      text,
    category         text,
    sub_category     text,
    nature           text NOT NULL CHECK (nature IN ('LANGUAGE', 'FRAMEWORK', 'LIBRARY', 'TOOL', 'PLATFORM',
                         'DATABASE', 'METHODOLOGY', 'CONCEPT', 'KNOWLEDGE', 'SOFT_SKILL', 'PRACTICE',
                         'CERTIFICATION', 'STANDARD', 'DOMAIN')),
    volatility       text NOT NULL DEFAULT 'STABLE' CHECK (volatility IN ('STABLE', 'MEDIUM', 'HIGH', 'EMERGING')),
    typical_lifespan text NOT NULL DEFAULT 'EVERGREEN'
                         CHECK (typical_lifespan IN ('EVERGREEN', 'DECADE', 'MULTI_YEAR', 'SHORT')),
    version_strategy text NOT NULL DEFAULT 'NOT_APPLICABLE'
                         CHECK (version_strategy IN ('NOT_APPLICABLE', 'UNVERSIONED', 'MAJOR_ONLY', 'MAJOR_MINOR')),
    extractable      boolean NOT NULL DEFAULT true,
    also_category    boolean NOT NULL DEFAULT false,
    context_tags     text[] NOT NULL DEFAULT '{}',
    enrichment       jsonb NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'proposed', 'retired')),
    source           text NOT NULL DEFAULT 'starter',
    source_id        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id)
);

CREATE TABLE skill_aliases (
    id          bigserial PRIMARY KEY,
    skill_id    bigint NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    alias       text NOT NULL,
    alias_norm  text NOT NULL,
    alias_type  text NOT NULL CHECK (alias_type IN ('CANONICAL', 'SYNONYM', 'ABBREVIATION', 'VARIANT', 'LEARNED')),
    is_primary  boolean NOT NULL DEFAULT false,
    -- Aliases that are also ordinary words ("Go", "Excel") only match text with this exact casing.
    match_case  boolean NOT NULL DEFAULT false,
    source      text NOT NULL DEFAULT 'starter',
    embedding   vector({{EMBEDDING_DIM}}),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (skill_id, alias_norm)
);
CREATE INDEX skill_aliases_alias_idx ON skill_aliases (alias);
CREATE INDEX skill_aliases_norm_idx ON skill_aliases (alias_norm);
CREATE INDEX skill_aliases_embedding_idx ON skill_aliases USING hnsw (embedding vector_cosine_ops);

CREATE TABLE dimensions (
    id         bigserial PRIMARY KEY,
    slug       text NOT NULL UNIQUE,
    name       text NOT NULL,
    rationale  text,
    source     text NOT NULL DEFAULT 'starter',
    source_id  text,
    embedding  vector({{EMBEDDING_DIM}}),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dimensions_embedding_idx ON dimensions USING hnsw (embedding vector_cosine_ops);

CREATE TABLE skill_dimensions (
    skill_id     bigint NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    dimension_id bigint NOT NULL REFERENCES dimensions (id) ON DELETE CASCADE,
    source       text NOT NULL DEFAULT 'starter',
    run_id       uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (skill_id, dimension_id)
);
CREATE INDEX skill_dimensions_dimension_idx ON skill_dimensions (dimension_id);

CREATE TABLE roles (
    id           bigserial PRIMARY KEY,
    slug         text NOT NULL UNIQUE,
    display_name text NOT NULL,
    archetype    text,
    description  text,
    domain       text,
    parent_id    bigint REFERENCES roles (id) ON DELETE SET NULL,
    source       text NOT NULL DEFAULT 'starter',
    source_id    text,
    centroid     vector({{EMBEDDING_DIM}}),
    centroid_n   integer NOT NULL DEFAULT 0,
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'proposed', 'retired')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id)
);
CREATE INDEX roles_centroid_idx ON roles USING hnsw (centroid vector_cosine_ops);

CREATE TABLE role_aliases (
    id         bigserial PRIMARY KEY,
    role_id    bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    alias      text NOT NULL,
    alias_norm text NOT NULL,
    is_primary boolean NOT NULL DEFAULT false,
    embedding  vector({{EMBEDDING_DIM}}),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (role_id, alias_norm)
);
CREATE INDEX role_aliases_norm_idx ON role_aliases (alias_norm);
CREATE INDEX role_aliases_embedding_idx ON role_aliases USING hnsw (embedding vector_cosine_ops);

CREATE TABLE role_kras (
    id         bigserial PRIMARY KEY,
    role_id    bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    text       text NOT NULL,
    text_norm  text NOT NULL,
    source     text NOT NULL DEFAULT 'starter',
    embedding  vector({{EMBEDDING_DIM}}),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (role_id, text_norm)
);
CREATE INDEX role_kras_embedding_idx ON role_kras USING hnsw (embedding vector_cosine_ops);

CREATE TABLE role_dimensions (
    role_id      bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    dimension_id bigint NOT NULL REFERENCES dimensions (id) ON DELETE CASCADE,
    importance   text NOT NULL DEFAULT 'essential' CHECK (importance IN ('essential', 'optional')),
    weight       real NOT NULL DEFAULT 1.0,
    source       text NOT NULL DEFAULT 'starter',
    run_id       uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role_id, dimension_id)
);

CREATE TABLE role_skills (
    role_id    bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    skill_id   bigint NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    importance text NOT NULL DEFAULT 'essential' CHECK (importance IN ('essential', 'optional')),
    weight     real NOT NULL DEFAULT 1.0,
    source     text NOT NULL DEFAULT 'starter',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role_id, skill_id)
);
CREATE INDEX role_skills_skill_idx ON role_skills (skill_id);

-- Embeddings of any text, keyed by model and text hash, so no text is embedded twice.
-- Untyped vector: one cache can hold several models of different dimensions.
CREATE TABLE embedding_cache (
    model      text NOT NULL,
    text_hash  text NOT NULL,
    embedding  vector NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, text_hash)
);
