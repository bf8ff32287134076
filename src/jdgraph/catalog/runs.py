"""The run side of a catalog: runs, LLM calls, the review queue (proposals only: the catalog itself
changes through :mod:`jdgraph.catalog.review`), the collision log and centroids.

:meth:`RunStore.save_run` writes everything a run produced in one transaction, idempotent by run id: the run row
goes first with ``ON CONFLICT DO NOTHING``, and when it already exists (a retried or resumed persist node)
nothing else is written. The chosen role's row is locked first, so concurrent runs on one role queue in one
order (no deadlock) and the centroid's running mean never loses an update; every read the write needs uses the
same connection, so a run holding the lock never waits for a second pooled connection.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jdgraph.catalog.db import Database
from jdgraph.catalog.embeddings import as_array
from jdgraph.errors import InputError, NotFoundError

ALREADY_PERSISTED = "skipped: run already persisted"
"""The run outcome of a run id saved before (a retried or resumed persist, a batch run again)."""


@dataclass
class Proposal:
    kind: str
    key: str
    payload: dict[str, Any]


@dataclass
class RunWrite:
    """What persist hands the store. Policy (what to propose for review) is decided before."""

    run_id: str
    status: str
    input_hash: str
    title: str | None
    jd_text: str
    chosen_role: str | None
    confidence: float
    node_timings: dict[str, float]
    llm_calls: list[dict[str, Any]] = field(default_factory=list)
    confirmed_role: bool = False
    """A chosen role that is not a provisional new-role fallback: only then are links and the centroid touched."""
    proposals: list[Proposal] = field(default_factory=list)
    collision: dict[str, Any] = field(default_factory=dict)
    jd_vector: np.ndarray | None = None
    quarantined: bool = False
    """Instruction-like text in the JD: the run is saved, but no centroid moves."""
    input_id: str | None = None


@dataclass
class WriteOutcome:
    item: str
    kind: str
    outcome: str


class RunStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save_run(self, run: RunWrite) -> list[WriteOutcome]:
        out: list[WriteOutcome] = []
        with self.db.connection() as conn, conn.transaction():
            inserted = conn.execute(
                """INSERT INTO runs (run_id, status, input_hash, input_id, title, jd_text, chosen_role, confidence,
                                     node_timings)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO NOTHING RETURNING run_id""",
                (
                    run.run_id,
                    run.status,
                    run.input_hash,
                    run.input_id,
                    run.title,
                    run.jd_text,
                    run.chosen_role,
                    run.confidence,
                    json.dumps(run.node_timings),
                ),
            ).fetchone()
            if inserted is None:
                self.check_same_input(run.run_id, run.input_hash, conn)
                return [WriteOutcome(run.run_id, "run", ALREADY_PERSISTED)]
            out.append(WriteOutcome(run.run_id, "run", "saved"))
            for call in run.llm_calls:
                conn.execute(
                    """INSERT INTO llm_calls (run_id, seq, node, model, prompt_name, prompt_version, input_tokens,
                                              output_tokens, cost_usd, latency_ms, outcome, error)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, seq) DO NOTHING""",
                    (
                        run.run_id,
                        call["seq"],
                        call["node"],
                        call["model"],
                        call["prompt_name"],
                        call["prompt_version"],
                        call["input_tokens"],
                        call["output_tokens"],
                        call["cost_usd"],
                        call["latency_ms"],
                        call["outcome"],
                        call.get("error"),
                    ),
                )
            if run.status == "rejected":
                return out  # a rejected text touches nothing in the catalog
            role_row = (
                conn.execute("SELECT id FROM roles WHERE slug = %s FOR UPDATE", (run.chosen_role,)).fetchone()
                if run.chosen_role
                else None
            )
            role_id = role_row["id"] if role_row else None
            for p in sorted(run.proposals, key=lambda p: (p.kind, p.key)):  # one lock order across runs
                row = conn.execute(
                    """INSERT INTO review_queue (kind, proposal_key, payload, first_run_id, last_run_id)
                       VALUES (%s, %s, %s, %s, %s)
                       ON CONFLICT (kind, proposal_key) DO UPDATE SET last_run_id = EXCLUDED.last_run_id,
                           updated_at = now()
                       RETURNING id, status""",
                    (p.kind, p.key, json.dumps(p.payload), run.run_id, run.run_id),
                ).fetchone()
                assert row is not None
                # Once per run and once per JD text: either unique key makes a repeat a no-op.
                counted = conn.execute(
                    """INSERT INTO review_queue_runs (queue_id, run_id, input_hash) VALUES (%s, %s, %s)
                       ON CONFLICT DO NOTHING RETURNING 1""",
                    (row["id"], run.run_id, run.input_hash),
                ).fetchone()
                if counted:
                    conn.execute(
                        """UPDATE review_queue SET occurrences = (SELECT count(*) FROM review_queue_runs
                           WHERE queue_id = %s) WHERE id = %s""",
                        (row["id"], row["id"]),
                    )
                # A decided item is never re-opened: a rejected proposal stays rejected however often it recurs.
                said = {
                    "pending": "queued" if counted else "already counted for this text",
                    "rejected": "not re-queued: a reviewer rejected it",
                    "approved": "not re-queued: already approved",
                    "merged": "counted towards the item it was merged into",
                }[row["status"]]
                if row["status"] == "merged" and counted:
                    self._count_into_merged(conn, row["id"], run)
                out.append(WriteOutcome(f"{p.kind}: {p.key}", "review_queue", said))
            if run.collision:
                conn.execute(
                    """INSERT INTO alias_collisions (run_id, alias, candidates, chosen_role, reason)
                       VALUES (%s, %s, %s, %s, %s) ON CONFLICT (run_id, alias) DO NOTHING""",
                    (
                        run.run_id,
                        run.collision.get("alias") or run.collision.get("kind"),
                        json.dumps(run.collision.get("roles", [])),
                        run.chosen_role,
                        run.collision.get("reason"),
                    ),
                )
                out.append(WriteOutcome(str(run.collision.get("reason")), "collision_log", "saved"))
            out.append(self._update_centroid(conn, run, role_id))
        return out

    @staticmethod
    def _count_into_merged(conn: Any, queue_id: int, run: RunWrite) -> None:
        """A proposal merged into another keeps counting there (following the merge chain to a live item)."""
        target = conn.execute(
            """WITH RECURSIVE chain(id, merged_into, depth) AS (
                   SELECT id, merged_into, 0 FROM review_queue WHERE id = %s
                   UNION ALL SELECT q.id, q.merged_into, c.depth + 1 FROM review_queue q
                   JOIN chain c ON q.id = c.merged_into WHERE c.depth < 20)
               SELECT id FROM chain WHERE merged_into IS NULL LIMIT 1""",
            (queue_id,),
        ).fetchone()
        if target is None:
            return
        conn.execute(
            """INSERT INTO review_queue_runs (queue_id, run_id, input_hash) VALUES (%s, %s, %s)
               ON CONFLICT DO NOTHING""",
            (target["id"], run.run_id, run.input_hash),
        )
        conn.execute(
            """UPDATE review_queue SET occurrences = (SELECT count(*) FROM review_queue_runs WHERE queue_id = %s),
                   last_run_id = %s, updated_at = now() WHERE id = %s""",
            (target["id"], run.run_id, target["id"]),
        )

    def _update_centroid(self, conn: Any, run: RunWrite, role_id: int | None) -> WriteOutcome:
        item = f"{run.chosen_role or 'no role'} centroid"
        if run.quarantined:
            return WriteOutcome(item, "centroid", "skipped: quarantined run (instruction-like text)")
        if role_id is None or not run.confirmed_role or run.jd_vector is None:
            return WriteOutcome(item, "centroid", "skipped: no confirmed role")
        first = conn.execute(
            """INSERT INTO role_centroid_runs (role_id, run_id, input_hash) VALUES (%s, %s, %s)
               ON CONFLICT DO NOTHING RETURNING 1""",
            (role_id, run.run_id, run.input_hash),
        ).fetchone()
        if first is None:
            return WriteOutcome(item, "centroid", "skipped: this run or this JD text already counted")
        row = conn.execute("SELECT centroid, centroid_n FROM roles WHERE id = %s FOR UPDATE", (role_id,)).fetchone()
        n = int(row["centroid_n"] or 0)
        jd = run.jd_vector
        current = as_array(row["centroid"]) if row["centroid"] is not None else np.zeros_like(jd)
        updated = current + (jd - current) / (n + 1)
        conn.execute(
            "UPDATE roles SET centroid = %s, centroid_n = %s, updated_at = now() WHERE id = %s",
            (updated.astype(np.float32), n + 1, role_id),
        )
        return WriteOutcome(item, "centroid", f"updated · n={n + 1}")

    def store_result(
        self, run_id: str, result: dict[str, Any], timings: dict[str, float], *, only_if_missing: bool = False
    ) -> None:
        with self.db.connection() as conn:
            conn.execute(
                """UPDATE runs SET result = %s, node_timings = %s
                   WHERE run_id = %s AND (NOT %s OR result IS NULL)""",
                (json.dumps(result), json.dumps(timings), run_id, only_if_missing),
            )

    def check_same_input(self, run_id: str, text_hash: str, conn: Any = None) -> None:
        """A run id names one input: reusing it for another text is an InputError (the database keeps the first
        run, and a result for the new text under that id would be a lie)."""
        if conn is None:
            with self.db.connection() as own:
                self.check_same_input(run_id, text_hash, own)
            return
        row = conn.execute("SELECT input_hash FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        if row is not None and row["input_hash"] != text_hash:
            raise InputError(
                f"run_id {run_id} was already used for another text: give a new run id (or none)", field="run_id"
            )

    def saved_results(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored results of those of ``run_ids`` that were saved whole (what ``--resume`` skips)."""
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT run_id::text AS run_id, result FROM runs WHERE run_id = ANY(%s::uuid[]) AND result IS NOT NULL",
                (run_ids,),
            ).fetchall()
        return {r["run_id"]: r["result"] for r in rows}

    def list_runs(self, limit: int, *, search: str | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Newest first; ``search`` matches the title, the chosen role or the start of the run id."""
        with self.db.connection() as conn:
            return conn.execute(
                """SELECT run_id, status, title, chosen_role, confidence, created_at FROM runs
                   WHERE %(q)s::text IS NULL OR title ILIKE %(like)s OR chosen_role ILIKE %(like)s
                         OR run_id::text LIKE %(prefix)s
                   ORDER BY created_at DESC LIMIT %(limit)s OFFSET %(offset)s""",
                {
                    "q": search,
                    "like": f"%{search}%" if search else None,
                    "prefix": f"{(search or '').lower()}%",
                    "limit": limit,
                    "offset": offset,
                },
            ).fetchall()

    def run_record(self, run_id: str) -> dict[str, Any] | None:
        """A run's stored result with its JD text and timestamps (what a run page shows)."""
        with self.db.connection() as conn:
            return conn.execute(
                """SELECT run_id::text AS run_id, status, result, jd_text, created_at, updated_at FROM runs
                   WHERE run_id = %s""",
                (run_id,),
            ).fetchone()

    def resolve_run_id(self, text: str) -> str:
        """A run id, or the start of exactly one (4+ hex digits, as `runs list` prints them), as the whole id."""
        try:
            return str(uuid.UUID(text))
        except ValueError:
            pass
        if not re.fullmatch(r"[0-9a-fA-F-]{4,36}", text):
            raise InputError(f"{text!r} is not a run id or the start of one (4+ hex digits)")
        matches = self.run_ids_with_prefix(text)
        if len(matches) > 1:
            raise InputError(f"{text!r} is the start of several runs: {', '.join(matches)}")
        if not matches:
            raise NotFoundError(f"no run starts with {text}", kind="run", key=text)
        return matches[0]

    def run_ids_with_prefix(self, prefix: str, limit: int = 5) -> list[str]:
        """Run ids that start with ``prefix`` (hex digits and dashes, as `runs list` prints them)."""
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT run_id::text AS id FROM runs WHERE run_id::text LIKE %s ORDER BY run_id LIMIT %s",
                (prefix.lower() + "%", limit),
            ).fetchall()
        return [r["id"] for r in rows]

    def run_result(self, run_id: str) -> dict[str, Any] | None:
        with self.db.connection() as conn:
            row = conn.execute("SELECT result FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        return row["result"] if row else None
