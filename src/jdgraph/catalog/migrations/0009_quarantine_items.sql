-- A quarantined run (its JD holds instruction-like text) is shown to reviewers as a review item of its own kind,
-- keyed by the JD text's hash, with the snippet and the family that held it. It proposes nothing for the catalog:
-- a reviewer looks and dismisses it (reject); it cannot be approved.
ALTER TABLE review_queue DROP CONSTRAINT review_queue_kind_check;
ALTER TABLE review_queue ADD CONSTRAINT review_queue_kind_check
    CHECK (kind IN ('new_skill', 'new_alias', 'new_kra', 'new_role', 'new_link', 'quarantine'));
