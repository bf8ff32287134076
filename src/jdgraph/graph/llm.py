"""LLM plumbing shared by the nodes: model construction, bounded retries, structured output with one repair
attempt, and a record of every call (model, prompt name@version, tokens, cost, latency, outcome).

Retries are ours alone: the provider client is built with ``max_retries=0`` so retries never stack.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, ValidationError

from jdgraph.errors import ConfigError, LLMError, LLMOutputError
from jdgraph.graph.schemas import LLMCallRecord
from jdgraph.prompts import Prompt
from jdgraph.settings import env_value, local_model_base_url

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
        if provider in ("openai", "local"):
            # Any OpenAI-compatible server: through OPENAI_BASE_URL (read by the client itself), or for local:MODEL
            # `jdgraph llm serve`'s llama-server (JDGRAPH_LOCAL_BASE_URL).
            # deferred: the client loads only when a model is configured (rules-only runs never need it)
            from langchain_openai import ChatOpenAI

            where: dict[str, Any] = (
                {"base_url": local_model_base_url(), "api_key": "local"} if provider == "local" else {}
            )
            return ChatOpenAI(
                model=name,
                temperature=0,
                max_retries=0,
                timeout=timeout_s,
                default_headers=headers or None,
                max_completion_tokens=max_tokens,
                **where,
            )
        # Other providers through LangChain's init_chat_model (needs `langchain` and the provider package).
        # deferred: an optional package, imported only for a provider that needs it
        from langchain.chat_models import init_chat_model

        return init_chat_model(spec, temperature=0, max_retries=0, timeout=timeout_s, max_tokens=max_tokens)
    except ImportError as exc:
        raise ConfigError(f"model {spec!r} needs a package that is not installed: {exc}") from exc
    except Exception as exc:  # provider packages raise their own types for missing keys
        raise ConfigError(f"cannot build model {spec!r}: {exc}") from exc


def _is_retryable(exc: BaseException) -> bool:
    try:
        import openai  # deferred: openai loads only once a model call has failed
    except ImportError:  # pragma: no cover - openai ships with langchain-openai
        return False
    if isinstance(exc, openai.RateLimitError | openai.APITimeoutError | openai.APIConnectionError):
        return True
    # A server that rejects the request's shape (llama-cpp-python answers json_schema with a 500) fails the same
    # way every time: retrying it only wastes the attempts.
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500 and not rejects_method(exc)


_METHOD_REJECTED = re.compile(
    r"response_format|json_schema|json_object|'text' or 'json_object'|structured output|tool_choice|tools? (?:are|is) "
    r"not supported",
    re.I,
)


def rejects_method(exc: BaseException) -> bool:
    """Does the provider say it does not support how we asked for structured output?"""
    try:
        import openai  # deferred: openai loads only once a model call has failed
    except ImportError:  # pragma: no cover
        return False
    return (
        isinstance(exc, openai.APIStatusError)
        and exc.status_code in (400, 404, 415, 422, 500, 501)
        and bool(_METHOD_REJECTED.search(str(exc)))
    )


def _is_provider_error(exc: BaseException) -> bool:
    """Errors of the provider or the network (as opposed to an answer that does not parse)."""
    try:
        import openai  # deferred: openai loads only once a model call has failed
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, openai.APIError | openai.APIConnectionError | openai.APITimeoutError)


def _is_timeout(exc: BaseException) -> bool:
    try:
        import openai  # deferred: openai loads only once a model call has failed

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
    recorder: LLMRecorder,
    message: Any,
    *,
    latency: float,
    attempts: int,
    outcome: str = "ok",
    error: str | None = None,
    method: str | None = None,
) -> None:
    """Record one answered call with its token usage and cost."""
    tokens_in, tokens_out = _usage(message)
    recorder.add(
        method=method,
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


StructuredMethod = Literal["json_schema", "json_mode", "function_calling"]
STRUCTURED_METHODS: tuple[str, ...] = ("auto", "json_schema", "json_mode", "function_calling")
# How each structured-output method degrades when a server rejects it: json_schema (a grammar on llama-server,
# vLLM's guided decoding, OpenAI's strict mode) and function calling both fall back to plain JSON mode with the
# schema in the prompt, which every OpenAI-compatible server accepts.
_NEXT_METHOD: dict[str, StructuredMethod] = {"json_schema": "json_mode", "function_calling": "json_mode"}


class MethodMemo:
    """What each (server, model) was found to accept, so a rejected method costs one request per process, not
    one per call. Thread-safe; a cache, not configuration."""

    def __init__(self) -> None:
        self._found: dict[str, StructuredMethod] = {}
        self._lock = threading.Lock()

    def get(self, key: str, default: StructuredMethod) -> StructuredMethod:
        with self._lock:
            return self._found.get(key, default)

    def downgrade(self, key: str, rejected: StructuredMethod) -> StructuredMethod | None:
        nxt = _NEXT_METHOD.get(rejected)
        if nxt is not None:
            with self._lock:
                self._found[key] = nxt
        return nxt


METHOD_MEMO = MethodMemo()


def model_key(model: BaseChatModel) -> str:
    base = getattr(model, "openai_api_base", None) or getattr(model, "base_url", None) or ""
    name = getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__
    return f"{base}|{name}"


def initial_method(configured: str, model: BaseChatModel) -> StructuredMethod:
    """``auto``: json_schema everywhere it is known to work (OpenAI, llama-server, vLLM, Ollama's OpenAI API);
    a server that rejects it is detected on its first answer and remembered (:data:`METHOD_MEMO`)."""
    if configured != "auto":
        if configured not in STRUCTURED_METHODS:
            raise ConfigError(
                f"structured output method {configured!r}: one of {', '.join(STRUCTURED_METHODS)}",
                setting="STRUCTURED_OUTPUT_METHOD",
            )
        return cast("StructuredMethod", configured)
    return METHOD_MEMO.get(model_key(model), "json_schema")


def schema_instructions(schema: type[BaseModel], method: StructuredMethod) -> str:
    """What the model is told about the answer's shape. A grammar or a tool definition enforces the structure
    without the model ever reading it, so it always gets the fields in words; JSON mode enforces nothing, so it
    gets the whole JSON schema."""
    if method == "json_mode":
        return "Answer with only one JSON object that validates against this JSON schema:\n" + json.dumps(
            schema.model_json_schema(), separators=(",", ":")
        )

    def kind(prop: dict[str, Any]) -> str:
        if "enum" in prop:
            return "one of: " + ", ".join(map(str, prop["enum"]))
        if "anyOf" in prop:
            return " or ".join(kind(p) for p in prop["anyOf"])
        return str(prop.get("type") or "object")

    lines = []
    for name, prop in schema.model_json_schema().get("properties", {}).items():
        desc = prop.get("description", "")
        lines.append(f"- {name} ({kind(prop)}){': ' + desc if desc else ''}")
    return "Answer with one JSON object with these fields:\n" + "\n".join(lines)


def _with_instructions(messages: list[BaseMessage], text: str) -> list[BaseMessage]:
    if messages and isinstance(messages[0], SystemMessage):
        return [SystemMessage(content=f"{messages[0].content}\n\n{text}"), *messages[1:]]
    return [SystemMessage(content=text), *messages]


def _raw_of_failed_parse(error: BaseException) -> AIMessage:
    """The reply behind a client-side parse failure, with its token usage when the error carries the completion
    (openai's LengthFinishReasonError does: a model that hit the answer cap still cost its tokens)."""
    usage = getattr(getattr(error, "completion", None), "usage", None)
    message = AIMessage(content=str(getattr(error, "doc", "") or ""))
    if usage is not None:
        message.usage_metadata = {
            "input_tokens": int(usage.prompt_tokens or 0),
            "output_tokens": int(usage.completion_tokens or 0),
            "total_tokens": int(usage.total_tokens or 0),
        }
    return message


def structured_call(
    model: BaseChatModel,
    schema: type[T],
    messages: list[BaseMessage],
    recorder: LLMRecorder,
    *,
    max_attempts: int,
    method: str = "auto",
) -> T:
    """One structured-output call with bounded retries and a single repair attempt.

    ``method`` is how the answer's structure is requested (``auto``, ``json_schema``, ``json_mode``,
    ``function_calling``); a server that rejects it is asked again at once with the next method, which is
    remembered for that server and model. Raises :class:`LLMError` (provider failed) or :class:`LLMOutputError`
    (output invalid after repair); the caller falls back to the deterministic implementation and the record says
    so.
    """
    chosen = initial_method(method, model)
    conversation = list(messages)
    phase = "first"
    while True:
        runnable = model.with_structured_output(schema, method=chosen, include_raw=True)
        prompt = _with_instructions(conversation, schema_instructions(schema, chosen))
        t0 = time.perf_counter()
        out, attempts, error = invoke_with_retry(functools.partial(runnable.invoke, prompt), max_attempts=max_attempts)
        latency = (time.perf_counter() - t0) * 1000
        nxt = METHOD_MEMO.downgrade(model_key(model), chosen) if error is not None and rejects_method(error) else None
        if nxt is not None:
            # Recorded here, then asked again; a rejection with nothing left to try is recorded once, below.
            recorder.add(latency_ms=latency, outcome="error", attempts=attempts, error=_describe(error))
            chosen = nxt
            continue
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
            out = {"raw": _raw_of_failed_parse(error), "parsed": None, "parsing_error": error}
        raw: AIMessage = out["raw"]
        parsed = out.get("parsed")
        problem = out.get("parsing_error")
        if parsed is None and problem is None:
            problem = ValueError("the model returned no structured output")
        if isinstance(parsed, schema) and problem is None:
            outcome = "ok" if phase == "first" else "repaired"
            _record_reply(recorder, raw, latency=latency, attempts=attempts, outcome=outcome, method=chosen)
            return parsed
        _record_reply(
            recorder,
            raw,
            latency=latency,
            attempts=attempts,
            outcome="error",
            error=f"invalid output: {_describe(problem)}",
            method=chosen,
        )
        if phase == "repair":
            break
        # Repair: show the model its output and the validation error, once.
        phase = "repair"
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
        calls = getattr(reply, "tool_calls", None) or plain_json_tool_calls(reply, by_name)
        if not calls:
            break
        if not getattr(reply, "tool_calls", None):
            # A model that wrote its call as text: answer it as a call, so the conversation stays well-formed.
            reply = AIMessage(content="", tool_calls=calls)
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


_JSON_BLOCK = re.compile(r"\{.*\}", re.S)


def plain_json_tool_calls(reply: Any, tools: dict[str, Any]) -> list[dict[str, Any]]:
    """Tool calls a model wrote as plain JSON in its text instead of ``tool_calls`` (small local models do):
    ``{"name": "search_skills", "arguments": {...}}`` (or ``tool``/``function`` and ``args``/``parameters``),
    alone or in a list. Only names of the offered tools count; anything else is ordinary text."""
    content = getattr(reply, "content", None)
    if not isinstance(content, str) or "{" not in content:
        return []
    candidate = content.replace("```json", "").replace("```", "")  # a fenced block is still the call
    m = _JSON_BLOCK.search(candidate)
    if m is None:
        return []
    start = m.start()
    if start > 0 and candidate[start - 1] == "[":
        start -= 1
    try:
        value = json.loads(candidate[start : m.end() + (1 if candidate[m.end() : m.end() + 1] == "]" else 0)])
    except ValueError:
        return []
    calls: list[dict[str, Any]] = []
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, dict):
            continue
        fn: dict[str, Any] = item["function"] if isinstance(item.get("function"), dict) else item
        name = fn.get("name") or item.get("tool")
        args = fn.get("arguments", fn.get("args", fn.get("parameters", {})))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                continue
        if name in tools and isinstance(args, dict):
            calls.append({"name": name, "args": args, "id": f"call_text_{len(calls)}", "type": "tool_call"})
    return calls


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
    # The whole message, on one line: a server's reason often follows its first line (llama-cpp-python's 500
    # says which response_format it accepts on the third).
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:800]


def system_and_user(prompt: Prompt, **variables: Any) -> list[BaseMessage]:
    system, user = prompt.render(**variables)
    return [SystemMessage(content=system), HumanMessage(content=user)]
