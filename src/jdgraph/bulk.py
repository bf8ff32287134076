"""Bulk re-classification as a Ray Data job over one shared catalog (``jdgraph batch run --engine ray``).

The shape is Nesta's (chunks of ads through a pipeline step on workers) in Ray Data's terms::

    read_text (JSON Lines) | read_parquet  →  map_batches(ClassifyActor, actor pool)  →  driver writes the output

- **Each actor** loads the embedding model, the span tagger and the catalog's read-mostly parts once (the catalog's
  alias index, role skill sets and vectors are cached per process, :mod:`jdgraph.catalog.registry`), holds a small
  connection pool of its own (``pool_size``) to the one PostgreSQL, and runs a batch through
  :func:`jdgraph.api.classify_many` (its threads share the actor's embedder, whose calls coalesce).
- **Idempotent by the input id**: a line's run id derives from its ``id`` and content
  (:func:`jdgraph.graph.identity.batch_run_id`) and every batch runs with ``resume``: an item saved before is read
  back, not run again; one cut off mid-run continues from its checkpoint. So a killed actor (Ray restarts it and
  retries its batch) or a killed driver (run the same command again) ends with every item saved once.
- **A bad line is an error line** in the output; the rest run. An unreachable database, or more connections
  (actors × pool) than the server allows, is refused before any work starts.

Ray is an optional dependency (the ``scale`` extra); nothing here imports it until a job runs.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jdgraph.api import BatchItem, BatchOutcome, batch_item, classify_many, run_context
from jdgraph.catalog.db import check_connection_budget
from jdgraph.catalog.registry import get_catalog
from jdgraph.errors import InputError

ACTOR_RESTARTS = 3


@dataclass(frozen=True)
class BulkPlan:
    """How a bulk job runs: ``actors`` Ray actors, each with ``threads`` runs at once and a pool of ``pool_size``
    connections, fed ``batch_size`` lines at a time."""

    actors: int = 2
    threads: int = 2
    pool_size: int = 3
    batch_size: int = 32


@dataclass
class BulkSummary:
    """What a job did, counted from its output lines."""

    done: int = 0
    done_before: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.done + self.done_before + self.failed

    def count(self, line: dict[str, Any]) -> None:
        if "error" in line:
            self.failed += 1
            # "line 7 is not JSON (...)" and "line 9 is not JSON (...)" are one reason
            reason = re.sub(r"^(line \d+|this line):? ?", "", str(line["error"]))[:80]
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
        elif line.get("done_before"):
            self.done_before += 1
        else:
            self.done += 1


def _error_line(raw: str, message: str) -> dict[str, Any]:
    """An output line for input that is no batch item: its id when one can be read, else the line's start."""
    try:
        parsed = json.loads(raw)
        ident = parsed.get("id") if isinstance(parsed, dict) else None
    except ValueError:
        ident = None
    if isinstance(ident, str | int) and not isinstance(ident, bool):
        return {"id": str(ident), "error": message}
    return {"input": raw[:200], "error": message}


def _unnumbered(message: str) -> str:
    """A batch line's error without its line number: a distributed read does not number lines (the output line
    carries the input's id, or its first 200 characters)."""
    return message.replace("line 0 ", "this line ", 1).replace("line 0:", "this line:", 1)


class ClassifyActor:
    """A Ray actor: the models and the catalog opened once, then batch after batch through ``classify_many``."""

    def __init__(self, context: dict[str, Any], plan: BulkPlan) -> None:
        # The actor's own pool: actors × pool_size is the job's connection budget (checked by the driver).
        os.environ["JDGRAPH_DB_POOL_MAX"] = str(plan.pool_size)

        self.plan = plan
        opened = run_context(**context)
        self.context = {**context, "catalog_reader": opened.catalog_reader,
                        "span_tagger_reader": opened.span_tagger_reader}  # fmt: skip

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        entries = [_entry(row) for row in _rows(batch)]
        items = [e for e in entries if isinstance(e, BatchItem)]
        outcomes = classify_many(items, concurrency=self.plan.threads, resume=True, persist=True, **self.context)
        return {"line": [json.dumps(line) for line in _output_lines(entries, outcomes)]}


