"""Load test of ``jdgraph serve`` on loopback: throughput and latency with 1 and 2 workers, against in-process calls.

Bounded: N requests (real ads from ``$JDGRAPH_SHARED/data/dev/hahu-dev.jsonl``, Tabiya/Hahu, CC BY 4.0, each with
a fresh run id), C at a time, to 127.0.0.1 only, on a fresh schema of the starter catalog. Prints for each
worker count: requests/s, p50/p95 latency, failures, then checks that every run id was saved exactly once (none
lost, none doubled) and how many connections the server had open (at most workers × JDGRAPH_DB_POOL_MAX + the
checker's). The in-process figure is ``jdgraph.classify`` one call at a time in this process; an unsaturated
server's p95 is compared with it (target: within 1.5×), and 2 workers' throughput with 1's (target: 1.8×; on 2
cores the workers share them with PostgreSQL, so read the ratio as what saturates).
Run: ``python benchmarks/serve.py [--n 60] [--clients 4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil

from jdgraph.catalog.db import Database
from jdgraph.settings import DatabaseSettings, shared_dir
from scale import cpu_busy  # this folder's scale.py: one home for the CPU-busy share


def ads(n: int) -> list[str]:
    rows = [json.loads(x) for x in (shared_dir() / "data" / "dev" / "hahu-dev.jsonl").read_text().splitlines() if x]
    return [f"{rows[i % len(rows)].get('title', '')}\n{rows[i % len(rows)].get('description', '')}" for i in range(n)]


def post(base: str, text: str, run_id: str) -> tuple[float, int]:
    body = json.dumps({"text": text, "run_id": run_id}).encode()
    req = urllib.request.Request(f"{base}/classify", data=body, headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return time.perf_counter() - start, status


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def open_connections(db: Database) -> int:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend'"
        ).fetchone()
    return int(row["n"]) if row else 0


def serve(workers: int, texts: list[str], clients: int, env: dict[str, str], db: Database) -> float:
    before = open_connections(db)  # this process's own pools, and anything else on the server
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "jdgraph.cli", "serve", "--workers", str(workers), "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(1)
    for text in texts[:clients]:  # each worker's first calls warm its caches
        post(base, text, str(uuid.uuid4()))
    ids = [str(uuid.uuid4()) for _ in texts]
    cpu_before = psutil.cpu_times()
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda a: post(base, *a), zip(texts, ids, strict=True)))
    total = time.perf_counter() - start
    busy = cpu_busy(cpu_before, psutil.cpu_times())
    with db.connection() as conn:
        saved = conn.execute(
            "SELECT run_id::text AS id, count(*) AS c FROM runs WHERE run_id::text = ANY(%s) GROUP BY 1", (ids,)
        ).fetchall()
    connections = open_connections(db) - before
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    latencies = [t for t, status in results if status == 200]
    failed = sum(1 for _, status in results if status != 200)
    doubled = sum(1 for r in saved if r["c"] > 1)
    rate = len(texts) / total
    p50 = statistics.median(latencies) * 1000
    print(f"{workers} worker(s), {clients} clients: {rate:.2f} req/s; p50 {p50:.0f} ms, "
          f"p95 {p95(latencies) * 1000:.0f} ms; {failed} failed; saved {len(saved)} of {len(ids)}, {doubled} twice; "
          f"workers' connections {connections} (budget {workers} × {env.get('JDGRAPH_DB_POOL_MAX', 8)}); machine busy "
          f"{busy:.0%} of {psutil.cpu_count()} cores")  # fmt: skip
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    schema = f"bench_serve_{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "JDGRAPH_DB_SCHEMA": schema, "JDGRAPH_CATALOG": "starter", "JDGRAPH_DB_POOL_MAX": "4"}
    os.environ.update({"JDGRAPH_DB_SCHEMA": schema, "JDGRAPH_CATALOG": "starter"})
    db = Database(DatabaseSettings.from_env(schema=schema))
    texts = ads(args.n)
    try:
        import jdgraph

        jdgraph.classify(texts[0], run_id=str(uuid.uuid4()))  # the schema, the catalog and the models, once
        local = []
        for text in texts[: min(20, len(texts))]:
            start = time.perf_counter()
            jdgraph.classify(text, run_id=str(uuid.uuid4()))
            local.append(time.perf_counter() - start)
        print(f"in process, one at a time: p50 {statistics.median(local) * 1000:.0f} ms, "
              f"p95 {p95(local) * 1000:.0f} ms")  # fmt: skip
        serve(1, texts, 1, env, db)  # unsaturated: one client at a time, its p95 against the in-process one
        one = serve(1, texts, args.clients, env, db)
        two = serve(2, texts, args.clients, env, db)
        print(f"throughput 2 workers / 1 worker with {args.clients} clients: {two / one:.2f} (target >= 1.8)")
    finally:
        db.drop_schema()


if __name__ == "__main__":
    main()
