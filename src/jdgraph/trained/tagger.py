"""A skill-span tagger: BIO token classification (skill, knowledge) on the bundled MiniLM's transformer.

The posting is tokenised once with character offsets and cut into overlapping windows of ``window`` word pieces;
each window is one training example, and at inference a token's probabilities are averaged over the windows that
hold it. A token is inside a span when its probability of ``O`` is below ``1 - threshold``: the threshold trades
recall for precision and is chosen on held-out TRAINING postings. Spans are widened to whole words, since a word
piece boundary is not where a reader would cut "JavaScript".
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jdgraph.trained.data import SPAN_TYPES, Posting, Span
from jdgraph.trained.encoder import _offline, seed_everything

LABELS = ["O"] + [f"{p}-{t}" for t in SPAN_TYPES for p in ("B", "I")]
LABEL_ID = {label: i for i, label in enumerate(LABELS)}


@dataclass(frozen=True)
class TaggerParams:
    epochs: int = 3
    batch_size: int = 16
    lr: float = 5e-5
    window: int = 128
    stride: int = 96
    warmup_fraction: float = 0.1
    freeze_word_embeddings: bool = True
    seed: int = 13

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    offsets: list[tuple[int, int]]
    labels: list[int]


IGNORED = -100  # a token left out of the loss (the token-classification loss's ignore index)


def encode_posting(tokenizer: Any, posting: Posting) -> Encoded:
    enc = tokenizer(posting.text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    labels = [IGNORED if posting.partial else LABEL_ID["O"]] * len(offsets)
    for span in posting.not_spans:
        for i, (a, b) in enumerate(offsets):
            if a < span.end and span.start < b:
                labels[i] = LABEL_ID["O"]
    for span in posting.spans:
        inside = [i for i, (a, b) in enumerate(offsets) if a < span.end and span.start < b]
        for n, i in enumerate(inside):
            labels[i] = LABEL_ID[f"{'B' if n == 0 else 'I'}-{span.type}"]
    return Encoded(list(enc["input_ids"]), offsets, labels)


def windows(length: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Token ranges covering ``0..length`` (room left for [CLS] and [SEP])."""
    size = window - 2
    if length <= size:
        return [(0, length)]
    starts = [*range(0, length - size, stride), length - size]
    return [(s, s + size) for s in dict.fromkeys(starts)]


def _batch(tokenizer: Any, chunks: Sequence[list[int]], labels: Sequence[list[int]] | None) -> dict[str, Any]:
    # deferred: torch takes seconds to import, only training and tagging need it
    import torch

    width = max(len(c) for c in chunks) + 2
    ids = torch.full((len(chunks), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(chunks), width), dtype=torch.long)
    lab = torch.full((len(chunks), width), IGNORED, dtype=torch.long)
    for r, chunk in enumerate(chunks):
        row = [tokenizer.cls_token_id, *chunk, tokenizer.sep_token_id]
        ids[r, : len(row)] = torch.tensor(row)
        mask[r, : len(row)] = 1
        if labels is not None:
            lab[r, 1 : 1 + len(chunk)] = torch.tensor(labels[r])
    out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    if labels is not None:
        out["labels"] = lab
    return out


def load_tagger(path: Path | str) -> tuple[Any, Any]:
    _offline()
    # deferred: transformers takes seconds to import, only a model load needs it
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForTokenClassification.from_pretrained(
        str(path), num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id=LABEL_ID
    )
    return tokenizer, model


def train_tagger(
    postings: Sequence[Posting],
    params: TaggerParams,
    *,
    base: Path | str,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Any, Any]:
    # deferred: torch takes seconds to import, only training needs it
    import torch

    seed_everything(params.seed)
    tokenizer, model = load_tagger(base)
    examples: list[tuple[list[int], list[int]]] = []
    for posting in postings:
        enc = encode_posting(tokenizer, posting)
        for a, b in windows(len(enc.ids), params.window, params.stride):
            examples.append((enc.ids[a:b], enc.labels[a:b]))
    steps_per_epoch = (len(examples) + params.batch_size - 1) // params.batch_size
    total = max(1, steps_per_epoch * params.epochs)
    warmup = max(1, int(total * params.warmup_fraction))
    if params.freeze_word_embeddings:
        # As for the encoder: the 30k-row word-piece table is half the model, and its AdamW update a large share of
        # each step's time on 2 cores, for rows a few hundred postings barely touch.
        model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    rng = random.Random(params.seed)
    model.train()
    step = 0
    for _ in range(params.epochs):
        order = list(range(len(examples)))
        rng.shuffle(order)
        for b in range(steps_per_epoch):
            chosen = [examples[i] for i in order[b * params.batch_size : (b + 1) * params.batch_size]]
            batch = _batch(tokenizer, [c[0] for c in chosen], [c[1] for c in chosen])
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimiser.step()
            scheduler.step()
            optimiser.zero_grad(set_to_none=True)
            step += 1
            if progress is not None:
                progress(step, total, float(loss.item()))
    model.eval()
    return tokenizer, model


