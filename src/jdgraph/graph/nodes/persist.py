"""persist: one transaction through the catalog's :class:`RunStore`, idempotent by run id.

This node decides what to write (review proposals, which role↔dimension links to learn, the JD vector for the
centroid) and formats the outcomes; the store writes it all or nothing. A retried or resumed persist writes
nothing twice: the store skips a run id it already has.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from langgraph.runtime import Runtime

from jdgraph.catalog.normalize import normalize_alias, normalize_text
from jdgraph.catalog.queries import Catalog
from jdgraph.catalog.runs import Proposal, RunWrite
from jdgraph.context import Context
from jdgraph.graph.identity import input_hash
from jdgraph.graph.injection import Finding, detect
from jdgraph.graph.nodes.common import elapsed_ms, parsed_fields
from jdgraph.graph.schemas import (
    ClassificationResult,
    Decision,
    ParsedJD,
    PersistOutcome,
    QueuedItem,
    RoleChoice,
)
from jdgraph.graph.sections import kra_bullets
from jdgraph.graph.state import State


def _queue_items(state: State, decision: Decision, ctx: Context, new_kras: list[str]) -> list[QueuedItem]:
    items: list[QueuedItem] = []
    role = decision.chosen_role.slug
    for skill in state.skills:
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
    if decision.confirmed_role:
        for text in new_kras:
            items.append(
                QueuedItem(
                    kind="new_kra", key=f"{role}:{normalize_text(text)[:200]}", payload={"role": role, "text": text}
                )
            )
    if decision.is_new_role:
        title = (state.parsed.role if state.parsed else None) or "untitled role"
        items.append(
            QueuedItem(
                kind="new_role",
                key=normalize_alias(title) or "untitled",
                payload={
                    "title": title,
                    "closest_role": decision.role_or_nearest.slug,
                    "closest_score": decision.role_or_nearest.score,
                    "reason": decision.new_role_flag,
                    "skills": [s.canonical_slug or s.name for s in state.skills][:20],
                },
            )
        )
    return items


def _quarantine_item(state: State, parsed: ParsedJD, decision: Decision, findings: list[Finding]) -> QueuedItem:
    """The one review item of a quarantined run: keyed by the JD text, so a re-post counts once; the snippets and
    families that held it are its evidence (a reviewer dismisses it; it cannot be approved)."""
    return QueuedItem(
        kind="quarantine",
        key=input_hash(state.text or state.jd_text),
        payload={
            "title": parsed.role,
            "chosen_role": decision.chosen_role.slug,
            "evidence": findings[0].snippet[:300],
            "findings": [
                {"family": f.family, "pattern": f.pattern, "snippet": f.snippet[:300], "how": list(f.how)}
                for f in findings[:10]
            ],
        },
    )


def _dimension_links(
    state: State, catalog: Catalog, decision: Decision, ctx: Context, quarantined: bool
) -> tuple[list[PersistOutcome], list[QueuedItem]]:
    """Role↔dimension links the run's matched skills suggest. A link the catalog lacks becomes a ``new_link``
    proposal (a reviewer approves it; nothing from a JD reaches the catalog on its own). One outcome line per
    dimension, however many of the JD's skills sit in it."""
    role = decision.chosen_role.slug
    confirmed = decision.confirmed_role is not None
    dim_skills: dict[str, list[str]] = {}
    for skill in state.skills:
        for dim in [] if skill.tag == "new" else skill.dimensions:
            dim_skills.setdefault(dim.slug, []).append(skill.canonical_slug or "")
    linked = catalog.role_dimension_slugs(decision.confirmed_role) if decision.confirmed_role else set()
    outcomes: list[PersistOutcome] = []
    items: list[QueuedItem] = []
    for dim_slug, skill_slugs in sorted(dim_skills.items()):
        item = f"{role} ↔ {dim_slug}"
        why = None
        if dim_slug in linked:
            why = "already linked"
        elif quarantined:
            why = "skipped: quarantined run"
        elif not confirmed:
            why = "skipped: no confirmed role"
        elif len(skill_slugs) < ctx.learn_dimension_min_skills:
            why = f"skipped: {len(skill_slugs)} matched skill(s) in it, {ctx.learn_dimension_min_skills} needed"
        elif decision.confidence < ctx.learn_dimension_min_confidence:
            why = f"skipped: confidence {decision.confidence:.2f} below {ctx.learn_dimension_min_confidence:.2f}"
        if why is not None:
            outcomes.append(PersistOutcome(item=item, kind="role_dimension", outcome=why))
            continue
        items.append(
            QueuedItem(
                kind="new_link",
                key=f"{role}:{dim_slug}",
                payload={"role": role, "dimension": dim_slug, "skills": sorted(set(skill_slugs))[:20]},
            )
        )
    return outcomes, items


def _bullets(state: State, catalog: Catalog) -> tuple[list[str], np.ndarray]:
    """The JD's responsibility bullets and their embeddings: computed once, used for new KRAs and the centroid."""
    texts = [s.text for s in kra_bullets(state.sentences)]
    return texts, catalog.embeddings.embed_array(texts)


def _new_kras(
    catalog: Catalog, texts: list[str], vectors: np.ndarray, role_slug: str | None, threshold: float
) -> list[str]:
    if not role_slug or not texts:
        return []
    kras = catalog.kra_vectors(role_slug)
    if not len(kras):
        return list(texts)
    best = (vectors @ kras.T).max(axis=1)
    return [text for text, sim in zip(texts, best, strict=True) if sim < threshold]


