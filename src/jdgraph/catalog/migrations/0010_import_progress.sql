-- An import runs in one long transaction, so nothing it writes is visible before it commits. It says that it is
-- running, and how far it got, in this row, committed on a connection of its own: a reader of a catalog whose
-- first import has not committed can answer "being imported, N% done" rather than "empty". backend_pid is the
-- server process of the import's transaction: a row whose process is gone is left by a killed import.
CREATE TABLE import_progress (
    source      text PRIMARY KEY,
    stage       text NOT NULL,
    percent     real NOT NULL DEFAULT 0,
    backend_pid integer NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
