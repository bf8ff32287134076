"""LLM plumbing shared by the nodes: model construction, bounded retries, structured output with one repair
attempt, and a record of every call (model, prompt name@version, tokens, cost, latency, outcome).

Retries are ours alone: the provider client is built with ``max_retries=0`` so retries never stack.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, ValidationError

from jdgraph.errors import ConfigError, LLMError, LLMOutputError
from jdgraph.graph.schemas import LLMCallRecord
from jdgraph.prompts import Prompt
from jdgraph.settings import env_value

T = TypeVar("T", bound=BaseModel)

# USD per 1M tokens (input, output). JDGRAPH_PRICES (a JSON object of the same shape) overrides or extends it.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o4-mini": (1.10, 4.40),
}


def price_table() -> dict[str, tuple[float, float]]:
    table = dict(DEFAULT_PRICES)
    raw = env_value("JDGRAPH_PRICES")
    if raw:
        try:
            table.update({k: (float(v[0]), float(v[1])) for k, v in json.loads(raw).items()})
        except (ValueError, TypeError, IndexError) as exc:
            raise ConfigError(f"JDGRAPH_PRICES is not a JSON object of [input, output] pairs: {exc}") from exc
    return table


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> float:
    name = model.split(":", 1)[-1]
    prices = price_table().get(name)
    if prices is None:
        return 0.0
    return round((input_tokens * prices[0] + output_tokens * prices[1]) / 1_000_000, 6)


def make_chat_model(
    spec: str, *, timeout_s: float, headers: dict[str, str] | None = None, max_tokens: int | None = None
) -> BaseChatModel | None:
    """``provider:model`` → a chat model (no client-side retries); ``none`` → None.

    ``headers`` go with every request (OpenAI-compatible servers): jdgraph sends the prompt's name@version and the
    eval repeat index, which the evaluation's cassette server keys recordings on; providers ignore them.
    ``max_tokens`` caps each answer: a model that loops stops there instead of at the timeout or the context."""
    if not spec or spec.lower() == "none":
        return None
    if ":" not in spec:
        raise ConfigError(f"model {spec!r} must be 'provider:model' (e.g. openai:gpt-4.1-mini) or 'none'")
    provider, name = spec.split(":", 1)
    try:
        if provider == "openai":
            # Any OpenAI-compatible server through OPENAI_BASE_URL (read by the client itself).
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(
                model=name,
                temperature=0,
                max_retries=0,
                timeout=timeout_s,
                default_headers=headers or None,
                max_completion_tokens=max_tokens,
            )
        # Other providers through LangChain's init_chat_model (needs `langchain` and the provider package).
        from langchain.chat_models import init_chat_model

        return init_chat_model(spec, temperature=0, max_retries=0, timeout=timeout_s, max_tokens=max_tokens)
    except ImportError as exc:
        raise ConfigError(f"model {spec!r} needs a package that is not installed: {exc}") from exc
    except Exception as exc:  # provider packages raise their own types for missing keys
        raise ConfigError(f"cannot build model {spec!r}: {exc}") from exc


def _is_retryable(exc: BaseException) -> bool:
    try:
        import openai
    except ImportError:  # pragma: no cover - openai ships with langchain-openai
        return False
    if isinstance(exc, openai.RateLimitError | openai.APITimeoutError | openai.APIConnectionError):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def _is_provider_error(exc: BaseException) -> bool:
    """Errors of the provider or the network (as opposed to an answer that does not parse)."""
    try:
        import openai
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, openai.APIError | openai.APIConnectionError | openai.APITimeoutError)


def _is_timeout(exc: BaseException) -> bool:
    try:
        import openai

        return isinstance(exc, openai.APITimeoutError)
    except ImportError:  # pragma: no cover
        return False


@dataclass
class LLMRecorder:
    """Collects the records of one node's calls; the node returns them into the state."""

    node: str
    model: str
    prompt: Prompt
    start_seq: int
    records: list[LLMCallRecord] = field(default_factory=list)

    def add(self, **kwargs: Any) -> LLMCallRecord:
        record = LLMCallRecord(
            seq=self.start_seq + len(self.records),
            node=self.node,
            model=self.model,
            prompt_name=self.prompt.name,
            prompt_version=self.prompt.version,
            **kwargs,
        )
        self.records.append(record)
        return record


def _usage(message: Any) -> tuple[int, int]:
    usage = getattr(message, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0) or 0), int(usage.get("output_tokens", 0) or 0)


def _record_reply(
    recorder: LLMRecorder, message: Any, *, latency: float, attempts: int, outcome: str = "ok", error: str | None = None
) -> None:
    """Record one answered call with its token usage and cost."""
    tokens_in, tokens_out = _usage(message)
    recorder.add(
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost_usd=cost_usd(recorder.model, tokens_in, tokens_out),
        latency_ms=latency,
        outcome=outcome,
        attempts=attempts,
        error=error,
    )


