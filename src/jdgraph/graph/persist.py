"""persist: one transaction, idempotent by run id.

The run row is inserted first with ``ON CONFLICT DO NOTHING``; when it already exists the run was persisted
before (a retried or resumed node) and nothing else is written. Everything else — links, review-queue entries,
the collision log, LLM calls and the centroid update — commits together with it or not at all. The centroid is
a running mean updated under a row lock, so concurrent runs never lose an update.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import numpy as np
from langgraph.runtime import Runtime

from jdgraph.catalog.normalize import normalize_alias, normalize_text
from jdgraph.catalog.queries import get_catalog
from jdgraph.embeddings import as_array
from jdgraph.graph.context import Context
from jdgraph.graph.nodes import _ms, responsibility_for_kras, skills_of
from jdgraph.graph.schemas import (
    ClassificationResult,
    Decision,
    Enrichment,
    LLMCallRecord,
    ParsedJD,
    PersistOutcome,
    QueuedItem,
    RoleChoice,
    RoleSignal,
)
from jdgraph.graph.state import State


def input_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _queue_items(state: State, decision: Decision, ctx: Context, new_kras: list[str]) -> list[QueuedItem]:
    items: list[QueuedItem] = []
    role = decision.chosen_role.slug
    for skill in skills_of(state):
        if skill.tag == "new":
            items.append(
                QueuedItem(
                    kind="new_skill",
                    key=normalize_alias(skill.name),
                    payload={
                        "name": skill.name,
                        "profile": skill.proposed_profile.model_dump() if skill.proposed_profile else None,
                        "evidence": skill.evidence[0].sentence if skill.evidence else None,
                        "role": role,
                        "is_primary": skill.is_primary,
                    },
                )
            )
        elif skill.match_via == "embedding" and ctx.alias_learn <= skill.score < 1.0:
            items.append(
                QueuedItem(
                    kind="new_alias",
                    key=f"{skill.canonical_slug}:{normalize_alias(skill.name)}",
                    payload={
                        "skill": skill.canonical_slug,
                        "alias": skill.name,
                        "similarity": skill.score,
                        "matched_alias": skill.alias,
                    },
                )
            )
    if role and not decision.is_new_role:
        for text in new_kras:
            items.append(
                QueuedItem(
                    kind="new_kra", key=f"{role}:{normalize_text(text)[:200]}", payload={"role": role, "text": text}
                )
            )
    if decision.is_new_role:
        parsed = ParsedJD.model_validate(state.parsed)
        title = parsed.role or "untitled role"
        items.append(
            QueuedItem(
                kind="new_role",
                key=normalize_alias(title) or "untitled",
                payload={
                    "title": title,
                    "closest_role": role,
                    "closest_score": decision.chosen_role.score,
                    "reason": decision.new_role_flag,
                    "skills": [s.canonical_slug or s.name for s in skills_of(state)][:20],
                },
            )
        )
    return items


def _bullets(state: State) -> tuple[list[str], np.ndarray]:
    """The JD's responsibility bullets and their embeddings: computed once, used for new KRAs and the centroid."""
    texts = [s.text for s in responsibility_for_kras(state)]
    return texts, get_catalog().embeddings.embed_array(texts)


def _new_kras(texts: list[str], vectors: np.ndarray, role_slug: str | None, threshold: float) -> list[str]:
    if not role_slug or not texts:
        return []
    catalog = get_catalog()
    with catalog.db.connection() as conn:
        rows = conn.execute(
            "SELECT k.embedding FROM role_kras k JOIN roles r ON r.id = k.role_id WHERE r.slug = %s", (role_slug,)
        ).fetchall()
    if not rows:
        return list(texts)
    kras = np.vstack([as_array(r["embedding"]) for r in rows])
    best = (vectors @ kras.T).max(axis=1)
    return [text for text, sim in zip(texts, best, strict=True) if sim < threshold]


