"""Bulk re-classification at scale: Ray Data actors against the in-process batch, and a job that survives a killed
actor and a killed driver.

N real ads (``$JDGRAPH_SHARED/data/dev/hahu-dev.jsonl``, Tabiya/Hahu, CC BY 4.0, repeated with distinct ids) are
classified on a fresh catalog schema (starter catalog, persisting, as a re-classification does):

1. ``--engine local`` (``classify_many`` with 2 threads, as ``classify --batch``): the baseline;
2. ``--engine ray`` with 1 actor, then with 2 actors (fresh ids each time, so every item runs);
3. a Ray job with 2 actors whose actor is killed after a third of the items and whose driver is killed after two
   thirds, then run again: every item must be saved exactly once and appear once in the output.

Prints JDs/s per configuration with the share of the machine's CPU that was busy (near 100%: the cores bound the job,
not the engine) and CPU-seconds per JD, the 2-actor / 1-actor ratio, Ray's overhead per JD against the local engine as a
ratio, and the crash check's counts. Times are of this machine (2 cores here: two actors share them with PostgreSQL
and the driver, so the 2-actor ratio says what saturates, not what a cluster gives).
Run: ``python benchmarks/scale.py [--n 2000] [--skip-local] [--skip-crash]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from jdgraph.catalog.db import Database
from jdgraph.settings import DatabaseSettings, shared_dir


def write_input(path: Path, n: int, tag: str) -> None:
    ads = [json.loads(x) for x in (shared_dir() / "data" / "dev" / "hahu-dev.jsonl").read_text().splitlines() if x]
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            ad = ads[i % len(ads)]
            # A distinct id and a distinct first line: the same text under two ids is two items.
            text = f"{ad.get('description', '')}\n(ref {tag}-{i})"
            out.write(json.dumps({"id": f"{tag}-{i}", "text": text, "title": ad.get("title")}) + "\n")


def run_cli(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "jdgraph.cli", "batch", "run", *args], capture_output=True,
                          text=True, env=env)  # fmt: skip
    return time.monotonic() - start, done


def timed_job(label: str, folder: Path, n: int, engine: str, actors: int, env: dict[str, str]) -> float:
    source = folder / f"{label}.jsonl"
    write_input(source, n, label)
    before = psutil.cpu_times()
    seconds, done = run_cli([str(source), str(folder / f"{label}-out.jsonl"), "--engine", engine,
                             "--actors", str(actors)], env)  # fmt: skip
    busy = cpu_busy(before, psutil.cpu_times())
    lines = (folder / f"{label}-out.jsonl").read_text().splitlines() if done.returncode in (0, 1) else []
    print(f"{label}: {len(lines)} of {n} lines in {seconds:.1f}s = {n / seconds:.2f} JDs/s (exit {done.returncode}); "
          f"machine busy {busy:.0%} of {psutil.cpu_count()} cores, {busy * psutil.cpu_count() * seconds / n:.2f} "
          "CPU-s per JD", flush=True)  # fmt: skip
    if done.returncode not in (0, 1):
        print(done.stderr[-2000:])
    return n / seconds


def cpu_busy(before: Any, after: Any) -> float:
    """Share of the machine's CPU time that was not idle between two ``psutil.cpu_times()``: near 100% is a job
    the cores bound, not the engine."""
    total = sum(after) - sum(before)
    idle = (after.idle + getattr(after, "iowait", 0.0)) - (before.idle + getattr(before, "iowait", 0.0))
    return 1.0 - idle / total if total > 0 else 0.0


def crash_job(folder: Path, n: int, env: dict[str, str], db: Database) -> None:
    source = folder / "crash.jsonl"
    write_input(source, n, "crash")
    out = folder / "crash-out.jsonl"
    argv = [sys.executable, "-m", "jdgraph.cli", "batch", "run", str(source), str(out), "--engine", "ray",
            "--actors", "2", "--batch-size", "8"]  # fmt: skip
    driver = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip

    def saved() -> int:
        with db.connection() as conn:
            row = conn.execute("SELECT count(*) AS n FROM runs WHERE input_id LIKE 'crash-%'").fetchone()
        return int(row["n"]) if row else 0

    killed_actor = False
    while driver.poll() is None:
        count = saved()
        if not killed_actor and count >= n // 3:
            workers = subprocess.run(["pgrep", "-f", "MapWorker"], capture_output=True, text=True).stdout.split()
            if workers:
                os.kill(int(workers[0]), signal.SIGKILL)
                killed_actor = True
                print(f"crash: killed actor {workers[0]} at {count} saved")
        if count >= 2 * n // 3:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
            subprocess.run(["pkill", "-9", "-f", "ray::"], capture_output=True)
            print(f"crash: killed the driver at {count} saved")
            break
        time.sleep(1)
    seconds, done = run_cli([str(source), str(out), "--engine", "ray", "--actors", "2"], env)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    ids = [x.get("id") for x in lines]
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT input_id, count(*) AS c FROM runs WHERE input_id LIKE 'crash-%' GROUP BY input_id"
        ).fetchall()
    doubled = [r["input_id"] for r in rows if r["c"] > 1]
    once = len(rows) == n and not doubled and len(set(ids)) == n
    print(f"crash: rerun {seconds:.1f}s, exit {done.returncode}; output {len(lines)} lines, {len(set(ids))} ids, "
          f"{sum(1 for x in lines if x.get('done_before'))} saved before; runs table {len(rows)} inputs, "
          f"{len(doubled)} saved twice; every item once: {once}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--skip-crash", action="store_true")
    parser.add_argument("--skip-local", action="store_true", help="Only the Ray jobs (and the crash check).")
    args = parser.parse_args()
    schema = f"bench_scale_{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "JDGRAPH_DB_SCHEMA": schema, "JDGRAPH_CATALOG": "starter"}
    db = Database(DatabaseSettings.from_env(schema=schema))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            warm = folder / "warm.jsonl"
            write_input(warm, 4, "warm")  # creates the schema and warms the embedding cache's model files
            run_cli([str(warm), str(folder / "warm-out.jsonl"), "--engine", "local"], env)
            local = None if args.skip_local else timed_job("local", folder, args.n, "local", 1, env)
            one = timed_job("ray1", folder, args.n, "ray", 1, env)
            two = timed_job("ray2", folder, args.n, "ray", 2, env)
            print(f"2 actors / 1 actor: {two / one:.2f} (target >= 1.8 on enough cores)")
            if local is not None:
                print(f"Ray's time per JD / local's: 1 actor {local / one:.2f}, 2 actors {local / two:.2f}")
            if not args.skip_crash:
                crash_job(folder, args.n, env, db)
    finally:
        db.drop_schema()


if __name__ == "__main__":
    main()
