"""The title encoder: hard negatives are siblings, training is seeded and reproducible, and the fused ranker lets
the nearest training titles vote."""

from __future__ import annotations

import random
from typing import ClassVar

import numpy as np
import pytest

from jdgraph.errors import InputError
from jdgraph.trained.data import Occupation, Skill, TitleExample, split_titles
from jdgraph.trained.encoder import (
    EncoderParams,
    RankParams,
    TitleRanker,
    build_pairs,
    build_skill_pairs,
    kind_batches,
    lookup_baseline,
    rank_metrics,
    sibling_map,
    train_encoder,
)

U = "http://data.europa.eu/esco/occupation/"


def _occupations() -> dict[str, Occupation]:
    return {
        U + "dev": Occupation(U + "dev", "software developer", ["programmer", "coder"], "2512"),
        U + "web": Occupation(U + "web", "web developer", ["frontend developer"], "2513"),
        U + "ana": Occupation(U + "ana", "software analyst", ["systems analyst"], "2512"),
        U + "cook": Occupation(U + "cook", "cook", ["chef"], "5120"),
    }


def test_hard_negatives_come_from_the_same_isco_group_and_are_never_the_positive() -> None:
    occupations = _occupations()
    assert sibling_map(occupations)[U + "dev"] == [U + "ana"]
    assert sibling_map(occupations)[U + "web"] == [U + "dev", U + "ana"]  # no unit-group sibling: the minor group
    titles = [TitleExample("Java Developer", U + "dev", 2), TitleExample("Sous chef", U + "cook", 3)]
    pairs = build_pairs(titles, occupations, seed=1)
    assert pairs[0].negative == "software analyst" and pairs[0].positive == "software developer"
    assert all(p.negative_target != p.target for p in pairs)
    assert {(p.anchor, p.positive) for p in pairs} >= {("coder", "software developer"), ("chef", "cook")}
    assert len(build_pairs(titles, occupations, seed=1, use_alt_labels=False)) == 2


def test_a_title_coded_to_an_unknown_occupation_names_its_line() -> None:
    with pytest.raises(InputError, match="line 7"):
        build_pairs([TitleExample("x", U + "gone", 7)], _occupations(), seed=1)


def test_the_held_out_split_keeps_each_title_string_on_one_side() -> None:
    titles = [TitleExample(f"title {i % 30}", U + "dev", i) for i in range(100)]
    fit, held = split_titles(titles, 0.2, seed=3)
    assert {t.title.lower() for t in fit}.isdisjoint({t.title.lower() for t in held})
    assert len(fit) + len(held) == 100 and held
    assert split_titles(titles, 0.2, seed=3) == (fit, held)


def test_lookup_baseline_ranks_the_most_frequent_label_first_and_misses_unknown_titles() -> None:
    index = [TitleExample("Chef", U + "cook", 2), TitleExample("chef ", U + "cook", 3)]
    index.append(TitleExample("CHEF", U + "dev", 4))
    assert lookup_baseline(index, ["chef", "Pilot"]) == [[U + "cook", U + "dev"], []]
    assert rank_metrics([[U + "cook", U + "dev"], []], [U + "dev", U + "cook"]) == {"top1": 0.0, "top5": 0.5,
                                                                                    "mrr": 0.25}  # fmt: skip