def persist(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = runtime.context or Context()
    parsed = ParsedJD.model_validate(state.parsed)
    rejected = parsed.jd_type == "reject"
    if rejected:
        decision = Decision(
            chosen_role=RoleChoice(slug=None),
            route="rejected",
            decided_by="gate",
            reasoning=parsed.reject_reason or "not a job description",
        )
    else:
        decision = Decision.model_validate(state.decision)
    bullets, bullet_vectors = ([], None) if rejected else _bullets(state)
    new_kras = (
        []
        if bullet_vectors is None
        else _new_kras(bullets[:30], bullet_vectors[:30], decision.chosen_role.slug, ctx.new_kra_threshold)
    )
    queued = [] if rejected else _queue_items(state, decision, ctx, new_kras)
    outcomes: list[PersistOutcome] = []
    if not ctx.persist:
        outcomes.append(PersistOutcome(item=state.run_id, kind="run", outcome="skipped: persistence disabled"))
    else:
        jd_vector = None if bullet_vectors is None else _jd_vector(state, bullet_vectors)
        outcomes = _write(state, parsed, decision, queued, rejected, jd_vector)
    timings = {**state.timings_ms, "persist": _ms(t0)}
    calls = [LLMCallRecord.model_validate(c) for c in state.llm_calls]
    result = ClassificationResult(
        run_id=state.run_id,
        status="rejected" if rejected else "completed",
        parsed=parsed,
        skills=skills_of(state),
        role_signals=[RoleSignal.model_validate(s) for s in state.role_signals],
        decision=decision,
        queued=queued,
        persistence=outcomes,
        enrichment=Enrichment.model_validate(state.enrichment) if state.enrichment else None,
        llm_calls=calls,
        llm_cost_usd=round(sum(c.cost_usd for c in calls), 6),
        node_timings_ms=timings,
        warnings=state.warnings,
    )
    if ctx.persist and outcomes and outcomes[0].outcome == "saved":
        catalog = get_catalog()
        with catalog.db.connection() as conn:
            conn.execute(
                "UPDATE runs SET result = %s, node_timings = %s WHERE run_id = %s",
                (json.dumps(result.model_dump(mode="json")), json.dumps(timings), state.run_id),
            )
    return {
        "result": result.model_dump(mode="json"),
        "queued": [q.model_dump() for q in queued],
        "persistence": [o.model_dump() for o in outcomes],
        "timings_ms": {"persist": _ms(t0)},
    }


def _write(
    state: State,
    parsed: ParsedJD,
    decision: Decision,
    queued: list[QueuedItem],
    rejected: bool,
    jd_vector: np.ndarray | None,  # embedded before the transaction takes any lock
) -> list[PersistOutcome]:
    catalog = get_catalog()
    out: list[PersistOutcome] = []
    with catalog.db.connection() as conn, conn.transaction():
        inserted = conn.execute(
            """INSERT INTO runs (run_id, status, input_hash, title, jd_text, chosen_role, confidence, node_timings)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO NOTHING RETURNING run_id""",
            (
                state.run_id,
                "rejected" if rejected else "completed",
                input_hash(state.text or state.jd_text),
                parsed.role,
                state.text or state.jd_text,
                decision.chosen_role.slug,
                decision.confidence,
                json.dumps(state.timings_ms),
            ),
        ).fetchone()
        if inserted is None:
            return [PersistOutcome(item=state.run_id, kind="run", outcome="skipped: run already persisted")]
        out.append(PersistOutcome(item=state.run_id, kind="run", outcome="saved"))
        for call in state.llm_calls:
            conn.execute(
                """INSERT INTO llm_calls (run_id, seq, node, model, prompt_name, prompt_version, input_tokens,
                                          output_tokens, cost_usd, latency_ms, outcome, error)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, seq) DO NOTHING""",
                (
                    state.run_id,
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
        if rejected:
            return out  # a rejected text touches nothing in the catalog
        role_slug = decision.chosen_role.slug
        # Lock the chosen role first: concurrent runs on one role then queue here in one order (no deadlock),
        # and the centroid's read-modify-write below cannot lose an update.
        role_row = (
            conn.execute("SELECT id FROM roles WHERE slug = %s FOR UPDATE", (role_slug,)).fetchone()
            if role_slug
            else None
        )
        role_id = role_row["id"] if role_row else None
        role_dims = catalog.role_dimensions(role_id) if role_id else {}
        dim_counts: dict[str, list[str]] = {}
        dim_ids: dict[str, int] = {}
        for skill in skills_of(state):
            if skill.tag == "new":
                out.append(
                    PersistOutcome(
                        item=f"{skill.name}", kind="skill_dimension", outcome="skipped: new skill, queued for review"
                    )
                )
                continue
            for dim in skill.dimensions:
                out.append(
                    PersistOutcome(
                        item=f"{skill.canonical_slug} ↔ {dim.slug}", kind="skill_dimension", outcome="already linked"
                    )
                )
                dim_counts.setdefault(dim.slug, []).append(skill.canonical_slug or "")
        if dim_counts:
            for r in conn.execute("SELECT id, slug FROM dimensions WHERE slug = ANY(%s)", (list(dim_counts),)):
                dim_ids[r["slug"]] = r["id"]
        for dim_slug, skill_slugs in sorted(dim_counts.items()):
            item = f"{role_slug} ↔ {dim_slug}"
            if role_id is None or decision.is_new_role:
                out.append(PersistOutcome(item=item, kind="role_dimension", outcome="skipped: no confirmed role"))
            elif dim_ids[dim_slug] in role_dims:
                out.append(PersistOutcome(item=item, kind="role_dimension", outcome="already linked"))
            elif len(skill_slugs) < 2:
                out.append(
                    PersistOutcome(
                        item=item, kind="role_dimension", outcome="skipped: only one matched skill in this dimension"
                    )
                )
            elif decision.confidence < 0.6:
                out.append(
                    PersistOutcome(
                        item=item,
                        kind="role_dimension",
                        outcome=f"skipped: confidence {decision.confidence:.2f} below 0.60",
                    )
                )
            else:
                conn.execute(
                    """INSERT INTO role_dimensions (role_id, dimension_id, importance, weight, source, run_id)
                       VALUES (%s, %s, 'optional', 0.3, 'learned', %s) ON CONFLICT DO NOTHING""",
                    (role_id, dim_ids[dim_slug], state.run_id),
                )
                out.append(PersistOutcome(item=item, kind="role_dimension", outcome="saved"))
        for q in sorted(queued, key=lambda q: (q.kind, q.key)):  # one lock order across runs
            row = conn.execute(
                """INSERT INTO review_queue (kind, proposal_key, payload, first_run_id, last_run_id)
                   VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (kind, proposal_key) DO UPDATE SET last_run_id = EXCLUDED.last_run_id,
                       updated_at = now()
                   RETURNING id""",
                (q.kind, q.key, json.dumps(q.payload), state.run_id, state.run_id),
            ).fetchone()
            assert row is not None
            linked = conn.execute(
                "INSERT INTO review_queue_runs (queue_id, run_id) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                (row["id"], state.run_id),
            ).fetchone()
            if linked:
                conn.execute(
                    """UPDATE review_queue SET occurrences = (SELECT count(*) FROM review_queue_runs
                       WHERE queue_id = %s) WHERE id = %s""",
                    (row["id"], row["id"]),
                )
            out.append(PersistOutcome(item=f"{q.kind}: {q.key}", kind="review_queue", outcome="queued"))
        if state.collision:
            conn.execute(
                """INSERT INTO alias_collisions (run_id, alias, candidates, chosen_role, reason)
                   VALUES (%s, %s, %s, %s, %s) ON CONFLICT (run_id, alias) DO NOTHING""",
                (
                    state.run_id,
                    state.collision.get("alias") or state.collision.get("kind"),
                    json.dumps(state.collision.get("roles", [])),
                    role_slug,
                    state.collision.get("reason"),
                ),
            )
            out.append(PersistOutcome(item=str(state.collision.get("reason")), kind="collision_log", outcome="saved"))
        out.append(_update_centroid(conn, state, role_id, role_slug, decision, jd_vector))
    return out


def _jd_vector(state: State, bullet_vectors: np.ndarray) -> np.ndarray:
    """The JD's embedding for the centroid: the normalised mean of its responsibility bullets (of the text's
    start when it has no bullets)."""
    vectors = bullet_vectors if len(bullet_vectors) else get_catalog().embeddings.embed_array([state.text[:2000]])
    jd = vectors.mean(axis=0)
    return jd / (np.linalg.norm(jd) or 1.0)


def _update_centroid(
    conn: Any, state: State, role_id: int | None, role_slug: str | None, decision: Decision, jd: np.ndarray | None
) -> PersistOutcome:
    item = f"{role_slug} centroid"
    if role_id is None or decision.is_new_role or jd is None:
        return PersistOutcome(item=item, kind="centroid", outcome="skipped: no confirmed role")
    first = conn.execute(
        "INSERT INTO role_centroid_runs (role_id, run_id) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        (role_id, state.run_id),
    ).fetchone()
    if first is None:
        return PersistOutcome(item=item, kind="centroid", outcome="skipped: this run already counted")
    row = conn.execute("SELECT centroid, centroid_n FROM roles WHERE id = %s FOR UPDATE", (role_id,)).fetchone()
    n = int(row["centroid_n"] or 0)
    current = as_array(row["centroid"]) if row["centroid"] is not None else np.zeros_like(jd)
    updated = current + (jd - current) / (n + 1)
    conn.execute(
        "UPDATE roles SET centroid = %s, centroid_n = %s, updated_at = now() WHERE id = %s",
        (updated.astype(np.float32), n + 1, role_id),
    )
    return PersistOutcome(item=item, kind="centroid", outcome=f"updated · n={n + 1}")
