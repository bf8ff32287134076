"""End-to-end pipeline throughput, offline (deterministic implementations, no persistence).

Runs the graph over N real job ads (``$JDGRAPH_SHARED/data/dev/hahu-dev.jsonl``, Tabiya/Hahu, CC BY 4.0) on a
fresh catalog schema (nothing cached), once one JD at a time and once through ``classify_many`` with
``--concurrency`` threads. Prints JDs/s, per-node p50/p95, and the ratio of end-to-end time to the pure
embedding time of the same texts. Every text the pipeline hands to the model is recorded, then embedded again
outside the graph twice: as the same calls (one per JD and step; the ratio is what the graph costs on top of
the model work it must do) and as one call (the floor that only batching across JDs reaches: on a CPU each
model call has a fixed cost of about 10 ms before any token). Ratios are stable across machines where
absolute times are not.
Run: ``python benchmarks/pipeline.py [--n 50] [--concurrency 4]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from jdgraph.api import BatchItem, classify, classify_many
from jdgraph.catalog.db import Database
from jdgraph.catalog.embeddings import CachedEmbeddings, CoalescingEmbeddings, ModelEmbeddings, make_embeddings
from jdgraph.catalog.registry import open_catalog
from jdgraph.context import Context
from jdgraph.settings import DatabaseSettings, shared_dir
from jdgraph.trained.registry import get_span_tagger


class RecordingEmbeddings(ModelEmbeddings):
    """Passes through to the model and remembers what it was asked to embed."""

    def __init__(self, inner: ModelEmbeddings) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.texts: list[str] = []
        self.groups: list[list[str]] = []
        self.recording = False
        self.seconds = 0.0
        self.calls = 0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.inner.embed_array(texts)
        if self.recording:
            self.texts.extend(texts)
            self.groups.append(list(texts))
            self.seconds += time.perf_counter() - t0
            self.calls += 1
        return out


class RecordingTagger:
    """Passes through to the span tagger and remembers each call, to replay the tagger's own work outside the
    graph: with a trained tagger in place, the model work a JD needs is its embeddings plus its tagging."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[str, float | None, Any]] = []
        self.recording = False
        self.seconds = 0.0

    def tag(self, text: str, threshold: float | None = None, regions: Any = None) -> Any:
        t0 = time.perf_counter()
        out = self.inner.tag(text, threshold, regions)
        if self.recording:
            self.calls.append((text, threshold, regions))
            self.seconds += time.perf_counter() - t0
        return out


def _percentiles(timings: dict[str, list[float]]) -> None:
    print(f"  {'node':<12}{'p50 ms':>10}{'p95 ms':>10}")
    for node, values in timings.items():
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(f"  {node:<12}{statistics.median(ordered):>10.1f}{p95:>10.1f}")


