-- Runs, LLM calls, the human review queue, the alias-collision log and centroid bookkeeping.

CREATE TABLE runs (
    run_id       uuid PRIMARY KEY,
    status       text NOT NULL CHECK (status IN ('running', 'completed', 'rejected', 'failed')),
    input_hash   text NOT NULL,
    title        text,
    jd_text      text,
    chosen_role  text,
    confidence   real,
    node_timings jsonb NOT NULL DEFAULT '{}',
    result       jsonb,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_created_idx ON runs (created_at DESC);
CREATE INDEX runs_input_hash_idx ON runs (input_hash);

CREATE TABLE llm_calls (
    id             bigserial PRIMARY KEY,
    run_id         uuid NOT NULL,
    seq            integer NOT NULL,
    node           text NOT NULL,
    model          text NOT NULL,
    prompt_name    text NOT NULL,
    prompt_version text NOT NULL,
    input_tokens   integer NOT NULL DEFAULT 0,
    output_tokens  integer NOT NULL DEFAULT 0,
    cost_usd       numeric(12, 6) NOT NULL DEFAULT 0,
    latency_ms     real NOT NULL DEFAULT 0,
    outcome        text NOT NULL,
    request        jsonb,
    response       jsonb,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, seq)
);

CREATE TABLE review_queue (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('new_skill', 'new_alias', 'new_kra', 'new_role', 'new_link')),
    -- A stable key per proposal (e.g. the normalised skill name) so a recurring proposal is one row.
    proposal_key text NOT NULL,
    payload      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    first_run_id uuid,
    last_run_id  uuid,
    occurrences  integer NOT NULL DEFAULT 1,
    decided_by   text,
    decided_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, proposal_key)
);

-- Which runs raised which proposal: makes the occurrence count idempotent per run.
CREATE TABLE review_queue_runs (
    queue_id bigint NOT NULL REFERENCES review_queue (id) ON DELETE CASCADE,
    run_id   uuid NOT NULL,
    PRIMARY KEY (queue_id, run_id)
);

CREATE TABLE alias_collisions (
    id          bigserial PRIMARY KEY,
    run_id      uuid NOT NULL,
    alias       text NOT NULL,
    candidates  jsonb NOT NULL,
    chosen_role text,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, alias)
);

-- Which runs already moved which role centroid: a retried persist node must not count a run twice.
CREATE TABLE role_centroid_runs (
    role_id    bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    run_id     uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role_id, run_id)
);
