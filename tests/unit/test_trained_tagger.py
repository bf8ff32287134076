"""The span tagger: BIO labels line up with the annotated characters, windows cover the posting, decoding makes
whole-word spans, and a tiny training run tags text."""

from __future__ import annotations

import math

import numpy as np

from jdgraph.trained.data import Posting, Span
from jdgraph.trained.encoder import base_model_path
from jdgraph.trained.evaluate import span_metrics
from jdgraph.trained.tagger import (
    LABEL_ID,
    LABELS,
    SpanTagger,
    TaggerParams,
    decode,
    encode_posting,
    load_tagger,
    train_tagger,
    windows,
)

TEXT = "Experience with JavaScript and team leadership required."
POSTING = Posting("t", "tech", TEXT, (Span(16, 26, "knowledge"), Span(31, 46, "skill")))


def test_bio_labels_follow_the_annotated_characters() -> None:
    tokenizer, _ = load_tagger(base_model_path())
    enc = encode_posting(tokenizer, POSTING)
    tagged = [(TEXT[a:b], LABELS[label]) for (a, b), label in zip(enc.offsets, enc.labels, strict=True)]
    inside = [(t, label) for t, label in tagged if label != "O"]
    knowledge = [(t, label) for t, label in inside if label.endswith("knowledge")]
    assert "".join(t for t, _ in knowledge) == "JavaScript"  # however many word pieces it takes
    assert [label for _, label in knowledge] == ["B-knowledge"] + ["I-knowledge"] * (len(knowledge) - 1)
    assert ("team", "B-skill") in inside and ("leadership", "I-skill") in inside
    assert ("Experience", "O") in tagged and ("required", "O") in tagged


def test_windows_cover_every_token_with_room_for_the_special_tokens() -> None:
    assert windows(10, 128, 96) == [(0, 10)]
    spans = windows(300, 128, 96)
    assert all(b - a == 126 for a, b in spans) and spans[-1][1] == 300
    covered = set().union(*(range(a, b) for a, b in spans))
    assert covered == set(range(300))


def test_decoding_joins_tokens_into_whole_word_spans_of_one_type() -> None:
    text = "Use JavaScript daily"
    offsets = [(0, 3), (4, 8), (8, 14), (15, 20)]
    probs = np.zeros((4, len(LABELS)), dtype=np.float32)
    probs[:, LABEL_ID["O"]] = 1.0
    probs[1] = 0
    probs[1, LABEL_ID["B-knowledge"]] = 0.9
    probs[1, LABEL_ID["O"]] = 0.1
    probs[2] = 0
    probs[2, LABEL_ID["I-knowledge"]] = 0.6
    probs[2, LABEL_ID["O"]] = 0.4
    assert decode(text, probs, offsets, 0.5) == [Span(4, 14, "knowledge")]
    # Below the threshold the word piece "Script" is out, but the span still covers the whole word.
    assert decode(text, probs, offsets, 0.7) == [Span(4, 14, "knowledge")]
    assert decode(text, probs, offsets, 0.95) == []


def test_span_metrics_count_overlaps_per_source_and_type() -> None:
    house = Posting("h", "house", "Cook meals", (Span(0, 10, "skill"),))
    metrics = span_metrics([POSTING, house], [[Span(16, 20, "knowledge"), Span(0, 10, "skill")], []])
    assert metrics["tech_knowledge_recall"] == 1.0 and metrics["tech_skill_recall"] == 0.0
    assert metrics["tech_precision"] == 0.5 and metrics["house_skill_recall"] == 0.0
    assert metrics["tech_exact_f1"] == 0.0


def test_a_tiny_training_run_is_reproducible_and_tags_text() -> None:
    params = TaggerParams(epochs=1, batch_size=2, window=16, stride=12, seed=3)
    runs = []
    for _ in range(2):
        losses: list[float] = []

        def record(step: int, total: int, loss: float, into: list[float] = losses) -> None:
            into.append(loss)

        tokenizer, model = train_tagger([POSTING], params, base=base_model_path(), progress=record)
        runs.append(losses)
    assert runs[0] == runs[1] and len(runs[0]) == 1
    spans = SpanTagger(tokenizer, model, params, 0.5).tag(TEXT)
    assert all(isinstance(s, Span) and s.type in ("skill", "knowledge") for s in spans)
    assert all(TEXT[s.start : s.end].strip() == TEXT[s.start : s.end] for s in spans)


def test_a_partially_labelled_review_sentence_trains_with_a_finite_loss() -> None:
    reviewed = Posting("review:1", "review", "We use Dagster daily.", (Span(7, 14, "knowledge"),), partial=True)
    refused = Posting("review:2", "review", "At least 1 year.", (), not_spans=(Span(0, 10, "knowledge"),), partial=True)
    losses: list[float] = []
    train_tagger([POSTING, reviewed, refused], TaggerParams(epochs=1, batch_size=3, window=16, stride=12, seed=3),
                 base=base_model_path(), progress=lambda step, total, loss: losses.append(loss))  # fmt: skip
    assert losses and all(math.isfinite(x) for x in losses)
