"""The Python API: ``jdgraph.classify(text, **context)``, durable runs and resumption."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from jdgraph.catalog.checkpoints import checkpoint_errors, postgres_checkpointer
from jdgraph.catalog.registry import get_catalog
from jdgraph.context import Context
from jdgraph.errors import ConfigError, DatabaseError, InputError, JdgraphError, NotFoundError
from jdgraph.graph.builder import builder, graph
from jdgraph.graph.identity import batch_run_id, content_key, input_hash, run_id_of
from jdgraph.graph.schemas import ClassificationResult
from jdgraph.graph.sections import responsibility_sentences, texts_to_embed
from jdgraph.graph.state import STATE_TYPES, InputState
from jdgraph.graph.text import check_field, check_input, is_unicode, normalise_text
from jdgraph.matching.roles import search_roles
from jdgraph.trained.registry import get_span_tagger

DURABILITY = "sync"
"""Each step's checkpoint is written before the next step starts. With LangGraph's default ("async") a process
killed mid-run (``os._exit`` inside persist, in the fault tests) sometimes left a last checkpoint that LangGraph
reads as finished (no next step), and the run could not be resumed; the cost is one awaited write per step."""


def run_context(**context: Any) -> Context:
    """A run's :class:`Context` (``context`` overrides, then the environment, then defaults) with its catalog open:
    the ``catalog_reader`` given, else the process's open catalog named by ``catalog`` (opened on first use). The
    API and the server entry are the only places that open resources; nodes and tools read them from here."""
    ctx = Context.from_env(**context)
    if ctx.catalog_reader is None:
        ctx.catalog_reader = get_catalog(ctx.catalog)
    if ctx.span_tagger != "none" and ctx.span_tagger_reader is None:
        ctx.span_tagger_reader = get_span_tagger(ctx.span_tagger)
    return ctx


def compiled_graph(*, durable: bool, ctx: Context) -> Any:
    """The graph; durable runs get a checkpointer in the run's catalog schema."""
    if not durable:
        return graph
    return builder.compile(name="jdgraph", checkpointer=postgres_checkpointer(ctx.resolve_catalog().db, STATE_TYPES))


def classify(
    text: str | bytes,
    *,
    title: str | None = None,
    company: str | None = None,
    run_id: str | None = None,
    input_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    durable: bool | None = None,
    **context: Any,
) -> ClassificationResult:
    """Classify one JD. ``context`` overrides :class:`Context` fields (e.g. ``parse_model="openai:gpt-4.1-mini"``,
    ``persist=False``). Durable (checkpointed, resumable) by default when persisting.

    ``run_id`` makes the run idempotent (a second call with it writes nothing twice; with another text it is an
    InputError); ``input_id`` is the caller's id for the input, stored on the run (default: a hash of the text and
    options)."""

    # Every field is checked before anything runs or is written: a bad one is an InputError naming it.
    state = InputState(
        jd_text=check_input(text), title=title, company=company, metadata=metadata or {}, input_id=input_id or ""
    ).checked()
    ctx = run_context(**context)
    given_run_id = bool(run_id)
    state.run_id = run_id = run_id_of(run_id)  # a bad id is an InputError, before anything runs
    if given_run_id and ctx.persist:
        ctx.resolve_catalog().runs.check_same_input(run_id, input_hash(normalise_text(state.jd_text)))
    durable = ctx.persist if durable is None else durable
    app = compiled_graph(durable=durable, ctx=ctx)
    # Without a checkpointer LangGraph 1.2 fails on durability="sync" (it waits on a checkpoint it never writes).
    durability = {"durability": DURABILITY} if durable else {}
    with checkpoint_errors():
        out = app.invoke(state, config={"configurable": {"thread_id": run_id}}, context=ctx, **durability)
    _prune_checkpoints(app, run_id, ctx)
    return ClassificationResult.model_validate(out["result"])


def _prune_checkpoints(app: Any, run_id: str, ctx: Context) -> None:
    """A finished run's checkpoints are only good for resuming it, which it no longer needs: without this they
    grew without bound (60 MB for ~700 runs). A run that failed keeps its checkpoints, so it can be resumed."""

    if app.checkpointer is not None and not ctx.keep_checkpoints:
        # The run is saved: a database that fails now (a killed server: PoolTimeout) must not turn it into an
        # error. Its checkpoints stay, as those of a finished run, which `db prune-checkpoints` deletes.
        with suppress(DatabaseError), checkpoint_errors():
            app.checkpointer.delete_thread(run_id)


