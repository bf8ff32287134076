"""Tokens, latency, fallback rate and cost per step and per JD from an eval run's ``results.json``.

Cost is shown at the listed prices of every model in the price table (``jdgraph.graph.llm.DEFAULT_PRICES``, or
``JDGRAPH_PRICES``) for the same token counts: what the run would cost on each of them, next to the seed system's
$0.0109 and 12.4 s per JD.

Run: ``python benchmarks/llm_cost.py evals/runs/<run>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from jdgraph.graph.llm import price_table

SEED_COST_PER_JD = 0.0109
SEED_SECONDS_PER_JD = 12.4
STEPS = ("parse", "extract", "adjudicate", "enrich")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    run = json.loads(args.results.read_text(encoding="utf-8"))
    outputs = [c["output"] for c in run["cases"] if c.get("output")]
    n = len(outputs)
    per_step: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for o in outputs:
        seen: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for call in o["llm_calls"]:
            s = seen[call["node"]]
            s["in"] += call.get("input_tokens", 0)
            s["out"] += call.get("output_tokens", 0)
            s["ms"] += call.get("latency_ms", 0.0)
            s["calls"] += 1
            s["fallback"] = max(s["fallback"], 1.0 if call.get("outcome") == "fallback" else 0.0)
        for step, s in seen.items():
            for k, v in s.items():
                per_step[step][k].append(v)
    print(f"{run['config']['suite']} · models {sorted(set(run['config']['models'].values()))} · {n} JDs")
    print(f"{'step':<11} {'JDs':>4} {'calls/JD':>8} {'in tok/JD':>9} {'out tok/JD':>10} {'latency s/JD':>12} "
          f"{'fell back':>9}")  # fmt: skip
    totals = {"in": 0.0, "out": 0.0, "ms": 0.0}
    for step in STEPS:
        s = per_step.get(step)
        if not s:
            continue
        jds = len(s["calls"])
        tin, tout, ms = (sum(s[k]) / n for k in ("in", "out", "ms"))
        totals["in"] += tin
        totals["out"] += tout
        totals["ms"] += ms
        print(f"{step:<11} {jds:>4} {statistics.fmean(s['calls']):>8.2f} {tin:>9.0f} {tout:>10.0f} {ms / 1000:>12.2f} "
              f"{sum(s['fallback']) / jds:>9.0%}")  # fmt: skip
    print(f"{'per JD':<11} {n:>4} {'':>8} {totals['in']:>9.0f} {totals['out']:>10.0f} {totals['ms'] / 1000:>12.2f}")
    print(f"\nseed system: ${SEED_COST_PER_JD:.4f} and {SEED_SECONDS_PER_JD} s per JD")
    print(f"{'model (listed price)':<22} {'$/1M in':>8} {'$/1M out':>9} {'$/JD':>9} {'vs seed':>8}")
    for model, (pin, pout) in sorted(price_table().items(), key=lambda kv: kv[1]):
        cost = (totals["in"] * pin + totals["out"] * pout) / 1_000_000
        print(f"{model:<22} {pin:>8.2f} {pout:>9.2f} {cost:>9.5f} {cost / SEED_COST_PER_JD:>8.2f}")


if __name__ == "__main__":
    main()
