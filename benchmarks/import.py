"""Import ESCO and O*NET at full scale into fresh catalogs and print what the taxonomy issue asks for.

Per taxonomy (each in its own process, so peak memory is its own): wall time of the first import, the pure
embedding time of the same texts with the same model (one call, outside the importer), their ratio (target
<= 1.3), peak RSS (target < 2 GiB), rows/s; the time of a re-import of the same files (recognised by hash) and of
a forced one (the full merge, which must change and embed nothing), as a share of the first import (target <= 10%).
On the ESCO catalog: p50/p95 of lookup_skill (exact, normalised, embedding) and search_roles (target p95 < 10 ms),
and the extractor's alias-index build time and memory.

    python benchmarks/import.py                      # both, full files from ../shared/data
    python benchmarks/import.py --only-source esco --slice 25

Sources: ESCO v1.1.1 (© European Union, CC BY 4.0); O*NET 27.0 (USDOL/ETA, CC BY 4.0).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jdgraph.catalog.embeddings import make_embeddings
from jdgraph.settings import shared_dir

# The benchmarks share one recording wrapper; this folder is a set of scripts, not a package.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import RecordingEmbeddings


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _time(fn: Callable[[str], object], items: list[str], repeat: int = 3) -> list[float]:
    out = []
    for _ in range(repeat):
        for item in items:
            t0 = time.perf_counter()
            fn(item)
            out.append((time.perf_counter() - t0) * 1000)
    return out


def run_one(source: str, path: Path, only: list[str]) -> dict[str, object]:
    from jdgraph.catalog.importers.esco import EscoImporter
    from jdgraph.catalog.importers.onet import OnetImporter
    from jdgraph.catalog.registry import open_catalog
    from jdgraph.catalog.writer import CatalogWriter

    importer_cls = EscoImporter if source == "esco" else OnetImporter
    model = RecordingEmbeddings(make_embeddings())
    model.embed_array(["warm up the model"])  # model load is not import time (not recorded yet)
    model.recording = True
    catalog = open_catalog(source, embeddings=model, require_content=False)
    writer = CatalogWriter(catalog.db, catalog.embeddings)
    t0 = time.perf_counter()
    report = writer.apply(importer_cls(path, only=only).bundle(), complete=not only)
    wall = time.perf_counter() - t0
    texts = list(model.texts)
    embed_in_import = model.seconds
    stats = catalog.stats()

    t0 = time.perf_counter()
    again = writer.apply(importer_cls(path, only=only).bundle(), complete=not only)
    reimport = time.perf_counter() - t0
    t0 = time.perf_counter()
    forced = writer.apply(importer_cls(path, only=only).bundle(), force=True, complete=not only)
    forced_s = time.perf_counter() - t0
    assert again.skipped and forced.total_changed == 0 and forced.embedded == 0, (again, forced)

    pure_model = make_embeddings()
    pure_model.embed_array(["warm up the model"])
    t0 = time.perf_counter()
    pure_model.embed_array(texts)
    pure = time.perf_counter() - t0
    rows = sum(report.changed.values())
    out: dict[str, object] = {
        "source": source,
        "version": report.version,
        "counts": stats.model_dump(exclude={"embedding_model", "embedding_dim", "schema_name", "sources"}),
        "texts_embedded": len(texts),
        "import_s": round(wall, 1),
        "embedding_in_import_s": round(embed_in_import, 1),
        "pure_embedding_s": round(pure, 1),
        "ratio_import_to_pure_embedding": round(wall / pure, 3) if texts else None,
        "rows_written": rows,
        "rows_per_s": round(rows / wall),
        "reimport_same_files_s": round(reimport, 2),
        "reimport_forced_s": round(forced_s, 2),
        "reimport_forced_share": round(forced_s / wall, 3),
    }
    if source == "esco":
        out.update(_lookups(catalog))
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def _lookups(catalog: object) -> dict[str, object]:
    from jdgraph.graph.parse import CatalogIndex
    from jdgraph.matching.roles import ScoringParams, search_roles

    cat = catalog  # type: ignore[assignment]
    with cat.db.connection() as conn:  # type: ignore[attr-defined]
        rows = conn.execute("SELECT alias FROM skill_aliases ORDER BY md5(alias) LIMIT 200").fetchall()
        titles = [r["alias"] for r in conn.execute("SELECT alias FROM role_aliases ORDER BY md5(alias) LIMIT 100")]
    exact = [r["alias"] for r in rows]
    normalised = [a.upper().replace(" ", "-") for a in exact]
    fresh = [f"{a} specialist work {i}" for i, a in enumerate(exact[:60])]
    cat.embeddings.embed_array(titles + fresh)  # type: ignore[attr-defined]
    for item in exact + normalised + fresh:  # one untimed pass: the first touch of each index page reads it in
        cat.lookup_skill(item, accept=0.8)  # type: ignore[attr-defined]
    for title in titles:
        search_roles(cat, title, ScoringParams(), k=5)  # type: ignore[arg-type]
    lookups = {
        "exact": _time(lambda t: cat.lookup_skill(t, accept=0.8), exact),  # type: ignore[attr-defined]
        "normalised": _time(lambda t: cat.lookup_skill(t, accept=0.8), normalised),  # type: ignore[attr-defined]
        "embedding (cached vector)": _time(lambda t: cat.lookup_skill(t, accept=0.8), fresh),  # type: ignore[attr-defined]
        "search_roles (cached vector)": _time(
            lambda t: search_roles(cat, t, ScoringParams(), k=5),
            titles,  # type: ignore[arg-type]
        ),
    }
    tracemalloc.start()
    t0 = time.perf_counter()
    index = CatalogIndex(cat)  # type: ignore[arg-type]
    build = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "latency_ms": {k: {"p50": round(_pct(v, 50), 2), "p95": round(_pct(v, 95), 2)} for k, v in lookups.items()},
        "alias_index": {
            "aliases": sum(len(v) for v in index.aliases.values()),
            "build_s": round(build, 2),
            "peak_mib": round(peak / 2**20),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only-source", choices=["esco", "onet"])
    ap.add_argument("--slice", action="append", default=[], help="code prefix (a CI-sized slice), repeatable")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    paths = {"esco": shared_dir() / "data" / "esco-v1.1.1", "onet": shared_dir() / "data" / "onet-27.0"}
    if args.only_source:
        os.environ.setdefault("JDGRAPH_DB_SCHEMA", f"bench_{uuid.uuid4().hex[:8]}")
        from jdgraph.catalog.db import Database
        from jdgraph.settings import DatabaseSettings

        try:
            result = run_one(args.only_source, paths[args.only_source], args.slice)
        finally:
            Database(DatabaseSettings.from_env()).drop_schema(including_prefixed=True)
        print(json.dumps(result))
        return
    results = []
    for source in ("esco", "onet"):
        cmd = [sys.executable, __file__, "--only-source", source, *(f"--slice={s}" for s in args.slice)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"{source} failed:\n{done.stderr[-4000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(f"== {r['source']} ({r['version']})")
        for key in (
            "counts", "texts_embedded", "import_s", "embedding_in_import_s", "pure_embedding_s",
            "ratio_import_to_pure_embedding", "peak_rss_mib", "rows_written", "rows_per_s",
            "reimport_same_files_s", "reimport_forced_s", "reimport_forced_share", "latency_ms", "alias_index",
        ):  # fmt: skip
            if key in r:
                print(f"  {key}: {r[key]}")
    print("medians are per call on this machine; the ratio compares two timings taken in the same process")


if __name__ == "__main__":
    main()