def resume(run_id: str, **context: Any) -> ClassificationResult:
    """Continue a checkpointed run from its last completed node (after a crash or an interrupt)."""

    run_id = run_id_of(run_id)
    result = _continue(run_id, run_context(**context))
    if result is None:
        # Nothing to continue: never started here, or finished (a finished run's checkpoints are pruned).
        raise NotFoundError(f"no unfinished run {run_id} to resume", kind="run", key=run_id)
    return result


def _continue(run_id: str, ctx: Context) -> ClassificationResult | None:
    """The run continued from its last checkpoint, or None when it has no step left to run."""

    app = compiled_graph(durable=True, ctx=ctx)
    config = {"configurable": {"thread_id": run_id}}
    with checkpoint_errors():
        if not app.get_state(config).next:
            return None
        out = app.invoke(None, config=config, context=ctx, durability=DURABILITY)
    _prune_checkpoints(app, run_id, ctx)
    return ClassificationResult.model_validate(out["result"])


@dataclass(frozen=True)
class BatchItem:
    id: str
    """The input id: the caller's, unique within a batch."""
    text: str
    title: str | None = None
    company: str | None = None


@dataclass(frozen=True)
class BatchOutcome:
    id: str
    result: ClassificationResult | None = None
    error: JdgraphError | None = None
    done_before: str | None = None
    """Set when an earlier (killed) run of the batch had got this far: 'saved' (its stored result is returned,
    nothing ran) or 'checkpointed' (it was resumed from its last node)."""

    def line(self) -> dict[str, Any]:
        """This outcome as a batch output line (``classify --batch``, ``batch run``): ``{"id", "result"}``, with
        ``done_before`` when an earlier run had got this far, or ``{"id", "error"}``."""
        if self.result is None:
            return {"id": self.id, "error": self.error.message if self.error else "unknown error"}
        out: dict[str, Any] = {"id": self.id, "result": self.result.model_dump(mode="json")}
        if self.done_before:
            out["done_before"] = self.done_before
        return out


def classify_many(
    items: Iterable[BatchItem], *, concurrency: int = 2, window: int = 64, resume: bool = False, **context: Any
) -> Iterator[BatchOutcome]:
    """Classify many JDs on a thread pool, yielding outcomes in input order.

    Items go in windows of ``window`` JDs. The sentences of a whole window are embedded in one model call before
    its JDs run (a model call has a fixed cost; a window's worth of sentences in one call is up to twice as fast
    on a CPU as one call per JD), and the runs then find their vectors cached. Concurrent runs share one
    embedder, whose remaining calls are coalesced (:class:`jdgraph.catalog.embeddings.CoalescingEmbeddings`).
    A JD that fails with a :class:`JdgraphError` yields its error and the batch goes on (nothing is lost);
    anything else is a bug and propagates.

    Each item's run id derives from its id and content (:func:`jdgraph.graph.identity.batch_run_id`), so running
    a killed batch again writes nothing twice. With ``resume``, items saved before are not run again (their stored
    results are yielded) and items cut off mid-run continue from their last checkpoint.
    """
    ctx = run_context(**context)
    context = {
        **context,
        "catalog_reader": ctx.catalog_reader,
        "span_tagger_reader": ctx.span_tagger_reader,
    }  # each run reads the catalog and the tagger opened here

    def run_id_for(item: BatchItem) -> str | None:
        """The item's run id; None for an item that will fail its own run with a clear error (a lone surrogate in
        its id crashed the whole batch here, hashing it)."""
        try:
            for value, name in ((item.id, "id"), (item.title, "title"), (item.company, "company")):
                check_field(value, name)
            text = normalise_text(check_input(item.text))
        except JdgraphError:
            return None
        return batch_run_id(item.id, content_key(text, item.title, item.company, ctx))

    database_failed = threading.Event()

    def run(keyed: tuple[BatchItem, str | None], saved: dict[str, dict[str, Any]]) -> BatchOutcome:
        item, run_id = keyed
        try:
            if database_failed.is_set():
                # A line failed on the database: is the server still there? One direct connection says so at once,
                # where each run would wait out the pool's timeout (30 s a line) to fail the same way.
                ctx.resolve_catalog().db.connect().close()
                database_failed.clear()
            if run_id in saved:
                return BatchOutcome(item.id, ClassificationResult.model_validate(saved[run_id]), done_before="saved")
            if resume and ctx.persist and run_id is not None:
                continued = _continue(run_id, ctx)
                if continued is not None:
                    return BatchOutcome(item.id, continued, done_before="checkpointed")
            result = classify(
                item.text, title=item.title, company=item.company, run_id=run_id, input_id=item.id, **context
            )
            return BatchOutcome(item.id, result)
        except JdgraphError as exc:
            if isinstance(exc, DatabaseError):
                database_failed.set()
            return BatchOutcome(item.id, error=exc)

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
            keyed = [(item, run_id_for(item)) for item in chunk]  # each id once: it normalises the whole text
            ids = [run_id for _, run_id in keyed if run_id is not None]
            try:
                saved = ctx.resolve_catalog().runs.saved_results(ids) if resume and ctx.persist else {}
            except DatabaseError as exc:  # every line of the window says so, and the batch goes on
                yield from (BatchOutcome(item.id, error=exc) for item in chunk)
                continue
            _embed_window([item for item, run_id in keyed if run_id not in saved], ctx)
            yield from pool.map(partial(run, saved=saved), keyed)


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
        with suppress(DatabaseError):  # only a warm-up: each run embeds what is missing, or reports the failure
            ctx.resolve_catalog().embeddings.embed_array(list(dict.fromkeys(texts)))


