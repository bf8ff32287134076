"""Round-trip latency of one JD through the LangGraph server (`langgraph dev`, the `[server]` extra).

Starts `langgraph dev` on 127.0.0.1 (offline) on the current JDGRAPH_HOME, warms it with one run, then sends the
Rust sample JD N times through `langgraph_sdk` (`runs.wait`, stateless, persist off) and prints p50/p95/max of the
client-side round trip. Run: ``python benchmarks/server.py [--n 20]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    from langgraph_sdk import get_sync_client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false"}
    binary = str(Path(sys.executable).parent / "langgraph")
    proc = subprocess.Popen(
        [binary, "dev", "--host", "127.0.0.1", "--port", str(port), "--no-browser", "--no-reload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ok", timeout=2):
                    break
            except OSError:
                if time.perf_counter() - t0 > 180:
                    raise SystemExit("langgraph dev did not start") from None
                time.sleep(0.5)
        print(f"server up in {time.perf_counter() - t0:.1f} s")
        client = get_sync_client(url=url)
        jd = (ROOT / "examples" / "rust-developer.txt").read_text(encoding="utf-8")
        t0 = time.perf_counter()
        client.runs.wait(None, "jdgraph", input={"jd_text": jd}, context={"persist": False})
        print(f"first run (loads the model and catalog): {time.perf_counter() - t0:.2f} s")
        times = []
        for _ in range(args.n):
            t0 = time.perf_counter()
            out = client.runs.wait(None, "jdgraph", input={"jd_text": jd}, context={"persist": False})
            times.append((time.perf_counter() - t0) * 1000)
            assert out["result"]["decision"]["chosen_role"]["slug"] == "systems-software-engineer"
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"round trip over {args.n} runs: p50 {statistics.median(times):.0f} ms, p95 {p95:.0f} ms, "
              f"max {times[-1]:.0f} ms")  # fmt: skip
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
