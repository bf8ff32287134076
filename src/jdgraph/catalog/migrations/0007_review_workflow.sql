-- The review workflow: a proposal can be merged into another; every decision is audited; learned role↔dimension
-- links are proposals too (nothing from a JD reaches the active catalog without an approval).
ALTER TABLE review_queue DROP CONSTRAINT review_queue_status_check;
ALTER TABLE review_queue ADD CONSTRAINT review_queue_status_check
    CHECK (status IN ('pending', 'approved', 'rejected', 'merged'));
ALTER TABLE review_queue ADD COLUMN merged_into bigint REFERENCES review_queue (id);
-- What the decision was: the reason of a rejection, the change an approval applied.
ALTER TABLE review_queue ADD COLUMN decision jsonb;
CREATE INDEX review_queue_status_idx ON review_queue (status, kind, occurrences DESC);

-- One row per decision, never updated: who, when, what changed, and the runs that proposed it.
CREATE TABLE review_audit (
    id         bigserial PRIMARY KEY,
    queue_id   bigint NOT NULL REFERENCES review_queue (id),
    action     text NOT NULL CHECK (action IN ('approve', 'reject', 'merge')),
    reviewer   text NOT NULL,
    changes    jsonb NOT NULL,
    run_ids    uuid[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX review_audit_queue_idx ON review_audit (queue_id);

-- Role KRAs now change outside imports (an approved KRA): caches derived from them follow the change counter too.
CREATE TRIGGER role_kras_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON role_kras
    FOR EACH STATEMENT EXECUTE FUNCTION note_catalog_change();