def batch_item(n: int, raw: bytes) -> BatchItem | str:
    """Line ``n`` of a JSONL batch file as a BatchItem, or the reason it is not one (a line's fault never stops the
    batch: it is reported in order, with its number, and the other lines are classified)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"line {n} is not valid UTF-8 (byte {exc.start})"
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"line {n} is not JSON ({exc.msg})"
    expected = "a JSON object with 'id' and 'text' (or 'description', as job-ad exports have it)"
    if not isinstance(item, dict):
        return f"line {n}: expected {expected}, got {type(item).__name__}"
    # A job-ad export names the text 'description'; 'text' wins when a line has both.
    text_field = "text" if "text" in item else "description"
    if text_field not in item or "id" not in item:
        missing = "'id'" if "id" not in item else "'text' or 'description'"
        return f"line {n}: expected {expected} (missing {missing})"
    if isinstance(item["id"], bool) or not isinstance(item["id"], str | int):
        return f"line {n}: 'id' must be a string or an integer"
    text = item[text_field]
    if not isinstance(text, str):
        return f"line {n}: '{text_field}' must be a string, got {type(text).__name__}"
    if not is_unicode(text):
        return f"line {n}: '{text_field}' is not valid Unicode text (it holds a lone surrogate)"
    try:  # the id, title and company are checked as a single run's are: a NUL or lone surrogate in one
        # ended the whole batch with a driver error (or a UnicodeEncodeError hashing the id)
        for field in ("id", "title", "company"):
            check_field(str(item[field]) if field == "id" else item.get(field), field)
    except InputError as exc:
        return f"line {n}: {exc.message}"
    return BatchItem(str(item["id"]), text, item.get("title"), item.get("company"))


def search(
    query: str, *, kind: Literal["skill", "role"] = "skill", top: int = 5, catalog: str | None = None
) -> list[dict[str, Any]]:
    """The catalog's ``top`` candidates for ``query``: skills (by alias, then embedding) or roles (scored as a JD
    whose title and only sentence are the query), each a JSON-ready dict with its score and how it matched."""
    opened = get_catalog(catalog)
    if kind == "skill":
        return [
            {
                "slug": c.skill.slug,
                "display_name": c.skill.display_name,
                "source_id": c.skill.source_id,
                "score": c.score,
                "match_via": c.match_via,
                "alias": c.alias,
            }
            for c in opened.search_skills(query, k=top)
        ]
    return [
        {
            "slug": c.slug,
            "display_name": c.display_name,
            "source_id": c.source_id,
            "score": c.score,
            "evidence": c.model_dump(
                include={
                    "title_alias",
                    "title_similarity",
                    "title_match_via",
                    "kra_similarity",
                    "kra_matches",
                    "centroid_similarity",
                }
            ),
        }
        for c in search_roles(opened, query, Context.from_env().scoring(), k=top)
    ]