class OneHot:
    """A stand-in encoder: each known word is one axis, so the test can say exactly which labels are near."""

    words: ClassVar[list[str]] = ["software", "developer", "analyst", "cook", "chef", "programmer", "coder", "web",
                                  "frontend", "systems", "ninja", "rockstar"]  # fmt: skip

    def encode(self, texts, **_: object) -> np.ndarray:  # type: ignore[no-untyped-def]
        out = np.zeros((len(texts), len(self.words)), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                if w in self.words:
                    out[i, self.words.index(w)] = 1
            out[i] /= max(np.linalg.norm(out[i]), 1e-6)
        return out


def test_the_nearest_training_titles_vote_for_their_occupation() -> None:
    occupations = _occupations()
    index = [TitleExample("code ninja", U + "dev", 2), TitleExample("ninja rockstar", U + "dev", 3)]
    ranker = TitleRanker(OneHot(), occupations, index)
    labels_only = ranker.rank(["ninja"], RankParams(vote_weight=0.0))
    fused = ranker.rank(["ninja"], RankParams(k=2, vote_weight=0.5))
    assert fused[0][0] == U + "dev" and labels_only[0][0] != U + "dev"
    # Alt labels count unless the ranking is by preferred label alone.
    assert ranker.rank(["chef"], RankParams(vote_weight=0.0))[0][0] == U + "cook"
    assert ranker.rank(["coder"], RankParams(vote_weight=0.0, preferred_only=True))[0][0] != U + "dev"


def test_training_is_seeded_and_reproducible() -> None:
    titles = [TitleExample(t, U + o, i) for i, (t, o) in enumerate(
        [("Java Developer", "dev"), ("Line Cook", "cook"), ("React Engineer", "web"), ("Business Analyst", "ana")]
        * 2)]  # fmt: skip
    pairs = build_pairs(titles, _occupations(), seed=5, use_alt_labels=False)
    params = EncoderParams(batch_size=4, epochs=1, seed=5, max_seq_length=8)
    runs = []
    for _ in range(2):
        losses: list[float] = []

        def record(step: int, total: int, loss: float, into: list[float] = losses) -> None:
            into.append(loss)

        model = train_encoder(pairs, params, progress=record)
        runs.append((losses, model.encode(["chef"], normalize_embeddings=True)))
    assert len(runs[0][0]) == 2
    assert runs[0][0] == runs[1][0]
    assert np.allclose(runs[0][1], runs[1][1], atol=1e-6)


def test_a_step_budget_stops_training_and_ends_the_learning_rate_schedule_there() -> None:
    titles = [TitleExample(f"Developer {i}", U + "dev", i) for i in range(4)]
    titles += [TitleExample(f"Cook {i}", U + "cook", i) for i in range(4)]
    pairs = build_pairs(titles, _occupations(), seed=5, use_alt_labels=False)
    steps: list[tuple[int, int]] = []
    train_encoder(pairs, EncoderParams(batch_size=2, max_steps=2, seed=5, max_seq_length=8),
                  progress=lambda step, total, loss: steps.append((step, total)))  # fmt: skip
    assert steps == [(1, 2), (2, 2)]


def test_skill_pairs_leave_out_held_skills_and_batches_keep_to_one_kind() -> None:
    skills = {
        "s1": Skill("s1", "manage staff", ("supervise staff",), "skill/competence", "Direct the work of employees."),
        "s2": Skill("s2", "manage budgets", ("budget management",), "skill/competence", "Plan and monitor budgets."),
        "s3": Skill("s3", "bake bread", ("bread baking",), "skill/competence", "Bake loaves of bread."),
    }
    pairs = build_skill_pairs(skills, seed=1, exclude={"s3"})
    assert {p.target for p in pairs} == {"s1", "s2"} and all(p.negative_target != p.target for p in pairs)
    assert {(p.anchor, p.kind) for p in pairs if p.target == "s1"} == {
        ("supervise staff", "skill-label"), ("Direct the work of employees.", "skill-sentence")}  # fmt: skip
    # "manage staff" and "manage budgets" share a word: each is the other's hard negative.
    assert {p.negative for p in pairs} == {"manage staff", "manage budgets"}
    mixed = pairs * 4 + build_pairs([TitleExample("Java Developer", U + "dev", 1)] * 4, _occupations(), seed=1,
                                     use_alt_labels=False)  # fmt: skip
    for batch in kind_batches(mixed, 2, random.Random(1)):
        assert len({mixed[i].kind for i in batch}) == 1 and len(batch) == 2
