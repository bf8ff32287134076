"""End-to-end pipeline throughput, offline (deterministic implementations, no persistence).

Runs the graph over N real job ads (``$JDGRAPH_SHARED/data/dev/hahu-dev.jsonl``, Tabiya/Hahu, CC BY 4.0) on a
fresh catalog schema so nothing is cached, and prints JDs/s, per-node p50/p95, and the ratio of end-to-end
time to the pure embedding time of the same sentences (embedded uncached by the raw model).
Run: ``python benchmarks/pipeline.py [--n 50]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

from jdgraph.catalog.db import Database
from jdgraph.catalog.queries import open_catalog, set_catalog
from jdgraph.embeddings import minilm_embeddings
from jdgraph.graph.nodes import _responsibility_sentences
from jdgraph.graph.text import normalise_text
from jdgraph.settings import DatabaseSettings, shared_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    path = shared_dir() / "data" / "dev" / "hahu-dev.jsonl"
    ads = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][: args.n]
    texts = [f"{a.get('title', '')}\n{a.get('description', '')}" for a in ads]

    embedder = minilm_embeddings()
    db = Database(DatabaseSettings.from_env(schema=f"bench_{uuid.uuid4().hex[:8]}"))
    try:
        catalog = open_catalog(db, embedder)
        set_catalog(catalog)
        import jdgraph

        jdgraph.classify(
            "Software Engineer\nWe are hiring. Requirements: 3+ years of Python experience. Team.", persist=False
        )  # warm-up: model load, prompt and index caches
        timings: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        for text in texts:
            result = jdgraph.classify(text, persist=False)
            for node, ms in result.node_timings_ms.items():
                timings.setdefault(node, []).append(ms)
        total = time.perf_counter() - t0
        # The same sentences the pipeline embeds, uncached, through the raw model.
        sentences = [s.text for t in texts for s in _responsibility_sentences(normalise_text(t))[:60]]
        t1 = time.perf_counter()
        embedder.embed_array(sentences)
        embed_time = time.perf_counter() - t1
    finally:
        set_catalog(None)
        db.drop_schema()
    print(f"{len(texts)} JDs in {total:.1f}s: {len(texts) / total:.2f} JDs/s (offline, deterministic, no persist)")
    print(f"{'node':<12}{'p50 ms':>10}{'p95 ms':>10}")
    for node, values in timings.items():
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(f"{node:<12}{statistics.median(ordered):>10.1f}{p95:>10.1f}")
    print(f"pure embedding of the same {len(sentences)} sentences: {embed_time:.1f}s")
    print(f"ratio end-to-end / embedding: {total / embed_time:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
