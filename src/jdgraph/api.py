"""The Python API: ``jdgraph.classify(text, **context)``, durable runs and resumption."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from jdgraph.errors import ConfigError, JdgraphError
from jdgraph.graph.context import Context
from jdgraph.graph.schemas import ClassificationResult
from jdgraph.graph.state import InputState
from jdgraph.graph.text import check_input


def compiled_graph(*, durable: bool, ctx: Context) -> Any:
    """The graph; durable runs get a checkpointer in the run's catalog schema."""
    from jdgraph.catalog.checkpoints import postgres_checkpointer
    from jdgraph.graph.builder import builder, graph

    if not durable:
        return graph
    return builder.compile(name="jdgraph", checkpointer=postgres_checkpointer(ctx.resolve_catalog().db))


def classify(
    text: str | bytes,
    *,
    title: str | None = None,
    company: str | None = None,
    run_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    durable: bool | None = None,
    **context: Any,
) -> ClassificationResult:
    """Classify one JD. ``context`` overrides :class:`Context` fields (e.g. ``parse_model="openai:gpt-4.1-mini"``,
    ``persist=False``). Durable (checkpointed, resumable) by default when persisting."""
    from jdgraph.graph.nodes import run_id_of

    jd_text = check_input(text)
    ctx = Context.from_env(**context)
    run_id = run_id_of(run_id)  # a bad id is an InputError, before anything runs
    durable = ctx.persist if durable is None else durable
    app = compiled_graph(durable=durable, ctx=ctx)
    state = InputState(jd_text=jd_text, title=title, company=company, metadata=metadata or {}, run_id=run_id)
    out = app.invoke(state, config={"configurable": {"thread_id": run_id}}, context=ctx)
    _prune_checkpoints(app, run_id, ctx)
    return ClassificationResult.model_validate(out["result"])


def _prune_checkpoints(app: Any, run_id: str, ctx: Context) -> None:
    """A finished run's checkpoints are only good for resuming it, which it no longer needs: without this they
    grew without bound (60 MB for ~700 runs). A run that failed keeps its checkpoints, so it can be resumed."""
    if app.checkpointer is not None and not ctx.keep_checkpoints:
        app.checkpointer.delete_thread(run_id)


def resume(run_id: str, **context: Any) -> ClassificationResult:
    """Continue a checkpointed run from its last completed node (after a crash or an interrupt)."""
    ctx = Context.from_env(**context)
    app = compiled_graph(durable=True, ctx=ctx)
    out = app.invoke(None, config={"configurable": {"thread_id": run_id}}, context=ctx)
    _prune_checkpoints(app, run_id, ctx)
    return ClassificationResult.model_validate(out["result"])


@dataclass(frozen=True)
class BatchItem:
    id: str
    text: str
    title: str | None = None
    company: str | None = None


@dataclass(frozen=True)
class BatchOutcome:
    id: str
    result: ClassificationResult | None = None
    error: JdgraphError | None = None


def classify_many(
    items: Iterable[BatchItem], *, concurrency: int = 2, window: int = 64, **context: Any
) -> Iterator[BatchOutcome]:
    """Classify many JDs on a thread pool, yielding outcomes in input order.

    Items go in windows of ``window`` JDs. The sentences of a whole window are embedded in one model call before
    its JDs run (a model call has a fixed cost; a window's worth of sentences in one call is up to twice as fast
    on a CPU as one call per JD), and the runs then find their vectors cached. Concurrent runs share one
    embedder, whose remaining calls are coalesced (:class:`jdgraph.catalog.embeddings.CoalescingEmbeddings`).
    A JD that fails with a :class:`JdgraphError` yields its error and the batch goes on (nothing is lost);
    anything else is a bug and propagates.
    """

    def run(item: BatchItem) -> BatchOutcome:
        try:
            return BatchOutcome(item.id, classify(item.text, title=item.title, company=item.company, **context))
        except JdgraphError as exc:
            return BatchOutcome(item.id, error=exc)

    ctx = Context.from_env(**context)
    pool_max = ctx.resolve_catalog().db.settings.pool_max
    if concurrency > pool_max:
        # Each run needs a connection of its own at some point; more workers than connections only queue on
        # the pool (and a run that waits longer than the pool's timeout fails).
        raise ConfigError(
            f"--concurrency {concurrency} is more than the database pool's {pool_max} connections: lower it, or "
            f"raise JDGRAPH_DB_POOL_MAX to at least {concurrency}",
            setting="JDGRAPH_DB_POOL_MAX",
        )
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="jdgraph-batch") as pool:
        for chunk in _windows(items, max(1, window)):
            _embed_window(chunk, ctx)
            yield from pool.map(run, chunk)


def _windows(items: Iterable[BatchItem], size: int) -> Iterator[list[BatchItem]]:
    chunk: list[BatchItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _embed_window(chunk: list[BatchItem], ctx: Context) -> None:
    """Warm the embedding cache with every sentence the window's runs will embed (bad inputs are left to the run,
    which reports them)."""
    from jdgraph.graph.nodes import responsibility_sentences, texts_to_embed
    from jdgraph.graph.text import normalise_text

    texts: list[str] = []
    for item in chunk:
        try:
            sents = responsibility_sentences(normalise_text(check_input(item.text)))
            texts.extend(
                texts_to_embed(sents, [item.title] if item.title else [], max_role_sentences=ctx.max_role_sentences)
            )
        except JdgraphError:
            continue
    if texts:
        ctx.resolve_catalog().embeddings.embed_array(list(dict.fromkeys(texts)))
