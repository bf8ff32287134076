"""Silver ads (training data only) and the offline fusion fit that uses them."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from jdgraph.evals.silver_ads import ONET_DIR, build_silver_ads, held_out_titles, onet_esco_crosswalk
from jdgraph.evals.tune_fusion import (
    SilverCase,
    best_weights,
    new_role_separation,
    rank_metrics,
    split_by_occupation,
    weight_grid,
)
from jdgraph.settings import shared_dir
from jdgraph.trained import data
from jdgraph.trained.data import Occupation

SHARED = shared_dir()
needs_shared = pytest.mark.skipif(
    not (SHARED / data.TITLES_TRAIN).is_file() or not (SHARED / ONET_DIR).is_dir(), reason="no ../shared data"
)
URI = data.OCCUPATION_PREFIX


def _onet(root: Path, alternate: list[tuple[str, str]], reported: list[tuple[str, str]]) -> None:
    folder = root / ONET_DIR
    folder.mkdir(parents=True)
    for name, column, rows in (("Alternate Titles.txt", "Alternate Title", alternate),
                               ("Sample of Reported Titles.txt", "Reported Job Title", reported)):  # fmt: skip
        with (folder / name).open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter="\t")
            writer.writerow(["O*NET-SOC Code", column])
            writer.writerows(rows)


def test_the_crosswalk_takes_the_onet_occupation_sharing_most_labels_and_leaves_ties_out(tmp_path: Path) -> None:
    occupations = {
        URI + "geo": Occupation(URI + "geo", "geographer", ["geography scientist"], "2632"),
        URI + "tie": Occupation(URI + "tie", "tie maker", [], "7000"),
        URI + "a": Occupation(URI + "a", "shared label", [], "1000"),
        URI + "b": Occupation(URI + "b", "other", ["shared label"], "1000"),
    }
    _onet(
        tmp_path,
        alternate=[
            ("19-3092.00", "Geographer"),
            ("19-3092.00", "Geography Scientist"),
            ("11-0000.00", "geographer"),
            ("1-1", "Tie Maker"),
            ("2-2", "tie maker"),
        ],
        reported=[("3-3", "Shared Label")],  # names two ESCO occupations: no evidence for either
    )
    assert onet_esco_crosswalk(tmp_path, occupations) == {URI + "geo": "19-3092.00"}


def test_onet_tables_without_their_code_column_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / ONET_DIR
    folder.mkdir(parents=True)
    (folder / "Alternate Titles.txt").write_text("code\ttitle\nx\ty\n", encoding="utf-8")
    (folder / "Sample of Reported Titles.txt").write_text("code\ttitle\nx\ty\n", encoding="utf-8")
    with pytest.raises(data.InputError, match="not an O\\*NET table"):
        onet_esco_crosswalk(tmp_path, {})


@needs_shared
def test_silver_ads_are_seeded_held_out_training_titles_over_onet_tasks() -> None:
    """Every title is a line of the training titles the encoder held out (their files come through
    training_file, which refuses data/dev/; a title string that also occurs in a dev file is a common title, as
    14% of the dev titles are)."""
    held = held_out_titles(0.1, 13)
    ads = build_silver_ads(held[:400])
    assert ads == build_silver_ads(held[:400])  # seeded
    held_titles = {(t.title, t.occupation_uri) for t in held}
    assert ads and all((a.title, a.occupation_uri) in held_titles for a in ads)
    assert all(a.occupation_uri in a.same_job for a in ads)  # its own occupation among those its body describes
    assert all(a.description.startswith("Responsibilities:\n- ") and "\nRequirements:\n" in a.description for a in ads)


def _case(features: list[list[float]], gold: int, code: str = "c") -> SilverCase:
    flags = np.zeros(len(features), dtype=bool)
    flags[gold] = True
    return SilverCase(np.array(features), flags, code, top=0.5, margin=0.1, route="direct", chosen_correct=True)


def test_the_weight_grid_is_the_simplex_and_holds_a_given_skill_weight() -> None:
    grid = weight_grid(None, step=0.25)
    assert len(grid) == 35 and all(abs(w.sum() - 1) < 1e-9 and (w >= 0).all() for w in grid)
    held = weight_grid(0.15)
    assert held and all(w[2] == 0.15 and abs(w.sum() - 1) < 1e-9 for w in held)


def test_rank_metrics_and_the_chosen_weights_follow_the_gold_candidate() -> None:
    # The gold candidate leads on KRA and centroid, a decoy on the title.
    cases = [
        _case([[0.9, 0.2, 0.0, 0.2], [0.3, 0.8, 0.0, 0.7]], gold=1),
        _case([[0.2, 0.7, 0.0, 0.6], [0.8, 0.1, 0.0, 0.1]], gold=0),
    ]
    title_only = np.array([1.0, 0.0, 0.0, 0.0])
    assert rank_metrics(cases, title_only) == {"top1": 0.0, "top5": 1.0, "mrr": 0.5, "ads": 2}
    chosen = best_weights(cases, weight_grid(0.0, step=0.5))
    assert rank_metrics(cases, chosen)["top1"] == 1.0 and chosen[0] < 0.5


def test_the_check_half_holds_other_occupations() -> None:
    cases = [_case([[0.5, 0.5, 0.0, 0.5]], 0, code=f"c{i % 7}") for i in range(40)]
    fit, check = split_by_occupation(cases, seed=13)
    assert fit and check and len(fit) + len(check) == 40
    assert not {c.onet_code for c in fit} & {c.onet_code for c in check}


def test_the_new_role_gate_is_measured_on_the_same_ads_with_and_without_their_job() -> None:
    def case(top: float, without: float) -> SilverCase:
        return SilverCase(np.zeros((1, 4)), np.array([True]), "c", top, 0.1, "direct", True, top_without_job=without)

    separated = new_role_separation([case(0.6, 0.3), case(0.5, 0.35)], (0.4,))
    assert separated == {"auc": 1.0, "proposed (has, lacks)": {0.4: (0.0, 1.0)}}
    blind = new_role_separation([case(0.5, 0.5), case(0.3, 0.3)], (0.4,))
    assert blind["auc"] == 0.5 and blind["proposed (has, lacks)"][0.4] == (0.5, 0.5)
