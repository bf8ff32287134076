"""adjudicate: a contested choice, settled by the adjudicator model with the catalog tools when one is configured
and its verdict holds, else by the rules of :mod:`jdgraph.matching.adjudication`."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from jdgraph.context import Context
from jdgraph.errors import LLMError
from jdgraph.graph.llm import LLMRecorder, structured_call, system_and_user, tool_loop
from jdgraph.graph.nodes.common import elapsed_ms, llm_records, model_and_prompt, parsed_fields, warn_if_truncated
from jdgraph.graph.nodes.decide import none_fits, role_choice
from jdgraph.graph.schemas import AdjudicationDecision, Decision, adjudication_schema
from jdgraph.graph.state import State
from jdgraph.matching.adjudication import adjudicate_by_rules
from jdgraph.matching.roles import confidence, fits_no_role
from jdgraph.tools import CATALOG_TOOLS


def adjudicate(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = runtime.context or Context()
    signals = state.role_signals
    parsed = parsed_fields(state)
    collision = state.collision
    warnings: list[str] = []
    recorder: LLMRecorder | None = None
    verdict: AdjudicationDecision | None = None
    configured = model_and_prompt("adjudicate", ctx.adjudicate_model, ctx)
    candidates = signals[:6]
    if configured is not None:
        model, prompt = configured
        recorder = LLMRecorder("adjudicate", ctx.adjudicate_model, prompt, start_seq=len(state.llm_calls))
        messages = system_and_user(
            prompt,
            reason=collision.get("reason", ""),
            title=parsed.role,
            candidates=candidates,
            sentences=[s.text for s in state.sentences[:25]],
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
            chosen_role=role_choice(chosen),
            sub_role=verdict.sub_role,
            confidence=verdict.confidence,
            alternatives=[role_choice(s) for s in signals if s.slug != chosen.slug][:5],
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
            chosen_role=role_choice(chosen),
            confidence=round(confidence(signals, ctx.scoring()) * ctx.adjudicated_confidence_factor, 4),
            alternatives=[role_choice(s) for s in signals if s.slug != chosen.slug][:5],
            route="adjudicated",
            llm2_fired=False,
            llm2_reason=collision.get("reason"),
            decided_by="adjudicator-rules",
            reasoning=reason,
        )
        if fits_no_role(chosen, ctx.new_role_threshold):
            decision.is_new_role = True
    if decision.is_new_role:
        none_fits(decision, f"no candidate fits (best fused score {signals[0].score:.3f}, new-role threshold "
                  f"{ctx.new_role_threshold})")  # fmt: skip
    return {
        "decision": decision,
        "llm_calls": llm_records(recorder),
        "timings_ms": {"adjudicate": elapsed_ms(t0)},
        "warnings": warnings,
    }
