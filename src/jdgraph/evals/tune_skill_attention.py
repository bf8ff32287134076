"""Choose the token-attention rerank's weight and temperature on TRAINING data, never on the dev suites.

``python -m jdgraph.evals.tune_skill_attention [--catalog esco] [--limit N]``: the cases are SkillSpan training
lines (``../shared/data/train/skillspan-train.jsonl``, lines of four words or more) with every annotated span that
is an ESCO alias, exactly or normalised, as the line's gold skills (silver labels: a span the taxonomy words
differently is not a case). Each line is searched as :meth:`Catalog.search_skills` searches it; the pooled
candidates are then reranked at every (temperature, weight) of the grid. Prints RP@5, RP@10 and MRR per setting;
the weight 0 row is the pooled search alone. The best RP@5 (MRR breaks ties) is what ``catalog.queries`` ships.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jdgraph.catalog.queries import SKILL_RERANK_CANDIDATES
from jdgraph.catalog.registry import get_catalog
from jdgraph.evals.dev import DevCase, sentence_metrics
from jdgraph.settings import shared_dir

TEMPERATURES = (0.05, 0.1, 1.0)
WEIGHTS = (0.0, 0.3, 0.5, 0.7, 1.0)


def silver_cases(catalog: Any, path: Path, limit: int, seed: int = 7) -> list[tuple[str, set[str]]]:
    """(line, the ESCO skills its annotated spans name) for a seeded sample of ``limit`` training lines."""
    spans: list[tuple[str, str]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        posting = json.loads(raw)
        text = posting["text"]
        for span in posting["spans"]:
            start = text.rfind("\n", 0, span["start"]) + 1
            end = text.find("\n", span["end"])
            line = text[start : len(text) if end < 0 else end].strip()
            if len(line.split()) >= 4:
                spans.append((line, span["text"]))
    gold: dict[str, set[str]] = defaultdict(set)
    for (line, _), match in zip(spans, catalog.lookup_skills([t for _, t in spans], accept=None), strict=True):
        if match.skill is not None and not match.ambiguous:
            gold[line].add(match.skill.display_name)
    cases = sorted(gold.items())
    random.Random(seed).shuffle(cases)
    return cases[:limit]


def tune(catalog_name: str, path: Path, limit: int) -> list[dict[str, Any]]:
    catalog = get_catalog(catalog_name)
    cases = silver_cases(catalog, path, limit)
    ranked: dict[tuple[float, float], list[list[str]]] = defaultdict(list)
    for line, _ in cases:
        vector = catalog.embeddings.embed_array([line])[0]
        tokens = catalog.embeddings.token_vectors(line)
        if tokens is None:
            raise SystemExit(f"{catalog.embeddings.model_id} gives no word-piece vectors: nothing to tune")
        pooled = catalog.nearest_skills_hybrid(vector, k=SKILL_RERANK_CANDIDATES)
        for temperature, weight in itertools.product(TEMPERATURES, WEIGHTS):
            order = catalog.rerank_by_attention(pooled, tokens, weight=weight, temperature=temperature)
            ranked[(temperature, weight)].append([c.skill.display_name for c in order[:10]])
    rows = []
    for (temperature, weight), lists in ranked.items():
        scored = [
            DevCase(id=str(i), expected=sorted(gold), ranked=r)
            for i, (r, (_, gold)) in enumerate(zip(lists, cases, strict=True))
        ]
        rows.append({"temperature": temperature, "weight": weight, "cases": len(scored), **sentence_metrics(scored)})
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="esco")
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--data", type=Path, default=shared_dir() / "data" / "train" / "skillspan-train.jsonl")
    args = parser.parse_args(argv)
    rows = tune(args.catalog, args.data, args.limit)
    for row in rows:
        print(f"temperature {row['temperature']:<5} weight {row['weight']:<4} RP@5 {row['rp5']:5.1f} "
              f"RP@10 {row['rp10']:5.1f} MRR {row['mrr']:.3f} ({row['cases']} lines)")  # fmt: skip
    best = max(rows, key=lambda r: (r["rp5"], r["mrr"]))
    print(f"best: temperature {best['temperature']}, weight {best['weight']}")


if __name__ == "__main__":
    main()
