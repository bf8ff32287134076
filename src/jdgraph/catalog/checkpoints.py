"""LangGraph's Postgres checkpointer on a catalog's database and schema (durable, resumable runs)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from jdgraph.catalog.db import CHECKPOINT_POOL_MAX, Database
from jdgraph.errors import DatabaseError

_lock = threading.Lock()
_pools: dict[tuple[str, str], ConnectionPool] = {}
_savers: dict[tuple[str, str, tuple[type, ...]], Any] = {}


def postgres_checkpointer(db: Database, state_types: tuple[type, ...] = ()) -> Any:
    """A ``PostgresSaver`` in the catalog's schema, set up once per process and schema. ``state_types`` are the
    classes the graph's state holds (pydantic models, dataclasses, enums): only they, and LangGraph's own safe
    types, are read back from a checkpoint. Without the list LangGraph reads any class with a warning that it will
    block unregistered ones in a future version (or now, under ``LANGGRAPH_STRICT_MSGPACK``), and a resume would
    then fail."""
    # deferred: 0.5 s to import LangGraph's saver and serializer; only checkpointing needs them
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    with _lock:
        key = (db.url, db.schema)
        saver = _savers.get((*key, state_types))
        if saver is None:
            pool = _pools.get(key)
            if pool is None:
                pool = ConnectionPool(
                    db.url,
                    min_size=1,
                    max_size=CHECKPOINT_POOL_MAX,
                    open=True,
                    kwargs={
                        "autocommit": True,
                        "prepare_threshold": 0,
                        "row_factory": dict_row,
                        "options": f"-c search_path={db.schema},public",
                    },
                )
                _pools[key] = pool
            serde = JsonPlusSerializer(allowed_msgpack_modules=state_types) if state_types else None
            saver = PostgresSaver(pool, serde=serde)  # type: ignore[arg-type]
            saver.setup()
            _savers[(*key, state_types)] = saver
        return saver


@contextmanager
def checkpoint_errors() -> Iterator[None]:
    """The checkpointer's failures as DatabaseErrors. Its pool is LangGraph's, outside ``Database.connection``: with
    the server gone (a killed postmaster), its PoolTimeout escaped a batch's run and ended the whole batch with a
    traceback, leaving the other lines without an output line."""
    try:
        yield
    except PoolTimeout as exc:
        raise DatabaseError(
            "the database did not answer in time (no connection to it could be made or came free); the run stopped "
            "at its last saved step (resume it, or run the batch again, once the server is back)"
        ) from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatabaseError(
            f"the database failed during the run ({reason}); the run stopped at its last saved step (resume it, "
            "or run the batch again, once the server is back)"
        ) from exc


_CHECKPOINT_TABLES = ("checkpoint_writes", "checkpoint_blobs", "checkpoints")


def _prunable_threads(conn: Any, older_than_days: float) -> dict[str, list[str]]:
    """Checkpoint threads nothing will resume: those of runs saved whole (kept with ``keep_checkpoints``, or left by
    a process killed between saving and pruning) and unfinished ones whose last step is older than the cut-off
    (a run killed mid-way and never resumed)."""
    if not _has_checkpoints(conn):
        return {"finished": [], "stale": []}
    finished = conn.execute(
        """SELECT DISTINCT c.thread_id FROM checkpoints c JOIN runs r ON r.run_id::text = c.thread_id
           WHERE r.result IS NOT NULL"""
    ).fetchall()
    stale = conn.execute(
        """SELECT thread_id FROM checkpoints GROUP BY thread_id
           HAVING max((checkpoint->>'ts')::timestamptz) < now() - make_interval(secs => %s)""",
        (older_than_days * 86400,),
    ).fetchall()
    done = {r["thread_id"] for r in finished}
    return {"finished": sorted(done), "stale": sorted({r["thread_id"] for r in stale} - done)}


def _has_checkpoints(conn: Any) -> bool:
    """The checkpoint tables exist (LangGraph creates them on the first durable run)."""
    row = conn.execute("SELECT to_regclass('checkpoints') IS NOT NULL AS ok").fetchone()
    return bool(row and row["ok"])


def checkpoint_health(db: Database, older_than_days: float) -> dict[str, int]:
    """Run threads with checkpoints, and how many of them :func:`prune_checkpoints` would delete."""
    with db.connection() as conn:
        if not _has_checkpoints(conn):
            return {"threads": 0, "of_finished_runs": 0, "stale": 0}
        threads = _prunable_threads(conn, older_than_days)
        row = conn.execute("SELECT count(DISTINCT thread_id) AS n FROM checkpoints").fetchone()
    total = int(row["n"]) if row else 0
    return {"threads": total, "of_finished_runs": len(threads["finished"]), "stale": len(threads["stale"])}


def prune_checkpoints(db: Database, older_than_days: float) -> dict[str, int]:
    """Delete the threads :func:`_prunable_threads` names, in one transaction; returns how many of each."""
    with db.connection() as conn, conn.transaction():
        threads = _prunable_threads(conn, older_than_days)
        ids = threads["finished"] + threads["stale"]
        if ids:
            for table in _CHECKPOINT_TABLES:
                conn.execute(sql.SQL("DELETE FROM {} WHERE thread_id = ANY(%s)").format(sql.Identifier(table)), (ids,))
    return {"of_finished_runs": len(threads["finished"]), "stale": len(threads["stale"])}
