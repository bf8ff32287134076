"""The human review workflow: list, show, approve, reject and merge what runs proposed.

Runs only *propose* (``review_queue``); the active catalog changes only here, when a reviewer approves. Each
decision is one transaction that locks the queue row first (``FOR UPDATE``), so two reviewers deciding the same
item at once make one change: the second finds it decided. Deciding an item the same way twice is a no-op that says
so; deciding it the other way is a :class:`ReviewConflictError`. Every decision writes one ``review_audit`` row
(who, when, what changed, the runs that proposed it).

A rejected item stays rejected: a run that proposes it again adds an occurrence but never re-opens it.

A ``quarantine`` item is a run held for instruction-like text in its JD (prompt injection): the snippet and the
family that held it are its evidence. It proposes nothing, so there is nothing to approve: a reviewer who has looked
at it rejects it (dismisses it, with a reason); approving one is a :class:`ReviewConflictError`. The run stays
quarantined either way: nothing a quarantined JD says ever reaches the catalog.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import psycopg

from jdgraph.catalog.db import Database
from jdgraph.catalog.embeddings import ModelEmbeddings
from jdgraph.catalog.normalize import normalize_alias, normalize_text, slugify
from jdgraph.catalog.records import NATURE_PROFILE
from jdgraph.errors import InputError, NotFoundError, ReviewConflictError

ReviewKind = Literal["new_skill", "new_alias", "new_kra", "new_role", "new_link", "quarantine"]
ReviewStatus = Literal["pending", "approved", "rejected", "merged"]
KINDS: tuple[str, ...] = ("new_skill", "new_alias", "new_kra", "new_role", "new_link", "quarantine")
STATUSES: tuple[str, ...] = ("pending", "approved", "rejected", "merged")
REVIEW_SOURCE = "review"
"""``source`` of every catalog row an approval creates (its ``source_id`` is ``review:<item id>``)."""


@dataclass
class ReviewItem:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    status: str
    occurrences: int
    created_at: datetime
    updated_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision: dict[str, Any] | None = None
    merged_into: int | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    """The proposing runs, newest first: run id, title, chosen role, status, when (the newest
    :data:`LIST_RUNS` of them from :meth:`ReviewStore.list`, :data:`ITEM_RUNS` from :meth:`ReviewStore.get`)."""
    runs_total: int = 0
    """How many runs proposed it in all (``runs`` may hold fewer)."""
    audit: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        """What is proposed, in words."""
        p = self.payload
        if self.kind == "new_skill":
            return str(p.get("name") or self.key)
        if self.kind == "new_alias":
            return f"{p.get('alias')} → {p.get('skill')}"
        if self.kind == "new_kra":
            return f"{p.get('role')}: {p.get('text')}"
        if self.kind == "new_role":
            return str(p.get("title") or self.key)
        if self.kind == "quarantine":
            families = ", ".join(dict.fromkeys(str(f.get("family")) for f in p.get("findings") or []))
            return f"quarantined run: {p.get('title') or 'untitled'} ({families or 'instruction-like text'})"
        return f"{p.get('role')} ↔ {p.get('dimension')}"

    @property
    def evidence(self) -> str | None:
        """The JD text that raised the proposal, where the proposal carries one."""
        value = self.payload.get("evidence") or (self.payload.get("text") if self.kind == "new_kra" else None)
        return str(value) if value else None

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["label"] = self.label
        for key in ("created_at", "updated_at", "decided_at"):
            out[key] = out[key].isoformat() if out[key] else None
        out["runs"] = [{**r, "created_at": r["created_at"].isoformat()} for r in self.runs]
        out["audit"] = [{**a, "created_at": a["created_at"].isoformat()} for a in self.audit]
        return out


@dataclass
class ReviewOutcome:
    item_id: int
    action: str
    changed: bool
    """False when the item was already decided this way (an idempotent repeat)."""
    message: str
    changes: dict[str, Any] = field(default_factory=dict)


_COLS = """id, kind, proposal_key AS key, payload, status, occurrences, created_at, updated_at, decided_by,
           decided_at, decision, merged_into"""


_ITEM = f"SELECT {_COLS} FROM review_queue WHERE id = %s"
_ITEM_FOR_UPDATE = _ITEM + " FOR UPDATE"


def _item(row: dict[str, Any]) -> ReviewItem:
    return ReviewItem(**row)


LIST_RUNS = 10
"""Proposing runs each item of :meth:`ReviewStore.list` carries (newest first; ``runs_total`` counts them all)."""
ITEM_RUNS = 50
"""Proposing runs :meth:`ReviewStore.get` carries."""


def _attach_runs(conn: psycopg.Connection[Any], items: list[ReviewItem], per_item: int) -> None:
    """Set each item's ``runs`` (its newest ``per_item`` proposing runs) and ``runs_total``, in one query for all
    items: `review list --json` showed ``"runs": []`` for items that `review show` listed runs for."""
    if not items:
        return
    rows = conn.execute(
        """SELECT queue_id, run_id, title, chosen_role, status, created_at, total FROM (
               SELECT q.queue_id, q.run_id::text AS run_id, r.title, r.chosen_role, r.status,
                      coalesce(r.created_at, now()) AS created_at,
                      row_number() OVER (PARTITION BY q.queue_id
                                         ORDER BY r.created_at DESC NULLS LAST, q.run_id) AS n,
                      count(*) OVER (PARTITION BY q.queue_id) AS total
               FROM review_queue_runs q LEFT JOIN runs r ON r.run_id = q.run_id
               WHERE q.queue_id = ANY(%s)) ranked
           WHERE n <= %s ORDER BY queue_id, n""",
        ([i.id for i in items], per_item),
    ).fetchall()
    by_id = {i.id: i for i in items}
    for row in rows:
        item = by_id[row.pop("queue_id")]
        item.runs_total = int(row.pop("total"))
        item.runs.append(row)


class ReviewStore:
    """Reads and decisions on one catalog's review queue."""

    def __init__(self, db: Database, embeddings: ModelEmbeddings) -> None:
        self.db = db
        self.embeddings = embeddings

    # -- reads ----------------------------------------------------------------------------------------------
    def list(
        self,
        *,
        kind: str | None = None,
        status: str | None = "pending",
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ReviewItem]:
        """Items newest-recurring first: most occurrences, then most recently seen."""
        if kind is not None and kind not in KINDS:
            raise InputError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}", field="kind")
        if status is not None and status not in STATUSES:
            raise InputError(f"unknown status {status!r}; one of {', '.join(STATUSES)}", field="status")
        with self.db.connection() as conn:
            rows = conn.execute(
                f"""SELECT {_COLS} FROM review_queue
                    WHERE (%(kind)s::text IS NULL OR kind = %(kind)s)
                      AND (%(status)s::text IS NULL OR status = %(status)s)
                      AND (%(q)s::text IS NULL OR proposal_key ILIKE %(q)s OR payload::text ILIKE %(q)s)
                    ORDER BY occurrences DESC, updated_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s""",
                {
                    "kind": kind,
                    "status": status,
                    "q": f"%{search}%" if search else None,
                    "limit": limit,
                    "offset": offset,
                },
            ).fetchall()
            items = [_item(r) for r in rows]
            _attach_runs(conn, items, LIST_RUNS)
        return items

    def decided_skill_items(self) -> tuple[ReviewItem, ...]:
        """Every approved or rejected skill and alias proposal, oldest first: what ``jdgraph models train
        --from-reviews`` learns from."""
        with self.db.connection() as conn:
            rows = conn.execute(
                f"""SELECT {_COLS} FROM review_queue
                    WHERE kind IN ('new_skill', 'new_alias') AND status IN ('approved', 'rejected') ORDER BY id"""
            ).fetchall()
        return tuple(_item(r) for r in rows)

    def counts(self) -> dict[str, int]:
        """Pending items per kind."""
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT kind, count(*) AS n FROM review_queue WHERE status = 'pending' GROUP BY kind"
            ).fetchall()
        return {r["kind"]: int(r["n"]) for r in rows}

    def get(self, item_id: int) -> ReviewItem:
        """One item with the runs that proposed it and its audit trail."""
        with self.db.connection() as conn:
            item = self._fetch(conn, item_id)
            _attach_runs(conn, [item], ITEM_RUNS)
            item.audit = conn.execute(
                """SELECT action, reviewer, changes, run_ids::text[] AS run_ids, created_at FROM review_audit
                   WHERE queue_id = %s ORDER BY id""",
                (item_id,),
            ).fetchall()
        return item

    # -- decisions ------------------------------------------------------------------------------------------
    def approve(
        self,
        item_id: int,
        *,
        reviewer: str,
        as_alias_of: str | None = None,
        role: str | None = None,
        rename: str | None = None,
    ) -> ReviewOutcome:
        """Apply the proposal to the catalog in one transaction.

        - ``new_skill``: a new active skill (``rename`` overrides its name) with its name as the canonical alias and
          its embedding; with ``as_alias_of`` the name becomes an alias of that existing skill instead; with ``role``
          the skill is also linked to that role.
        - ``new_alias``: the alias is attached to its skill (or to ``as_alias_of``).
        - ``new_kra``: the KRA is attached to its role (or to ``role``).
        - ``new_role``: a new active role with its title as alias and links to the proposal's known skills; with
          ``role`` (or ``as_alias_of``) the title becomes an alias of that existing role instead.
        - ``new_link``: the role↔dimension link is saved.
        """
        if rename is not None and not rename.strip():
            raise InputError("--rename needs a non-empty name", field="rename")
        with self.db.connection() as conn:
            proposed = self._fetch(conn, item_id)
        if proposed.kind == "quarantine":
            raise ReviewConflictError(
                f"item {item_id} is a quarantined run: nothing from it can be approved into the catalog; "
                "reject it with a reason once you have looked at it"
            )
        vectors = self._vectors(proposed, rename)  # embedded before any lock is taken
        with self.db.connection() as conn, conn.transaction():
            item = self._lock(conn, item_id)
            if item.status == "approved":
                return ReviewOutcome(item_id, "approve", False, f"item {item_id} was already approved", {})
            if item.status != "pending":
                raise ReviewConflictError(f"item {item_id} is {item.status}; only a pending item can be approved")
            changes = _APPLY[item.kind](conn, item, vectors, HowToApply(as_alias_of, role, rename))
            self._decide(conn, item, "approved", reviewer, changes)
            self._audit(conn, item, "approve", reviewer, changes)
        return ReviewOutcome(item_id, "approve", True, _summary(changes), changes)

    def reject(self, item_id: int, *, reviewer: str, reason: str) -> ReviewOutcome:
        if not reason or not reason.strip():
            raise InputError("a rejection needs a reason (--reason)", field="reason")
        with self.db.connection() as conn, conn.transaction():
            item = self._lock(conn, item_id)
            if item.status == "rejected":
                return ReviewOutcome(item_id, "reject", False, f"item {item_id} was already rejected", {})
            if item.status != "pending":
                raise ReviewConflictError(f"item {item_id} is {item.status}; only a pending item can be rejected")
            changes = {"reason": reason.strip()}
            self._decide(conn, item, "rejected", reviewer, changes)
            self._audit(conn, item, "reject", reviewer, changes)
        return ReviewOutcome(item_id, "reject", True, f"rejected: {reason.strip()}", changes)

    def merge(self, item_id: int, into_id: int, *, reviewer: str) -> ReviewOutcome:
        """Fold a pending item into another pending item of the same kind (duplicates, near-synonyms): the
        target gains its runs and occurrences; the item is closed as ``merged``."""
        if item_id == into_id:
            raise InputError("an item cannot be merged into itself", field="into")
        with self.db.connection() as conn, conn.transaction():
            first, second = sorted((item_id, into_id))  # one lock order, so two crossing merges cannot deadlock
            locked = {first: self._lock(conn, first), second: self._lock(conn, second)}
            item, target = locked[item_id], locked[into_id]
            if item.status == "merged" and item.merged_into == into_id:
                return ReviewOutcome(item_id, "merge", False, f"item {item_id} was already merged into {into_id}")
            for x in (item, target):
                if x.status != "pending":
                    raise ReviewConflictError(f"item {x.id} is {x.status}; only pending items can be merged")
            if item.kind != target.kind:
                raise ReviewConflictError(f"item {item_id} is a {item.kind}, item {into_id} a {target.kind}")
            conn.execute(
                """INSERT INTO review_queue_runs (queue_id, run_id, input_hash)
                   SELECT %s, run_id, input_hash FROM review_queue_runs WHERE queue_id = %s
                   ON CONFLICT DO NOTHING""",
                (into_id, item_id),
            )
            conn.execute(
                """UPDATE review_queue SET occurrences = (SELECT count(*) FROM review_queue_runs WHERE queue_id = %s),
                       updated_at = now() WHERE id = %s""",
                (into_id, into_id),
            )
            changes = {"merged_into": into_id, "label": target.label}
            conn.execute("UPDATE review_queue SET merged_into = %s WHERE id = %s", (into_id, item_id))
            self._decide(conn, item, "merged", reviewer, changes)
            self._audit(conn, item, "merge", reviewer, changes)
        return ReviewOutcome(item_id, "merge", True, f"merged into item {into_id} ({target.label})", changes)

    # -- internals ------------------------------------------------------------------------------------------
    def _vectors(self, item: ReviewItem, rename: str | None) -> dict[str, np.ndarray]:
        """Embeddings of every text an approval may write, keyed by text."""
        texts = {
            str(t)
            for t in (
                rename,
                item.payload.get("name"),
                item.payload.get("alias"),
                item.payload.get("text"),
                item.payload.get("title"),
            )
            if t
        }
        ordered = sorted(texts)
        if not ordered:
            return {}
        return dict(zip(ordered, self.embeddings.embed_array(ordered), strict=True))

    @staticmethod
    def _fetch(conn: psycopg.Connection[Any], item_id: int, *, for_update: bool = False) -> ReviewItem:
        row = conn.execute(_ITEM_FOR_UPDATE if for_update else _ITEM, (item_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no review item {item_id}", kind="review item", key=str(item_id))
        return _item(row)

    @classmethod
    def _lock(cls, conn: psycopg.Connection[Any], item_id: int) -> ReviewItem:
        """The item, locked until the transaction ends: decisions on one item are serialised."""
        return cls._fetch(conn, item_id, for_update=True)

    @staticmethod
    def _decide(
        conn: psycopg.Connection[Any], item: ReviewItem, status: str, reviewer: str, changes: dict[str, Any]
    ) -> None:
        conn.execute(
            """UPDATE review_queue SET status = %s, decided_by = %s, decided_at = now(), decision = %s,
                   updated_at = now() WHERE id = %s""",
            (status, reviewer, json.dumps(changes), item.id),
        )

    @staticmethod
    def _audit(
        conn: psycopg.Connection[Any], item: ReviewItem, action: str, reviewer: str, changes: dict[str, Any]
    ) -> None:
        conn.execute(
            """INSERT INTO review_audit (queue_id, action, reviewer, changes, run_ids)
               SELECT %s, %s, %s, %s, coalesce(array_agg(run_id ORDER BY run_id), '{}')
               FROM review_queue_runs WHERE queue_id = %s""",
            (item.id, action, reviewer, json.dumps({"kind": item.kind, "key": item.key, **changes}), item.id),
        )


# -- applying an approval -----------------------------------------------------------------------------------
Vectors = dict[str, np.ndarray]


@dataclass(frozen=True)
class HowToApply:
    """A reviewer's choices for an approval (see :meth:`ReviewStore.approve`)."""

    as_alias_of: str | None = None
    role: str | None = None
    rename: str | None = None


def _f32(vector: np.ndarray) -> np.ndarray:
    return vector.astype(np.float32)


def _skill_id(conn: psycopg.Connection[Any], slug: str) -> int:
    row = conn.execute("SELECT id FROM skills WHERE slug = %s AND status <> 'retired'", (slug,)).fetchone()
    if row is None:
        raise NotFoundError(f"no skill {slug!r} in this catalog", kind="skill", key=slug)
    return int(row["id"])


def _role_id(conn: psycopg.Connection[Any], slug: str) -> int:
    row = conn.execute("SELECT id FROM roles WHERE slug = %s AND status <> 'retired'", (slug,)).fetchone()
    if row is None:
        raise NotFoundError(f"no role {slug!r} in this catalog", kind="role", key=slug)
    return int(row["id"])


def _free_slug(conn: psycopg.Connection[Any], table: str, name: str) -> str:
    base = slugify(name)[:80] or "unnamed"
    taken = {r["slug"] for r in conn.execute(f"SELECT slug FROM {table} WHERE slug LIKE %s", (base + "%",)).fetchall()}
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def _add_skill_alias(
    conn: psycopg.Connection[Any], skill_id: int, alias: str, vector: np.ndarray, alias_type: str, primary: bool
) -> bool:
    added = conn.execute(
        """INSERT INTO skill_aliases (skill_id, alias, alias_norm, alias_type, is_primary, source, embedding)
           VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (skill_id, alias_norm) DO NOTHING RETURNING id""",
        (skill_id, alias, normalize_alias(alias), alias_type, primary, REVIEW_SOURCE, vector.astype(np.float32)),
    ).fetchone()
    # The skill's centroid is the mean of its alias vectors (migration 0005): keep it so.
    conn.execute(
        """UPDATE skills SET centroid = (SELECT l2_normalize(avg(embedding)) FROM skill_aliases
                                         WHERE skill_id = %s AND embedding IS NOT NULL), updated_at = now()
           WHERE id = %s""",
        (skill_id, skill_id),
    )
    return added is not None


def _add_role_alias(conn: psycopg.Connection[Any], role_id: int, alias: str, vector: np.ndarray, primary: bool) -> bool:
    added = conn.execute(
        """INSERT INTO role_aliases (role_id, alias, alias_norm, is_primary, embedding) VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (role_id, alias_norm) DO NOTHING RETURNING id""",
        (role_id, alias, normalize_alias(alias), primary, vector.astype(np.float32)),
    ).fetchone()
    return added is not None


def _apply_new_skill(
    conn: psycopg.Connection[Any], item: ReviewItem, vectors: Vectors, how: HowToApply
) -> dict[str, Any]:
    name = (how.rename or str(item.payload.get("name") or item.key)).strip()
    if how.as_alias_of:
        skill_id = _skill_id(conn, how.as_alias_of)
        added = _add_skill_alias(conn, skill_id, name, vectors[name], "SYNONYM", False)
        changes: dict[str, Any] = {"alias_added": name if added else None, "skill": how.as_alias_of}
    else:
        profile = item.payload.get("profile") or {}
        nature = str(profile.get("nature") or "CONCEPT").upper()
        nature = nature if nature in NATURE_PROFILE else "CONCEPT"
        slug = _free_slug(conn, "skills", name)
        row = conn.execute(
            """INSERT INTO skills (slug, display_name, nature, category, status, source, source_id)
               VALUES (%s, %s, %s, %s, 'active', %s, %s) RETURNING id""",
            (slug, name, nature, profile.get("category"), REVIEW_SOURCE, f"review:{item.id}"),
        ).fetchone()
        assert row is not None
        skill_id = int(row["id"])
        _add_skill_alias(conn, skill_id, name, vectors[name], "CANONICAL", True)
        changes = {"skill_created": slug, "name": name, "nature": nature}
    target_role = how.role or None
    if target_role:
        conn.execute(
            """INSERT INTO role_skills (role_id, skill_id, importance, weight, source) VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT DO NOTHING""",
            (
                _role_id(conn, target_role),
                skill_id,
                "essential" if item.payload.get("is_primary") else "optional",
                1.0 if item.payload.get("is_primary") else 0.5,
                REVIEW_SOURCE,
            ),
        )
        changes["linked_to_role"] = target_role
    return changes


def _apply_new_alias(
    conn: psycopg.Connection[Any], item: ReviewItem, vectors: Vectors, how: HowToApply
) -> dict[str, Any]:
    alias = str(item.payload.get("alias") or "")
    skill = how.as_alias_of or str(item.payload.get("skill") or "")
    if how.rename:
        alias = how.rename.strip()
    added = _add_skill_alias(conn, _skill_id(conn, skill), alias, vectors[alias], "LEARNED", False)
    return {"alias_added": alias if added else None, "skill": skill}


def _apply_new_kra(
    conn: psycopg.Connection[Any], item: ReviewItem, vectors: Vectors, how: HowToApply
) -> dict[str, Any]:
    text = str(item.payload.get("text") or "")
    target = how.role or str(item.payload.get("role") or "")
    if how.rename:
        text = how.rename.strip()
    added = conn.execute(
        """INSERT INTO role_kras (role_id, text, text_norm, source, kind, embedding) VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (role_id, text_norm) DO NOTHING RETURNING id""",
        (_role_id(conn, target), text, normalize_text(text), REVIEW_SOURCE, "reviewed", _f32(vectors[text])),
    ).fetchone()
    return {"kra_added": text if added else None, "role": target}


def _apply_new_role(
    conn: psycopg.Connection[Any], item: ReviewItem, vectors: Vectors, how: HowToApply
) -> dict[str, Any]:
    title = (how.rename or str(item.payload.get("title") or item.key)).strip()
    existing = how.role or how.as_alias_of
    if existing:
        added = _add_role_alias(conn, _role_id(conn, existing), title, vectors[title], False)
        return {"role_alias_added": title if added else None, "role": existing}
    slug = _free_slug(conn, "roles", title)
    vector = vectors[title].astype(np.float32)
    row = conn.execute(
        """INSERT INTO roles (slug, display_name, status, source, source_id, centroid, centroid_n)
           VALUES (%s, %s, 'active', %s, %s, %s, 1) RETURNING id""",
        (slug, title, REVIEW_SOURCE, f"review:{item.id}", vector),
    ).fetchone()
    assert row is not None
    role_id = int(row["id"])
    _add_role_alias(conn, role_id, title, vectors[title], True)
    skills: Sequence[str] = [str(s) for s in item.payload.get("skills") or []]
    linked = conn.execute(
        """INSERT INTO role_skills (role_id, skill_id, importance, weight, source)
           SELECT %s, id, 'optional', 0.5, %s FROM skills WHERE slug = ANY(%s) AND status = 'active'
           ON CONFLICT DO NOTHING RETURNING skill_id""",
        (role_id, REVIEW_SOURCE, list(skills)),
    ).fetchall()
    return {"role_created": slug, "title": title, "skills_linked": len(linked)}


def _apply_new_link(
    conn: psycopg.Connection[Any], item: ReviewItem, vectors: Vectors, how: HowToApply
) -> dict[str, Any]:
    target = how.role or str(item.payload.get("role") or "")
    dimension = str(item.payload.get("dimension") or "")
    added = conn.execute(
        """INSERT INTO role_dimensions (role_id, dimension_id, importance, weight, source)
           SELECT %s, id, 'optional', 0.3, %s FROM dimensions WHERE slug = %s
           ON CONFLICT DO NOTHING RETURNING dimension_id""",
        (_role_id(conn, target), REVIEW_SOURCE, dimension),
    ).fetchone()
    return {"link_added": f"{target} ↔ {dimension}" if added else None}


_APPLY = {
    "new_skill": _apply_new_skill,
    "new_alias": _apply_new_alias,
    "new_kra": _apply_new_kra,
    "new_role": _apply_new_role,
    "new_link": _apply_new_link,
}


def _summary(changes: dict[str, Any]) -> str:
    parts = [f"{k.replace('_', ' ')}: {v}" for k, v in changes.items() if v not in (None, "", [])]
    return "; ".join(parts) or "nothing new (already in the catalog)"
