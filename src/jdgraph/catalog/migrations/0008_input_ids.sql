-- Runs carry their input id (a batch line's id, or a hash of the input text and options), so a rerun of a killed
-- batch can say which inputs are already saved.
ALTER TABLE runs ADD COLUMN input_id text;
CREATE INDEX runs_input_id_idx ON runs (input_id);
