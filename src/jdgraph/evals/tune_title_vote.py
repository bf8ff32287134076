"""Choose the coded-title vote's weight on held-out TRAINING titles, never on the dev suites.

``python -m jdgraph.evals.tune_title_vote [--catalog esco] [--limit N]``: the training titles are split as the
encoder's trainer splits them (seeded, every case-folded title on one side only); the held-out titles are ranked by
:func:`jdgraph.matching.roles.search_roles` with their own lines left out of the vote, and the fused score is
re-weighted offline from each candidate's recorded signals, so one pass ranks every weight of the grid. Prints MRR
and top-1 per (k, temperature, weight); the best by MRR is what :class:`ScoringParams` ships.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from jdgraph.catalog.registry import get_catalog
from jdgraph.context import Context
from jdgraph.matching.roles import RoleSignal, search_roles
from jdgraph.trained.data import TitleExample, load_titles, split_titles

WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class _LeaveOut:
    """The catalog, with one fold's lines left out of the coded-title vote."""

    def __init__(self, catalog: Any, lines: Sequence[int]) -> None:
        self._catalog, self._lines = catalog, list(lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._catalog, name)

    def nearest_title_examples(self, vector: Any, k: int, **_: Any) -> list[tuple[int, float]]:
        result: list[tuple[int, float]] = self._catalog.nearest_title_examples(vector, k, leave_out=self._lines)
        return result


def _reranked(signals: Sequence[RoleSignal], title_weight: float, weight: float) -> list[str]:
    """Re-fused at vote share ``weight`` from a ranking made at share 0 (the title score then is the recorded
    title similarity alone)."""

    def score(s: RoleSignal) -> float:
        return s.score + title_weight * weight * (s.title_vote - s.title_similarity)

    return [s.source_id or s.slug for s in sorted(signals, key=lambda s: (-score(s), s.slug))]


def tune(
    catalog_name: str, held: Sequence[TitleExample], grid: Sequence[tuple[int, float]], with_aliases: bool = True
) -> list[dict[str, Any]]:
    catalog = get_catalog(catalog_name)
    base = Context.from_env(catalog=catalog_name).scoring()
    wrapped: Any = _LeaveOut(catalog, [t.line for t in held])
    catalog.embeddings.embed_array(list(dict.fromkeys(t.title for t in held)))
    rows = []
    for k, temperature in grid:
        # Share 0 ranks without the vote but keeps the vote's candidates and records each one's vote (a share of
        # exactly 0 would skip the vote): every share of the grid is then re-fused from the same ranking.
        params = replace(base, title_vote_k=k, title_vote_temperature=temperature, title_vote_weight=1e-9,
                         title_vote_with_aliases=with_aliases)  # fmt: skip
        ranked = [search_roles(wrapped, t.title, params, k=60) for t in held]
        for weight in WEIGHTS:
            ranks = []
            for t, signals in zip(held, ranked, strict=True):
                order = _reranked(signals, base.title_weight, weight)
                ranks.append(order.index(t.occupation_uri) + 1 if t.occupation_uri in order else None)
            n = len(ranks) or 1
            rows.append({
                "k": k, "temperature": temperature, "weight": weight,
                "top1": round(sum(r == 1 for r in ranks) / n, 4),
                "top5": round(sum(1 for r in ranks if r and r <= 5) / n, 4),
                "mrr": round(sum(1 / r for r in ranks if r and r <= 10) / n, 4),
            })  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jdgraph.evals.tune_title_vote")
    parser.add_argument("--catalog", default="esco")
    parser.add_argument("--limit", type=int, help="only the first N held-out titles")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    _, held = split_titles(load_titles(), 0.1, args.seed)
    held = held[: args.limit] if args.limit else held
    rows = []
    for with_aliases in (True,):
        print(f"title_vote_with_aliases={with_aliases}")
        rows += [{**r, "with_aliases": with_aliases}
                 for r in tune(args.catalog, held, list(itertools.product((20,), (0.1,))), with_aliases)]  # fmt: skip
    best = max(rows, key=lambda r: (r["mrr"], r["top1"]))
    print(f"held-out training titles: {len(held)}; best by MRR: {best}")


if __name__ == "__main__":
    main()
