"""Catalog lookup latency and embedding throughput.

Prints p50/p95 (ms) of exact, normalised and embedding skill lookups and of role search, and embedding
throughput (texts/s) of the raw model, uncached. Run: ``python benchmarks/catalog.py [--repeat N]``.
Uses $JDGRAPH_HOME (or DATABASE_URL) like the CLI.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

from jdgraph.catalog.registry import get_catalog
from jdgraph.matching.roles import ScoringParams, search_roles


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return p50 * 1000, p95 * 1000


def _time(fn: Callable[[str], object], inputs: list[str], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        for item in inputs:
            t0 = time.perf_counter()
            fn(item)
            samples.append(time.perf_counter() - t0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--catalog", default="starter")
    args = parser.parse_args()

    catalog = get_catalog(args.catalog)
    catalog.embeddings.embed_array(["warm up"])  # load the model outside the timings
    exact = ["Rust", "Kubernetes", "C#", "PostgreSQL", "Unit Testing", "Patient Care"]
    normalised = ["Multi-threading", "node js", "K8S", "postgres", "unit-testing", "PATIENT CARE"]
    embedding = [
        "writing unit tests",
        "thread synchronisation",
        "container orchestration",
        "caring for patients",
        "relational database tuning",
        "building REST endpoints",
    ]
    roles = [
        "Rust Engineer",
        "Senior Backend Developer",
        "ICU Nurse",
        "Warehouse Picker",
        "Machine Learning Platform Engineer",
        "Account Executive, EMEA",
    ]

    lines = [
        "Our kitchen team serves three hundred guests a night and you will handle food safety checks",
        "You will join a small caring ward team on night shifts and administer medication to patients",
        "Proficiency in one or more modern programming languages such as Java and JavaScript",
        "You have a proactive mindset and the ability to keep an overview in stressful situations",
    ]

    def vector_of(text: str) -> object:
        return catalog.embeddings.embed_array([text])[0]  # cached after the first repeat, as the pooled path's is

    for m in catalog.lookup_skills(exact, accept=None):
        assert m.match_via == "exact", m
    for m in catalog.lookup_skills(normalised, accept=None):
        assert m.match_via == "normalized", m

    print(f"catalog: {catalog.stats().skills} skills, {catalog.stats().roles} roles on {catalog.db.display_url}")
    print(f"{'operation':<28}{'p50 ms':>10}{'p95 ms':>10}{'n':>6}")
    n = args.repeat
    rows = [
        ("lookup exact", _time(lambda t: catalog.lookup_skill(t, accept=0.8), exact, args.repeat)),
        ("lookup normalised", _time(lambda t: catalog.lookup_skill(t, accept=0.8), normalised, args.repeat)),
        ("lookup embedding (cached)", _time(lambda t: catalog.lookup_skill(t, accept=0.8), embedding, args.repeat)),
        ("role search (cached emb.)", _time(lambda t: search_roles(catalog, t, ScoringParams()), roles, args.repeat)),
        # Sentence → skill search: the pooled nearest skills alone, then search_skills as served (the same pooled
        # search for 50 candidates, one more forward pass for the sentence's word pieces, the attention rerank).
        ("skill search, pooled", _time(lambda t: catalog.nearest_skills_hybrid(vector_of(t), k=10), lines, n)),
        ("skill search, reranked", _time(lambda t: catalog.search_skills(t, k=10), lines, n)),
    ]
    for name, samples in rows:
        p50, p95 = _percentiles(samples)
        print(f"{name:<28}{p50:>10.2f}{p95:>10.2f}{len(samples):>6}")

    # Uncached: the raw model on texts it has never seen.
    inner = catalog.embeddings.inner
    labels = [f"skill label {uuid.uuid4().hex[:6]} {i}" for i in range(512)]
    sentences = [
        f"Design, build and maintain scalable services for team {i} with a focus on reliability, testing "
        f"and clear documentation for partners across the organisation {uuid.uuid4().hex[:4]}."
        for i in range(256)
    ]
    for name, texts in (("short labels", labels), ("~30-word sentences", sentences)):
        t0 = time.perf_counter()
        inner.embed_array(texts)
        elapsed = time.perf_counter() - t0
        print(f"embedding throughput, {name:<20}{len(texts) / elapsed:>10.1f} texts/s")
    uncached = _time(lambda t: catalog.lookup_skill(t + uuid.uuid4().hex[:4], accept=0.8), embedding, 3)
    p50, p95 = _percentiles(uncached)
    print(f"{'lookup embedding (uncached)':<28}{p50:>10.2f}{p95:>10.2f}{len(uncached):>6}")


if __name__ == "__main__":
    main()