def token_probabilities(tokenizer: Any, model: Any, text: str, params: TaggerParams) -> tuple[np.ndarray, list]:
    """Per-token label probabilities (tokens × labels), averaged over overlapping windows, and the offsets."""
    return token_probabilities_many(tokenizer, model, [text], params)[0]


def token_probabilities_many(
    tokenizer: Any, model: Any, texts: Sequence[str], params: TaggerParams
) -> list[tuple[np.ndarray, list]]:
    """:func:`token_probabilities` of several texts, their windows batched together (a forward pass on a CPU
    has a fixed cost, so many short texts in one batch cost little more than one)."""
    # deferred: torch takes seconds to import, only tagging needs it
    import torch

    encoded = [tokenizer(t, add_special_tokens=False, return_offsets_mapping=True) for t in texts]
    ids = [list(e["input_ids"]) for e in encoded]
    offsets = [[tuple(o) for o in e["offset_mapping"]] for e in encoded]
    probs = [np.zeros((len(x), len(LABELS)), dtype=np.float32) for x in ids]
    seen = [np.zeros(len(x), dtype=np.float32) for x in ids]
    # Shortest windows first: a batch pads to its longest, so similar lengths waste least.
    jobs = sorted(((t, a, b) for t, x in enumerate(ids) for a, b in windows(len(x), params.window, params.stride)
                   if b > a), key=lambda j: j[2] - j[1])  # fmt: skip
    with torch.inference_mode():
        for i in range(0, len(jobs), 16):
            group = jobs[i : i + 16]
            batch = _batch(tokenizer, [ids[t][a:b] for t, a, b in group], None)
            out = torch.softmax(model(**batch).logits, dim=-1).numpy()
            for r, (t, a, b) in enumerate(group):
                probs[t][a:b] += out[r, 1 : 1 + b - a]
                seen[t][a:b] += 1
    return [(p / np.maximum(n, 1)[:, None], o) for p, n, o in zip(probs, seen, offsets, strict=True)]


def decode(text: str, probs: np.ndarray, offsets: Sequence[tuple[int, int]], threshold: float) -> list[Span]:
    """Spans from token probabilities: a token is in a span when P(not O) ≥ threshold; a B label (more likely
    than I) or a type change starts a new span; spans are widened to whole words. Each span's score is the mean
    P(not O) of its tokens."""
    spans: list[Span] = []
    current: list[int] | None = None
    inside_p: list[float] = []
    kind = ""
    b_ids = {t: LABEL_ID[f"B-{t}"] for t in SPAN_TYPES}
    i_ids = {t: LABEL_ID[f"I-{t}"] for t in SPAN_TYPES}

    def close() -> None:
        if current:
            spans.append(Span(current[0], current[1], kind, round(float(np.mean(inside_p)), 4)))

    for i, row in enumerate(probs):
        p_in = 1.0 - float(row[0])
        if p_in < threshold:
            close()
            current, inside_p = None, []
            continue
        t = max(SPAN_TYPES, key=lambda x: row[b_ids[x]] + row[i_ids[x]])
        begins = row[b_ids[t]] > row[i_ids[t]]
        a, b = offsets[i]
        joined = current is not None and text[current[1] : a].strip() == "" and a - current[1] <= 1
        continues_word = current is not None and a == current[1]
        if current is not None and (continues_word or (joined and not begins and t == kind)):
            current[1] = b
            inside_p.append(p_in)
        else:
            close()
            current, kind, inside_p = [a, b], t, [p_in]
    close()
    return [_widen(text, s) for s in spans]


def _widen(text: str, span: Span) -> Span:
    start, end = span.start, span.end
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return Span(start, end, span.type, span.score)


class SpanTagger:
    """A trained tagger loaded from its folder: ``tag(text)`` gives skill and knowledge spans."""

    def __init__(self, tokenizer: Any, model: Any, params: TaggerParams, threshold: float, name: str = "") -> None:
        self.tokenizer, self.model, self.params, self.threshold = tokenizer, model, params, threshold
        self.name = name
        """Which model this is (its id, and for a compact one the id it was exported from): runs record it."""

    def tag(
        self, text: str, threshold: float | None = None, regions: Sequence[tuple[int, int]] | None = None
    ) -> list[Span]:
        """Skill and knowledge spans of ``text``; ``threshold`` overrides the card's decoding threshold (higher:
        fewer, surer spans). ``regions`` (character ranges) limits tagging to those parts of the text: the
        extractor keeps no span outside a JD's requirement sentences, so tagging its blurb and perks is time
        spent for nothing. Each region is tagged on its own, all of them in one batch."""
        cut = threshold if threshold is not None else self.threshold
        parts = [(0, len(text))] if regions is None else [(a, b) for a, b in regions if b > a]
        if not parts:
            return []
        found = token_probabilities_many(self.tokenizer, self.model, [text[a:b] for a, b in parts], self.params)
        spans = []
        for (a, b), (probs, offsets) in zip(parts, found, strict=True):
            spans += [Span(s.start + a, s.end + a, s.type, s.score) for s in decode(text[a:b], probs, offsets, cut)]
        return spans
