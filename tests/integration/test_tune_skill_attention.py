"""The rerank's tuning script: silver cases from training spans that are catalog aliases, one row per setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jdgraph.evals.tune_skill_attention import TEMPERATURES, WEIGHTS, silver_cases, tune

pytestmark = pytest.mark.integration

LINE = "You will write Terraform modules and review them with the platform team"
TEXT = f"Platform Engineer\n{LINE}\nBenefits: bikes\nYou care about fluffy unicorn herding a lot"


def _postings(tmp_path: Path) -> Path:
    def span(words: str, kind: str) -> dict[str, object]:
        start = TEXT.index(words)
        return {"start": start, "end": start + len(words), "type": kind, "text": words}

    spans = [span("Terraform", "knowledge"), span("bikes", "skill"), span("fluffy unicorn herding", "skill")]
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"id": "t1", "source": "tech", "text": TEXT, "spans": spans}) + "\n", encoding="utf-8")
    return path


def test_silver_cases_keep_only_long_lines_whose_span_is_a_catalog_alias(catalog, tmp_path: Path) -> None:
    cases = silver_cases(catalog, _postings(tmp_path), limit=10)
    # "Benefits: bikes" is under four words; "fluffy unicorn herding" names no catalog skill
    assert cases == [(LINE, {"Terraform"})]


def test_tune_scores_every_setting_and_weight_zero_is_the_pooled_search(catalog, tmp_path: Path) -> None:
    rows = tune("starter", _postings(tmp_path), limit=10)
    assert {(r["temperature"], r["weight"]) for r in rows} == {(t, w) for t in TEMPERATURES for w in WEIGHTS}
    pooled = catalog.nearest_skills_hybrid(catalog.embeddings.embed_array([LINE])[0], k=10)
    rank = next(i + 1 for i, c in enumerate(pooled) if c.skill.display_name == "Terraform")
    for row in rows:
        assert row["cases"] == 1
        if row["weight"] == 0.0:
            assert row["mrr"] == pytest.approx(1 / rank)
