"""Batch throughput and memory at several concurrencies, and the first-run time with and without a warm cache.

- Throughput: the same 200 real job ads (the 130 Hahu ads and the 58 SkillSpan postings of ``$JDGRAPH_SHARED/
  data/dev``, repeated in order up to 200) through ``classify_many`` with persistence on (as ``classify --batch``
  does), at each ``--concurrency`` level, each level in its own process on its own fresh catalog schema so its peak
  memory (RSS high-water mark) is its own. The embedding cache of that schema starts empty, so every level does the
  same model work.
- First run: ``jdgraph classify examples/rust-developer.txt --no-persist`` in a fresh ``JDGRAPH_HOME`` (initdb,
  catalog build, model load: cold) and again in the same home (warm).

Deterministic implementations (no model), starter catalog. Run: ``python benchmarks/batch.py [--n 200]
[--levels 1 4 8] [--first-run]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ads(n: int) -> list[tuple[str, str, str | None]]:
    from jdgraph.settings import shared_dir

    dev = shared_dir() / "data" / "dev"
    ads: list[tuple[str, str, str | None]] = []
    for line in (dev / "hahu-dev.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            ads.append((row["id"], row["description"], row.get("title")))
    for line in (dev / "skillspan-dev.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            ads.append((row["id"], row["text"], None))
    return [(f"{ads[i % len(ads)][0]}#{i}", ads[i % len(ads)][1], ads[i % len(ads)][2]) for i in range(n)]


def child(n: int, concurrency: int) -> dict[str, float]:
    """One level, in this process: a fresh schema, a warm-up JD, then the batch."""
    from jdgraph.api import BatchItem, classify, classify_many
    from jdgraph.catalog.db import Database
    from jdgraph.catalog.registry import open_catalog
    from jdgraph.settings import DatabaseSettings

    schema = f"bench_batch_{uuid.uuid4().hex[:8]}"
    db = Database(DatabaseSettings(schema=schema, pool_max=max(8, concurrency + 2)))
    try:
        catalog = open_catalog("starter", db=db)
        classify("Rust Developer\n- Build services in Rust\nRequirements: 3+ years", catalog_reader=catalog,
                 persist=False)  # fmt: skip
        items = [BatchItem(i, text, title) for i, text, title in _ads(n)]
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        outcomes = list(classify_many(items, concurrency=concurrency, catalog_reader=catalog))  # a generator: run it
        wall = time.perf_counter() - t0
        failed = sum(1 for o in outcomes if o.error is not None)
        return {
            "concurrency": concurrency,
            "jds": n,
            "failed": failed,
            "wall_s": round(wall, 2),
            "jds_per_s": round(n / wall, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_batch_mb": round(rss0, 1),
        }
    finally:
        db.drop_schema()
        db.close()


def first_run() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        os.chmod(home, 0o711)  # as root, the server's own account must be able to enter it (see catalog.embedded)
        env = {**os.environ, "JDGRAPH_HOME": home}
        env.pop("DATABASE_URL", None)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "jdgraph.cli", "classify", str(ROOT / "examples" / "rust-developer.txt"),
                 "--no-persist", "--json"],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            times.append(time.perf_counter() - t0)
    return {"cold_s": round(times[0], 1), "warm_s": round(times[1], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--first-run", action="store_true", help="also time a cold and a warm first classify")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.n, args.child)))
        return
    rows = []
    for level in args.levels:
        out = subprocess.run(
            [sys.executable, __file__, "--n", str(args.n), "--child", str(level)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    base = rows[0]["jds_per_s"]
    print(f"{'concurrency':>11} {'JDs':>5} {'failed':>6} {'wall s':>8} {'JDs/s':>7} {'× c=' + str(args.levels[0]):>7} "
          f"{'peak RSS MB':>12}")  # fmt: skip
    for r in rows:
        print(f"{r['concurrency']:>11} {r['jds']:>5} {r['failed']:>6} {r['wall_s']:>8} {r['jds_per_s']:>7} "
              f"{r['jds_per_s'] / base:>7.2f} {r['peak_rss_mb']:>12}")  # fmt: skip
    if args.first_run:
        fr = first_run()
        print(f"first run: cold (fresh JDGRAPH_HOME) {fr['cold_s']} s, warm (same home) {fr['warm_s']} s")


if __name__ == "__main__":
    main()