def _provider_failure(
    recorder: LLMRecorder, error: BaseException, *, latency: float, attempts: int, what: str
) -> LLMError:
    """Record a call the provider never answered and build the error the node falls back on."""
    recorder.add(latency_ms=latency, outcome="error", attempts=attempts, error=_describe(error))
    return LLMError(
        f"{recorder.node}: {what}: {_describe(error)}", node=recorder.node, model=recorder.model, attempts=attempts
    )


def invoke_with_retry(
    call: Callable[[], Any], *, max_attempts: int, base_delay: float = 0.5
) -> tuple[Any, int, BaseException | None]:
    """Run ``call`` with bounded exponential backoff on 429/5xx/connection errors/timeouts.

    Returns (result, attempts, last_error); result is None when every attempt failed. A timeout is not
    retried: the caller falls back at once rather than waiting for another full timeout.
    """
    last: BaseException | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            return call(), attempt, None
        except Exception as exc:
            last = exc
            if not _is_retryable(exc) or _is_timeout(exc) or attempt == max_attempts:
                return None, attempt, exc
            time.sleep(min(base_delay * 2 ** (attempt - 1), 4.0))
    return None, max_attempts, last


def structured_call(
    model: BaseChatModel,
    schema: type[T],
    messages: list[BaseMessage],
    recorder: LLMRecorder,
    *,
    max_attempts: int,
) -> T:
    """One structured-output call with bounded retries and a single repair attempt.

    Raises :class:`LLMError` (provider failed) or :class:`LLMOutputError` (output invalid after repair); the
    caller falls back to the deterministic implementation and the record says so.
    """
    runnable = model.with_structured_output(schema, method="json_schema", include_raw=True)
    conversation = list(messages)
    for phase in ("first", "repair"):
        t0 = time.perf_counter()
        out, attempts, error = invoke_with_retry(
            functools.partial(runnable.invoke, conversation), max_attempts=max_attempts
        )
        latency = (time.perf_counter() - t0) * 1000
        if error is not None and _is_provider_error(error):
            raise _provider_failure(
                recorder,
                error,
                latency=latency,
                attempts=attempts,
                what=f"{recorder.model} failed after {attempts} attempt(s)",
            ) from error
        if error is not None:
            # The client itself failed to parse the reply (invalid JSON, schema mismatch): repairable output.
            out = {
                "raw": AIMessage(content=str(getattr(error, "doc", "") or "")),
                "parsed": None,
                "parsing_error": error,
            }
        raw: AIMessage = out["raw"]
        parsed = out.get("parsed")
        problem = out.get("parsing_error")
        if parsed is None and problem is None:
            problem = ValueError("the model returned no structured output")
        if isinstance(parsed, schema) and problem is None:
            outcome = "ok" if phase == "first" else "repaired"
            _record_reply(recorder, raw, latency=latency, attempts=attempts, outcome=outcome)
            return parsed
        _record_reply(
            recorder,
            raw,
            latency=latency,
            attempts=attempts,
            outcome="error",
            error=f"invalid output: {_describe(problem)}",
        )
        # Repair: show the model its output and the validation error, once.
        conversation = [
            *messages,
            AIMessage(content=str(raw.content)[:4000]),
            HumanMessage(
                content=f"That output is invalid: {_describe(problem)[:800]}. Reply again with only a JSON object "
                "that satisfies the schema."
            ),
        ]
    raise LLMOutputError(
        f"{recorder.node}: {recorder.model} returned invalid output twice", node=recorder.node, model=recorder.model
    )


def tool_loop(
    model: BaseChatModel,
    tools: list[Any],
    messages: list[BaseMessage],
    recorder: LLMRecorder,
    *,
    max_rounds: int,
    max_attempts: int,
) -> list[BaseMessage]:
    """Let the model call catalog tools for up to ``max_rounds`` rounds; returns the extended conversation."""
    bound = model.bind_tools(tools)
    by_name = {t.name: t for t in tools}
    conversation = list(messages)
    for _ in range(max_rounds):
        t0 = time.perf_counter()
        reply, attempts, error = invoke_with_retry(lambda: bound.invoke(conversation), max_attempts=max_attempts)
        latency = (time.perf_counter() - t0) * 1000
        if error is not None:
            raise _provider_failure(
                recorder, error, latency=latency, attempts=attempts, what="tool round failed"
            ) from error
        _record_reply(recorder, reply, latency=latency, attempts=attempts)
        calls = getattr(reply, "tool_calls", None) or []
        if not calls:
            break
        conversation.append(reply)
        for call in calls:
            tool = by_name.get(call["name"])
            try:
                if tool is None:
                    raise ValueError(f"unknown tool {call['name']!r}")
                output = tool.invoke(call["args"])
                content = json.dumps(_jsonable(output))[:6000]
            except Exception as exc:  # a tool error goes back to the model, it does not end the run
                content = f"error: {exc}"
            conversation.append(ToolMessage(content=content, tool_call_id=call["id"]))
    return conversation


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    if isinstance(exc, ValidationError):
        return f"{exc.error_count()} validation error(s): " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500]


def system_and_user(prompt: Prompt, **variables: Any) -> list[BaseMessage]:
    system, user = prompt.render(**variables)
    return [SystemMessage(content=system), HumanMessage(content=user)]
