"""The tuned encoder the package ships (the default embeddings): float16 layers over the bundled MiniLM, what a
damaged copy does, and exporting a trained encoder into that form."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from jdgraph.catalog.embeddings import ShippedEncoderEmbeddings, make_embeddings, minilm_embeddings
from jdgraph.settings import DEFAULT_EMBEDDINGS, EmbeddingSettings
from jdgraph.trained.artefacts import SHIPPED_WEIGHTS, ArtefactError
from jdgraph.trained.compact_encoder import (
    CARD,
    SHIPPED_ENCODER,
    export_compact_encoder,
    load_compact_encoder,
    shipped_encoder_card,
)

TEXTS = ["Senior Python developer", "registered nurse, night shifts", "line cook who keeps food safety records"]


def test_the_default_embeddings_are_the_shipped_tuned_encoder_not_minilm() -> None:
    assert DEFAULT_EMBEDDINGS == "shipped"
    served = make_embeddings()
    card = shipped_encoder_card()
    assert isinstance(served, ShippedEncoderEmbeddings)
    assert served.model_id == f"jdgraph-shipped:{card['exported_from']}@{card['weights_sha256'][:12]}"
    assert served.dimension == 384 and served._model is None  # the dimension comes from the card, not a load
    tuned, base = served.embed_array(TEXTS), minilm_embeddings().embed_array(TEXTS)
    assert np.allclose(np.linalg.norm(tuned, axis=1), 1.0, atol=1e-5)
    # the layers are the tuned ones: near MiniLM (same word-piece table) but not MiniLM
    assert ((tuned * base).sum(axis=1) < 0.99).all() and ((tuned * base).sum(axis=1) > 0.7).all()
    assert card["top1_identical_to_float32_on_held_out_titles"] >= 0.99
    assert served.token_vectors("food safety checks") is not None
    assert make_embeddings(EmbeddingSettings(provider="minilm")).model_id == minilm_embeddings().model_id


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "encoder"
    shutil.copytree(SHIPPED_ENCODER, folder)
    return folder


def test_a_damaged_missing_or_foreign_shipped_encoder_names_the_rebuild_command(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    data = bytearray((folder / SHIPPED_WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / SHIPPED_WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match=r"does not match its card.*jdgraph models train encoder"):
        load_compact_encoder(folder)
    (folder / SHIPPED_WEIGHTS).unlink()
    with pytest.raises(ArtefactError, match=r"weights.safetensors is missing; train one"):
        load_compact_encoder(folder)
    card = json.loads((folder / CARD).read_text(encoding="utf-8"))
    (folder / CARD).write_text(json.dumps({**card, "kind": "span-tagger"}), encoding="utf-8")
    with pytest.raises(ArtefactError, match=r"'span-tagger'.*not this version's shipped encoder"):
        load_compact_encoder(folder)
    (folder / CARD).write_text("{not json", encoding="utf-8")
    with pytest.raises(ArtefactError, match=r"corrupt.*JDGRAPH_EMBEDDINGS=minilm"):
        load_compact_encoder(folder)


def _fake_trained_encoder(cache: Path, model_id: str, *, change_word_table: bool = False) -> None:
    """A "trained" encoder in the cache: the bundled MiniLM with one layer's bias moved (and, to be refused, its
    word-piece table touched), with the card fields export reads."""
    import torch

    from jdgraph.trained.encoder import base_model_path, load_sentence_model

    model = load_sentence_model(base_model_path())
    with torch.no_grad():
        model[0].auto_model.encoder.layer[0].attention.self.query.bias.add_(0.05)
        if change_word_table:
            model[0].auto_model.embeddings.word_embeddings.weight[1000].add_(0.01)
    folder = cache / "models" / model_id
    model.save(str(folder / "model"))
    card = {"model_id": model_id, "kind": "encoder", "seed": 13, "files": ["model/model.safetensors"]}
    (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")


def test_export_stores_the_changed_layers_in_float16_and_refuses_a_changed_word_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jdgraph.trained import compact_encoder
    from jdgraph.trained.train import load_encoder

    monkeypatch.setenv("JDGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(compact_encoder, "AGREEMENT_TITLES", 50)
    _fake_trained_encoder(tmp_path / "cache", "enc-a")
    card = export_compact_encoder("enc-a", tmp_path / "out")
    assert card["model_id"] == "shipped-encoder" and card["exported_from"] == "enc-a"
    assert card["top1_identical_to_float32_on_held_out_titles"] >= 0.98 and card["agreement_cases"]["titles"] == 50
    assert 15e6 < card["size_bytes"] < 30e6  # no word-piece table: about half of MiniLM's 22.7M parameters
    exported = load_compact_encoder(tmp_path / "out")
    trained, _ = load_encoder("enc-a")
    a, b = exported.encode(TEXTS, normalize_embeddings=True), trained.encode(TEXTS, normalize_embeddings=True)
    base = minilm_embeddings().embed_array(TEXTS)
    assert ((a * b).sum(axis=1) > 0.9999).all() and not np.allclose(a, base, atol=1e-3)

    _fake_trained_encoder(tmp_path / "cache", "enc-b", change_word_table=True)
    with pytest.raises(ArtefactError, match="changed its word-piece table"):
        export_compact_encoder("enc-b", tmp_path / "out-b")
    assert not (tmp_path / "out-b").exists()


def test_models_list_and_show_print_the_shipped_encoder() -> None:
    from typer.testing import CliRunner

    from jdgraph.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0
    encoder = next(c for c in json.loads(listed.stdout) if c["model_id"] == "shipped-encoder")
    assert encoder["kind"] == "encoder" and encoder["format"].startswith("float16")
    shown = runner.invoke(app, ["models", "show", "shipped-encoder"])
    assert shown.exit_code == 0 and '"top1_identical_to_float32_on_held_out_titles"' in shown.stdout