def _measure(
    label: str,
    texts: list[str],
    concurrency: int,
    recorder: RecordingEmbeddings,
    catalog_name: str,
    tagger: RecordingTagger | None,
) -> None:
    fresh = catalog_name == "starter"  # a fresh schema: no cached vectors; an imported catalog is used as it is
    db = Database(DatabaseSettings.from_env(schema=f"bench_{uuid.uuid4().hex[:8]}")) if fresh else None
    try:
        # An imported catalog keeps its database cache of JD sentences from earlier runs; this pass embeds every
        # JD text afresh (an in-memory cache only), so the ratio measures what a new JD costs.
        embedder = recorder if fresh else CachedEmbeddings(CoalescingEmbeddings(recorder), None)
        catalog = open_catalog(catalog_name, db=db, embeddings=embedder)
        ctx: dict[str, Any] = {"persist": False, "catalog_reader": catalog}
        if tagger is not None:
            ctx["span_tagger_reader"] = tagger
        classify("Software Engineer\nWe are hiring. Requirements: 3+ years of Python experience.", **ctx)
        recorder.texts, recorder.groups, recorder.recording, recorder.seconds, recorder.calls = [], [], True, 0.0, 0
        if tagger is not None:
            tagger.calls, tagger.recording, tagger.seconds = [], True, 0.0
        timings: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        if concurrency == 1:
            results = [classify(text, **ctx) for text in texts]
        else:
            items = [BatchItem(str(i), text) for i, text in enumerate(texts)]
            outcomes = list(classify_many(items, concurrency=concurrency, **ctx))
            results = [o.result for o in outcomes if o.result is not None]
        total = time.perf_counter() - t0
        recorder.recording = False
        if tagger is not None:
            tagger.recording = False
        for result in results:
            for node, ms in result.node_timings_ms.items():
                timings.setdefault(node, []).append(ms)
        embedded = list(dict.fromkeys(recorder.texts))
        t1 = time.perf_counter()
        recorder.inner.embed_array(embedded)  # the same texts, one call, same model and batching
        embed_time = time.perf_counter() - t1
        t2 = time.perf_counter()
        for group in recorder.groups:  # the same model calls the runs made, replayed outside the graph
            recorder.inner.embed_array(group)
        replay_time = time.perf_counter() - t2
        t3 = time.perf_counter()
        for call in tagger.calls if tagger is not None else []:  # the tagger's calls, replayed likewise
            tagger.inner.tag(*call)  # type: ignore[union-attr]
        tag_time = time.perf_counter() - t3
    finally:
        if db is not None:
            db.drop_schema()
    print(f"{label}: {len(results)} JDs in {total:.1f}s = {len(results) / total:.2f} JDs/s")
    _percentiles(timings)
    print(f"  inside the model during the runs: {recorder.seconds:.1f}s in {recorder.calls} calls")
    print(f"  pure embedding, the same {len(recorder.groups)} calls replayed: {replay_time:.1f}s")
    print(f"  pure embedding, the same {len(embedded)} texts in one call: {embed_time:.1f}s")
    print(f"  ratio end-to-end / replayed calls: {total / replay_time:.2f} (the graph's cost, tagging included)")
    if tagger is not None:
        print(
            f"  tagger during the runs: {tagger.seconds:.1f}s; its {len(tagger.calls)} calls replayed: {tag_time:.1f}s"
        )
        print(f"  ratio end-to-end / replayed model work (embedding + tagging): {total / (replay_time + tag_time):.2f} "
              "(target <= 1.5: the graph's own cost with the trained models in place)")  # fmt: skip
        # The replay runs minutes after the runs; on a shared machine its speed drifts by 10-20% between the two
        # (the same code gave 1.30 and 1.67 above). The model's own time inside the runs moves with the machine
        # as the runs do, so this ratio is the steadier estimate of the same quantity.
        if concurrency == 1:  # with threads the model's seconds overlap, and their sum is no wall time
            inside = recorder.seconds + tagger.seconds
            print(f"  ratio end-to-end / model work timed inside the runs: {total / inside:.2f} (steadier)")
    print(f"  ratio end-to-end / one call: {total / embed_time:.2f} (adds the model's fixed cost per call)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--catalog", default="starter", help="starter (fresh schema) or an imported catalog")
    args = parser.parse_args()
    path = shared_dir() / "data" / "dev" / "hahu-dev.jsonl"
    ads = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][: args.n]
    texts = [f"{a.get('title', '')}\n{a.get('description', '')}" for a in ads]
    recorder = RecordingEmbeddings(make_embeddings())
    choice = Context.from_env().span_tagger  # JDGRAPH_SPAN_TAGGER, as a run would read it
    tagger = None if choice == "none" else RecordingTagger(get_span_tagger(choice))
    print(f"span tagger: {choice}" + (f" ({tagger.name})" if tagger else " (dictionary extractor)"))
    print("offline, deterministic implementations, no persistence, fresh schema per pass")
    with Database(DatabaseSettings.from_env()).connection() as conn:  # the buffer cache decides the index reads
        row = conn.execute("SHOW shared_buffers").fetchone()
    print(f"database shared_buffers: {row['shared_buffers'] if row else '?'}")
    _measure("one at a time", texts, 1, recorder, args.catalog, tagger)
    _measure(f"classify_many, {args.concurrency} threads", texts, args.concurrency, recorder, args.catalog, tagger)


if __name__ == "__main__":
    main()
