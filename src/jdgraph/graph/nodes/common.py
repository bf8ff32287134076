"""What the nodes share: their timing, and an LLM step with its deterministic fallback.

Every node is safe to re-run from its first line (a retry or a resume after a crash): nodes before persist
write nothing outside the state, and persist writes with keyed upserts in one transaction.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel

from jdgraph.context import Context
from jdgraph.errors import LLMError
from jdgraph.graph.llm import LLMRecorder, make_chat_model, structured_call, system_and_user
from jdgraph.graph.schemas import LLMCallRecord, ParsedJD
from jdgraph.graph.state import State
from jdgraph.prompts import Prompt, load_prompt

T = TypeVar("T", bound=BaseModel)


def elapsed_ms(t0: float) -> float:
    """Milliseconds since ``t0`` (a ``time.perf_counter()``), as a node's timing."""
    return round((time.perf_counter() - t0) * 1000, 2)


def parsed_fields(state: State) -> ParsedJD:
    """The JD's structured fields, which parse sets before any other node runs."""
    if state.parsed is None:
        raise ValueError("a node ran before parse set the JD's parsed fields")
    return state.parsed


def llm_records(recorder: LLMRecorder | None) -> list[LLMCallRecord]:
    """The model calls a step made, for the state's ``llm_calls``."""
    return list(recorder.records) if recorder else []


def _llm_headers(prompt_ref: str, ctx: Context) -> dict[str, str]:
    return {"X-Jdgraph-Prompt": prompt_ref, "X-Jdgraph-Repeat": str(ctx.repeat_index)}


def model_and_prompt(node: str, spec: str, ctx: Context) -> tuple[BaseChatModel, Prompt] | None:
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


def structured_or_fallback(
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
    configured = model_and_prompt(node, spec, ctx)
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
