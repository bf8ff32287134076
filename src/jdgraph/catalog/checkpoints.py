"""LangGraph's Postgres checkpointer on a catalog's database and schema (durable, resumable runs)."""

from __future__ import annotations

import threading
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from jdgraph.catalog.db import Database

_lock = threading.Lock()
_savers: dict[tuple[str, str], Any] = {}


def postgres_checkpointer(db: Database) -> Any:
    """A ``PostgresSaver`` in the catalog's schema, set up once per process and schema."""
    from langgraph.checkpoint.postgres import PostgresSaver

    with _lock:
        key = (db.url, db.schema)
        saver = _savers.get(key)
        if saver is None:
            pool = ConnectionPool(
                db.url,
                min_size=1,
                max_size=4,
                open=True,
                kwargs={
                    "autocommit": True,
                    "prepare_threshold": 0,
                    "row_factory": dict_row,
                    "options": f"-c search_path={db.schema},public",
                },
            )
            saver = PostgresSaver(pool)  # type: ignore[arg-type]
            saver.setup()
            _savers[key] = saver
        return saver
