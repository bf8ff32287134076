-- Idempotency by content: the same JD text classified again (a rerun of a killed batch, a second run id) moves a
-- role's centroid once and counts once towards a review item. Older rows have no hash and stay counted per run.
ALTER TABLE role_centroid_runs ADD COLUMN input_hash text;
CREATE UNIQUE INDEX role_centroid_runs_input_idx ON role_centroid_runs (role_id, input_hash);

ALTER TABLE review_queue_runs ADD COLUMN input_hash text;
CREATE UNIQUE INDEX review_queue_runs_input_idx ON review_queue_runs (queue_id, input_hash);