def persist(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = runtime.context or Context()
    catalog = ctx.resolve_catalog()
    parsed = parsed_fields(state)
    rejected = parsed.jd_type == "reject"
    if rejected:
        decision = Decision(
            chosen_role=RoleChoice(slug=None),
            route="rejected",
            decided_by="gate",
            reasoning=parsed.reject_reason or "not a job description",
        )
    elif state.decision is None:
        raise ValueError("persist ran before decide or adjudicate set the decision")
    else:
        decision = state.decision
    bullets, bullet_vectors = ([], None) if rejected else _bullets(state, catalog)
    new_kras = (
        []
        if bullet_vectors is None
        else _new_kras(catalog, bullets[:30], bullet_vectors[:30], decision.chosen_role.slug, ctx.new_kra_threshold)
    )
    # Instruction-like text (prompt injection) quarantines the run: it is saved and shown, and it proposes nothing
    # for the catalog and moves no centroid, so hostile text cannot reach the catalog; its one review item (kind
    # quarantine) puts it in front of a reviewer rather than holding it silently.
    suspect = [] if rejected else detect(state.text or state.jd_text)
    warnings = list(state.warnings)
    if suspect:
        warnings.append(
            "quarantined: the JD holds instruction-like text ("
            + "; ".join(f.describe()[:100] for f in suspect[:3])
            + "); nothing was proposed for the catalog and no centroid or link was learned: it waits for a reviewer"
            " as a quarantine item"
        )
    if rejected:
        queued = []
    elif suspect:
        queued = [_quarantine_item(state, parsed, decision, suspect)]
    else:
        queued = _queue_items(state, decision, ctx, new_kras)
    dimension_outcomes, links = ([], []) if rejected else _dimension_links(state, catalog, decision, ctx, bool(suspect))
    queued += links
    outcomes: list[PersistOutcome] = []
    if not ctx.persist:
        outcomes.append(PersistOutcome(item=state.run_id, kind="run", outcome="skipped: persistence disabled"))
    else:
        jd_vector = None if bullet_vectors is None else _jd_vector(state, catalog, bullet_vectors)
        outcomes = _write(
            state, catalog, parsed, decision, queued, rejected, jd_vector, dimension_outcomes, bool(suspect)
        )
    timings = {**state.timings_ms, "persist": elapsed_ms(t0)}
    calls = state.llm_calls
    result = ClassificationResult(
        run_id=state.run_id,
        input_id=state.input_id or None,
        status="rejected" if rejected else "completed",
        parsed=parsed,
        skills=state.skills,
        role_signals=state.role_signals,
        decision=decision,
        queued=queued,
        persistence=outcomes,
        enrichment=state.enrichment,
        llm_calls=calls,
        llm_cost_usd=round(sum(c.cost_usd for c in calls), 6),
        node_timings_ms=timings,
        models=state.models,
        warnings=warnings,
    )
    result_json = result.model_dump(mode="json")
    if ctx.persist and outcomes:
        # A persist that was cut off after its transaction (killed before this line) left the run without its
        # result: a resumed one stores it then, and never overwrites a stored one.
        catalog.runs.store_result(state.run_id, result_json, timings, only_if_missing=outcomes[0].outcome != "saved")
    return {
        "result": result_json,
        "queued": queued,
        "persistence": outcomes,
        "timings_ms": {"persist": elapsed_ms(t0)},
    }


def _write(
    state: State,
    catalog: Catalog,
    parsed: ParsedJD,
    decision: Decision,
    queued: list[QueuedItem],
    rejected: bool,
    jd_vector: np.ndarray | None,  # embedded before the transaction takes any lock
    dimension_outcomes: list[PersistOutcome],
    quarantined: bool = False,
) -> list[PersistOutcome]:
    written = catalog.runs.save_run(
        RunWrite(
            run_id=state.run_id,
            status="rejected" if rejected else "completed",
            input_hash=input_hash(state.text or state.jd_text),
            input_id=state.input_id or None,
            title=parsed.role,
            jd_text=state.text or state.jd_text,
            chosen_role=decision.chosen_role.slug,
            confidence=decision.confidence,
            node_timings=state.timings_ms,
            llm_calls=[c.model_dump() for c in state.llm_calls],
            confirmed_role=decision.confirmed_role is not None,
            proposals=[Proposal(q.kind, q.key, q.payload) for q in queued],
            collision=state.collision,
            jd_vector=jd_vector,
            quarantined=quarantined,
        )
    )
    if written and written[0].outcome != "saved":
        return [PersistOutcome(item=w.item, kind=w.kind, outcome=w.outcome) for w in written]
    run_row, rest = written[0], written[1:]
    return [
        PersistOutcome(item=run_row.item, kind="run", outcome=run_row.outcome),
        *([] if rejected else dimension_outcomes),
        *(PersistOutcome(item=w.item, kind=w.kind, outcome=w.outcome) for w in rest),
    ]


def _jd_vector(state: State, catalog: Catalog, bullet_vectors: np.ndarray) -> np.ndarray:
    """The JD's embedding for the centroid: the normalised mean of its responsibility bullets (of the text's
    start when it has no bullets)."""
    vectors = bullet_vectors if len(bullet_vectors) else catalog.embeddings.embed_array([state.text[:2000]])
    jd = vectors.mean(axis=0)
    return jd / (np.linalg.norm(jd) or 1.0)
