"""Where trained models live: one folder per model id under the jdgraph cache, written atomically, each with a
model card (``card.json``).

A folder is built under a temporary name beside its final place and renamed into it only when every file and the
card are written: an interrupted training leaves a ``.tmp-*`` folder that the next run removes, never a
half-written model that a later run would load.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import platformdirs

from jdgraph.errors import ConfigError
from jdgraph.settings import env_value
from jdgraph.trained.data import sha256_of

CARD = "card.json"
SHIPPED_WEIGHTS = "weights.safetensors"
"""A shipped model's one weights file (beside its card), the tagger's and the encoder's alike."""
FROZEN = "word_embeddings.weight"
"""The one tensor training never changes; a shipped model takes it from the installed base model."""
REBUILD = {
    "encoder": "jdgraph models train encoder",
    "span-tagger": "jdgraph models train span-tagger",
}


class ArtefactError(ConfigError):
    """A trained model is missing, corrupt or not the kind asked for; the message names the command that
    rebuilds it."""


def cache_dir() -> Path:
    """``$JDGRAPH_CACHE`` or the user cache directory (the same place localmodel keeps its builds)."""
    explicit = env_value("JDGRAPH_CACHE")
    return Path(explicit).expanduser() if explicit else Path(platformdirs.user_cache_dir("jdgraph"))


def models_dir() -> Path:
    return cache_dir() / "models"


def model_dir(model_id: str) -> Path:
    if not model_id or "/" in model_id or model_id.startswith("."):
        raise ConfigError(f"{model_id!r} is not a model id (a plain folder name)", setting="model_id")
    return models_dir() / model_id


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """A temporary folder beside ``final``; on a clean exit it replaces ``final`` whole (an exported shipped model:
    a failure half-way leaves the old one as it was)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: Path, value: dict[str, Any]) -> None:
    """A card as the package ships it: sorted keys, indented, a final newline (diffs stay small)."""
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def word_table_unchanged(tuned: dict[str, Any], base: dict[str, Any]) -> bool:
    """Whether a trained model's word-piece table is the base model's, bit for bit: only then can its shipped form
    leave the table out (two state dicts of torch tensors)."""
    # deferred: torch takes seconds to import; only an export compares tensors
    import torch

    return all(torch.equal(tensor, base[name]) for name, tensor in tuned.items() if name.endswith(FROZEN))


def check_weights(weights: Path, card: dict[str, Any], hint: str) -> None:
    """A shipped model's weights file exists and is the one its card names (sha256); else an ArtefactError."""
    if not weights.is_file():
        raise ArtefactError(f"{weights} is missing; {hint}")
    if sha256_of(weights) != card.get("weights_sha256"):
        raise ArtefactError(f"{weights} does not match its card (sha256 differs): damaged or replaced; {hint}")


@contextmanager
def atomic_model_dir(model_id: str) -> Iterator[Path]:
    """A temporary folder to write the model into; on a clean exit it replaces ``model_dir(model_id)``."""
    final = model_dir(model_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".tmp-{model_id}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{model_id}-", dir=final.parent))
    try:
        yield tmp
        if not (tmp / CARD).is_file():
            raise ArtefactError(f"{model_id}: the model card was not written; nothing was installed")
        old = final.parent / f".old-{model_id}-{os.getpid()}"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_card(folder: Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write ``card`` with the folder's size added; returns it as written."""
    card = {**card, "size_bytes": folder_size(folder)}
    (folder / CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return card


def read_card(model_id: str, kind: str) -> tuple[Path, dict[str, Any]]:
    """The model's folder and card; anything missing or of another kind is an ArtefactError naming the rebuild."""
    folder = model_dir(model_id)
    rebuild = REBUILD.get(kind, "jdgraph models train")
    card_path = folder / CARD
    if not card_path.is_file():
        raise ArtefactError(f"trained model {model_id!r} not found in {folder}; build it with `{rebuild}`")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtefactError(f"{card_path} is corrupt ({exc}); rebuild it with `{rebuild}`") from exc
    if card.get("kind") != kind:
        raise ArtefactError(f"{model_id!r} is a {card.get('kind')!r}, not a {kind!r}; build one with `{rebuild}`")
    rebuild = str(card.get("rebuild", rebuild))  # a derived model (an int8 encoder) names its own command
    missing = [name for name in card.get("files", []) if not (folder / name).is_file()]
    if missing:
        raise ArtefactError(f"{model_id!r} lacks {', '.join(missing)}; rebuild it with `{rebuild}`")
    return folder, card


def list_models() -> list[dict[str, Any]]:
    out = []
    root = models_dir()
    for card_path in sorted(root.glob(f"*/{CARD}")) if root.exists() else []:
        try:
            out.append(json.loads(card_path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            out.append({"model_id": card_path.parent.name, "error": "unreadable card"})
    return out


class Progress:
    """Progress as whole lines (``step 120/730 loss 1.234 1m05s elapsed, ~5m left``): a log file or a pipe shows
    the same thing as a terminal, with no carriage returns to garble it."""

    def __init__(self, total: int, label: str, every_s: float = 15.0, stream: TextIO | None = None) -> None:
        self.total, self.label, self.every_s = total, label, every_s
        self.stream = stream or sys.stderr
        self.start = self.last = time.monotonic()

    def update(self, done: int, **values: float) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s and done < self.total:
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed / done * (self.total - done) if done else 0.0
        extra = " ".join(f"{k} {v:.4f}" for k, v in values.items())
        print(f"{self.label}: {done}/{self.total} {extra} {_clock(elapsed)} elapsed, ~{_clock(left)} left",
              file=self.stream, flush=True)  # fmt: skip


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"
