"""How far an import is: the caller's ``progress`` callback, and the row of ``import_progress`` (migration 0010)
that an import commits on a connection of its own, so that readers of a catalog whose first import has not
committed yet can say "being imported, N% done" (:func:`import_in_progress`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

import psycopg

from jdgraph.catalog.db import Database

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as an import advances (the CLI draws a bar from it)."""


_STATUS_EVERY_S = 1.0  # the progress row is written at most this often within a stage


@dataclass(frozen=True)
class ImportProgress:
    """An import under way in a catalog, as its progress row says."""

    source: str
    stage: str
    percent: float
    started_at: datetime
    updated_at: datetime

    def describe(self) -> str:
        return f"{self.source} import started {self.started_at:%H:%M:%S}: {self.stage}, {self.percent:.0f}% done"


def import_in_progress(db: Database) -> ImportProgress | None:
    """The import running in ``db``'s catalog, if any: its progress row, while the server process of its
    transaction lives (a killed import's row is ignored, and replaced by the next import)."""
    try:
        with db.connection() as conn:
            row = conn.execute(
                """SELECT source, stage, percent, started_at, updated_at FROM import_progress p
                   WHERE EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = p.backend_pid)
                   ORDER BY updated_at DESC LIMIT 1"""
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return None  # a schema not migrated yet: nothing can be importing into it
    return ImportProgress(**row) if row else None


class ProgressRow:
    """The progress row of one import, written on its own autocommit connection so readers see it at once."""

    def __init__(self, db: Database, source: str, backend_pid: int) -> None:
        self.conn = db.connect(autocommit=True)
        self.source = source
        self.last: tuple[str, float, float] = ("", -1.0, 0.0)
        self.conn.execute(
            """INSERT INTO import_progress (source, stage, percent, backend_pid) VALUES (%s, 'starting', 0, %s)
               ON CONFLICT (source) DO UPDATE SET stage = 'starting', percent = 0, backend_pid = EXCLUDED.backend_pid,
                   started_at = now(), updated_at = now()""",
            (source, backend_pid),
        )

    def update(self, stage: str, percent: float) -> None:
        last_stage, last_percent, last_at = self.last
        now = time.monotonic()
        if stage == last_stage and (int(percent) == int(last_percent) or now - last_at < _STATUS_EVERY_S):
            return
        self.last = (stage, percent, now)
        self.conn.execute(
            "UPDATE import_progress SET stage = %s, percent = %s, updated_at = now() WHERE source = %s",
            (stage, round(percent, 1), self.source),
        )

    def close(self) -> None:
        # After a failure (the server gone) this must not mask the import's own error; a row left behind is
        # ignored once the import's server process is gone.
        with suppress(psycopg.Error):
            self.conn.execute("DELETE FROM import_progress WHERE source = %s", (self.source,))
        self.conn.close()
