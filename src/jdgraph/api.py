"""The Python API: ``jdgraph.classify(text, **context)``, durable runs and resumption."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from jdgraph.errors import JdgraphError
from jdgraph.graph.context import Context
from jdgraph.graph.schemas import ClassificationResult
from jdgraph.graph.state import InputState
from jdgraph.graph.text import check_input

_saver_lock = threading.Lock()
_savers: dict[str, Any] = {}


def postgres_checkpointer() -> Any:
    """LangGraph's Postgres checkpointer on the catalog database (same schema), created once per process."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    from jdgraph.catalog.queries import get_catalog

    db = get_catalog().db
    with _saver_lock:
        saver = _savers.get(db.schema)
        if saver is None:
            pool = ConnectionPool(
                db.url,
                min_size=1,
                max_size=4,
                open=True,
                kwargs={
                    "autocommit": True,
                    "prepare_threshold": 0,
                    "row_factory": dict_row,
                    "options": f"-c search_path={db.schema},public",
                },
            )
            saver = PostgresSaver(pool)  # type: ignore[arg-type]
            saver.setup()
            _savers[db.schema] = saver
        return saver


def compiled_graph(*, durable: bool) -> Any:
    from jdgraph.graph.builder import builder, graph

    if not durable:
        return graph
    return builder.compile(name="jdgraph", checkpointer=postgres_checkpointer())


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
    jd_text = check_input(text)
    ctx = Context.from_env(**context)
    run_id = str(uuid.UUID(run_id)) if run_id else str(uuid.uuid4())
    durable = ctx.persist if durable is None else durable
    app = compiled_graph(durable=durable)
    state = InputState(jd_text=jd_text, title=title, company=company, metadata=metadata or {}, run_id=run_id)
    out = app.invoke(state, config={"configurable": {"thread_id": run_id}}, context=ctx)
    return ClassificationResult.model_validate(out["result"])


def resume(run_id: str, **context: Any) -> ClassificationResult:
    """Continue a checkpointed run from its last completed node (after a crash or an interrupt)."""
    app = compiled_graph(durable=True)
    out = app.invoke(None, config={"configurable": {"thread_id": run_id}}, context=Context.from_env(**context))
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
    embedder, whose remaining calls are coalesced (:class:`jdgraph.embeddings.CoalescingEmbeddings`).
    A JD that fails with a :class:`JdgraphError` yields its error and the batch goes on (nothing is lost);
    anything else is a bug and propagates.
    """

    def run(item: BatchItem) -> BatchOutcome:
        try:
            return BatchOutcome(item.id, classify(item.text, title=item.title, company=item.company, **context))
        except JdgraphError as exc:
            return BatchOutcome(item.id, error=exc)

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="jdgraph-batch") as pool:
        for chunk in _windows(items, max(1, window)):
            _embed_window(chunk)
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


def _embed_window(chunk: list[BatchItem]) -> None:
    """Warm the embedding cache with every sentence the window's runs will embed (bad inputs are left to the run,
    which reports them)."""
    from jdgraph.catalog.queries import get_catalog
    from jdgraph.graph.nodes import responsibility_sentences, texts_to_embed
    from jdgraph.graph.text import normalise_text

    texts: list[str] = []
    for item in chunk:
        try:
            sents = responsibility_sentences(normalise_text(check_input(item.text)))
            texts.extend(texts_to_embed(sents, [item.title] if item.title else []))
        except JdgraphError:
            continue
    if texts:
        get_catalog().embeddings.embed_array(list(dict.fromkeys(texts)))
