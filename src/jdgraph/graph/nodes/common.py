"""The graph's nodes. Each reads the state and ``Runtime[Context]``, and returns only the fields it owns.

Every node is safe to re-run from its first line (a retry or a resume after a crash): nodes before persist
write nothing outside the state, and persist writes with keyed upserts in one transaction.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, TypeVar

import numpy as np
from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime
from pydantic import BaseModel

from jdgraph.catalog.queries import Catalog
from jdgraph.errors import InputError, LLMError
from jdgraph.graph.context import Context
from jdgraph.graph.enrich import enrich, merge_llm_enrichment
from jdgraph.graph.extract import Mention, SkillFinding, deterministic_extract, ground_model_skills, implies_skills
from jdgraph.graph.identity import content_key
from jdgraph.graph.llm import LLMRecorder, make_chat_model, structured_call, system_and_user, tool_loop
from jdgraph.graph.match import resolve_skills
from jdgraph.graph.parse import deterministic_parse, requirement_section
from jdgraph.graph.schemas import (
    AdjudicationDecision,
    Decision,
    Domain,
    DomainName,
    ExtractedSkills,
    LLMEnrichment,
    ParsedJD,
    ParsedJDAnswer,
    ResolvedSkill,
    RoleChoice,
    RoleSignal,
    adjudication_schema,
)
from jdgraph.graph.state import State
from jdgraph.graph.text import Sentence, normalise_text, sentences
from jdgraph.prompts import Prompt, load_prompt
from jdgraph.scoring import confidence, role_signals

T = TypeVar("T", bound=BaseModel)

_NON_RESPONSIBILITY = (
    "about",
    "benefit",
    "perk",
    "offer",
    "salary",
    "compensation",
    "how to apply",
    "why",
    "equal opportunity",
    "location",
    "evaluation",
    "process",
)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


def _records(recorder: LLMRecorder | None) -> list[dict[str, Any]]:
    return [r.model_dump() for r in recorder.records] if recorder else []


def _llm_headers(prompt_ref: str, ctx: Context) -> dict[str, str]:
    return {"X-Jdgraph-Prompt": prompt_ref, "X-Jdgraph-Repeat": str(ctx.repeat_index)}


def _model_and_prompt(node: str, spec: str, ctx: Context) -> tuple[BaseChatModel, Prompt] | None:
    """The step's chat model and prompt, or None when no model is configured (the prompt is not even read)."""
    if not spec or spec.lower() == "none":
        return None
    prompt = load_prompt(node, ctx.prompts_dir)
    model = make_chat_model(
        spec,
        timeout_s=ctx.llm_timeout_s,
        headers=_llm_headers(prompt.ref, ctx),
        max_tokens=int(getattr(ctx, f"{node}_max_tokens")),
    )
    return (model, prompt) if model is not None else None


def _structured_or_fallback(
    node: str,
    spec: str,
    schema: type[T],
    state: State,
    ctx: Context,
    warnings: list[str],
    *,
    fallback: str,
    **variables: Any,
) -> tuple[T | None, LLMRecorder | None]:
    """The LLM implementation of a step: its validated output, or None (no model configured, or the call failed
    after retries and repair, in which case the last record is marked ``fallback`` and a warning says so)."""
    configured = _model_and_prompt(node, spec, ctx)
    if configured is None:
        return None, None
    model, prompt = configured
    recorder = LLMRecorder(node, spec, prompt, start_seq=len(state.llm_calls))
    try:
        messages = system_and_user(prompt, **variables)
        answer = structured_call(
            model, schema, messages, recorder, max_attempts=ctx.llm_max_attempts, method=ctx.structured_output_method
        )
        warn_if_truncated(node, answer, warnings)
        return answer, recorder
    except LLMError as exc:
        warnings.append(f"{node}: {exc.message}; used the {fallback}")
        recorder.records[-1].outcome = "fallback"
        return None, recorder