def _entry(row: str | BatchItem, n: int = 0) -> BatchItem | dict[str, Any]:
    """A row as a batch item, or the error line that says why it is none (numbered when ``n`` is known)."""
    if isinstance(row, BatchItem):
        return row
    entry = batch_item(n, row.encode("utf-8", "surrogatepass"))
    if isinstance(entry, BatchItem):
        return entry
    return _error_line(row, entry if n else _unnumbered(entry))


def _output_lines(
    entries: list[BatchItem | dict[str, Any]], outcomes: Iterator[BatchOutcome]
) -> Iterator[dict[str, Any]]:
    """One output line per entry, in order: an error line as it is, an item's outcome from ``outcomes`` (which
    yields one per item, in order)."""
    for entry in entries:
        if isinstance(entry, dict):
            yield entry
            continue
        yield next(outcomes).line()


def _rows(batch: dict[str, Any]) -> Iterator[Any]:
    """A batch's rows: raw JSON lines (``text`` column of read_text) or BatchItems (Parquet columns)."""
    if set(batch) == {"text"}:
        yield from (str(x) for x in batch["text"])
        return

    def cell(name: str, i: int) -> Any:
        value = batch[name][i] if name in batch else None
        return None if value is None or (isinstance(value, float) and value != value) else value  # NaN: missing

    for i in range(len(batch["id"])):
        ident, text = cell("id", i), cell("text", i)
        if ident is None or text is None:
            yield json.dumps({"id": ident, "text": text})  # batch_item says what is missing
        else:
            yield BatchItem(str(ident), str(text), cell("title", i), cell("company", i))


def read_input(path: Path) -> Any:
    """The input as a Ray Dataset: JSON Lines as raw lines (each checked by the actor, so a bad line is an error
    line, not a failed read), or Parquet with columns id, text, title, company."""
    import ray.data  # deferred: Ray is optional (the scale extra), and seconds to import

    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.suffix == ".parquet" or (path.is_dir() and any(path.glob("*.parquet"))):
        return ray.data.read_parquet(str(path))
    return ray.data.read_text(str(path)).filter(lambda row: bool(str(row["text"]).strip()))


def check_budget(plan: BulkPlan, allowed: int, in_use: int) -> None:
    """Refuse a plan whose connections (actors × pool) do not fit the server (both numbers in the message)."""
    check_connection_budget(plan.actors, plan.pool_size, allowed, in_use, what="actors")


