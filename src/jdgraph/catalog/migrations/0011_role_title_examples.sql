-- Vacancy titles as people write them, each coded to a role (JobBERT's training titles → ESCO occupations, or a
-- house's own coded ads). A JD's title votes for the roles of its nearest examples: aliases say how a taxonomist
-- names an occupation, examples how employers do ("Barista/Cashier", "Sr. Java Dev"). Several rows may hold the
-- same title: each coding is one vote. Replaced as a whole per source by `jdgraph catalog import titles`.
CREATE TABLE role_title_examples (
    id          bigserial PRIMARY KEY,
    role_id     bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    title       text NOT NULL,
    source      text NOT NULL,
    source_line integer NOT NULL,
    embedding   vector({{EMBEDDING_DIM}}),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX role_title_examples_source_idx ON role_title_examples (source);
CREATE INDEX role_title_examples_embedding_idx ON role_title_examples USING hnsw (embedding vector_cosine_ops);
