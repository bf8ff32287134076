"""Dev figures of the trained components beside their baselines.

Titles (``jobbert-titles-dev.csv``, 2,000 titles, Decorte et al.) against all 3,007 ESCO v1.1.1 occupations:
top-1, top-5 and MRR (within the first 10) for
- the "look the title up in the training file" baseline (``jobbert-titles-train.csv``);
- a model ranking by label similarity alone: best cosine over preferred+alt labels, and preferred label alone;
- the same model fused with the kNN vote of the training titles (fusion chosen on held-out TRAINING titles);
for the bundled MiniLM and for each installed encoder.

Spans (``skillspan-dev.jsonl``, 58 postings, SkillSpan, MIT): recall per type and overlap precision per half for the
installed tagger, beside the ESCO-label dictionary baseline of ../shared/README.md.

Embeddings are memoised on disk under the jdgraph cache (``bench/``), so a second run costs seconds.
Run: ``python benchmarks/trained.py [--titles] [--spans] [--encoder ID] [--tagger ID]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from typing import Any

from jdgraph.trained import artefacts, data
from jdgraph.trained.encoder import (
    MemoEncoder,
    TitleRanker,
    base_model_path,
    load_sentence_model,
    lookup_baseline,
    rank_metrics,
)
from jdgraph.trained.evaluate import load_dev_titles
from jdgraph.trained.train import choose_rank_params, measure_titles_dev, split_titles

DICTIONARY_BASELINE = {
    "tech_skill_recall": 0.178, "tech_knowledge_recall": 0.323, "tech_precision": 0.492,
    "house_skill_recall": 0.232, "house_knowledge_recall": 0.324, "house_precision": 0.412,
}  # fmt: skip


def _memo(model: Any, name: str) -> tuple[MemoEncoder, Any]:
    memo = MemoEncoder(model)
    path = artefacts.cache_dir() / "bench" / f"{hashlib.sha256(name.encode()).hexdigest()[:16]}.npz"
    memo.load(path)
    return memo, path


def titles_report(encoder_ids: list[str], seed: int = 13) -> dict[str, Any]:
    titles = data.load_titles()
    occupations = data.load_occupations()
    dev = load_dev_titles()
    out: dict[str, Any] = {"cases": len(dev)}
    out["lookup_in_train"] = {k: round(v, 4) for k, v in rank_metrics(
        lookup_baseline(titles, [t.title for t in dev]), [t.occupation_uri for t in dev]).items()}  # fmt: skip
    known = [t for t in titles if t.occupation_uri in occupations]
    fit, held = split_titles(known, 0.1, seed)
    models: list[tuple[str, Any]] = [("base-minilm", str(base_model_path()))]
    for model_id in encoder_ids:
        folder, _card = artefacts.read_card(model_id, "encoder")
        models.append((model_id, str(folder / "model")))
    for name, path in models:
        started = time.monotonic()
        memo, memo_path = _memo(load_sentence_model(path), path)
        ranker = TitleRanker(memo, occupations, fit)
        params, held_metrics = choose_rank_params(ranker, held)
        report = measure_titles_dev(memo, occupations, titles, params, label_vectors=ranker.label_vectors())
        memo.save(memo_path)
        held_rounded = {k: round(v, 4) for k, v in held_metrics.items()}
        out[name] = {"held_out_train": held_rounded, "rank_params": params.__dict__, **report,
                     "wall_s": round(time.monotonic() - started, 1)}  # fmt: skip
    return out


def spans_report(tagger_id: str, thresholds: list[float]) -> dict[str, Any]:
    """The installed tagger at its card's threshold, then a threshold sweep: each threshold's figures on the
    held-out TRAINING postings (where an operating point may be chosen) and on dev (which only reports)."""
    from jdgraph.trained.evaluate import load_dev_postings, span_metrics
    from jdgraph.trained.tagger import decode, token_probabilities
    from jdgraph.trained.train import load_span_tagger, split_postings

    started = time.monotonic()
    tagger = load_span_tagger(tagger_id)
    _, card = artefacts.read_card(tagger_id, "span-tagger")
    _, held = split_postings(data.load_skillspan(), 0.1, int(card["seed"]))
    dev = load_dev_postings()
    probs = {
        name: [token_probabilities(tagger.tokenizer, tagger.model, p.text, tagger.params) for p in postings]
        for name, postings in (("held_out_train", held), ("dev", dev))
    }
    sweep = []
    for threshold in sorted({tagger.threshold, *thresholds}):
        row: dict[str, Any] = {"threshold": threshold}
        for name, postings in (("held_out_train", held), ("dev", dev)):
            predicted = [decode(p.text, pr, off, threshold) for p, (pr, off) in zip(postings, probs[name], strict=True)]
            row[name] = {k: round(v, 4) for k, v in span_metrics(postings, predicted).items()}
        sweep.append(row)
    at_card = next(r for r in sweep if r["threshold"] == tagger.threshold)
    return {"dictionary_baseline": DICTIONARY_BASELINE, "card_threshold": tagger.threshold,
            tagger_id: at_card["dev"], "sweep": sweep, "wall_s": round(time.monotonic() - started, 1)}  # fmt: skip


def int8_report(encoder_id: str | None, seed: int = 13) -> dict[str, Any]:
    """Dynamic int8 quantisation of the encoder's Linear layers (torch, no extra dependency): the share of titles-dev
    top-1 decisions (fused ranking) that stay identical, and the size of the int8 weights. A stand-in for the int8
    ONNX export until onnxruntime is a dependency: both quantise the Linear weights to int8 and the activations
    dynamically; torch's default uses one scale per weight matrix, onnxruntime's can use one per row."""
    import io

    import numpy as np
    import torch

    path = str(base_model_path())
    if encoder_id:
        folder, _card = artefacts.read_card(encoder_id, "encoder")
        path = str(folder / "model")
    titles, occupations, dev = data.load_titles(), data.load_occupations(), load_dev_titles()
    known = [t for t in titles if t.occupation_uri in occupations]
    fit, held = split_titles(known, 0.1, seed)
    fp32, memo_path = _memo(load_sentence_model(path), path)
    ranker = TitleRanker(fp32, occupations, fit)
    params, _ = choose_rank_params(ranker, held)
    full = TitleRanker(fp32, occupations, titles, label_vectors=ranker.label_vectors())
    fp32.save(memo_path)
    model = load_sentence_model(path)
    qmodel = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    buffer = io.BytesIO()
    torch.save(qmodel.state_dict(), buffer)
    int8 = MemoEncoder(qmodel)
    qranker = TitleRanker(int8, occupations, titles)
    queries = [t.title for t in dev]
    a = np.argmax(full.scores(fp32.encode(queries), params), axis=1)
    b = np.argmax(qranker.scores(int8.encode(queries), params), axis=1)
    expected = [t.occupation_uri for t in dev]
    order = np.argsort(-qranker.scores(int8.encode(queries), params), axis=1)[:, :10]
    return {"model": encoder_id or "base-minilm", "top1_identical": round(float((a == b).mean()), 4),
            "int8_fused": {k: round(v, 4) for k, v in rank_metrics(
                [[qranker.uris[j] for j in r] for r in order], expected).items()},
            "int8_state_dict_bytes": buffer.tell()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--titles", action="store_true")
    parser.add_argument("--spans", action="store_true")
    parser.add_argument("--encoder", action="append", default=[], help="installed encoder id (repeatable)")
    parser.add_argument("--tagger", default="span-tagger-minilm")
    parser.add_argument("--thresholds", default="0.5,0.6,0.7,0.8,0.9", help="span tagger sweep")
    parser.add_argument("--int8", action="store_true", help="int8 agreement of the (first --encoder or base) model")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.int8:
        print(json.dumps(int8_report(args.encoder[0] if args.encoder else None), indent=2))
        return
    both = not (args.titles or args.spans)
    report: dict[str, Any] = {}
    if args.titles or both:
        report["titles-dev"] = titles_report(args.encoder)
    if args.spans or both:
        report["skillspan-dev"] = spans_report(args.tagger, [float(x) for x in args.thresholds.split(",")])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
