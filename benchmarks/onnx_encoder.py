"""An int8 ONNX encoder against its float32 source: how often the two make the same top-1 decision on the dev
suites, and how fast each embeds.

Decisions, each a query's nearest label by cosine (the encoder's own decision, without the rest of the pipeline):
- titles-dev (2,000 titles) and hahu-dev's ad titles (130) against ESCO v1.1.1 occupations' preferred and alt labels
  (an occupation's best label);
- tech-dev and house-dev sentences (the labelled ones) against ESCO skills' preferred labels.
The issue's rule: an int8 encoder is served only if at least 99% of these decisions are identical.

Speed: sentences per second for hahu-dev's description sentences (one JD's worth at a time, as the pipeline embeds),
float32 through sentence-transformers (torch) against int8 through onnxruntime, alternated in rounds so that load on
a shared machine falls on both; the ratio is what to read.

Run: ``python benchmarks/onnx_encoder.py --source encoder-minilm-esco --quantized encoder-minilm-esco-int8``
(``--source minilm`` for the bundled MiniLM; build the int8 one with ``jdgraph models quantize SOURCE``).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import time
from collections.abc import Callable, Sequence

import numpy as np

from jdgraph.catalog.embeddings import ModelEmbeddings, make_embeddings
from jdgraph.settings import EmbeddingSettings, shared_dir
from jdgraph.trained import data

Encode = Callable[[Sequence[str]], np.ndarray]


def provider(model_id: str) -> str:
    return "minilm" if model_id == "minilm" else f"trained:{model_id}"


def dev_queries() -> dict[str, list[str]]:
    dev = shared_dir() / "data" / "dev"
    with (dev / "jobbert-titles-dev.csv").open(encoding="utf-8") as fh:
        titles = [row["title"] for row in csv.DictReader(fh)]
    ads = [json.loads(x) for x in (dev / "hahu-dev.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    out = {"titles-dev": titles, "hahu-dev titles": [str(a.get("title") or "") for a in ads]}
    for suite in ("tech", "house"):
        with (dev / f"{suite}_validation_annotations.csv").open(encoding="utf-8") as fh:
            out[f"{suite}-dev sentences"] = sorted({row["sentence"] for row in csv.DictReader(fh)})
    return out


def ad_sentences() -> list[list[str]]:
    ads = [json.loads(x) for x in (shared_dir() / "data" / "dev" / "hahu-dev.jsonl").read_text().splitlines() if x]
    return [[s for s in re.split(r"(?<=[.!?])\s+|\n+", str(a.get("description", ""))) if len(s) > 3] for a in ads]


def top1(encode: Encode, queries: Sequence[str], labels: Sequence[str], owners: np.ndarray) -> np.ndarray:
    q, lab = encode(queries), encode(labels)
    return owners[(q @ lab.T).argmax(axis=1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default="encoder-minilm-esco")
    parser.add_argument("--quantized", default="encoder-minilm-esco-int8")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    models: dict[str, ModelEmbeddings] = {
        "float32": make_embeddings(EmbeddingSettings(provider=provider(args.source))),
        "int8": make_embeddings(EmbeddingSettings(provider=provider(args.quantized))),
    }
    occupations = data.load_occupations()
    skills = data.load_skills()
    occ_labels, occ_owner = [], []
    for i, uri in enumerate(sorted(occupations)):
        for label in (occupations[uri].preferred, *occupations[uri].alts):
            occ_labels.append(label)
            occ_owner.append(i)
    skill_labels = [skills[u].preferred for u in sorted(skills)]
    tasks = {
        name: (queries, skill_labels if "sentences" in name else occ_labels) for name, queries in dev_queries().items()
    }
    owners = {id(occ_labels): np.array(occ_owner), id(skill_labels): np.arange(len(skill_labels))}
    total = same = 0
    for name, (queries, labels) in tasks.items():
        decisions = [top1(m.embed_array, queries, labels, owners[id(labels)]) for m in models.values()]
        agree = int((decisions[0] == decisions[1]).sum())
        total, same = total + len(queries), same + agree
        print(f"{name}: {agree}/{len(queries)} top-1 identical = {agree / len(queries):.4f}", flush=True)
    print(f"all: {same}/{total} = {same / total:.4f} (served only if >= 0.99)")

    jds = ad_sentences()
    for m in models.values():
        m.embed_array(jds[0])  # load the model before timing
    seconds = dict.fromkeys(models, 0.0)
    for _ in range(args.rounds):
        for name, m in models.items():
            start = time.perf_counter()
            for sentences in jds:
                m.embed_array(sentences)
            seconds[name] += time.perf_counter() - start
    n = sum(len(s) for s in jds) * args.rounds
    for name in models:
        print(f"{name}: {n / seconds[name]:.1f} sentences/s ({models[name].model_id})")
    print(f"int8 / float32 speed: {seconds['float32'] / seconds['int8']:.2f}")


if __name__ == "__main__":
    main()
