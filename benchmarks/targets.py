"""Issue 18's "must reach" table: every dev suite through the pipeline as configured (deterministic path, ESCO),
each figure beside its target, plus the new-role routes, the shipped tagger's and encoder's sizes and training times.

Needs an ESCO catalog embedded with the configured encoder (``jdgraph catalog import esco
../shared/data/esco-v1.1.1``) and the coded training titles in it (``jdgraph catalog import titles
../shared/data/train/jobbert-titles-train.csv``). About 6 minutes on 2 cores. Speed is ``benchmarks/pipeline.py
--catalog esco``'s. Run: ``python benchmarks/targets.py [--catalog esco]``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from jdgraph.evals.dev import DEV_SUITES, run_dev_suite
from jdgraph.trained.compact import shipped_card
from jdgraph.trained.compact_encoder import shipped_encoder_card

TARGETS: list[tuple[str, str, str, float]] = [
    # (suite, metric, comparison, target)
    ("hahu-dev", "top1", ">=", 0.60),
    ("hahu-dev", "top5", ">=", 0.85),
    ("hahu-dev", "ece", "<=", 0.05),
    ("titles-dev", "top1", ">=", 0.40),
    ("titles-dev", "mrr", ">=", 0.50),
    ("tech-dev", "rp5", ">=", 65.0),
    ("house-dev", "rp5", ">=", 55.0),
    ("skillspan-dev", "tech_knowledge_recall", ">=", 0.70),
    ("skillspan-dev", "tech_evidence_precision", ">=", 0.70),
    ("skillspan-dev", "house_skill_recall", ">=", 0.40),
    ("skillspan-dev", "new_skill_proposal_precision", ">=", 0.80),
]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python benchmarks/targets.py")
    parser.add_argument("--catalog", default="esco")
    args = parser.parse_args()
    runs = {suite: run_dev_suite(suite, catalog=args.catalog) for suite in DEV_SUITES}
    print(f"{'suite':15} {'metric':30} {'value':>8}  target   met")
    for suite, metric, op, target in TARGETS:
        value = runs[suite].metrics[metric]
        met = value >= target if op == ">=" else value <= target
        print(f"{suite:15} {metric:30} {value:8.3f}  {op} {target:<6} {'yes' if met else 'NO'}")
    routes = Counter(str(c.detail.get("route")) for c in runs["hahu-dev"].results)
    print(f"hahu-dev routes: {dict(routes)} (every ad is labelled with an ESCO occupation: a new-role route on it is an"
          " alias of an existing role)")  # fmt: skip
    print(f"skillspan-dev new-skill proposals: {runs['skillspan-dev'].metrics['proposals']:.0f}")
    card = shipped_card()
    print(f"shipped tagger: {card.get('exported_from')}, {card.get('size_bytes', 0) / 1e6:.1f} MB, trained in "
          f"{card.get('training_time_s')} s, threshold {card.get('threshold')}")  # fmt: skip
    enc = shipped_encoder_card()
    print(f"shipped encoder (the default embeddings): {enc.get('exported_from')}, {enc.get('size_bytes', 0) / 1e6:.1f} "
          f"MB, trained in {enc.get('training_time_s')} s, top-1 identical to float32 on held-out training titles "
          f"{enc.get('top1_identical_to_float32_on_held_out_titles')}")  # fmt: skip
    print(json.dumps({s: r.wall_s for s, r in runs.items()}), "(wall seconds per suite)")


if __name__ == "__main__":
    main()