def warn_if_truncated(node: str, answer: Any, warnings: list[str]) -> None:
    cut = getattr(answer, "truncated", None)
    if cut:
        warnings.append(f"{node}: the model's answer went past its bounds and was cut: {'; '.join(cut[:5])}")


def responsibility_sentences(text: str) -> list[Sentence]:
    """The JD's sentences outside the company blurb, perks, offer and process sections."""
    return [s for s in sentences(text) if not (s.section and s.section.lower().startswith(_NON_RESPONSIBILITY))]


# -- parse ------------------------------------------------------------------------------------------------------
def run_id_of(given: str | None) -> str:
    """The run's id: the caller's (a UUID, normalised) or, when none is given (a LangGraph server run with the
    default input, ``graph.invoke({"jd_text": ...})``), a fresh one. Parse sets it in the state once, so a
    resumed or retried persist keeps it."""
    if not given or not str(given).strip():
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(str(given).strip()))
    except ValueError:
        raise InputError(f"run_id {given!r} is not a UUID", field="run_id") from None


def parse(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = runtime.context or Context()
    text = normalise_text(state.checked().jd_text)  # every input field, as the Python API checks them
    run_id = run_id_of(state.run_id)
    catalog = ctx.resolve_catalog()
    warnings: list[str] = []
    answer, recorder = _structured_or_fallback(
        "parse",
        ctx.parse_model,
        ParsedJDAnswer,
        state,
        ctx,
        warnings,
        fallback="deterministic parser",
        jd_text=text,
        title=state.title,
    )
    parsed = None if answer is None else ParsedJD.model_validate(answer.model_dump())
    deterministic = deterministic_parse(text, title=state.title, company=state.company, catalog=catalog)
    if parsed is not None and parsed.jd_type == "reject" and deterministic.jd_type == "pass":
        # A model's rejection alone never ends a run: small models reject real JDs. The catalog-grounded gate
        # passes this text, so the run goes on and the disagreement is shown.
        warnings.append(
            f"parse: the model rejected the text ({parsed.reject_reason or 'no reason given'}) but the "
            "deterministic gate passes it as a job description; continued with the deterministic parse"
        )
        parsed = None
    if parsed is None:
        parsed = deterministic
    else:
        # The catalog-grounded fields the model may miss are filled from the deterministic parse.
        parsed.role = state.title or parsed.role or deterministic.role
        parsed.certifications = parsed.certifications or deterministic.certifications
    return {
        "run_id": run_id,
        "input_id": state.input_id or content_key(text, state.title, state.company, ctx),
        "text": text,
        "parsed": parsed.model_dump(mode="json"),
        "llm_calls": _records(recorder),
        "timings_ms": {"parse": _ms(t0)},
        "warnings": warnings,
    }


# -- extract ----------------------------------------------------------------------------------------------------
def _finding_to_dict(f: SkillFinding) -> dict[str, Any]:
    return {
        "name": f.name,
        "extracted_by": f.extracted_by,
        "is_primary": f.is_primary,
        "slug_hint": f.slug_hint,
        "mentions": [
            {
                "name": m.name,
                "start": m.start,
                "end": m.end,
                "sentence": asdict(m.sentence),
                "extracted_by": m.extracted_by,
            }
            for m in f.mentions
        ],
    }


def _finding_from_dict(d: dict[str, Any]) -> SkillFinding:
    mentions = [
        Mention(m["name"], m["start"], m["end"], Sentence(**m["sentence"]), m["extracted_by"]) for m in d["mentions"]
    ]
    return SkillFinding(d["name"], d["extracted_by"], mentions, d["is_primary"], d.get("slug_hint"))


def _titles(parsed: ParsedJD) -> list[str]:
    return [t for t in [parsed.role, *parsed.role_aliases] if t]


def texts_to_embed(sents: list[Sentence], titles: Sequence[str], *, max_role_sentences: int) -> list[str]:
    """Every text of a JD that extract and match embed, from its :func:`responsibility_sentences` and titles:
    what a node (or a batch) can embed ahead in one model call."""
    texts = [s.text for s in sents[:max_role_sentences]] + [s.text for s in sents if implies_skills(s)]
    return list(dict.fromkeys([*texts, *titles]))


def _embed_ahead(catalog: Catalog, sents: list[Sentence], parsed: ParsedJD, ctx: Context) -> None:
    """Embed every sentence and title that extract and match will look up, in one model call.

    Each model call costs about 10 ms of fixed overhead on a CPU, before any token; the nodes would otherwise
    make three or four calls per JD (responsibility bullets, remaining sentences, titles). The vectors land in
    the embedder's cache, where the nodes find them.
    """
    texts = texts_to_embed(sents, _titles(parsed), max_role_sentences=ctx.max_role_sentences)
    if texts:
        catalog.embeddings.embed_array(texts)


def extract(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = runtime.context or Context()
    catalog = ctx.resolve_catalog()
    parsed = ParsedJD.model_validate(state.parsed)
    sents = responsibility_sentences(state.text)  # not the company blurb, perks or the offer
    _embed_ahead(catalog, sents, parsed, ctx)
    warnings: list[str] = []
    findings: list[SkillFinding] | None = None
    out, recorder = _structured_or_fallback(
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
        findings = deterministic_extract(
            state.text, sents, title=parsed.role, catalog=catalog, embedding_threshold=ctx.extract_embedding
        )
    return {
        "extracted": [_finding_to_dict(f) for f in findings],
        "llm_calls": _records(recorder),
        "timings_ms": {"extract": _ms(t0)},
        "warnings": warnings,
    }


# -- match ------------------------------------------------------------------------------------------------------
def match(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = runtime.context or Context()
    catalog = ctx.resolve_catalog()
    parsed = ParsedJD.model_validate(state.parsed)
    findings = [_finding_from_dict(d) for d in state.extracted]
    skills = resolve_skills(findings, catalog, accept=ctx.embedding_accept)
    resp = responsibility_sentences(state.text)[: ctx.max_role_sentences]
    vectors = catalog.embeddings.embed_array([s.text for s in resp]) if resp else None
    jd_vector = None
    if vectors is not None and len(vectors):
        mean = vectors.mean(axis=0)
        jd_vector = mean / (np.linalg.norm(mean) or 1.0)
    titles = _titles(parsed)
    signals = role_signals(
        catalog,
        titles=titles,
        sentences=[s.text for s in resp],
        sentence_vectors=vectors,
        skills=[s.canonical_slug for s in skills if s.canonical_slug],
        jd_vector=jd_vector,
        params=ctx.scoring(),
    )
    collision = detect_collision(signals, margin=ctx.collision_margin, title_disagreement=ctx.title_disagreement)
    enrichment = enrich(skills, resp, parsed.role)
    warnings: list[str] = []
    llm_enrichment, recorder = _structured_or_fallback(
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
        # The domain comes from the catalog's top role, not from a guess.
        parsed.domain = Domain(primary=DomainName(domain=signals[0].domain or "General"))
    return {
        "parsed": parsed.model_dump(mode="json"),
        "skills": [s.model_dump(mode="json") for s in skills],
        "role_signals": [s.model_dump(mode="json") for s in signals],
        "collision": collision,
        "enrichment": enrichment.model_dump(mode="json"),
        "llm_calls": _records(recorder),
        "timings_ms": {"match": _ms(t0)},
        "warnings": warnings,
    }


def detect_collision(signals: list[RoleSignal], *, margin: float, title_disagreement: float) -> dict[str, Any]:
    """Why the top choice is contested, or {} when it is not."""
    if len(signals) < 2:
        return {}
    top = signals[0]
    shared = [s for s in signals[:6] if s.title_match_via in ("exact", "normalized")]
    if len(shared) >= 2:
        return {
            "kind": "shared_title",
            "alias": shared[0].title_alias,
            "roles": [s.slug for s in shared],
            "reason": f"title alias {shared[0].title_alias!r} is shared by {', '.join(s.slug for s in shared)}",
        }
    if top.score - signals[1].score < margin:
        return {
            "kind": "close_call",
            "roles": [top.slug, signals[1].slug],
            "reason": f"{top.slug} {top.score:.3f} and {signals[1].slug} {signals[1].score:.3f} are within "
            f"the collision margin {margin}",
        }
    alias_winner = max(signals, key=lambda s: (s.title_similarity, s.score))
    if alias_winner.title_similarity >= title_disagreement and alias_winner.slug != top.slug:
        return {
            "kind": "alias_disagrees",
            "alias": alias_winner.title_alias,
            "roles": [alias_winner.slug, top.slug],
            "reason": f"the title matches {alias_winner.slug} but KRAs and skills favour {top.slug}",
        }
    return {}


# -- decide / adjudicate ----------------------------------------------------------------------------------------
def _choice(s: RoleSignal) -> RoleChoice:
    return RoleChoice(slug=s.slug, display_name=s.display_name, source_id=s.source_id, score=s.score)


def decide(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = runtime.context or Context()
    signals = [RoleSignal.model_validate(s) for s in state.role_signals]
    if not signals:
        decision = Decision(
            chosen_role=RoleChoice(slug=None),
            route="new-role",
            is_new_role=True,
            reasoning="no catalog role has any signal for this JD",
            new_role_flag="no candidates",
        )
    else:
        top = signals[0]
        decision = Decision(
            chosen_role=_choice(top),
            confidence=confidence(signals, ctx.scoring()),
            alternatives=[_choice(s) for s in signals[1:6]],
            route="direct",
            decided_by="fusion",
            reasoning=f"{top.slug} leads the fused signals: title {top.title_similarity:.2f}, KRA "
            f"{top.kra_similarity:.2f}, skill overlap {top.skill_overlap:.2f}, centroid "
            f"{top.centroid_similarity:.2f}",
        )
        if top.score < ctx.new_role_threshold:
            decision.is_new_role = True
            _none_fits(decision, f"best fused score {top.score:.3f} is below the new-role threshold "
                       f"{ctx.new_role_threshold}")  # fmt: skip
    return {"decision": decision.model_dump(mode="json"), "timings_ms": {"decide": _ms(t0)}}


def _none_fits(decision: Decision, why: str) -> None:
    """The explicit "none of these fits" outcome: no chosen role; the closest one is kept as ``nearest_role`` so
    the reviewer of the new-role proposal sees where it sits, and nobody reads it as the answer."""
    nearest = decision.chosen_role
    decision.route = "new-role"
    decision.chosen_role = RoleChoice(slug=None)
    decision.nearest_role = nearest if nearest.slug else None
    decision.new_role_flag = f"{why}; nearest catalog role {nearest.slug}" if nearest.slug else why


def adjudicate_by_rules(signals: list[RoleSignal], collision: dict[str, Any]) -> tuple[RoleSignal, str]:
    """Deterministic adjudication among contested candidates.

    - A title alias shared by several roles says nothing about which of them is meant, so among those roles the
      one whose responsibilities, skills and profile fit the JD best wins (KRA similarity + skill overlap +
      centroid similarity), then the fused score, then the slug.
    - A close call or a title that disagrees with the description is already weighed by the fused score, which
      sees every signal; re-ranking on a subset of them chose worse on real ads (hahu-dev: 16 of 52 contested
      ads right against 18 for the fused leader), so the leader stays and the contest lowers its confidence.
    """
    contested = [s for s in signals if s.slug in set(collision.get("roles", []))] or signals[:2]
    if collision.get("kind") != "shared_title":
        best = max(contested, key=lambda s: (s.score, [-ord(c) for c in s.slug]))
        return best, (
            f"rules: {collision.get('reason', 'contested')}; kept {best.slug}, the fused leader "
            f"({best.score:.3f}) among {', '.join(s.slug for s in contested)}"
        )

    def description_fit(s: RoleSignal) -> float:
        return round(s.kra_similarity + s.skill_overlap + s.centroid_similarity, 4)

    best = max(contested, key=lambda s: (description_fit(s), s.score, [-ord(c) for c in s.slug]))
    return best, (
        f"rules: {collision.get('reason', 'contested')}; chose {best.slug} on KRA+skill+profile fit "
        f"{description_fit(best):.3f} among {', '.join(s.slug for s in contested)}"
    )


def adjudicate(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = runtime.context or Context()
    signals = [RoleSignal.model_validate(s) for s in state.role_signals]
    parsed = ParsedJD.model_validate(state.parsed)
    collision = state.collision
    warnings: list[str] = []
    recorder: LLMRecorder | None = None
    verdict: AdjudicationDecision | None = None
    configured = _model_and_prompt("adjudicate", ctx.adjudicate_model, ctx)
    candidates = signals[:6]
    if configured is not None:
        from jdgraph.tools import CATALOG_TOOLS

        model, prompt = configured
        recorder = LLMRecorder("adjudicate", ctx.adjudicate_model, prompt, start_seq=len(state.llm_calls))
        messages = system_and_user(
            prompt,
            reason=collision.get("reason", ""),
            title=parsed.role,
            candidates=candidates,
            sentences=[s.text for s in responsibility_sentences(state.text)[:25]],
        )
        try:
            conversation = tool_loop(
                model, CATALOG_TOOLS, messages, recorder, max_rounds=3, max_attempts=ctx.llm_max_attempts
            )
            # The candidates' slugs as an enum: grammar-constrained decoding can then only pick one of them.
            verdict = structured_call(
                model,
                adjudication_schema([c.slug for c in candidates]),
                conversation,
                recorder,
                max_attempts=ctx.llm_max_attempts,
                method=ctx.structured_output_method,
            )
            warn_if_truncated("adjudicate", verdict, warnings)
            if verdict.chosen_role not in {c.slug for c in candidates} and not verdict.is_new_role:
                warnings.append(f"adjudicate: the model chose {verdict.chosen_role!r}, not a candidate; used rules")
                recorder.records[-1].outcome = "fallback"
                verdict = None
        except LLMError as exc:
            warnings.append(f"adjudicate: {exc.message}; used the adjudication rules")
            if recorder.records:
                recorder.records[-1].outcome = "fallback"
    if verdict is not None:
        chosen = next((c for c in candidates if c.slug == verdict.chosen_role), candidates[0])
        decision = Decision(
            chosen_role=_choice(chosen),
            sub_role=verdict.sub_role,
            confidence=verdict.confidence,
            alternatives=[_choice(s) for s in signals if s.slug != chosen.slug][:5],
            route="adjudicated",
            llm2_fired=True,
            llm2_reason=collision.get("reason"),
            decided_by="adjudicator-llm",
            reasoning=verdict.reasoning,
            is_new_role=verdict.is_new_role,
        )
    else:
        chosen, reason = adjudicate_by_rules(signals, collision)
        decision = Decision(
            chosen_role=_choice(chosen),
            confidence=round(confidence(signals, ctx.scoring()) * ctx.adjudicated_confidence_factor, 4),
            alternatives=[_choice(s) for s in signals if s.slug != chosen.slug][:5],
            route="adjudicated",
            llm2_fired=False,
            llm2_reason=collision.get("reason"),
            decided_by="adjudicator-rules",
            reasoning=reason,
        )
        if chosen.score < ctx.new_role_threshold:
            decision.is_new_role = True
    if decision.is_new_role:
        _none_fits(decision, f"no candidate fits (best fused score {signals[0].score:.3f}, new-role threshold "
                   f"{ctx.new_role_threshold})")  # fmt: skip
    return {
        "decision": decision.model_dump(mode="json"),
        "llm_calls": _records(recorder),
        "timings_ms": {"adjudicate": _ms(t0)},
        "warnings": warnings,
    }


def skills_of(state: State) -> list[ResolvedSkill]:
    return [ResolvedSkill.model_validate(s) for s in state.skills]


def responsibility_for_kras(state: State) -> list[Sentence]:
    return [s for s in responsibility_sentences(state.text) if s.is_bullet and not requirement_section(s.section)]
