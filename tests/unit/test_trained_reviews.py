"""Training examples from review decisions (``jdgraph models train ... --from-reviews``): what each decision
teaches, and that a reviewed sentence teaches nothing about the words nobody reviewed."""

from __future__ import annotations

from typing import Any

from jdgraph.trained.data import Skill
from jdgraph.trained.encoder import base_model_path
from jdgraph.trained.reviews import ReviewDecision, decisions_from_queue, review_pairs, review_postings
from jdgraph.trained.tagger import IGNORED, LABEL_ID, encode_posting

SENTENCE = "Experience with Dagster and at least 1 year of Python."


def _item(item_id: int, kind: str, status: str, payload: dict[str, Any], decision: dict[str, Any] | None) -> dict:
    return {"id": item_id, "kind": kind, "status": status, "payload": payload, "decision": decision}


def test_queue_items_become_decisions_with_the_skill_an_approval_named() -> None:
    items = [
        _item(1, "new_skill", "approved", {"name": "Dagster", "evidence": SENTENCE,
              "profile": {"nature": "TOOL"}}, {"skill_created": "dagster", "name": "Dagster"}),
        _item(2, "new_skill", "rejected", {"name": "at least 1", "evidence": SENTENCE}, {"reason": "not a skill"}),
        _item(3, "new_alias", "approved", {"alias": "k8s", "skill": "kubernetes"}, {"skill": "kubernetes"}),
        _item(4, "new_kra", "approved", {"role": "x", "text": "y"}, {}),  # not a skill: not training data
        _item(5, "new_skill", "pending", {"name": "Temporal"}, None),  # undecided
    ]  # fmt: skip
    decisions = decisions_from_queue(items, lambda slug: {"kubernetes": "Kubernetes"}[slug])
    assert [(d.item_id, d.status, d.name, d.skill) for d in decisions] == [
        (1, "approved", "Dagster", None),
        (2, "rejected", "at least 1", None),
        (3, "approved", "k8s", "Kubernetes"),
    ]
    assert decisions[0].span_type == "knowledge"


def test_a_reviewed_sentence_labels_only_the_reviewed_words() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()))
    approved = ReviewDecision(1, "new_skill", "approved", "Dagster", SENTENCE)
    rejected = ReviewDecision(2, "new_skill", "rejected", "at least 1", SENTENCE)
    gone = ReviewDecision(3, "new_skill", "approved", "Airflow", SENTENCE)  # not in its evidence: nothing to label
    postings = review_postings([approved, rejected, gone])
    assert [p.id for p in postings] == ["review:1", "review:2"] and all(p.partial for p in postings)

    def labelled(posting: Any) -> dict[str, str]:
        enc = encode_posting(tokenizer, posting)
        names = {v: k for k, v in LABEL_ID.items()}
        return {SENTENCE[a:b]: names[lab] for (a, b), lab in zip(enc.offsets, enc.labels, strict=True)
                if lab != IGNORED}  # fmt: skip

    # "Python" is a skill nobody reviewed here: left out of the loss, never taught as "not a skill".
    assert set(labelled(postings[0]).values()) <= {"B-knowledge", "I-knowledge"}
    assert "Python" not in labelled(postings[0]) and "Python" not in labelled(postings[1])
    assert labelled(postings[1]) == {"at": "O", "least": "O", "1": "O"}


def test_approved_aliases_become_encoder_pairs() -> None:
    skills = {"u1": Skill("u1", "use Kubernetes", (), "knowledge"), "u2": Skill("u2", "bake bread", (), "skill")}
    decisions = [
        ReviewDecision(3, "new_alias", "approved", "k8s", None, skill="Kubernetes"),
        ReviewDecision(4, "new_alias", "rejected", "kube", None),
        ReviewDecision(5, "new_skill", "approved", "Dagster", SENTENCE),  # a new skill as itself: no pair
    ]
    pairs = review_pairs(decisions, skills, seed=1)
    assert [(p.anchor, p.positive) for p in pairs] == [("k8s", "Kubernetes")]
    assert pairs[0].negative in {"use Kubernetes", "bake bread"}


def test_from_reviews_hands_the_decisions_to_either_trainer(monkeypatch: Any) -> None:
    # The encoder's command once dropped them: --from-reviews trained an encoder without its reviewers' pairs.
    from typer.testing import CliRunner

    import jdgraph.cli.models as cli_models
    import jdgraph.trained.train as train

    decisions = [ReviewDecision(3, "new_alias", "approved", "k8s", None, skill="Kubernetes")]
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli_models, "_review_decisions", lambda catalog: decisions)
    for name in ("train_encoder_artefact", "train_tagger_artefact"):
        monkeypatch.setattr(train, name, lambda model_id, params, name=name, **kw: seen.setdefault(name, kw) and {})
    for kind in ("encoder", "span-tagger"):
        done = CliRunner().invoke(cli_models.models_app, ["train", kind, "--from-reviews"])
        assert done.exit_code == 0, done.output
    assert seen["train_encoder_artefact"]["reviews"] == decisions
    assert seen["train_tagger_artefact"]["reviews"] == decisions