def run_bulk(
    input_path: Path,
    output_path: Path,
    plan: BulkPlan,
    context: dict[str, Any],
    *,
    progress: Callable[[BulkSummary], None] | None = None,
    ray_address: str | None = None,
) -> BulkSummary:
    """Run the job and write one output line per input line (``classify --batch``'s format) to ``output_path``,
    written to a temporary file beside it and renamed when complete: a killed driver leaves the old output (or
    none), and its rerun reads saved results back instead of running them."""
    import ray  # deferred: Ray is optional (the scale extra), and seconds to import

    # Before any work: the database answers (a DatabaseError otherwise), and the plan's connections fit it.
    catalog = get_catalog(context.get("catalog"))
    check_budget(plan, *catalog.db.connection_budget())
    started = time.monotonic()
    if not ray.is_initialized():
        if ray_address:
            # On a cluster the job's settings travel as its runtime environment (locally the actors inherit this
            # process's environment: the catalog's home, schema, models).
            settings = {k: v for k, v in os.environ.items() if k.startswith(("JDGRAPH_", "DATABASE_URL", "HF_"))}
            ray.init(address=ray_address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": settings})  # fmt: skip
        else:
            # One logical CPU more than the actors take: the read tasks need one, or they wait for ever behind
            # actors that wait for their input.
            ray.init(num_cpus=max(os.cpu_count() or 1, plan.actors + 1), include_dashboard=False,
                     log_to_driver=False, configure_logging=False)  # fmt: skip
    dataset = read_input(input_path).map_batches(
        ClassifyActor,
        fn_constructor_args=(context, plan),
        batch_size=plan.batch_size,
        concurrency=plan.actors,
        num_cpus=1,
        # A killed actor is restarted and its batch retried: the retry finds what was saved and skips it. Bounded:
        # an actor that dies on every start (a bug, a model that cannot load) fails the job rather than loop.
        max_restarts=ACTOR_RESTARTS,
        max_task_retries=ACTOR_RESTARTS,
    )
    summary = _write_output(output_path, (json.loads(row["line"]) for row in dataset.iter_rows()), progress)
    summary.seconds = time.monotonic() - started
    return summary


def run_local(
    input_path: Path,
    output_path: Path,
    plan: BulkPlan,
    context: dict[str, Any],
    *,
    progress: Callable[[BulkSummary], None] | None = None,
) -> BulkSummary:
    """The same job in this process (``classify_many`` with ``plan.threads`` threads, resumable), without Ray:
    the baseline Ray's overhead is measured against, and the way to run a bulk job where Ray is not installed."""
    if not input_path.is_file():
        raise InputError(f"{input_path}: no such file")
    started = time.monotonic()
    if input_path.suffix == ".parquet":
        import pyarrow.parquet as pq  # deferred: pyarrow comes with the scale extra, needed for Parquet only

        entries = [_entry(row) for row in _rows(pq.read_table(str(input_path)).to_pydict())]
    else:
        lines = input_path.read_bytes().split(b"\n")
        entries = [_entry(raw.decode("utf-8", "surrogateescape"), n) for n, raw in enumerate(lines, 1) if raw.strip()]
    items = [e for e in entries if isinstance(e, BatchItem)]
    outcomes = classify_many(items, concurrency=plan.threads, resume=True, persist=True, **context)
    summary = _write_output(output_path, _output_lines(entries, outcomes), progress)
    summary.seconds = time.monotonic() - started
    return summary


def _write_output(
    output_path: Path, lines: Iterable[dict[str, Any]], progress: Callable[[BulkSummary], None] | None
) -> BulkSummary:
    """Write ``lines`` beside ``output_path`` and rename the file into place once all are written (a killed job
    leaves the old output, or none, never half of one), counting them as they go."""
    summary = BulkSummary()
    partial = output_path.with_name(f".{output_path.name}.partial")
    with _writer(partial, parquet=output_path.suffix == ".parquet") as write:
        for line in lines:
            write(line)
            summary.count(line)
            if progress is not None:
                progress(summary)
    os.replace(partial, output_path)
    return summary


@contextmanager
def _writer(path: Path, *, parquet: bool) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Write output lines as JSON Lines, or as Parquet (columns id, error, done_before, input, result as JSON
    text) in row groups of 1,000, so the driver never holds the whole output."""
    if not parquet:
        with path.open("w", encoding="utf-8") as out:

            def write_line(line: dict[str, Any]) -> None:
                out.write(json.dumps(line) + "\n")

            yield write_line
        return
    import pyarrow as pa  # deferred: pyarrow comes with the scale extra, needed for Parquet only
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.string()) for name in ("id", "error", "done_before", "input", "result")])
    pending: list[dict[str, Any]] = []
    with pq.ParquetWriter(str(path), schema) as writer:

        def flush() -> None:
            rows = [{k: (json.dumps(v) if k == "result" and v is not None else v) for k, v in line.items()}
                    for line in pending]  # fmt: skip
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            pending.clear()

        def write(line: dict[str, Any]) -> None:
            pending.append(line)
            if len(pending) >= 1000:
                flush()

        yield write
        if pending:
            flush()
