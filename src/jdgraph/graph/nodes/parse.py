"""parse: the JD checked and normalised once, its responsibility sentences, and its structured fields (the model's
when one is configured and its answer holds, else the deterministic parser's)."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from jdgraph.context import Context
from jdgraph.graph.identity import content_key, run_id_of
from jdgraph.graph.nodes.common import elapsed_ms, llm_records, structured_or_fallback
from jdgraph.graph.parse import deterministic_parse
from jdgraph.graph.schemas import ParsedJD, ParsedJDAnswer
from jdgraph.graph.sections import responsibility_sentences
from jdgraph.graph.state import State
from jdgraph.graph.text import normalise_text


def parse(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = runtime.context or Context()
    text = normalise_text(state.checked().jd_text)  # every input field, as the Python API checks them
    run_id = run_id_of(state.run_id)
    catalog = ctx.resolve_catalog()
    warnings: list[str] = []
    answer, recorder = structured_or_fallback(
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
        "sentences": responsibility_sentences(text),
        "parsed": parsed,
        "llm_calls": llm_records(recorder),
        "timings_ms": {"parse": elapsed_ms(t0)},
        "warnings": warnings,
    }
