"""match: the findings resolved to catalog skills, the JD's role signals, whether the choice is contested, and the
JD's enrichment. All of the matching itself is :mod:`jdgraph.matching`'s."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from langgraph.runtime import Runtime

from jdgraph.context import Context
from jdgraph.graph.enrich import enrich, merge_llm_enrichment
from jdgraph.graph.nodes.common import elapsed_ms, llm_records, parsed_fields, structured_or_fallback
from jdgraph.graph.schemas import Domain, DomainName, LLMEnrichment
from jdgraph.graph.sections import titles_of
from jdgraph.graph.state import State
from jdgraph.matching.collision import detect_collision
from jdgraph.matching.roles import role_signals
from jdgraph.matching.skills import resolve_skills


def match(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = runtime.context or Context()
    catalog = ctx.resolve_catalog()
    parsed = parsed_fields(state)
    skills = resolve_skills(
        state.extracted,
        catalog,
        accept=ctx.embedding_accept,
        tagged_accept=ctx.tagged_accept,
        tagged_propose=ctx.tagged_propose,
    )
    resp = state.sentences[: ctx.max_role_sentences]
    vectors = catalog.embeddings.embed_array([s.text for s in resp]) if resp else None
    jd_vector = None
    if vectors is not None and len(vectors):
        mean = vectors.mean(axis=0)
        jd_vector = mean / (np.linalg.norm(mean) or 1.0)
    signals = role_signals(
        catalog,
        titles=titles_of(parsed),
        sentences=[s.text for s in resp],
        sentence_vectors=vectors,
        skills=[s.canonical_slug for s in skills if s.canonical_slug],
        jd_vector=jd_vector,
        params=ctx.jd_scoring(),
    )
    collision = detect_collision(signals, margin=ctx.collision_margin, title_disagreement=ctx.title_disagreement)
    enrichment = enrich(skills, resp, parsed.role)
    warnings: list[str] = []
    llm_enrichment, recorder = structured_or_fallback(
        "enrich",
        ctx.enrich_model,
        LLMEnrichment,
        state,
        ctx,
        warnings,
        fallback="rule-based enrichment",
        jd_text=state.text,
        title=parsed.role,
        skills=[{"name": s.canonical_name, "is_primary": s.is_primary} for s in skills if s.canonical_slug],
    )
    if llm_enrichment is not None:
        enrichment = merge_llm_enrichment(enrichment, llm_enrichment, state.text)
    if signals and parsed.domain is None:
        # The domain comes from the catalog's top role, not from a guess (a copy: parse's value stays as it was).
        parsed = parsed.model_copy(update={"domain": Domain(primary=DomainName(domain=signals[0].domain or "General"))})
    return {
        "parsed": parsed,
        "skills": skills,
        "role_signals": signals,
        "collision": collision,
        "enrichment": enrichment,
        "llm_calls": llm_records(recorder),
        "timings_ms": {"match": elapsed_ms(t0)},
        "warnings": warnings,
    }
