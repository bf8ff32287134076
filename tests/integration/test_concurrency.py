"""Concurrency (issue 12): many workers on JDs that share roles, known skills and unknown skills, a third of them
re-posted texts, checked row by row — the same check as ``benchmarks/reliability.py`` (200 JDs there, 48 here):
one run per JD, one review item per proposal whose count equals the distinct texts linked to it, each role's
centroid n and vector equal to a recomputation from scratch, and the same batch again changes nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _reliability():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("reliability", ROOT / "benchmarks" / "reliability.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eight_workers_sharing_roles_and_unknown_skills_lose_and_double_nothing(catalog) -> None:
    reliability = _reliability()
    tally = reliability.Tally()
    reliability.concurrency(tally, catalog, 48, 8)
    counts = tally.rows
    assert counts["concurrent"] == 96 and counts["rows_checked"] > 48  # both passes ran and rows were read
    assert counts["lost"] == 0 and counts["double"] == 0 and counts["crashes"] == 0, dict(counts)
