"""extract: the JD's skill findings (the model's, grounded in the text, when one is configured; else the
deterministic extractor's)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from langgraph.runtime import Runtime

from jdgraph.catalog.queries import Catalog
from jdgraph.context import Context
from jdgraph.graph.extract import SkillFinding, deterministic_extract, ground_model_skills, tagging_regions
from jdgraph.graph.nodes.common import elapsed_ms, llm_records, parsed_fields, structured_or_fallback
from jdgraph.graph.schemas import ExtractedSkills, ParsedJD
from jdgraph.graph.sections import texts_to_embed, titles_of
from jdgraph.graph.state import State
from jdgraph.graph.text import Sentence


def _embed_ahead(catalog: Catalog, sents: Sequence[Sentence], parsed: ParsedJD, ctx: Context) -> None:
    """Embed every sentence and title that extract and match will look up, in one model call.

    Each model call costs about 10 ms of fixed overhead on a CPU, before any token; the nodes would otherwise
    make three or four calls per JD (responsibility bullets, remaining sentences, titles). The vectors land in
    the embedder's cache, where the nodes find them.
    """
    texts = texts_to_embed(sents, titles_of(parsed), max_role_sentences=ctx.max_role_sentences)
    if texts:
        catalog.embeddings.embed_array(texts)


def extract(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = runtime.context or Context()
    catalog = ctx.resolve_catalog()
    parsed = parsed_fields(state)
    sents = state.sentences  # not the company blurb, perks or the offer
    _embed_ahead(catalog, sents, parsed, ctx)
    warnings: list[str] = []
    timings: dict[str, float] = {}
    models: dict[str, str] = {}
    findings: list[SkillFinding] | None = None
    out, recorder = structured_or_fallback(
        "extract",
        ctx.extract_model,
        ExtractedSkills,
        state,
        ctx,
        warnings,
        fallback="deterministic extractor",
        jd_text=state.text,
        title=parsed.role,
    )
    if out is not None:
        grounded = ground_model_skills(
            [(k.name, k.evidence, k.is_primary) for k in out.skills],
            state.text,
            sents,
            not_skills=tuple(x for x in (parsed.company_name, parsed.role, state.company) if x),
        )
        findings = grounded.findings
        if grounded.dropped:
            warnings.append(
                f"extract: dropped {len(grounded.dropped)} skill(s) the JD never names or that are not skills: "
                + ", ".join(repr(d) for d in grounded.dropped[:8])
            )
        if grounded.evidence_replaced:
            warnings.append(
                f"extract: {len(grounded.evidence_replaced)} evidence text(s) were not quotes of the JD; the JD's "
                "own sentence is shown instead: " + ", ".join(repr(d) for d in grounded.evidence_replaced[:8])
            )
        if not findings and recorder is not None and recorder.records:
            # Nothing the model named survived (all invented or filler): its answer is as good as none.
            warnings.append("extract: no skill of the model's answer is in the JD; used the deterministic extractor")
            recorder.records[-1].outcome = "fallback"
            findings = None
    if findings is None:
        tagger = ctx.resolve_span_tagger()
        spans = None
        if tagger is None:
            models["span_tagger"] = "none (dictionary extractor)"
        else:
            t_tag = time.perf_counter()
            spans = tagger.tag(state.text, ctx.span_tagger_threshold or None, tagging_regions(state.text, sents))
            timings["span_tagger"] = elapsed_ms(t_tag)
            models["span_tagger"] = f"{ctx.span_tagger} ({tagger.name})"
        findings = deterministic_extract(
            state.text,
            sents,
            title=parsed.role,
            catalog=catalog,
            embedding_threshold=ctx.extract_embedding,
            spans=spans,
        )
    return {
        "extracted": findings,
        "llm_calls": llm_records(recorder),
        "timings_ms": {**timings, "extract": elapsed_ms(t0)},
        "models": models,
        "warnings": warnings,
    }
